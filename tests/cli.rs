//! `aml-auth` end to end through the built binary: every command, its output format, its
//! refusals (which must leave files untouched) and tokens checked by the filter's own verifier.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aml_auth_filter::config::{self, AuthMode, FilterConfig};
use aml_auth_filter::keys::{KeyDigest, KeySlot};
use aml_auth_filter::token::jwks::parse_jwks;
use aml_auth_filter::token::jwt::{verify, TokenPolicy};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use common::{repo_root, scratch_dir, unix_now};

/// Runs the binary with `args` and extra environment variables (and none starting `AML_TEST`
/// inherited from the test runner).
fn cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aml-auth"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AML_TEST") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn cli(args: &[&str]) -> Output {
    cli_env(args, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn assert_ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
}

fn assert_refused(out: &Output, code: i32, fragment: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    assert!(out.stdout.is_empty(), "stdout on failure: {}", stdout(out));
    assert!(
        stderr(out).contains(fragment),
        "stderr lacks {fragment:?}: {}",
        stderr(out)
    );
}

fn data(name: &str) -> String {
    repo_root()
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// The files in `dir`, to show no temporary file is left behind (`keys regen`'s lock files,
/// `.NAME.aml-auth-lock`, stay by design).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".aml-auth-lock"))
        .collect();
    names.sort();
    names
}

/// The new key: the last line of stdout.
fn last_line(out: &Output) -> String {
    stdout(out).lines().last().unwrap().to_string()
}

fn parse_config(text: &str) -> FilterConfig {
    config::parse(text.as_bytes(), &|_| None).unwrap()
}

fn slot_of(cfg: &FilterConfig, service: Option<&str>, key: &str) -> Option<KeySlot> {
    let policy = match service {
        None => &cfg.default_policy,
        Some(name) => {
            &cfg.services
                .iter()
                .find(|s| s.policy.name == name)
                .unwrap()
                .policy
        }
    };
    match &policy.mode {
        AuthMode::Key(pair) => pair.check(key.as_bytes()),
        other => panic!("not key mode: {other:?}"),
    }
}

/// Everything but the replaced value must be byte-for-byte the same: cutting the old JSON
/// string out of `before` and the new one out of `after` gives the same text.
fn assert_only_value_changed(before: &str, after: &str, old_literal: &str, new_value: &str) {
    let new_literal = format!("\"{new_value}\"");
    assert_eq!(
        before.matches(old_literal).count(),
        1,
        "old value must be unique in {before}"
    );
    assert_eq!(
        after.matches(&new_literal).count(),
        1,
        "new value must appear once in {after}"
    );
    let at = before.find(old_literal).unwrap();
    assert_eq!(after.find(&new_literal), Some(at));
    assert_eq!(
        before.replacen(old_literal, "", 1),
        after.replacen(&new_literal, "", 1)
    );
}

const CONFIG: &str = r#"{
  "realm": "models",
  "primary_key": "top-primary-OLD",
  "secondary_key"   :   "top-secondary-OLD",
  "services": [
    {
      "name": "churn", "path_prefix": "/api/v1/service/churn/",
      "primary_key": "churn-primary-OLD",
      "secondary_key": "churn-secondary-OLD"
    },
    {"name":"fraud","path_prefix":"/api/v1/service/fraud/","hosts":["models.contoso.com"],
     "primary_key":"fraud-\u0070rimary-OLD"},
    {
        "name": "naïve-free",
        "path_prefix": "/api/v1/service/plain/"
    }
  ]
}
"#;

#[test]
fn keys_generate_prints_a_key_and_its_digest() {
    let out = cli(&["keys", "generate"]);
    assert_ok(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].len(), 43);
    assert_eq!(lines[1], KeyDigest::of(lines[0].as_bytes()).to_configured());
}

#[test]
fn regen_top_level_primary_and_secondary_touch_only_their_value() {
    let dir = scratch_dir("cli-regen-top");
    let path = write(&dir, "config.json", &CONFIG.replace("naïve-free", "plain"));
    for (slot, old) in [
        ("primary", "\"top-primary-OLD\""),
        ("secondary", "\"top-secondary-OLD\""),
    ] {
        let before = read(&path);
        let out = cli(&["keys", "regen", slot, "--config", path.to_str().unwrap()]);
        assert_ok(&out);
        assert_eq!(stdout(&out).lines().count(), 1);
        let key = last_line(&out);
        let after = read(&path);
        assert_only_value_changed(&before, &after, old, &key);
        let cfg = parse_config(&after);
        let want = if slot == "primary" {
            KeySlot::Primary
        } else {
            KeySlot::Secondary
        };
        assert_eq!(slot_of(&cfg, None, &key), Some(want));
        assert_eq!(
            slot_of(&cfg, Some("plain"), &key),
            Some(want),
            "plain inherits the top-level key"
        );
        assert_eq!(slot_of(&cfg, Some("churn"), &key), None);
    }
    assert_eq!(listing(&dir), ["config.json"]);
}

#[test]
fn regen_per_service_hashed_stores_the_digest_and_prints_the_key() {
    let dir = scratch_dir("cli-regen-service");
    let path = write(&dir, "config.json", &CONFIG.replace("naïve-free", "plain"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let cases = [
        (
            "churn",
            "secondary",
            "\"churn-secondary-OLD\"",
            KeySlot::Secondary,
        ),
        (
            "fraud",
            "primary",
            "\"fraud-\\u0070rimary-OLD\"",
            KeySlot::Primary,
        ),
    ];
    for (service, slot, old, want) in cases {
        let before = read(&path);
        let out = cli(&[
            "keys",
            "regen",
            slot,
            "--config",
            path.to_str().unwrap(),
            "--service",
            service,
            "--hashed",
        ]);
        assert_ok(&out);
        let key = last_line(&out);
        let after = read(&path);
        assert!(!after.contains(&key), "--hashed must not store the key");
        let digest = KeyDigest::of(key.as_bytes()).to_configured();
        assert_only_value_changed(&before, &after, old, &digest);
        let cfg = parse_config(&after);
        assert_eq!(slot_of(&cfg, Some(service), &key), Some(want));
        assert_eq!(slot_of(&cfg, None, &key), None);
        assert!(stderr(&out).contains(&format!("`{service}`")));
    }
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(listing(&dir), ["config.json"]);
}

#[test]
fn regen_for_an_inheriting_service_adds_its_own_key() {
    let dir = scratch_dir("cli-regen-inherit");
    let path = write(&dir, "config.json", CONFIG);
    let before = read(&path);
    let out = cli(&[
        "keys",
        "regen",
        "secondary",
        "--config",
        path.to_str().unwrap(),
        "--service",
        "naïve-free",
    ]);
    assert_refused(&out, 1, "services[2].name");
    assert_eq!(
        read(&path),
        before,
        "the parser refuses the name, so nothing is written"
    );

    let path = write(&dir, "config.json", &CONFIG.replace("naïve-free", "plain"));
    let before = read(&path);
    let out = cli(&[
        "keys",
        "regen",
        "secondary",
        "--config",
        path.to_str().unwrap(),
        "--service",
        "plain",
    ]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("no longer inherits"),
        "{}",
        stderr(&out)
    );
    let key = last_line(&out);
    let after = read(&path);
    let inserted = format!(",\n        \"secondary_key\": \"{key}\"");
    assert_eq!(after.replacen(&inserted, "", 1), before);
    let cfg = parse_config(&after);
    assert_eq!(slot_of(&cfg, Some("plain"), &key), Some(KeySlot::Secondary));
    assert_eq!(
        slot_of(&cfg, Some("plain"), "top-primary-OLD"),
        Some(KeySlot::Primary)
    );
    assert_eq!(slot_of(&cfg, None, &key), None);
}

#[test]
fn regen_refusals_leave_the_file_untouched() {
    let dir = scratch_dir("cli-regen-refuse");
    let good = CONFIG.replace("naïve-free", "plain");
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            &good,
            &["primary", "--service", "nope"],
            1,
            "no service named `nope`",
        ),
        (
            r#"{"primary_key":"env:AML_TEST_PRIMARY","secondary_key":"s"}"#,
            &["primary"],
            1,
            "environment variable AML_TEST_PRIMARY",
        ),
        (
            r#"{"primary_key":"env:AML_TEST_PRIMARY","secondary_key":"s"}"#,
            &["secondary"],
            1,
            "AML_TEST_PRIMARY is not set in the Wasm VM (vm_config.environment_variables / vmConfig.env) (aml-auth checks env: keys against its own environment",
        ),
        (
            r#"{"primary_key":"p","colour":"red"}"#,
            &["primary"],
            1,
            "field `colour`",
        ),
        (
            r#"{"primary_key":"p","token_auth_enabled":true}"#,
            &["secondary"],
            1,
            "token_auth_enabled",
        ),
        (
            r#"{"primary_key":"p""#,
            &["primary"],
            1,
            "not valid JSON at line 1",
        ),
        (
            r#"{"primary_key":"p","primary_key":"q"}"#,
            &["primary"],
            1,
            "more than once",
        ),
        (&good, &["tertiary"], 2, "found `tertiary`"),
        (
            &good,
            &["primary", "--force"],
            2,
            "unknown option `--force`",
        ),
        (
            &good,
            &["primary", "--service"],
            2,
            "`--service` needs a value",
        ),
    ];
    for (text, args, code, fragment) in cases {
        let path = write(&dir, "config.json", text);
        let mut all = vec!["keys", "regen"];
        all.extend_from_slice(args);
        all.extend(["--config", path.to_str().unwrap()]);
        let out = cli(&all);
        assert_refused(&out, *code, fragment);
        assert_eq!(read(&path), *text, "{args:?}");
        assert_eq!(listing(&dir), ["config.json"], "{args:?}");
    }
    let missing = dir.join("missing.json");
    let out = cli(&[
        "keys",
        "regen",
        "primary",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_refused(&out, 1, "missing.json");
    let out = cli(&["keys", "regen", "primary"]);
    assert_refused(&out, 2, "`--config` is required");
}

#[test]
fn regen_validates_with_the_process_environment() {
    let dir = scratch_dir("cli-regen-env");
    let text = r#"{"primary_key":"env:AML_TEST_PRIMARY","secondary_key":"old"}"#;
    let path = write(&dir, "config.json", text);
    let out = cli_env(
        &[
            "keys",
            "regen",
            "secondary",
            "--config",
            path.to_str().unwrap(),
        ],
        &[("AML_TEST_PRIMARY", "primary-from-env")],
    );
    assert_ok(&out);
    let key = last_line(&out);
    assert_only_value_changed(text, &read(&path), "\"old\"", &key);
}

fn ecds_doc(config_text: &str, version: Option<&str>) -> Value {
    let mut doc = json!({
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "aml_auth",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "aml_auth", "root_id": "aml_auth", "failure_policy": "FAIL_RELOAD",
                    "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                                  "code": {"local": {"filename": "/etc/envoy/aml_auth_filter.wasm"}}},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": config_text}
                }
            }
        }]
    });
    if let Some(v) = version {
        doc["version_info"] = json!(v);
    }
    doc
}

#[test]
fn regen_rewrites_the_envoy_ecds_file() {
    let dir = scratch_dir("cli-ecds");
    let text = CONFIG.replace("naïve-free", "plain");
    let config = write(&dir, "config.json", &text);
    for (version, bumped) in [(Some("7"), "8"), (None, "1"), (Some("v2"), "1")] {
        let before_config = read(&config);
        let before = ecds_doc(&before_config, version);
        let ecds = write(
            &dir,
            "ecds.json",
            &serde_json::to_string_pretty(&before).unwrap(),
        );
        let out = cli(&[
            "keys",
            "regen",
            "primary",
            "--config",
            config.to_str().unwrap(),
            "--service",
            "churn",
            "--envoy-ecds",
            ecds.to_str().unwrap(),
        ]);
        assert_ok(&out);
        let key = last_line(&out);
        let new_config = read(&config);
        assert_only_value_changed(&before_config, &new_config, "\"churn-primary-OLD\"", &key);
        let after: Value = serde_json::from_str(&read(&ecds)).unwrap();
        let mut expected = before;
        expected["version_info"] = json!(bumped);
        expected["resources"][0]["typed_config"]["config"]["configuration"]["value"] =
            json!(new_config);
        assert_eq!(after, expected);
        assert!(stderr(&out).contains(&format!("version_info {bumped}")));
        assert_eq!(listing(&dir), ["config.json", "ecds.json"]);
        let text = read(&config).replace(&format!("\"{key}\""), "\"churn-primary-OLD\"");
        fs::write(&config, text).unwrap();
    }
}

#[test]
fn regen_refuses_an_ecds_file_that_is_not_this_filters_alone_and_touches_neither_file() {
    let dir = scratch_dir("cli-ecds-refuse");
    let text = CONFIG.replace("naïve-free", "plain");
    let config = write(&dir, "config.json", &text);
    let mut not_wasm = ecds_doc(&text, Some("3"));
    not_wasm["resources"][0]["typed_config"] =
        json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"});
    let mut two = ecds_doc(&text, Some("3"));
    let copy = two["resources"][0].clone();
    two["resources"].as_array_mut().unwrap().push(copy);
    let foreign = ecds_doc("{\"rate_limit\": {\"rps\": 5}}", Some("3"));
    let cases = [
        (
            not_wasm.to_string(),
            "no resource whose typed_config is the Wasm filter",
        ),
        ("{\"resources\": ".to_string(), "not valid JSON"),
        (two.to_string(), "has 2 resources"),
        (foreign.to_string(), "is not aml-auth-filter's"),
    ];
    for (ecds_text, fragment) in cases {
        let ecds = write(&dir, "ecds.json", &ecds_text);
        let out = cli(&[
            "keys",
            "regen",
            "secondary",
            "--config",
            config.to_str().unwrap(),
            "--envoy-ecds",
            ecds.to_str().unwrap(),
        ]);
        assert_refused(&out, 1, fragment);
        assert!(stderr(&out).contains("ecds.json"));
        assert_eq!(read(&config), text);
        assert_eq!(read(&ecds), ecds_text);
        assert_eq!(listing(&dir), ["config.json", "ecds.json"]);
    }
    let missing = dir.join("nope.json");
    let out = cli(&[
        "keys",
        "regen",
        "secondary",
        "--config",
        config.to_str().unwrap(),
        "--envoy-ecds",
        missing.to_str().unwrap(),
    ]);
    assert_refused(&out, 1, "nope.json");
    assert_eq!(read(&config), text);
}

#[test]
fn keys_list_shows_modes_and_storage_but_never_keys() {
    let dir = scratch_dir("cli-list");
    let digest = KeyDigest::of(b"hashed-secret").to_configured();
    let text = format!(
        r#"{{"primary_key":"plain-secret","secondary_key":"{digest}",
            "token":{{"issuer":"https://issuer","remote_jwks":{{"cluster":"jwks","uri":"https://jwks.test/keys"}}}},
            "services":[
              {{"name":"churn","path_prefix":"/churn/","secondary_key":"env:AML_TEST_SECONDARY"}},
              {{"name":"fraud","path_prefix":"/fraud/","auth_enabled":false,"token_auth_enabled":true}},
              {{"name":"vip","path_prefix":"/vip/","primary_key":"open-secret"}},
              {{"name":"open","path_prefix":"/open/","auth_enabled":false}}]}}"#
    );
    let path = write(&dir, "config.json", &text);
    let out = cli_env(
        &["keys", "list", "--config", path.to_str().unwrap()],
        &[("AML_TEST_SECONDARY", "env-secret")],
    );
    assert_ok(&out);
    let printed = stdout(&out);
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![
                "default",
                "-",
                "key",
                "primary=plaintext",
                "secondary=hashed"
            ],
            vec![
                "churn",
                "/churn/",
                "key",
                "primary=inherited",
                "secondary=env:AML_TEST_SECONDARY"
            ],
            vec!["fraud", "/fraud/", "token", "primary=n/a", "secondary=n/a"],
            vec![
                "vip",
                "/vip/",
                "key",
                "primary=plaintext",
                "secondary=inherited"
            ],
            vec!["open", "/open/", "none", "primary=n/a", "secondary=n/a"],
        ]
    );
    for secret in [
        "plain-secret",
        "hashed-secret",
        "open-secret",
        "env-secret",
        &digest[7..],
    ] {
        assert!(
            !printed.contains(secret) && !stderr(&out).contains(secret),
            "{secret}"
        );
    }
    let unset = cli(&["keys", "list", "--config", path.to_str().unwrap()]);
    assert_eq!(
        stdout(&unset),
        printed,
        "env: variables unset in the shell are the proxy's"
    );
}

#[test]
fn keys_list_refuses_invalid_configs_with_the_parser_message() {
    let dir = scratch_dir("cli-list-refuse");
    let path = write(&dir, "config.json", r#"{"primary_key":"sha256:abcd"}"#);
    let out = cli(&["keys", "list", "--config", path.to_str().unwrap()]);
    assert_refused(
        &out,
        1,
        "invalid plugin configuration: field `primary_key`: `sha256:` must be followed",
    );
    let out = cli(&[
        "keys",
        "list",
        "--config",
        dir.join("none.json").to_str().unwrap(),
    ]);
    assert_refused(&out, 1, "none.json");
    let out = cli(&["keys", "list", "--config", path.to_str().unwrap(), "extra"]);
    assert_refused(&out, 2, "unexpected argument `extra`");
}

fn decode_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn jwks_of(keys: &[&str]) -> Value {
    let mut args = vec!["jwks".to_string()];
    for k in keys {
        args.push("--signing-key".into());
        args.push(data(k));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cli(&args);
    assert_ok(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn token_issue_rs256_and_es256_verify_with_the_filters_own_verifier() {
    let iss = "https://login.microsoftonline.com/tenant-0000/v2.0";
    let aud = "https://ml.azure.com";
    let set = jwks_of(&["rsa-a.pem", "p256-a.pem"]);
    let keys = parse_jwks(set.to_string().as_bytes()).unwrap();
    assert!(keys.dropped.is_empty());
    let policy = TokenPolicy {
        audiences: Some(vec![aud.into()]),
        ..TokenPolicy::new(vec![iss.into()])
    };
    for (pem, alg, ttl) in [
        ("rsa-a.pem", "RS256", 3600i64),
        ("p256-a.pem", "ES256", 1000),
    ] {
        let before = unix_now();
        let out = cli(&[
            "token",
            "issue",
            "--signing-key",
            &data(pem),
            "--issuer",
            iss,
            "--audience",
            aud,
            "--ttl",
            &ttl.to_string(),
            "--subject",
            "user-1",
            "--claim",
            "role=scorer",
            "--claim-json",
            "tier=3",
        ]);
        assert_ok(&out);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let token = lines[0];
        let verified = verify(token, &keys.keys, &policy, unix_now()).unwrap();
        assert_eq!(verified.alg().as_str(), alg);
        let kid = verified.kid().unwrap().to_string();
        let jwk_kid = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kty"] == if alg == "RS256" { "RSA" } else { "EC" })
            .unwrap()["kid"]
            .clone();
        assert_eq!(
            json!(kid),
            jwk_kid,
            "kid defaults to the thumbprint jwks publishes"
        );
        let claims = decode_payload(token);
        let iat = claims["iat"].as_i64().unwrap();
        assert!(iat >= before && iat <= unix_now());
        assert_eq!(claims["nbf"], json!(iat));
        assert_eq!(claims["exp"], json!(iat + ttl));
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["role"], "scorer");
        assert_eq!(claims["tier"], 3);
        let refresh_by = iat + ttl * 3 / 4;
        let line = lines[1];
        let (unix, rfc) = line
            .strip_prefix("refresh_by=")
            .unwrap()
            .split_once(' ')
            .unwrap();
        assert_eq!(unix.parse::<i64>().unwrap(), refresh_by);
        assert_eq!(rfc.len(), 20);
        assert!(rfc.ends_with('Z') && rfc.as_bytes()[10] == b'T', "{rfc}");
        let days = refresh_by.div_euclid(86_400);
        let secs = refresh_by.rem_euclid(86_400);
        assert_eq!(
            &rfc[11..19],
            format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                secs % 3600 / 60,
                secs % 60
            )
        );
        assert!(days > 0);
    }
}

#[test]
fn token_issue_other_algorithms_and_explicit_kid() {
    let set = jwks_of(&["ed25519-a.pem"]);
    let out = cli(&[
        "token",
        "issue",
        "--signing-key",
        &data("ed25519-a.pem"),
        "--issuer",
        "i",
        "--audience",
        "a",
        "--ttl",
        "60",
    ]);
    assert_ok(&out);
    let token = stdout(&out).lines().next().unwrap().to_string();
    let keys = parse_jwks(set.to_string().as_bytes()).unwrap();
    let policy = TokenPolicy {
        audiences: Some(vec!["a".into()]),
        max_lifetime_seconds: Some(60),
        ..TokenPolicy::new(vec!["i".into()])
    };
    assert_eq!(
        verify(&token, &keys.keys, &policy, unix_now())
            .unwrap()
            .alg()
            .as_str(),
        "EdDSA"
    );

    let out = cli(&[
        "token",
        "issue",
        "--signing-key",
        &data("rsa-a.pem"),
        "--issuer",
        "i",
        "--audience",
        "a",
        "--ttl",
        "60",
        "--alg",
        "PS256",
        "--kid",
        "rotation-2",
    ]);
    assert_ok(&out);
    let token = stdout(&out).lines().next().unwrap().to_string();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        header,
        json!({"alg": "PS256", "typ": "JWT", "kid": "rotation-2"})
    );
}

#[test]
fn token_issue_and_jwks_refusals() {
    let base = |key: &str| {
        vec![
            "token".to_string(),
            "issue".into(),
            "--signing-key".into(),
            key.to_string(),
            "--issuer".into(),
            "i".into(),
            "--audience".into(),
            "a".into(),
            "--ttl".into(),
            "60".into(),
        ]
    };
    let rsa = data("rsa-a.pem");
    let cases: &[(Vec<String>, &[&str], i32, &str)] = &[
        (
            base(&rsa),
            &["--alg", "ES256"],
            1,
            "--alg ES256 does not fit the key",
        ),
        (base(&data("nope.pem")), &[], 1, "nope.pem"),
        (
            base(&data("rsa-1024.pem")),
            &[],
            1,
            "the filter would refuse this key",
        ),
        (
            base(&repo_root().join("Cargo.toml").display().to_string()),
            &[],
            1,
            "not a PKCS#8 PEM private key",
        ),
        (
            base(&data("rsa-a-pkcs1.pem")),
            &[],
            1,
            "this is a PKCS#1 key: convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in",
        ),
        (
            base(&data("p256-a-sec1.pem")),
            &[],
            1,
            "this is a SEC1 key: convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in",
        ),
        (
            base(&rsa),
            &["--claim", "iss=evil"],
            2,
            "cannot be overridden",
        ),
        (
            base(&rsa),
            &["--claim-json", "exp=1"],
            2,
            "cannot be overridden",
        ),
        (base(&rsa), &["--claim", "sub=x"], 2, "use --subject"),
        (
            base(&rsa),
            &["--claim", "noequals"],
            2,
            "expected NAME=VALUE",
        ),
        (base(&rsa), &["--claim-json", "a={"], 2, "not valid JSON"),
        (
            base(&rsa),
            &["--ttl", "5"],
            2,
            "`--ttl` given more than once",
        ),
        (
            base(&rsa),
            &["--alg", "HS256"],
            2,
            "unsupported algorithm `HS256`",
        ),
        (base(&rsa), &["--kid", ""], 2, "--kid: the value is empty"),
        (
            base(&rsa),
            &["--audiences", "x"],
            2,
            "unknown option `--audiences`",
        ),
        (base(&rsa)[..8].to_vec(), &[], 2, "`--ttl` is required"),
    ];
    for (args, extra, code, fragment) in cases {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        assert_refused(&cli(&all), *code, fragment);
    }
    for ttl in ["0", "2592001", "1h"] {
        let mut all = base(&rsa);
        all[9] = ttl.to_string();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_refused(&cli(&all), 2, "--ttl");
    }
    let mut all = base(&rsa);
    all[9] = "2592000".into();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_ok(&cli(&all));

    assert_refused(
        &cli(&["jwks", "--signing-key", &rsa, "--signing-key", &rsa]),
        1,
        "holds the same key as",
    );
    assert_refused(
        &cli(&["jwks", "--signing-key", &data("rsa-1024.pem")]),
        1,
        "rsa-1024.pem",
    );
    assert_refused(&cli(&["jwks"]), 2, "`--signing-key` is required");
}

#[test]
fn jwks_publishes_each_key_with_thumbprint_kid_use_and_alg() {
    let set = jwks_of(&["rsa-a.pem", "rsa-b.pem", "p256-a.pem", "ed25519-a.pem"]);
    let keys = set["keys"].as_array().unwrap();
    let algs: Vec<Option<&str>> = keys.iter().map(|k| k["alg"].as_str()).collect();
    assert_eq!(algs, [None, None, Some("ES256"), Some("EdDSA")]);
    for (jwk, pem) in keys
        .iter()
        .zip(["rsa-a.pem", "rsa-b.pem", "p256-a.pem", "ed25519-a.pem"])
    {
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], json!(common::signing_key(pem).thumbprint()));
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{pem} leaks {private}");
        }
    }
    assert_eq!(
        parse_jwks(set.to_string().as_bytes()).unwrap().keys.len(),
        4
    );
}

/// Every algorithm `token issue` offers verifies against the JWKS `jwks` publishes for the same
/// keys (issue 11: PS256/RS384/RS512 tokens were refused with key_alg_mismatch).
#[test]
fn jwks_admits_every_algorithm_token_issue_signs_with() {
    let set = jwks_of(&["rsa-a.pem", "p256-a.pem", "ed25519-a.pem"]);
    let keys = parse_jwks(set.to_string().as_bytes()).unwrap().keys;
    let policy = TokenPolicy {
        audiences: Some(vec!["a".into()]),
        ..TokenPolicy::new(vec!["i".into()])
    };
    let cases = [
        ("rsa-a.pem", "RS256"),
        ("rsa-a.pem", "RS384"),
        ("rsa-a.pem", "RS512"),
        ("rsa-a.pem", "PS256"),
        ("rsa-a.pem", "PS384"),
        ("rsa-a.pem", "PS512"),
        ("p256-a.pem", "ES256"),
        ("ed25519-a.pem", "EdDSA"),
    ];
    for (pem, alg) in cases {
        let out = cli(&[
            "token",
            "issue",
            "--signing-key",
            &data(pem),
            "--issuer",
            "i",
            "--audience",
            "a",
            "--ttl",
            "60",
            "--alg",
            alg,
        ]);
        assert_ok(&out);
        let token = stdout(&out).lines().next().unwrap().to_string();
        let verified = verify(&token, &keys, &policy, unix_now())
            .unwrap_or_else(|e| panic!("{alg} token refused by the published JWKS: {e}"));
        assert_eq!(verified.alg().as_str(), alg);
    }
}

#[test]
fn every_command_has_help_on_stdout() {
    let cases: &[(&[&str], &str)] = &[
        (&["--help"], "usage: aml-auth <command>"),
        (&["-h"], "usage: aml-auth <command>"),
        (&["help"], "usage: aml-auth <command>"),
        (&["help", "keys", "regen"], "usage: aml-auth keys regen"),
        (
            &["keys", "--help"],
            "usage: aml-auth keys <generate|regen|list>",
        ),
        (
            &["keys", "generate", "--help"],
            "usage: aml-auth keys generate",
        ),
        (&["keys", "regen", "-h"], "usage: aml-auth keys regen"),
        (
            &[
                "keys",
                "regen",
                "primary",
                "--config",
                "/nonexistent",
                "--help",
            ],
            "usage: aml-auth keys regen",
        ),
        (&["keys", "list", "--help"], "usage: aml-auth keys list"),
        (&["token", "--help"], "usage: aml-auth token <issue|check>"),
        (&["token", "issue", "-h"], "usage: aml-auth token issue"),
        (&["jwks", "--help"], "usage: aml-auth jwks"),
    ];
    for (args, start) in cases {
        let out = cli(args);
        assert_ok(&out);
        assert!(
            stdout(&out).starts_with(start),
            "{args:?}: {}",
            stdout(&out)
        );
        assert!(out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2_with_a_hint() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "no command given"),
        (&["rotate"], "unknown command `rotate`"),
        (&["keys"], "missing subcommand"),
        (
            &["keys", "generate", "--hashed"],
            "unknown option `--hashed`",
        ),
        (&["keys", "make"], "unknown subcommand `keys make`"),
        (&["keys", "list", "--config"], "`--config` needs a value"),
        (&["token", "sign"], "unknown subcommand `token sign`"),
        (&["jwks", "--key", "x"], "unknown option `--key`"),
        (&["help", "nope"], "no command `nope`"),
    ];
    for (args, fragment) in cases {
        let out = cli(args);
        assert_refused(&out, 2, fragment);
        assert!(stderr(&out).contains("--help` for usage"), "{args:?}");
    }
}

/// Runs the binary with stdout (and stderr, when `both`) a pipe whose reader is already gone,
/// as `aml-auth ... | head -1` leaves it once head has read its line.
fn cli_into_closed_pipe(args: &[&str], both: bool) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aml-auth"));
    cmd.args(args).stdout(writer.try_clone().unwrap());
    if both {
        cmd.stderr(writer);
    } else {
        cmd.stderr(std::process::Stdio::piped());
    }
    cmd.output().unwrap()
}

/// Issue 11: `token issue | head -1` exited 101 (`failed printing to stdout: Broken pipe`),
/// breaking scripts under `set -o pipefail`. Every printing command now ends quietly with its
/// own status when its reader has gone; a new key that could not be printed is a failure.
#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let dir = scratch_dir("cli-epipe");
    let cfg = write(
        &dir,
        "c.json",
        r#"{"primary_key":"k1","secondary_key":"k2"}"#,
    );
    let cfg = cfg.to_str().unwrap();
    let rsa = data("rsa-a.pem");
    let issue = [
        "token",
        "issue",
        "--signing-key",
        &rsa,
        "--issuer",
        "i",
        "--audience",
        "a",
        "--ttl",
        "60",
    ];
    let cases: &[(&[&str], i32)] = &[
        (&issue, 0),
        (&["jwks", "--signing-key", &rsa], 0),
        (&["keys", "generate"], 0),
        (&["keys", "list", "--config", cfg], 0),
        (&["--help"], 0),
        (&["token", "issue", "--help"], 0),
        (&["keys", "list", "--config", "/nonexistent"], 1),
        (&["bogus"], 2),
        (&["token", "check", "--config", cfg, "a.b.c"], 1),
        (&["token", "check", "--help"], 0),
    ];
    for (args, code) in cases {
        for both in [false, true] {
            let out = cli_into_closed_pipe(args, both);
            assert_eq!(
                out.status.code(),
                Some(*code),
                "{args:?} (stderr closed too: {both}): {}",
                stderr(&out)
            );
            if !both {
                assert!(
                    !stderr(&out).contains("panicked") && !stderr(&out).contains("Broken pipe"),
                    "{args:?}: {}",
                    stderr(&out)
                );
            }
        }
    }
    let before = read(Path::new(cfg));
    let out = cli_into_closed_pipe(&["keys", "regen", "primary", "--config", cfg], false);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write to stdout"),
        "{}",
        stderr(&out)
    );
    assert_ne!(
        read(Path::new(cfg)),
        before,
        "the file was written before printing"
    );
}

fn regen_with_ecds(slot: &str, config: &Path, ecds: &Path) -> Output {
    cli(&[
        "keys",
        "regen",
        slot,
        "--config",
        config.to_str().unwrap(),
        "--envoy-ecds",
        ecds.to_str().unwrap(),
    ])
}

/// The plugin configuration an ECDS file holds.
fn ecds_config(ecds: &Path) -> String {
    let doc: Value = serde_json::from_str(&read(ecds)).unwrap();
    doc["resources"][0]["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Issue 10 item 10: primary and secondary regenerated at the same moment lost updates (a
/// printed key in neither file, the two files disagreeing). The lock beside the configuration
/// serialises them: every round, both keys printed are the ones both files hold.
#[test]
fn concurrent_regens_serialise_and_every_printed_key_is_in_both_files() {
    let dir = scratch_dir("cli-regen-concurrent");
    let text = "{\n  \"primary_key\": \"p0\",\n  \"secondary_key\": \"s0\"\n}\n";
    let config = write(&dir, "config.json", text);
    let ecds = write(
        &dir,
        "ecds.json",
        &serde_json::to_string_pretty(&ecds_doc(text, Some("1"))).unwrap(),
    );
    for round in 0..25 {
        let (primary, secondary) = std::thread::scope(|scope| {
            let p = scope.spawn(|| regen_with_ecds("primary", &config, &ecds));
            let s = scope.spawn(|| regen_with_ecds("secondary", &config, &ecds));
            (p.join().unwrap(), s.join().unwrap())
        });
        assert_ok(&primary);
        assert_ok(&secondary);
        let (primary, secondary) = (last_line(&primary), last_line(&secondary));
        let on_disk = read(&config);
        assert_eq!(
            ecds_config(&ecds),
            on_disk,
            "round {round}: the files disagree"
        );
        let cfg = parse_config(&on_disk);
        assert_eq!(
            slot_of(&cfg, None, &primary),
            Some(KeySlot::Primary),
            "round {round}: the printed primary key is not in the files"
        );
        assert_eq!(
            slot_of(&cfg, None, &secondary),
            Some(KeySlot::Secondary),
            "round {round}: the printed secondary key is not in the files"
        );
    }
    assert_eq!(listing(&dir), ["config.json", "ecds.json"]);
}

/// Issue 10 item 11: run as root on files owned by the Envoy user, regen replaced them
/// root:root with its own mode, and Envoy could no longer read them. Owner, group and mode are
/// kept (these tests run as root: the files are given to uid/gid 65534).
#[test]
fn regen_keeps_owner_group_and_mode_of_both_files() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = scratch_dir("cli-regen-owner");
    let text = "{\"primary_key\": \"p0\", \"secondary_key\": \"s0\"}\n";
    let config = write(&dir, "config.json", text);
    let ecds = write(
        &dir,
        "ecds.json",
        &serde_json::to_string(&ecds_doc(text, None)).unwrap(),
    );
    for (path, mode) in [(&config, 0o640), (&ecds, 0o604)] {
        std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = regen_with_ecds("primary", &config, &ecds);
    assert_ok(&out);
    let key = last_line(&out);
    assert_eq!(
        slot_of(&parse_config(&read(&config)), None, &key),
        Some(KeySlot::Primary)
    );
    assert_eq!(ecds_config(&ecds), read(&config));
    for (path, mode) in [(&config, 0o640), (&ecds, 0o604)] {
        let meta = fs::metadata(path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (65534, 65534, mode),
            "{}",
            path.display()
        );
    }
}

/// Issue 10 item 12: a read-only (0444) file was silently replaced. It is refused, and neither
/// file changes.
#[test]
fn regen_refuses_read_only_files() {
    let dir = scratch_dir("cli-regen-readonly");
    let text = "{\"primary_key\": \"p0\", \"secondary_key\": \"s0\"}\n";
    let ecds_text = serde_json::to_string(&ecds_doc(text, None)).unwrap();
    for read_only in ["config.json", "ecds.json"] {
        let config = write(&dir, "config.json", text);
        let ecds = write(&dir, "ecds.json", &ecds_text);
        let target = dir.join(read_only);
        fs::set_permissions(&target, fs::Permissions::from_mode(0o444)).unwrap();
        let out = regen_with_ecds("secondary", &config, &ecds);
        assert_refused(&out, 1, "is not writable (mode 0444)");
        assert!(stderr(&out).contains(read_only), "{}", stderr(&out));
        assert_eq!(read(&config), text);
        assert_eq!(read(&ecds), ecds_text);
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o444
        );
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(listing(&dir), ["config.json", "ecds.json"]);
    }
}

/// Issue 11: an ECDS file given as --config was blamed on "the edited configuration"; the
/// refusal now says which file goes where.
#[test]
fn an_ecds_file_as_config_is_refused_with_a_hint() {
    let dir = scratch_dir("cli-ecds-as-config");
    let text = "{\"primary_key\": \"p0\"}";
    let ecds_text = serde_json::to_string_pretty(&ecds_doc(text, Some("4"))).unwrap();
    let ecds = write(&dir, "ecds.json", &ecds_text);
    let path = ecds.to_str().unwrap();
    let out = cli(&["keys", "regen", "primary", "--config", path]);
    assert_refused(&out, 1, "this is an Envoy ECDS file");
    assert!(stderr(&out).contains("--envoy-ecds"), "{}", stderr(&out));
    assert_eq!(read(&ecds), ecds_text);
    let out = cli(&["keys", "list", "--config", path]);
    assert_refused(&out, 1, "--envoy-ecds");
}

/// A directory uid 65534 can reach and write, outside the clone: the clone may sit under a
/// directory other users cannot enter (a 0700 home, `mktemp -d`), which would hide both the
/// binary and the files from them. It holds a copy of the binary, `aml-auth`.
fn nobody_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aml-auth-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let binary = dir.join("aml-auth");
    fs::copy(env!("CARGO_BIN_EXE_aml-auth"), &binary).unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Runs the copy of the binary in `dir` (see [`nobody_dir`]) as uid/gid 65534 (not root), as
/// an operator account would.
fn cli_as_nobody(dir: &Path, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(dir.join("aml-auth"))
        .args(args)
        .output()
        .unwrap()
}

/// A user who may not write the configuration, in a directory it may write, would replace it by
/// rename (and own the new file): refused. A user who may write it but cannot give the new file
/// its owner is refused before anything is written.
#[test]
fn regen_as_another_user_refuses_what_it_cannot_replace_faithfully() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = nobody_dir("regen-nobody");
    let reach = cli_as_nobody(&dir, &["--help"]);
    assert_eq!(
        reach.status.code(),
        Some(0),
        "uid 65534 cannot run {}: the temp directory (TMPDIR) must be reachable by other users: {}",
        dir.join("aml-auth").display(),
        stderr(&reach)
    );
    let text = "{\"primary_key\": \"p0\", \"secondary_key\": \"s0\"}\n";
    let cases = [
        (0o644, 0, "is not writable (mode 0644)"),
        (0o664, 65534, "cannot give the new file the owner 0:65534"),
    ];
    for (mode, gid, fragment) in cases {
        let config = write(&dir, "config.json", text);
        std::os::unix::fs::chown(&config, Some(0), Some(gid)).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(mode)).unwrap();
        let out = cli_as_nobody(
            &dir,
            &[
                "keys",
                "regen",
                "primary",
                "--config",
                config.to_str().unwrap(),
            ],
        );
        assert_refused(&out, 1, fragment);
        assert_eq!(read(&config), text);
        let meta = fs::metadata(&config).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (0, gid, mode)
        );
        assert_eq!(listing(&dir), ["aml-auth", "config.json"]);
    }
    let config = write(&dir, "config.json", text);
    std::os::unix::fs::chown(&config, Some(65534), Some(65534)).unwrap();
    let lock = dir.join(".config.json.aml-auth-lock");
    std::os::unix::fs::chown(&lock, Some(0), Some(0)).unwrap();
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli_as_nobody(
        &dir,
        &[
            "keys",
            "regen",
            "primary",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_ok(&out);
    assert_eq!(
        slot_of(&parse_config(&read(&config)), None, &last_line(&out)),
        Some(KeySlot::Primary)
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A python3 with PyYAML (`AML_PYTHON`, else `python3`, else `.venv/bin/python3`).
fn python_with_yaml() -> PathBuf {
    std::env::var_os("AML_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("python3"),
            repo_root().join(".venv/bin/python3"),
        ])
        .find(|py| {
            Command::new(py)
                .args(["-c", "import yaml"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("no python3 with PyYAML: set AML_PYTHON (./build.sh test provides one)")
}

/// Every document of a YAML file, as JSON.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let out = Command::new(python_with_yaml())
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

/// Runs `config check -` on `text`.
fn config_check_stdin(text: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aml-auth"));
    cmd.args(["config", "check", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const DEMO_ENV: [(&str, &str); 2] = [
    ("AML_DEMO_PRIMARY_KEY", "a-demo-primary-key-of-some-length"),
    (
        "AML_DEMO_SECONDARY_KEY",
        "a-demo-secondary-key-of-some-length",
    ),
];

/// Issue 20: `config check` accepts every plugin configuration the repository ships, and
/// summarises it: the demo's (file and ECDS), the Entra example's (inline in the Envoy
/// configuration) and every Istio manifest's `pluginConfig`.
#[test]
fn config_check_accepts_every_shipped_configuration() {
    let root = repo_root();
    let plugin = root.join("envoy/plugin-config.json");
    let out = cli_env(&["config", "check", plugin.to_str().unwrap()], &DEMO_ENV);
    assert_ok(&out);
    let text = stdout(&out);
    for want in [
        "plugin-config.json: valid (the filter's own parser accepts it)",
        "top level (`default`): key primary=env:AML_DEMO_PRIMARY_KEY secondary=env:AML_DEMO_SECONDARY_KEY",
        "selection: by Envoy route name / cluster; a request on a route no service names: judged by the top-level policy",
        "services (2):",
        "  demo        route demo        key primary=inherited secondary=inherited",
        "  demo-token  route demo-token  token, audiences https://ml.azure.com",
        "token issuers: https://workspace.demo.local",
        "via cluster `workspace`",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("warning"), "{text}");
    assert!(text.lines().count() <= 24, "not one screen:\n{text}");

    // The same without the variables: said, and still valid (they are the proxy's).
    let out = cli(&["config", "check", plugin.to_str().unwrap()]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("warning: env:AML_DEMO_PRIMARY_KEY is not set in this environment"),
        "{}",
        stdout(&out)
    );

    let ecds = root.join("envoy/ecds/aml_auth.json");
    let out = cli_env(&["config", "check", ecds.to_str().unwrap()], &DEMO_ENV);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("aml_auth.json (ECDS resource `aml_auth`): valid"),
        "{}",
        stdout(&out)
    );

    let dir = scratch_dir("cli-config-check-shipped");
    let entra = root.join("envoy/envoy-entra.yaml");
    let envoy_json = write(
        &dir,
        "envoy-entra.json",
        &yaml_documents(&entra)[0].to_string(),
    );
    let out = cli(&["config", "check", "--envoy", envoy_json.to_str().unwrap()]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("(filter `"), "{text}");
    assert!(text.contains(": valid"), "{text}");
    assert!(!text.contains("warning: token.remote_jwks"), "{text}");

    let mut manifests = 0;
    for entry in fs::read_dir(root.join("envoy/istio")).unwrap() {
        let path = entry.unwrap().path();
        for doc in yaml_documents(&path) {
            let spec = &doc["spec"];
            let plugin = spec
                .get("pluginConfig")
                .or_else(|| spec.get("wasm").and_then(|w| w.get("pluginConfig")));
            let Some(plugin) = plugin else { continue };
            manifests += 1;
            let out = config_check_stdin(&plugin.to_string(), &[]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}: {}{}",
                path.display(),
                stdout(&out),
                stderr(&out)
            );
            assert!(stdout(&out).starts_with("stdin: valid"), "{}", stdout(&out));
            assert!(stdout(&out).contains("\nselection: "), "{}", stdout(&out));
        }
    }
    assert!(manifests >= 3, "only {manifests} pluginConfig blocks found");
}

/// Issue 20, defect 3: the `pluginConfig` shown in docs/configuration.md is the one
/// envoy/istio/wasmplugin-ingress.yaml ships.
#[test]
fn documented_ingress_plugin_config_is_the_manifests() {
    let root = repo_root();
    let doc = fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let heading = doc
        .find("## An example: the Istio ingress")
        .expect("the Istio ingress example in docs/configuration.md");
    let start = doc[heading..].find("```json\n").unwrap() + heading + 8;
    let end = doc[start..].find("```").unwrap() + start;
    let shown: Value = serde_json::from_str(&doc[start..end]).unwrap();
    let manifest = yaml_documents(&root.join("envoy/istio/wasmplugin-ingress.yaml"))
        .into_iter()
        .find_map(|d| d["spec"].get("pluginConfig").cloned())
        .unwrap();
    assert_eq!(shown, manifest);
}

/// Issue 20: `config check` refusals: exit 1 with the field path and what to change, an empty
/// file called empty, "did you mean" for a typo, an unset `env:` variable said; 2 on usage.
#[test]
fn config_check_refusals_name_the_field_and_the_fix() {
    let dir = scratch_dir("cli-config-check-refused");
    let cases: &[(&str, &[&str])] = &[
        ("", &["refused by the filter: the file is empty"]),
        (
            r#"{"primary_key":"k-0123456789abcdef","auth_enabeld":true}"#,
            &["field `auth_enabeld`: unknown field; did you mean `auth_enabled`?"],
        ),
        (
            r#"{"primary_key":"k-0123456789abcdef","services":[{"name":"a","path_prefix":"a/"}]}"#,
            &[
                "field `services[0].path_prefix`: must start with `/` (found `a/`)",
                "write `/a/`",
            ],
        ),
        (
            r#"{"auth_enabled":false,"primary_key":"abc"}"#,
            &["field `primary_key`: is set but no policy uses it"],
        ),
        ("{}", &["auth_enabled is true (the default) but neither"]),
        (
            r#"{"auth_enabled":true}"#,
            &["auth_enabled is true but neither"],
        ),
    ];
    for (i, (text, fragments)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("c{i}.json"), text);
        let out = cli(&["config", "check", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{text}: {}", stderr(&out));
        let said = stdout(&out);
        assert!(said.contains(path.to_str().unwrap()), "{said}");
        for fragment in *fragments {
            assert!(
                said.contains(fragment),
                "{text}: {fragment:?} not in {said}"
            );
        }
    }
    // An `env:` key: unset here, said (and checked as if set: it is the proxy's); exported, its
    // value is what is checked.
    let path = write(&dir, "env.json", r#"{"primary_key":"env:MY_PRIMARY"}"#);
    let out = cli(&["config", "check", path.to_str().unwrap()]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("warning: env:MY_PRIMARY is not set in this environment"),
        "{}",
        stdout(&out)
    );
    let out = cli_env(
        &["config", "check", path.to_str().unwrap()],
        &[("MY_PRIMARY", "sha256:zz")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("(from environment variable MY_PRIMARY)"));
    let out = cli_env(
        &["config", "check", path.to_str().unwrap()],
        &[("MY_PRIMARY", "a-good-long-primary-key-value")],
    );
    assert_ok(&out);
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));

    let weak = write(
        &dir,
        "weak.json",
        r#"{"primary_key":"a","secondary_key":"a"}"#,
    );
    let out = cli(&["config", "check", weak.to_str().unwrap()]);
    assert_ok(&out);
    let said = stdout(&out);
    assert!(said.contains("warning: the top level: primary_key (from the file) is a plaintext key of 1 characters"), "{said}");
    assert!(
        said.contains("primary_key and secondary_key are the same key"),
        "{said}"
    );

    let missing = dir.join("nope.json");
    assert_refused(
        &cli(&["config", "check", missing.to_str().unwrap()]),
        1,
        "cannot read",
    );
    for args in [
        &["config", "check"][..],
        &["config", "check", "a", "b"],
        &["config", "check", "a", "--strict"],
        &["config", "lint", "a"],
        &["config"],
    ] {
        let out = cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

/// Issue 18 point 7: in path mode Envoy takes the first matching route and the filter the
/// longest path_prefix; `config check --envoy` warns when a shorter prefix listed first takes a
/// longer prefix's requests, and says nothing once the longer one is listed first.
#[test]
fn config_check_warns_when_envoy_routes_shadow_a_longer_prefix() {
    let dir = scratch_dir("cli-config-check-shadow");
    let plugin = write(
        &dir,
        "plugin.json",
        r#"{"primary_key": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "services": [
              {"name": "demo", "path_prefix": "/api/v1/service/demo"},
              {"name": "demo-token", "path_prefix": "/api/v1/service/demo-token"}]}"#,
    );
    let envoy = |routes: Value| {
        json!({"static_resources": {
            "clusters": [{"name": "model"}],
            "listeners": [{"name": "main", "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "http_filters": [
                        {"name": "aml_auth", "config_discovery": {"config_source": {}}},
                        {"name": "envoy.filters.http.router"}],
                    "route_config": {"virtual_hosts": [{"name": "models", "domains": ["*"], "routes": routes}]}}}]}]}]
        }})
    };
    let shadowed = write(
        &dir,
        "shadowed.json",
        &envoy(json!([
            {"name": "demo", "match": {"prefix": "/api/v1/service/demo"}, "route": {"cluster": "model"}},
            {"name": "demo-token", "match": {"prefix": "/api/v1/service/demo-token"}, "route": {"cluster": "model"}}
        ]))
        .to_string(),
    );
    let out = cli(&[
        "config",
        "check",
        plugin.to_str().unwrap(),
        "--envoy",
        shadowed.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let said = stdout(&out);
    assert!(
        said.contains("warning: service `demo-token` (path_prefix `/api/v1/service/demo-token`): Envoy's route `demo` (virtual host `models`, routes[0], prefix `/api/v1/service/demo`) is listed before its route `demo-token`"),
        "{said}"
    );
    assert!(said.contains("route mode, the safe default"), "{said}");
    assert_eq!(said.matches("warning:").count(), 1, "{said}");

    let ordered = write(
        &dir,
        "ordered.json",
        &envoy(json!([
            {"name": "demo-token", "match": {"prefix": "/api/v1/service/demo-token"}, "route": {"cluster": "model"}},
            {"name": "demo", "match": {"prefix": "/api/v1/service/demo"}, "route": {"cluster": "model"}}
        ]))
        .to_string(),
    );
    let out = cli(&[
        "config",
        "check",
        plugin.to_str().unwrap(),
        "--envoy",
        ordered.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));

    let yaml = write(&dir, "envoy.yaml", "static_resources: {}\n");
    assert_refused(
        &cli(&[
            "config",
            "check",
            plugin.to_str().unwrap(),
            "--envoy",
            yaml.to_str().unwrap(),
        ]),
        1,
        "is not JSON",
    );
}

/// Issue 20, defect 2: `keys list` shows `-` as the path of services selected by route (the
/// demo's own configuration); defect 10: `token issue --help` names every curve it signs with.
#[test]
fn keys_list_dashes_route_selected_services_and_issue_help_names_every_curve() {
    let plugin = repo_root().join("envoy/plugin-config.json");
    let out = cli(&["keys", "list", "--config", plugin.to_str().unwrap()]);
    assert_ok(&out);
    let rows: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        rows,
        [
            [
                "default",
                "-",
                "key",
                "primary=env:AML_DEMO_PRIMARY_KEY",
                "secondary=env:AML_DEMO_SECONDARY_KEY"
            ],
            [
                "demo",
                "-",
                "key",
                "primary=inherited",
                "secondary=inherited"
            ],
            ["demo-token", "-", "token", "primary=n/a", "secondary=n/a"],
        ]
    );
    let help = stdout(&cli(&["token", "issue", "--help"]));
    let signing = help
        .split("\n  --signing-key FILE")
        .nth(1)
        .and_then(|rest| rest.split("\n  --issuer").next())
        .unwrap();
    for curve in ["RSA", "P-256", "P-384", "P-521", "Ed25519"] {
        assert!(signing.contains(curve), "{curve} missing: {signing}");
    }
}

/// Issue 20, defect 8: `keys regen primary` on a configuration whose top level is in token mode
/// (and no key-mode service inherits the top-level key) would write a key that never applies:
/// refused, naming what to do instead, with the file untouched.
#[test]
fn regen_of_a_top_level_key_nothing_uses_is_refused() {
    let dir = scratch_dir("cli-regen-token-mode");
    let text = r#"{"auth_enabled": false, "token_auth_enabled": true,
  "token": {"issuer": "https://issuer", "remote_jwks": {"cluster": "jwks", "uri": "https://jwks.test/keys"}},
  "services": [{"name": "churn", "path_prefix": "/churn/", "auth_enabled": true, "token_auth_enabled": false,
                "primary_key": "churn-primary-key", "secondary_key": "churn-secondary-key"}]}
"#;
    let config = write(&dir, "config.json", text);
    let out = cli(&[
        "keys",
        "regen",
        "primary",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_refused(&out, 1, "field `primary_key`: is set but no policy uses it");
    assert!(
        stderr(&out).contains("give --service NAME"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&config), text);
    let out = cli(&[
        "keys",
        "regen",
        "primary",
        "--service",
        "churn",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_ok(&out);
}

/// Issue 20 (friction): `keys regen` without `--envoy-ecds` while an ECDS file beside the
/// configuration (as the demo's `ecds/aml_auth.json`) holds it says that Envoy keeps the old key.
#[test]
fn regen_without_ecds_says_when_an_ecds_file_beside_holds_the_configuration() {
    let dir = scratch_dir("cli-regen-ecds-beside");
    let text =
        "{\"primary_key\": \"p0-0123456789abcdef\", \"secondary_key\": \"s0-0123456789abcdef\"}\n";
    let config = write(&dir, "plugin-config.json", text);
    fs::create_dir_all(dir.join("ecds")).unwrap();
    let ecds = write(
        &dir.join("ecds"),
        "aml_auth.json",
        &ecds_doc(text, Some("1")).to_string(),
    );
    let out = cli(&[
        "keys",
        "regen",
        "primary",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!(
            "note: {} (an Envoy ECDS file beside it) holds this configuration as it was: without --envoy-ecds",
            fs::canonicalize(&ecds).unwrap().display()
        )),
        "{}",
        stderr(&out)
    );
    let out = cli(&[
        "keys",
        "regen",
        "secondary",
        "--config",
        config.to_str().unwrap(),
        "--envoy-ecds",
        ecds.to_str().unwrap(),
    ]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("beside it"), "{}", stderr(&out));
}
