//! OpenID Connect discovery end to end: a local issuer stand-in serves a discovery document and
//! the key set it names; the filter in a real Envoy follows it through the same lifecycle as a
//! plain JWKS source (outages, a moving `jwks_uri`, a refused document, fallback).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::{Arc, Mutex};

use aml_auth_filter::signing::jwks;
use common::*;
use serde_json::{json, Value};

const DOC_PATH: &str = "/tenant-0000/v2.0/.well-known/openid-configuration";

/// What the issuer stand-in serves: the discovery document and key sets by path.
#[derive(Clone)]
struct Issuer {
    document: Value,
    key_sets: Vec<(String, Value)>,
    down: bool,
}

fn issuer_server(state: Arc<Mutex<Issuer>>) -> Server {
    Server::start(move |req| {
        let s = state.lock().unwrap().clone();
        if s.down {
            return Reply::new(503, "down");
        }
        if req.path == DOC_PATH {
            return Reply::new(200, s.document.to_string())
                .header("content-type", "application/json");
        }
        match s.key_sets.iter().find(|(p, _)| *p == req.path) {
            Some((_, set)) => {
                Reply::new(200, set.to_string()).header("content-type", "application/json")
            }
            None => Reply::new(404, "no such path"),
        }
    })
}

fn document(jwks_uri: &str) -> Value {
    json!({"issuer": ISSUER, "jwks_uri": jwks_uri, "authorization_endpoint": "http://idp.test/authorize"})
}

fn discovery_source(cluster: &str, refresh: u64, max_stale: u64) -> Value {
    json!({
        "cluster": cluster,
        "discovery_uri": format!("http://idp.test{DOC_PATH}"),
        "timeout_seconds": 1,
        "refresh_interval_seconds": refresh,
        "max_stale_seconds": max_stale
    })
}

fn key_a() -> Value {
    jwks(vec![signing_key("rsa-a.pem").public_jwk("rsa-a", None)])
}

fn token(file: &str, kid: &str) -> String {
    let alg = if file.starts_with("rsa") {
        "RS256"
    } else {
        "ES256"
    };
    signing_key(file)
        .sign(alg, Some(kid), &good_claims())
        .unwrap()
}

fn status(envoy: &Envoy, token: &str) -> (u16, String) {
    let resp = get_bearer(envoy.main(), "/", token);
    let reason = if resp.status == 200 {
        String::new()
    } else {
        resp.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    (resp.status, reason)
}

fn start(issuer: &Server, extra: &[(&str, &Server)], sources: Value) -> (Server, Envoy) {
    let upstream = Server::upstream();
    let mut clusters: Vec<(&str, &Server)> = vec![("idp", issuer)];
    clusters.extend_from_slice(extra);
    let envoy = Envoy::start(&filter_with_clusters(
        &token_config(sources),
        &upstream,
        &clusters,
    ));
    (upstream, envoy)
}

#[test]
fn keys_are_found_through_the_discovery_document_and_follow_a_moving_jwks_uri() {
    let state = Arc::new(Mutex::new(Issuer {
        document: document("http://idp.test/keys/v1"),
        key_sets: vec![
            ("/keys/v1".into(), key_a()),
            (
                "/keys/v2".into(),
                jwks(vec![
                    signing_key("p256-a.pem").public_jwk("p256-a", Some("ES256"))
                ]),
            ),
        ],
        down: false,
    }));
    let idp = issuer_server(state.clone());
    let (_upstream, envoy) = start(&idp, &[], discovery_source("idp", 1, 86_400));
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1));
    assert!(envoy.stat("aml_auth.jwks.discovery.fetch_success") >= 1);
    assert_eq!(
        status(&envoy, &token("rsa-a.pem", "rsa-a")),
        (200, String::new())
    );
    let paths: Vec<String> = idp.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths[..2], [DOC_PATH.to_string(), "/keys/v1".to_string()]);
    assert_eq!(idp.received()[1].header("host"), Some("idp.test"));

    state.lock().unwrap().document = document("http://idp.test/keys/v2");
    assert!(
        wait_until(DEADLINE, || status(&envoy, &token("p256-a.pem", "p256-a"))
            .0
            == 200),
        "the moved jwks_uri was never followed:\n{}",
        envoy.log_tail(20)
    );
    assert_eq!(
        status(&envoy, &token("rsa-a.pem", "rsa-a")),
        (401, "unknown_kid".to_string()),
        "the key set is the new document's alone"
    );
}

#[test]
fn an_issuer_outage_keeps_the_last_good_set_until_max_stale() {
    let state = Arc::new(Mutex::new(Issuer {
        document: document("http://idp.test/keys"),
        key_sets: vec![("/keys".into(), key_a())],
        down: false,
    }));
    let idp = issuer_server(state.clone());
    let (_upstream, envoy) = start(&idp, &[], discovery_source("idp", 1, 4));
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1));
    let good = token("rsa-a.pem", "rsa-a");
    assert_eq!(status(&envoy, &good).0, 200);
    state.lock().unwrap().down = true;
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.discovery.fetch_failure.bad_status", 1));
    assert!(envoy.stat("aml_auth.jwks.fetch_failure.discovery_failed") >= 1);
    assert_eq!(
        status(&envoy, &good).0,
        200,
        "the good set is kept through the outage"
    );
    assert!(
        wait_until(DEADLINE, || status(&envoy, &good)
            == (503, "jwks_stale".to_string())),
        "a stale set was still used"
    );
    state.lock().unwrap().down = false;
    assert!(wait_until(DEADLINE, || status(&envoy, &good).0 == 200));
}

#[test]
fn a_refused_or_changed_document_never_drops_a_good_set() {
    let state = Arc::new(Mutex::new(Issuer {
        document: document("http://idp.test/keys"),
        key_sets: vec![("/keys".into(), key_a())],
        down: false,
    }));
    let idp = issuer_server(state.clone());
    let (_upstream, envoy) = start(&idp, &[], discovery_source("idp", 1, 86_400));
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1));
    let good = token("rsa-a.pem", "rsa-a");
    assert_eq!(status(&envoy, &good).0, 200);
    let refused = [
        (
            json!({"issuer": "https://evil.example/", "jwks_uri": "http://idp.test/keys"}),
            "issuer_mismatch",
        ),
        (
            json!({"issuer": ISSUER, "jwks_uri": "http://evil.example/keys"}),
            "authority_mismatch",
        ),
        (json!({"issuer": ISSUER}), "missing_jwks_uri"),
        (
            json!({"issuer": ISSUER, "jwks_uri": "http://idp.test/missing"}),
            "",
        ),
    ];
    for (doc, reason) in refused {
        state.lock().unwrap().document = doc.clone();
        let stat = if reason.is_empty() {
            "aml_auth.jwks.fetch_failure.bad_status".to_string()
        } else {
            format!("aml_auth.jwks.discovery.fetch_failure.{reason}")
        };
        let before = envoy.stat(&stat);
        assert!(
            envoy.wait_stat_at_least(&stat, before + 1),
            "{doc}: {stat} never counted:\n{}",
            envoy.log_tail(20)
        );
        assert_eq!(status(&envoy, &good).0, 200, "{doc} dropped the good set");
    }
}

#[test]
fn a_refused_document_from_the_start_is_503_and_the_next_source_is_tried() {
    let state = Arc::new(Mutex::new(Issuer {
        document: json!({"issuer": "https://someone-else.example/", "jwks_uri": "http://idp.test/keys"}),
        key_sets: vec![("/keys".into(), key_a())],
        down: false,
    }));
    let idp = issuer_server(state);
    let (_upstream, envoy) = start(&idp, &[], discovery_source("idp", 600, 86_400));
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.discovery.fetch_failure.issuer_mismatch", 1));
    assert_eq!(
        status(&envoy, &token("rsa-a.pem", "rsa-a")),
        (503, "jwks_unavailable".to_string())
    );
    assert_eq!(
        idp.count_path("/keys"),
        0,
        "the key set of a refused document was fetched"
    );

    let paired = jwks_server(&key_a());
    let bad = Arc::new(Mutex::new(Issuer {
        document: json!({"issuer": "https://someone-else.example/", "jwks_uri": "http://idp.test/keys"}),
        key_sets: vec![],
        down: false,
    }));
    let idp = issuer_server(bad);
    let (_upstream, envoy) = start(
        &idp,
        &[("paired", &paired)],
        json!([
            discovery_source("idp", 600, 86_400),
            remote_source("paired", 600, 86_400)
        ]),
    );
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.source.1.fetch_success", 1));
    assert_eq!(status(&envoy, &token("rsa-a.pem", "rsa-a")).0, 200);
}

#[test]
fn a_jwks_uri_on_another_host_goes_through_its_own_cluster() {
    let keys_host = jwks_server(&key_a());
    let state = Arc::new(Mutex::new(Issuer {
        document: document("http://keys.idp.test/discovery/keys"),
        key_sets: vec![],
        down: false,
    }));
    let idp = issuer_server(state);
    let mut source = discovery_source("idp", 600, 86_400);
    source["jwks_cluster"] = json!("keys");
    let (_upstream, envoy) = start(&idp, &[("keys", &keys_host)], source);
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1));
    assert_eq!(status(&envoy, &token("rsa-a.pem", "rsa-a")).0, 200);
    let fetched = keys_host.received();
    assert_eq!(fetched[0].path, "/discovery/keys");
    assert_eq!(fetched[0].header("host"), Some("keys.idp.test"));
}

#[test]
fn discovery_configuration_errors_name_the_field() {
    let upstream = Server::upstream();
    let with = |source: Value| token_config(source);
    let cases: Vec<(Value, &str)> = vec![
        (
            with(
                json!({"cluster": "idp", "uri": "http://idp.test/keys", "discovery_uri": "http://idp.test/d"}),
            ),
            "field `token.remote_jwks.discovery_uri`: can't be set together with `uri`",
        ),
        (
            with(json!({"cluster": "idp"})),
            "field `token.remote_jwks.uri`: is required",
        ),
        (
            with(json!({"cluster": "idp", "discovery_uri": "idp.test/d"})),
            "field `token.remote_jwks.discovery_uri`: must be an absolute http:// or https:// URL",
        ),
        (
            with(json!([{"cluster": "idp", "uri": "http://idp.test/keys", "jwks_cluster": "k"}])),
            "field `token.remote_jwks[0].jwks_cluster`: applies only with `discovery_uri`",
        ),
        (
            with(
                json!({"cluster": "idp", "discovery_uri": "http://idp.test/d", "jwks_cluster": ""}),
            ),
            "field `token.remote_jwks.jwks_cluster`: must not be empty",
        ),
        (
            with(
                json!({"cluster": "idp", "discovery_uri": "http://idp.test/d", "jwks_cluster": 3}),
            ),
            "field `token.remote_jwks.jwks_cluster`",
        ),
    ];
    assert_configs_refused(&upstream, &cases);
}

#[test]
fn the_document_may_name_any_configured_issuer() {
    const V1: &str = "https://sts.windows.net/tenant-0000/";
    let state = Arc::new(Mutex::new(Issuer {
        document: json!({"issuer": V1, "jwks_uri": "http://idp.test/keys"}),
        key_sets: vec![("/keys".into(), key_a())],
        down: false,
    }));
    let idp = issuer_server(state);
    let upstream = Server::upstream();
    let mut config = token_config(discovery_source("idp", 600, 86_400));
    config["token"]["issuer"] = json!([ISSUER, V1]);
    let envoy = Envoy::start(&filter_with_clusters(&config, &upstream, &[("idp", &idp)]));
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "a document naming the second configured issuer was refused:\n{}",
        envoy.log_tail(20)
    );
    assert_eq!(status(&envoy, &token("rsa-a.pem", "rsa-a")).0, 200);
}

#[test]
fn a_throttled_discovery_document_defers_its_source() {
    let state = Arc::new(Mutex::new(Issuer {
        document: document("http://idp.test/keys/v1"),
        key_sets: vec![("/keys/v1".into(), key_a())],
        down: false,
    }));
    let idp = issuer_server(state.clone());
    let (_upstream, envoy) = start(&idp, &[], discovery_source("idp", 60, 86_400));
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1));
    let served = state.lock().unwrap().clone();
    let throttled_once = Arc::new(Mutex::new(false));
    {
        let throttled_once = throttled_once.clone();
        idp.set_handler(move |req| {
            let mut once = throttled_once.lock().unwrap();
            if req.path == DOC_PATH && !*once {
                *once = true;
                return Reply::new(429, "slow down").header("retry-after", "6");
            }
            if req.path == DOC_PATH {
                return Reply::new(200, served.document.to_string());
            }
            Reply::new(200, served.key_sets[0].1.to_string())
        });
    }
    idp.clear();
    assert_eq!(
        status(&envoy, &token("rsa-a.pem", "unknown")).1,
        "unknown_kid"
    );
    assert!(
        wait_until(DEADLINE, || idp.count_path(DOC_PATH) >= 2),
        "{}",
        envoy.log_tail(20)
    );
    let calls = idp.received();
    let gap = calls[1].at - calls[0].at;
    assert!(
        gap >= std::time::Duration::from_millis(5_500),
        "the document was asked again {gap:?} after `429 Retry-After: 6`"
    );
    assert_eq!(
        envoy.stat("aml_auth.jwks.discovery.fetch_failure.throttled"),
        1
    );
    assert_eq!(envoy.stat("aml_auth.jwks.fetch_failure.throttled"), 1);
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 2));
    assert_eq!(status(&envoy, &token("rsa-a.pem", "rsa-a")).0, 200);
}
