//! Key regeneration under continuous load, through ECDS: a client holding a valid key on one
//! keep-alive connection never fails while the primary, then the secondary, are regenerated; the
//! replaced key is refused within 2 seconds of the command; the token key set survives reloads.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aml_auth_filter::signing::jwks;
use common::*;
use serde_json::json;

const KEY_PATH: &str = "/api/v1/service/demo/score";
const TOKEN_PATH: &str = "/api/v1/service/demo-token/score";

/// A client sending requests non-stop on one connection with whatever credential is current.
struct Client {
    stop: Arc<AtomicBool>,
    credential: Arc<Mutex<String>>,
    handle: Option<thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Client {
    fn start(addr: std::net::SocketAddr, path: &'static str, credential: String) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let credential = Arc::new(Mutex::new(credential));
        let (s, c) = (stop.clone(), credential.clone());
        let handle = thread::spawn(move || {
            let mut conn = KeepAlive::connect(addr).unwrap();
            let (mut sent, mut failures) = (0usize, Vec::new());
            while !s.load(Ordering::SeqCst) {
                let auth = format!("Bearer {}", c.lock().unwrap());
                match conn.get(path, &[("authorization", &auth)]) {
                    Ok(r) if r.status == 200 => {}
                    Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
                    Err(e) => {
                        failures.push(format!("connection dropped: {e}"));
                        break;
                    }
                }
                sent += 1;
            }
            (sent, failures)
        });
        Client {
            stop,
            credential,
            handle: Some(handle),
        }
    }

    fn switch_to(&self, credential: &str) {
        *self.credential.lock().unwrap() = credential.to_string();
    }

    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap()
    }
}

fn regen(slot: &str, config: &std::path::Path, ecds: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_aml-auth"))
        .args(["keys", "regen", slot, "--config"])
        .arg(config)
        .arg("--envoy-ecds")
        .arg(ecds)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "regen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn regeneration_under_load_never_fails_a_valid_client() {
    let upstream = Server::upstream();
    let jwks_body = jwks(vec![signing_key("rsa-a.pem").public_jwk("rsa-a", None)]);
    let jwks = jwks_server(&jwks_body);
    let dir = scratch_dir("regen");
    let (old_primary, old_secondary) = (
        "regen-old-primary-0123456789",
        "regen-old-secondary-012345678",
    );
    let config = json!({
        "auth_enabled": true,
        "primary_key": old_primary,
        "secondary_key": old_secondary,
        "token": {"issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": remote_source("jwks", 600, 86_400)},
        "services": [
            {"name": "demo", "path_prefix": "/api/v1/service/demo/"},
            {"name": "demo-token", "path_prefix": "/api/v1/service/demo-token/",
             "auth_enabled": false, "token_auth_enabled": true}
        ]
    });
    let config_text = serde_json::to_string_pretty(&config).unwrap();
    let config_path = dir.join("plugin-config.json");
    std::fs::write(&config_path, &config_text).unwrap();
    let (filter, ecds) = ecds_filter(&dir, &config_text);
    let envoy = Envoy::start(&bootstrap(
        vec![listener("main", vec![filter], vec![route_to("upstream")])],
        vec![
            cluster("upstream", upstream.addr),
            cluster("jwks", jwks.addr),
        ],
    ));
    let token = signing_key("rsa-a.pem")
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        TOKEN_PATH,
        &token
    )
    .status
        == 200));
    let fetches_before = jwks.count();

    let key_client = Client::start(envoy.main(), KEY_PATH, old_secondary.to_string());
    let token_client = Client::start(envoy.main(), TOKEN_PATH, token.clone());
    assert!(
        wait_until(DEADLINE, || upstream.count() > 50),
        "clients are not flowing"
    );

    let issued = Instant::now();
    let new_primary = regen("primary", &config_path, &ecds);
    let applied = wait_until(Duration::from_secs(2), || {
        get_bearer(envoy.main(), KEY_PATH, old_primary).status == 401
            && get_bearer(envoy.main(), KEY_PATH, &new_primary).status == 200
    });
    assert!(
        applied,
        "the old primary was not refused within 2 s of regen ({:?})",
        issued.elapsed()
    );
    eprintln!(
        "primary regen applied {:?} after the command",
        issued.elapsed()
    );

    key_client.switch_to(&new_primary);
    let issued = Instant::now();
    let new_secondary = regen("secondary", &config_path, &ecds);
    let applied = wait_until(Duration::from_secs(2), || {
        get_bearer(envoy.main(), KEY_PATH, old_secondary).status == 401
            && get_bearer(envoy.main(), KEY_PATH, &new_secondary).status == 200
    });
    assert!(
        applied,
        "the old secondary was not refused within 2 s of regen ({:?})",
        issued.elapsed()
    );
    eprintln!(
        "secondary regen applied {:?} after the command",
        issued.elapsed()
    );
    let during = upstream.count();
    assert!(
        wait_until(DEADLINE, || upstream.count() > during + 50),
        "clients stalled after regen"
    );

    let (key_sent, key_failures) = key_client.finish();
    let (token_sent, token_failures) = token_client.finish();
    assert!(key_sent > 0 && token_sent > 0);
    eprintln!("key client sent {key_sent}, token client sent {token_sent} on one connection each");
    assert!(
        key_failures.is_empty(),
        "{} of {key_sent} key requests failed: {:?}",
        key_failures.len(),
        &key_failures[..key_failures.len().min(5)]
    );
    assert!(
        token_failures.is_empty(),
        "{} of {token_sent} token requests failed: {:?}",
        token_failures.len(),
        &token_failures[..token_failures.len().min(5)]
    );
    assert_eq!(
        jwks.count(),
        fetches_before,
        "a reload must not refetch or empty the key set"
    );
    assert_eq!(get_bearer(envoy.main(), KEY_PATH, &new_primary).status, 200);
    assert_eq!(get_bearer(envoy.main(), TOKEN_PATH, &token).status, 200);
}

#[test]
fn an_invalid_ecds_update_keeps_the_running_configuration() {
    let upstream = Server::upstream();
    let dir = scratch_dir("ecds-invalid");
    let good = r#"{"primary_key":"ecds-good-primary-0123456789"}"#;
    let (filter, ecds) = ecds_filter(&dir, good);
    let envoy = Envoy::start(&bootstrap(
        vec![listener("main", vec![filter], vec![route_to("upstream")])],
        vec![cluster("upstream", upstream.addr)],
    ));
    assert_eq!(
        get_bearer(envoy.main(), "/", "ecds-good-primary-0123456789").status,
        200
    );
    let (_, bad) = ecds_filter(
        &scratch_dir("ecds-invalid-src"),
        r#"{"primary_key":"has space"}"#,
    );
    let mut text: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bad).unwrap()).unwrap();
    text["version_info"] = json!("2");
    let tmp = ecds.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&text).unwrap()).unwrap();
    std::fs::rename(&tmp, &ecds).unwrap();
    let rejected = wait_until(DEADLINE, || {
        envoy
            .stats()
            .iter()
            .any(|(k, v)| k.contains("aml_auth") && k.ends_with("config_fail") && *v >= 1)
    });
    assert!(
        rejected,
        "Envoy never reported the rejected update:\n{}",
        envoy.log_tail(20)
    );
    assert!(
        envoy.log().contains("field `primary_key`"),
        "the refusal names the field"
    );
    assert_eq!(
        get_bearer(envoy.main(), "/", "ecds-good-primary-0123456789").status,
        200
    );
    assert_eq!(
        get(envoy.main(), "/", &[]).status,
        401,
        "auth still enforced"
    );
}
