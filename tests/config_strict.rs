//! The plugin configuration is read as strictly as a token, everywhere it is read: repeated
//! members (escaped spellings included) and deep nesting are refused by `envoy --mode validate`,
//! by a running Envoy receiving such an update, and by every `aml-auth` command that reads it.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

const GOOD_KEY: &str = "strict-good-primary-0123456789";

/// Configuration texts serde_json would read with the last member winning, each with the path
/// the refusal must name.
fn ambiguous_configs() -> Vec<(String, &'static str)> {
    let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo""#;
    vec![
        (
            r#"{"auth_enabled":true,"primary_key":"K","auth_enabled":false}"#.to_string(),
            "auth_enabled",
        ),
        (
            r#"{"primary_key":"K","services":[{"name":"a","path_prefix":"/a/","primary_key":"A"}],"services":[]}"#
                .to_string(),
            "services",
        ),
        (
            r#"{"primary_key":"K","primary\u005fkey":"L"}"#.to_string(),
            "primary_key",
        ),
        (
            format!(
                r#"{{"auth_enabled":false,"token_auth_enabled":true,"token":{{"issuer":"i","local_jwks":{{"keys":[{ed},"use":"enc","use":"sig"}}]}}}}}}"#
            ),
            "token.local_jwks.keys[0].use",
        ),
        (
            format!(
                r#"{{"primary_key":"K","realm":{}"x"{}}}"#,
                "[".repeat(64),
                "]".repeat(64)
            ),
            "nest deeper than 64 levels",
        ),
    ]
}

/// The filter in front of `upstream` with this exact configuration text.
fn with_text(text: &str, upstream: &Server) -> serde_json::Value {
    let mut boot = filter_in_front_of(&json!({}), upstream);
    boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"]["config"]["configuration"]["value"] = json!(text);
    boot
}

#[test]
fn validate_mode_refuses_repeated_members_naming_the_path() {
    let upstream = Server::upstream();
    let accepted = validate(&with_text(
        &format!(r#"{{"primary_key":"{GOOD_KEY}"}}"#),
        &upstream,
    ));
    assert!(accepted.ok, "{}", accepted.output);
    for (text, path) in ambiguous_configs() {
        let v = validate(&with_text(&text, &upstream));
        assert!(!v.ok, "{text} was accepted");
        assert!(
            v.output.contains(path),
            "{text}: expected {path:?} in:\n{}",
            v.output
        );
    }
}

#[test]
fn a_running_envoy_refuses_an_update_with_repeated_members() {
    let upstream = Server::upstream();
    let dir = scratch_dir("strict-ecds");
    let good = format!(r#"{{"primary_key":"{GOOD_KEY}"}}"#);
    let (filter, ecds) = ecds_filter(&dir, &good);
    let envoy = Envoy::start(&bootstrap(
        vec![listener("main", vec![filter], vec![route_to("upstream")])],
        vec![cluster("upstream", upstream.addr)],
    ));
    assert_eq!(get_bearer(envoy.main(), "/", GOOD_KEY).status, 200);
    // Read last-wins, this would turn auth off for everyone.
    let open_everything =
        format!(r#"{{"auth_enabled":true,"primary_key":"{GOOD_KEY}","auth\u005fenabled":false}}"#);
    let (_, bad) = ecds_filter(&scratch_dir("strict-ecds-src"), &open_everything);
    let mut resource: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bad).unwrap()).unwrap();
    resource["version_info"] = json!("2");
    let tmp = ecds.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&resource).unwrap()).unwrap();
    std::fs::rename(&tmp, &ecds).unwrap();
    let rejected = wait_until(DEADLINE, || {
        envoy
            .stats()
            .iter()
            .any(|(k, v)| k.contains("aml_auth") && k.ends_with("config_fail") && *v >= 1)
    });
    assert!(
        rejected,
        "the update was not refused:\n{}",
        envoy.log_tail(20)
    );
    assert!(
        envoy.log().contains("field `auth_enabled`: appears twice"),
        "{}",
        envoy.log_tail(20)
    );
    assert_eq!(
        get(envoy.main(), "/", &[]).status,
        401,
        "auth still enforced"
    );
    assert_eq!(get_bearer(envoy.main(), "/", GOOD_KEY).status, 200);
}

#[test]
fn every_cli_command_reading_the_configuration_refuses_them() {
    let dir = scratch_dir("strict-cli");
    for (i, (text, path)) in ambiguous_configs().into_iter().enumerate() {
        let file = dir.join(format!("config-{i}.json"));
        std::fs::write(&file, &text).unwrap();
        let file_arg = file.to_str().unwrap();
        for args in [
            vec!["keys", "list", "--config", file_arg],
            vec!["keys", "regen", "secondary", "--config", file_arg],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_aml-auth"))
                .args(&args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} on {text}: {stderr}");
            assert!(stderr.contains(path), "{args:?} on {text}: {stderr}");
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            text,
            "file left unchanged"
        );
    }
}
