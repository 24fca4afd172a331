//! Key-based auth end to end: the built filter in a real Envoy in front of a recording upstream.

mod common;

use common::*;
use serde_json::{json, Value};

const PRIMARY: &str = "primary-Key_0123456789abcdefghij";
const SECONDARY: &str = "secondary-Key~9876543210zyxwvuts";

fn key_config() -> Value {
    json!({"primary_key": PRIMARY, "secondary_key": SECONDARY})
}

fn assert_invalid_token(resp: &Response, reason: &str) {
    assert_eq!(resp.status, 401, "{}", resp.text());
    let challenge = resp.header("www-authenticate").expect("challenge header");
    assert!(
        challenge.starts_with("Bearer realm=\"aml\", error=\"invalid_token\""),
        "{challenge}"
    );
    let body = resp.json();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(resp.header("content-type"), Some("application/json"));
}

#[test]
fn either_key_is_accepted_and_authorization_is_removed() {
    let upstream = Server::upstream();
    let envoy = Envoy::start(&filter_in_front_of(&key_config(), &upstream));
    for (key, which) in [(PRIMARY, "primary"), (SECONDARY, "secondary")] {
        upstream.clear();
        let resp = get(
            envoy.main(),
            "/api/v1/service/demo/score",
            &[
                ("authorization", &format!("Bearer {key}")),
                ("x-client", "c1"),
            ],
        );
        assert_eq!(resp.status, 200, "{which}: {}", resp.text());
        assert_eq!(resp.text(), "upstream-ok");
        let got = upstream.received();
        assert_eq!(got.len(), 1, "{which}");
        assert_eq!(got[0].path, "/api/v1/service/demo/score");
        assert!(
            got[0].header_values("authorization").is_empty(),
            "{which}: {:?}",
            got[0].headers
        );
        assert_eq!(got[0].header("x-client"), Some("c1"));
    }
    assert_eq!(envoy.stat("aml_auth.requests_allowed"), 2);
    assert_eq!(envoy.stat("aml_auth.key_used.primary"), 1);
    assert_eq!(envoy.stat("aml_auth.key_used.secondary"), 1);
}

#[test]
fn scheme_is_case_insensitive_and_spaces_are_allowed() {
    let upstream = Server::upstream();
    let envoy = Envoy::start(&filter_in_front_of(&key_config(), &upstream));
    for value in [
        format!("bearer {PRIMARY}"),
        format!("BEARER {PRIMARY}"),
        format!("bEaReR    {SECONDARY}"),
    ] {
        let resp = get(envoy.main(), "/score", &[("authorization", &value)]);
        assert_eq!(resp.status, 200, "{value}: {}", resp.text());
    }
    assert_eq!(upstream.count(), 3);
}

#[test]
fn post_body_reaches_upstream_intact() {
    let upstream = Server::upstream();
    let envoy = Envoy::start(&filter_in_front_of(&key_config(), &upstream));
    let body = br#"{"data":[[1,2,3,4]]}"#;
    let resp = send_raw(
        envoy.main(),
        &raw_request(
            "POST",
            "/api/v1/service/demo/score",
            &[
                ("authorization", &format!("Bearer {PRIMARY}")),
                ("content-type", "application/json"),
            ],
            body,
        ),
    );
    assert_eq!(resp.status, 200);
    let got = upstream.received();
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].body, body);
}

#[test]
fn missing_credential_gets_a_bare_challenge() {
    let upstream = Server::upstream();
    let envoy = Envoy::start(&filter_in_front_of(&key_config(), &upstream));
    let resp = get(envoy.main(), "/score", &[]);
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"aml\"")
    );
    assert_eq!(resp.json()["reason"], "missing_credential");
    assert_eq!(upstream.count(), 0);
    assert_eq!(envoy.stat("aml_auth.denied.missing_credential"), 1);
    assert_eq!(envoy.stat("aml_auth.requests_denied"), 1);
}

#[test]
fn bad_credentials_are_refused_before_the_upstream() {
    let upstream = Server::upstream();
    let envoy = Envoy::start(&filter_in_front_of(&key_config(), &upstream));
    let long = format!("Bearer {}", "a".repeat(9000));
    let prefix = format!("Bearer {}", &PRIMARY[..PRIMARY.len() - 1]);
    let extended = format!("Bearer {PRIMARY}x");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("authorization", "Bearer wrong-key")], "invalid_key"),
        (&[("authorization", &prefix)], "invalid_key"),
        (&[("authorization", &extended)], "invalid_key"),
        (
            &[("authorization", &format!("Basic {PRIMARY}"))],
            "wrong_scheme",
        ),
        (
            &[("authorization", "Digest username=\"x\"")],
            "wrong_scheme",
        ),
        (
            &[("authorization", &format!("Bearer{PRIMARY}"))],
            "wrong_scheme",
        ),
        (&[("authorization", "Bearer")], "empty_credential"),
        (&[("authorization", "Bearer    ")], "empty_credential"),
        (
            &[("authorization", &format!("Bearer {PRIMARY} {PRIMARY}"))],
            "malformed_credential",
        ),
        (&[("authorization", &long)], "credential_too_long"),
        (
            &[
                ("authorization", &format!("Bearer {PRIMARY}")),
                ("authorization", &format!("Bearer {SECONDARY}")),
            ],
            "multiple_authorization",
        ),
        (
            &[
                ("authorization", &format!("Bearer {PRIMARY}")),
                ("authorization", &format!("Bearer {PRIMARY}")),
            ],
            "multiple_authorization",
        ),
    ];
    for (headers, reason) in cases {
        let resp = get(envoy.main(), "/score", headers);
        assert_invalid_token(&resp, reason);
        assert_eq!(upstream.count(), 0, "{headers:?} reached the upstream");
    }
    assert_eq!(envoy.stat("aml_auth.requests_denied"), cases.len() as i64);
    assert_eq!(envoy.stat("aml_auth.denied.invalid_key"), 3);
    assert_eq!(envoy.stat("aml_auth.denied.multiple_authorization"), 2);
    let resp = get_bearer(envoy.main(), "/score", PRIMARY);
    assert_eq!(resp.status, 200, "the VM must stay healthy after denials");
    let log = envoy.log();
    assert!(
        !log.contains(PRIMARY) && !log.contains(SECONDARY),
        "a key leaked into the log"
    );
}

#[test]
fn forward_authorization_keeps_the_header() {
    let upstream = Server::upstream();
    let mut config = key_config();
    config["forward_authorization"] = json!(true);
    let envoy = Envoy::start(&filter_in_front_of(&config, &upstream));
    let resp = get_bearer(envoy.main(), "/score", SECONDARY);
    assert_eq!(resp.status, 200);
    let got = upstream.received();
    assert_eq!(
        got[0].header_values("authorization"),
        vec![format!("Bearer {SECONDARY}")]
    );
}

#[test]
fn digest_and_environment_keys() {
    let upstream = Server::upstream();
    let digest = aml_auth_filter::keys::KeyDigest::of(PRIMARY.as_bytes()).to_configured();
    let config = json!({"primary_key": digest, "secondary_key": "env:AML_TEST_SECONDARY"});
    let bootstrap = bootstrap(
        vec![listener(
            "main",
            vec![wasm_filter_with(
                &config,
                json!({"environment_variables": {"key_values": {"AML_TEST_SECONDARY": SECONDARY}}}),
            )],
            vec![route_to("upstream")],
        )],
        vec![cluster("upstream", upstream.addr)],
    );
    let envoy = Envoy::start(&bootstrap);
    assert_eq!(get_bearer(envoy.main(), "/s", PRIMARY).status, 200);
    assert_eq!(get_bearer(envoy.main(), "/s", SECONDARY).status, 200);
    assert_invalid_token(&get_bearer(envoy.main(), "/s", &digest[7..]), "invalid_key");
    assert_eq!(upstream.count(), 2);
}

#[test]
fn both_modes_off_passes_everything_through_untouched() {
    let upstream = Server::upstream();
    let config = json!({"auth_enabled": false, "token_auth_enabled": false});
    let envoy = Envoy::start(&filter_in_front_of(&config, &upstream));
    assert_eq!(get(envoy.main(), "/a", &[]).status, 200);
    let resp = get(envoy.main(), "/b", &[("authorization", "Basic whatever")]);
    assert_eq!(resp.status, 200);
    let got = upstream.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].header("authorization"), Some("Basic whatever"));
    assert_eq!(envoy.stat("aml_auth.requests_passed_through"), 2);
}

#[test]
fn realm_is_configurable() {
    let upstream = Server::upstream();
    let mut config = key_config();
    config["realm"] = json!("scoring");
    let envoy = Envoy::start(&filter_in_front_of(&config, &upstream));
    let resp = get(envoy.main(), "/", &[]);
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"scoring\"")
    );
}

#[test]
fn invalid_configurations_make_envoy_refuse_the_filter() {
    let upstream = Server::upstream();
    let cases: &[(Value, &str)] = &[
        (
            json!({"primary_key": PRIMARY, "colour": "red"}),
            "field `colour`: unknown field",
        ),
        (json!({}), "field `primary_key`: auth_enabled is true"),
        (json!({"auth_enabled": true}), "field `primary_key`"),
        (
            json!({"primary_key": "sha256:1234"}),
            "field `primary_key`: `sha256:`",
        ),
        (
            json!({"primary_key": PRIMARY, "secondary_key": "sha256:XYZ"}),
            "field `secondary_key`",
        ),
        (
            json!({"primary_key": PRIMARY, "token_auth_enabled": true}),
            "field `token_auth_enabled`: token authentication can't be used at the same time",
        ),
        (
            json!({"primary_key": "env:AML_NOT_SET_ANYWHERE"}),
            "AML_NOT_SET_ANYWHERE is not set",
        ),
        (
            json!({"primary_key": true}),
            "field `primary_key`: must be a string",
        ),
    ];
    assert_configs_refused(&upstream, &cases);
    let v = validate(&filter_in_front_of(&key_config(), &upstream));
    assert!(v.ok, "{}", v.output);
}

#[test]
fn shipped_envoy_configs_validate() {
    let dir = repo_root().join("envoy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".yaml") || name.contains("docker-compose") {
            continue;
        }
        seen += 1;
        let out = std::process::Command::new(envoy_bin())
            .args(["--mode", "validate", "--disable-hot-restart", "-c"])
            .arg(&path)
            .current_dir(&dir)
            .env("AML_DEMO_PRIMARY_KEY", "validate-primary")
            .env("AML_DEMO_SECONDARY_KEY", "validate-secondary")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} failed validation:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("fail_open: true") && !text.contains("FAIL_OPEN"),
            "{name} fails open"
        );
    }
    assert!(seen >= 1, "no Envoy configs found in envoy/");
}

#[test]
fn shipped_ecds_resource_loads_in_envoy() {
    let dir = repo_root().join("envoy");
    let resource: Value =
        serde_json::from_slice(&std::fs::read(dir.join("ecds/aml_auth.json")).unwrap()).unwrap();
    let mut typed_config = resource["resources"][0]["typed_config"].clone();
    assert_eq!(typed_config["config"]["failure_policy"], "FAIL_RELOAD");
    let plugin_config = typed_config["config"]["configuration"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let shipped_plugin_config = std::fs::read_to_string(dir.join("plugin-config.json")).unwrap();
    assert_eq!(
        plugin_config, shipped_plugin_config,
        "run envoy/make-ecds.py after editing plugin-config.json"
    );
    typed_config["config"]["vm_config"]["code"]["local"]["filename"] = json!(wasm_path());
    let filter = json!({"name": "aml_auth", "typed_config": typed_config});
    let upstream = Server::upstream();
    let config = bootstrap(
        vec![listener("main", vec![filter], vec![route_to("model")])],
        vec![
            cluster("model", upstream.addr),
            cluster("workspace", upstream.addr),
        ],
    );
    let path = scratch_dir("shipped-ecds").join("envoy.json");
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    let out = std::process::Command::new(envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(&path)
        .env("AML_DEMO_PRIMARY_KEY", "validate-primary")
        .env("AML_DEMO_SECONDARY_KEY", "validate-secondary")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the shipped ECDS resource failed validation:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
