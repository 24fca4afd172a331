//! `aml-auth token check` end to end through the built binary, with tokens these tests mint with
//! `aml-auth token issue`: an allowed token, each check failing in turn (with the reason and
//! the status the filter would answer), `--at` inside and outside a lifetime, keys from `--jwks`
//! or `local_jwks`, routing by `--service` and `--path`, stdin, and usage errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use common::{repo_root, scratch_dir, signing_key, unix_now};

const ISS: &str = "https://workspace.test";
const AUD: &str = "https://ml.azure.com";

fn cli(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aml-auth"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn data(name: &str) -> String {
    repo_root()
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Mints a token with `aml-auth token issue`.
fn issue(pem: &str, extra: &[&str]) -> String {
    let key = data(pem);
    let mut args = vec![
        "token",
        "issue",
        "--signing-key",
        &key,
        "--ttl",
        "600",
        "--subject",
        "caller-7",
    ];
    for (flag, value) in [("--issuer", ISS), ("--audience", AUD)] {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend(extra);
    let out = cli(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).lines().next().unwrap().to_string()
}

fn jwks_of(pems: &[&str]) -> Value {
    let paths: Vec<String> = pems.iter().map(|p| data(p)).collect();
    let mut args = vec!["jwks"];
    for p in &paths {
        args.extend(["--signing-key", p]);
    }
    let out = cli(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A configuration: token mode at the top (keys in `local_jwks`), a key-mode service `churn`.
fn write_config(dir: &Path) -> PathBuf {
    let config = json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "token": {
            "issuer": ISS,
            "audiences": [AUD],
            "local_jwks": jwks_of(&["rsa-a.pem", "p256-a.pem"]),
            "claim_to_headers": [{"claim": "sub", "header": "x-aml-caller"}]
        },
        "services": [
            {"name": "churn", "path_prefix": "/api/v1/service/churn/", "auth_enabled": true,
             "token_auth_enabled": false, "primary_key": "churn-key"},
            {"name": "fraud", "path_prefix": "/api/v1/service/fraud/", "hosts": ["models.contoso.com"]}
        ]
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// A report: exit status, each `check NAME RESULT` line, the verdict line, all of stdout.
struct Report {
    code: Option<i32>,
    checks: Vec<(String, String)>,
    verdict: String,
    stdout: String,
}

fn check(config: &Path, extra: &[&str], token: &str) -> Report {
    let config = config.to_str().unwrap();
    let mut args = vec!["token", "check", "--config", config];
    args.extend(extra);
    args.push(token);
    let out = cli(&args, None);
    report(&out)
}

fn report(out: &Output) -> Report {
    let stdout = text(&out.stdout);
    assert!(
        out.stderr.is_empty() || out.status.code() == Some(2),
        "{}",
        text(&out.stderr)
    );
    let checks = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("check "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, result)| (name.to_string(), result.trim().to_string()))
        .collect();
    let verdict = stdout
        .lines()
        .find_map(|l| l.strip_prefix("verdict: "))
        .unwrap_or_default()
        .to_string();
    Report {
        code: out.status.code(),
        checks,
        verdict,
        stdout,
    }
}

const ORDER: [&str; 7] = [
    "structure",
    "header",
    "issuer",
    "time",
    "audience",
    "claims",
    "signature",
];

fn assert_checks(r: &Report, want: &[(&str, &str)]) {
    let names: Vec<&str> = r.checks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ORDER, "{}", r.stdout);
    for (name, result) in &r.checks {
        let expected = want
            .iter()
            .find(|(n, _)| n == name)
            .map_or("pass", |(_, w)| *w);
        assert!(
            result.starts_with(expected),
            "check {name}: want {expected}, got {result}\n{}",
            r.stdout
        );
    }
}

#[test]
fn an_allowed_token_passes_every_check_and_shows_its_decoded_parts() {
    let dir = scratch_dir("check-allowed");
    let config = write_config(&dir);
    for pem in ["rsa-a.pem", "p256-a.pem"] {
        let token = issue(pem, &["--claim", "role=scorer"]);
        let r = check(&config, &[], &token);
        assert_eq!(r.code, Some(0), "{}", r.stdout);
        assert_checks(&r, &[]);
        assert!(
            r.verdict.starts_with("allow") && r.verdict.contains("x-aml-caller: caller-7"),
            "{}",
            r.verdict
        );
        assert!(r
            .stdout
            .contains("service: default (the top-level policy), mode token"));
        assert!(r.stdout.contains("keys: 2 usable from token.local_jwks"));
        assert!(
            r.stdout.contains(&format!("\"iss\":\"{ISS}\"")),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("\"role\":\"scorer\""), "{}", r.stdout);
        let alg = if pem.starts_with("rsa") {
            "RS256"
        } else {
            "ES256"
        };
        assert!(
            r.stdout
                .contains(&format!("token header: {{\"alg\":\"{alg}\"")),
            "{}",
            r.stdout
        );
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !r.stdout.contains(signature),
            "the signature must be elided"
        );
    }
}

/// A broken structure stops every other check.
fn broken_structure(result: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut want = vec![("structure", result)];
    want.extend(ORDER[1..].iter().map(|name| (*name, "not run")));
    want
}

#[test]
fn each_check_fails_in_turn_with_the_filters_reason_and_status() {
    let dir = scratch_dir("check-failing");
    let config = write_config(&dir);
    let rsa_a_kid = signing_key("rsa-a.pem").thumbprint();
    let good = issue("rsa-a.pem", &[]);
    let parts: Vec<&str> = good.split('.').collect();
    let cases: Vec<(&str, String, Vec<(&str, &str)>, &str)> = vec![
        (
            "structure",
            format!("{}.{}", parts[0], parts[1]),
            broken_structure("fail malformed_token"),
            "deny 401 malformed_token",
        ),
        (
            "structure (base64)",
            format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
            broken_structure("fail bad_base64"),
            "deny 401 bad_base64",
        ),
        (
            "structure (credential)",
            format!("{}.{}=.{}", parts[0], parts[1], parts[2]),
            broken_structure("fail bad_base64"),
            "deny 401 malformed_credential",
        ),
        (
            "header",
            issue("rsa-a.pem", &["--kid", "rotated-away"]),
            vec![
                ("header", "fail unknown_kid"),
                ("claims", "not run"),
                ("signature", "not run"),
            ],
            "deny 401 unknown_kid",
        ),
        (
            "issuer",
            issue("rsa-a.pem", &["--issuer", "https://elsewhere.test"]),
            vec![("issuer", "fail issuer_mismatch"), ("claims", "not run")],
            "deny 401 issuer_mismatch",
        ),
        (
            "audience",
            issue("rsa-a.pem", &["--audience", "https://other.test"]),
            vec![
                ("audience", "fail audience_not_allowed"),
                ("claims", "not run"),
            ],
            "deny 403 audience_not_allowed",
        ),
        (
            "signature",
            issue("rsa-b.pem", &["--kid", &rsa_a_kid]),
            vec![
                ("signature", "fail invalid_signature"),
                ("claims", "not run"),
            ],
            "deny 401 invalid_signature",
        ),
    ];
    for (name, token, failing, verdict) in cases {
        let r = check(&config, &[], &token);
        assert_eq!(r.code, Some(1), "{name}: {}", r.stdout);
        assert_checks(&r, &failing);
        assert!(r.verdict.starts_with(verdict), "{name}: {}", r.verdict);
    }
    let claims_config = dir.join("claims.json");
    let mut with_claims: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    with_claims["required_claims"] = json!({"roles": ["Model.Score"]});
    std::fs::write(&claims_config, with_claims.to_string()).unwrap();
    let r = check(&claims_config, &[], &good);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert_checks(&r, &[("claims", "fail claim_not_allowed (claim `roles`)")]);
    assert!(
        r.verdict.starts_with("deny 403 claim_not_allowed")
            && r.verdict.ends_with("(claim `roles`)"),
        "{}",
        r.verdict
    );
    let scored = issue("rsa-a.pem", &["--claim-json", "roles=[\"Model.Score\"]"]);
    let r = check(&claims_config, &[], &scored);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert_checks(&r, &[]);
    let r = check(&config, &["--at", &(unix_now() + 3600).to_string()], &good);
    assert_eq!(r.code, Some(1));
    assert_checks(&r, &[("time", "fail token_expired"), ("claims", "not run")]);
    assert!(
        r.verdict.starts_with("deny 401 token_expired"),
        "{}",
        r.verdict
    );
}

#[test]
fn at_judges_inside_and_outside_the_lifetime() {
    let dir = scratch_dir("check-at");
    let config = write_config(&dir);
    let token = issue("rsa-a.pem", &[]);
    let claims: Value = {
        use base64::Engine as _;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    let rfc = |t: i64| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    };
    let cases: &[(String, i32, &str)] = &[
        ((iat + 300).to_string(), 0, "allow"),
        (rfc(iat + 300), 0, "allow"),
        (rfc(exp - 1), 0, "allow"),
        (rfc(exp + 60), 1, "deny 401 token_expired"),
        ((exp + 3600).to_string(), 1, "deny 401 token_expired"),
        (rfc(iat - 3600), 1, "deny 401 token_not_yet_valid"),
    ];
    for (at, code, verdict) in cases {
        let r = check(&config, &["--at", at], &token);
        assert_eq!(r.code, Some(*code), "--at {at}: {}", r.stdout);
        assert!(r.verdict.starts_with(verdict), "--at {at}: {}", r.verdict);
        if let Ok(t) = at.parse::<i64>() {
            assert!(r.stdout.contains(&format!("at: {t} (")), "{}", r.stdout);
        } else {
            assert!(r.stdout.contains(&format!("({at})")), "{}", r.stdout);
        }
    }
}

#[test]
fn keys_come_from_jwks_or_local_jwks_and_are_never_fetched() {
    let dir = scratch_dir("check-keys");
    let remote_only = dir.join("remote.json");
    std::fs::write(
        &remote_only,
        json!({
            "auth_enabled": false, "token_auth_enabled": true,
            "token": {"issuer": ISS, "audiences": [AUD],
                      "remote_jwks": {"cluster": "workspace", "uri": "http://127.0.0.1:9/keys"}}
        })
        .to_string(),
    )
    .unwrap();
    let token = issue("ed25519-a.pem", &[]);
    let r = check(&remote_only, &[], &token);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(r.stdout.contains("keys: none"), "{}", r.stdout);
    assert!(
        r.verdict.starts_with("deny 503 jwks_unavailable"),
        "{}",
        r.verdict
    );
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, jwks_of(&["ed25519-a.pem"]).to_string()).unwrap();
    let r = check(&remote_only, &["--jwks", jwks.to_str().unwrap()], &token);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert_checks(&r, &[]);
    assert!(
        r.stdout.contains("keys: 1 usable from --jwks"),
        "{}",
        r.stdout
    );
    let both = dir.join("both.json");
    std::fs::write(
        &both,
        json!({
            "auth_enabled": false, "token_auth_enabled": true,
            "token": {"issuer": ISS, "audiences": [AUD],
                      "local_jwks": jwks_of(&["ed25519-a.pem"]),
                      "remote_jwks": {"cluster": "workspace", "uri": "http://127.0.0.1:9/keys"}}
        })
        .to_string(),
    )
    .unwrap();
    let r = check(&both, &[], &token);
    assert_eq!(
        r.code,
        Some(0),
        "a local key judges without the remote set: {}",
        r.stdout
    );
    let remote_signed = issue("rsa-a.pem", &[]);
    let r = check(&both, &[], &remote_signed);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert_checks(
        &r,
        &[
            ("header", "fail unknown_kid"),
            ("claims", "not run"),
            ("signature", "not run"),
        ],
    );
    assert!(
        r.verdict.starts_with("deny 503 jwks_unavailable"),
        "before the remote set, an unknown kid cannot be judged: {}",
        r.verdict
    );
    std::fs::write(&jwks, jwks_of(&["rsa-a.pem"]).to_string()).unwrap();
    let r = check(&both, &["--jwks", jwks.to_str().unwrap()], &remote_signed);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.stdout.contains("keys: 1 usable from --jwks")
            && r.stdout.contains("then 1 from token.local_jwks"),
        "{}",
        r.stdout
    );
    let r = check(&both, &["--jwks", jwks.to_str().unwrap()], &token);
    assert_eq!(
        r.code,
        Some(0),
        "local keys stay beside --jwks: {}",
        r.stdout
    );
    std::fs::write(&jwks, "{\"keys\": 5}").unwrap();
    let out = cli(
        &[
            "token",
            "check",
            "--config",
            remote_only.to_str().unwrap(),
            "--jwks",
            jwks.to_str().unwrap(),
            &token,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("keys_not_array"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_policy_is_chosen_by_service_or_by_the_filters_router() {
    let dir = scratch_dir("check-route");
    let config = write_config(&dir);
    let token = issue("rsa-a.pem", &[]);
    let r = check(&config, &["--service", "churn"], &token);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(
        r.stdout.contains("service: churn (services[0]"),
        "{}",
        r.stdout
    );
    assert!(
        r.verdict.starts_with("deny 401 invalid_key"),
        "{}",
        r.verdict
    );
    let r = check(&config, &["--path", "/api/v1/service/churn/score"], &token);
    assert!(
        r.stdout.contains("service: churn (services[0]"),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, Some(1));
    let r = check(&config, &["--path", "/api/v1/service/fraud/score"], &token);
    assert!(r.stdout.contains("service: default"), "{}", r.stdout);
    let r = check(
        &config,
        &[
            "--path",
            "/api/v1/service/fraud/score",
            "--host",
            "Models.Contoso.com:443",
        ],
        &token,
    );
    assert!(
        r.stdout.contains("service: fraud (services[1]"),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let r = check(&config, &["--service", "default"], &token);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let out = cli(
        &[
            "token",
            "check",
            "--config",
            config.to_str().unwrap(),
            "--service",
            "nope",
            &token,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such service (services: churn, fraud"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_dash_reads_the_token_from_stdin() {
    let dir = scratch_dir("check-stdin");
    let config = write_config(&dir);
    let token = issue("rsa-a.pem", &[]);
    let out = cli(
        &["token", "check", "--config", config.to_str().unwrap(), "-"],
        Some(&format!("{token}\n")),
    );
    let r = report(&out);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert_checks(&r, &[]);
}

#[test]
fn usage_errors_exit_2() {
    let dir = scratch_dir("check-usage");
    let config = write_config(&dir);
    let config = config.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["token", "check", "--config", config], "TOKEN is required"),
        (&["token", "check", "t.t.t"], "`--config` is required"),
        (
            &["token", "check", "--config", config, "--host", "h", "t.t.t"],
            "--host goes with --path",
        ),
        (
            &[
                "token",
                "check",
                "--config",
                config,
                "--service",
                "a",
                "--path",
                "/a",
                "t.t.t",
            ],
            "not both",
        ),
        (
            &[
                "token",
                "check",
                "--config",
                config,
                "--at",
                "yesterday",
                "t.t.t",
            ],
            "--at: `yesterday`",
        ),
        (
            &[
                "token", "check", "--config", config, "--path", "api", "t.t.t",
            ],
            "does not start with `/`",
        ),
        (
            &["token", "check", "--config", config, "a.b.c", "d.e.f"],
            "unexpected argument `d.e.f`",
        ),
    ];
    for (args, fragment) in cases {
        let out = cli(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            text(&out.stderr).contains(fragment),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = cli(&["token", "check", "--config", config, "-"], Some("  \n"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("TOKEN is empty"));
    let out = cli(&["token", "check", "--help"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: aml-auth token check"));
}

/// `jwt::trace` runs the same checks as `jwt::verify`: a token passes every traced check exactly
/// when `verify` accepts it, and `verify`'s reason is always one the trace reports.
#[test]
fn trace_agrees_with_verify() {
    use aml_auth_filter::token::jwks::parse_jwks;
    use aml_auth_filter::token::jwt::{trace, verify, TokenPolicy};
    let keys = parse_jwks(jwks_of(&["rsa-a.pem", "p256-a.pem"]).to_string().as_bytes())
        .unwrap()
        .keys;
    let policy = TokenPolicy {
        audiences: Some(vec![AUD.into()]),
        max_lifetime_seconds: Some(3600),
        ..TokenPolicy::new(vec![ISS.into()])
    };
    let kid = signing_key("rsa-a.pem").thumbprint();
    let tokens = [
        issue("rsa-a.pem", &[]),
        issue("p256-a.pem", &["--audience", "x"]),
        issue("rsa-b.pem", &["--kid", &kid]),
        issue(
            "rsa-b.pem",
            &["--kid", &kid, "--audience", "x", "--issuer", "y"],
        ),
        issue("rsa-a.pem", &["--kid", "nope", "--issuer", "y"]),
        issue("rsa-a.pem", &["--alg", "PS256"]),
        "a.b".to_string(),
    ];
    let now = unix_now();
    for token in &tokens {
        for at in [now, now + 7200, now - 7200] {
            let traced = trace(token, &keys, &policy, at);
            let failures: Vec<_> = traced.iter().filter_map(|(_, r)| *r).collect();
            match verify(token, &keys, &policy, at) {
                Ok(_) => assert!(failures.iter().all(Result::is_ok), "{traced:?}"),
                Err(e) => assert!(failures.contains(&Err(e)), "{e}: {traced:?}"),
            }
        }
    }
}

/// A configuration selecting by Envoy route (`route_names`) and cluster (`clusters`), as the
/// demo's and the Istio ingress's do; `unmatched` is its `unmatched_routes`.
fn write_route_config(dir: &Path, unmatched: &str) -> PathBuf {
    let config = json!({
        "primary_key": "a-top-level-primary-key",
        "unmatched_routes": unmatched,
        "token": {"issuer": ISS, "audiences": [AUD], "local_jwks": jwks_of(&["rsa-a.pem"])},
        "services": [
            {"name": "scoring", "route_names": ["score-v1", "score-v2"],
             "auth_enabled": false, "token_auth_enabled": true},
            {"name": "churn", "clusters": ["outbound|80||churn.models.svc.cluster.local"],
             "auth_enabled": false, "token_auth_enabled": true,
             "token": {"audiences": ["api://churn"]}}
        ]
    });
    let path = dir.join(format!("route-{unmatched}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// Issue 20: services selected by route are placed with `--route` or `--cluster` (the service
/// line names the route or cluster); `--path` there, and `--route` for path-selected services,
/// are usage errors (exit 2); a route no service names is refused as the filter refuses it.
#[test]
fn route_selected_services_are_placed_by_route_or_cluster() {
    let dir = scratch_dir("check-by-route");
    let config = write_route_config(&dir, "refuse");
    let token = issue("rsa-a.pem", &[]);
    let r = check(&config, &["--route", "score-v2"], &token);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "service: scoring (services[0], route score-v1,score-v2) chosen by --route score-v2, mode token"
        ),
        "{}",
        r.stdout
    );
    let r = check(
        &config,
        &["--cluster", "outbound|80|v2|churn.models.svc.cluster.local"],
        &token,
    );
    assert!(
        r.stdout.contains("service: churn (services[1], cluster outbound|80||churn.models.svc.cluster.local) chosen by --cluster outbound|80|v2|churn.models.svc.cluster.local"),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(
        r.verdict.starts_with("deny 403 audience_not_allowed"),
        "{}",
        r.verdict
    );
    let r = check(&config, &["--service", "churn"], &token);
    assert!(
        r.stdout.contains("service: churn (services[1], cluster outbound|80||churn.models.svc.cluster.local), mode token"),
        "{}",
        r.stdout
    );
    let r = check(&config, &["--route", "landing"], &token);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "service: none: no service names --route landing (and unmatched_routes is `refuse`)"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.verdict.starts_with("deny 403 no_service"),
        "{}",
        r.verdict
    );
    let open = write_route_config(&dir, "top_level_policy");
    let r = check(&open, &["--route", "landing"], &token);
    assert!(
        r.stdout.contains(
            "service: default (the top-level policy) chosen by --route landing, mode key"
        ),
        "{}",
        r.stdout
    );

    let path_config = write_config(&dir);
    let usage: &[(&Path, &[&str], &str)] = &[
        (
            &config,
            &["--path", "/score"],
            "give --route NAME or --cluster NAME",
        ),
        (
            &path_config,
            &["--route", "score"],
            "select by path_prefix: give --path",
        ),
        (
            &path_config,
            &["--cluster", "c"],
            "select by path_prefix: give --path",
        ),
        (
            &config,
            &["--service", "scoring", "--route", "score-v1"],
            "not both",
        ),
        (&config, &["--route", ""], "--route: the name is empty"),
    ];
    for (cfg, extra, fragment) in usage {
        let mut args = vec!["token", "check", "--config", cfg.to_str().unwrap()];
        args.extend(*extra);
        args.push(&token);
        let out = cli(&args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{extra:?}");
        assert!(
            text(&out.stderr).contains(fragment),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Issue 20: a failed check says what it expected: the kids held, the issuers accepted, the
/// audiences allowed, the required values, and times in RFC 3339 as well as Unix seconds.
#[test]
fn failed_checks_say_what_they_expected() {
    let dir = scratch_dir("check-expected");
    let config = write_config(&dir);
    let kids = [
        signing_key("rsa-a.pem").thumbprint(),
        signing_key("p256-a.pem").thumbprint(),
    ];
    let line = |r: &Report, name: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("check {name} ")))
            .unwrap_or_default()
            .to_string()
    };
    let r = check(
        &config,
        &[],
        &issue("rsa-a.pem", &["--kid", "rotated-away"]),
    );
    let header = line(&r, "header");
    assert!(
        header.contains("kid \"rotated-away\" is not among the 2 keys held; kids held:"),
        "{header}"
    );
    for kid in &kids {
        assert!(header.contains(kid.as_str()), "{header}");
    }
    let r = check(
        &config,
        &[],
        &issue("rsa-a.pem", &["--issuer", "https://elsewhere.test"]),
    );
    assert!(
        line(&r, "issuer").ends_with(&format!(
            "fail issuer_mismatch (iss \"https://elsewhere.test\"; accepted: {ISS})"
        )),
        "{}",
        r.stdout
    );
    let r = check(
        &config,
        &[],
        &issue("rsa-a.pem", &["--audience", "https://other.test"]),
    );
    assert!(
        line(&r, "audience").ends_with(&format!(
            "fail audience_not_allowed (aud \"https://other.test\"; allowed: {AUD})"
        )),
        "{}",
        r.stdout
    );
    let token = issue("rsa-a.pem", &[]);
    let r = check(&config, &["--at", "2100-01-01T00:00:00Z"], &token);
    let time = line(&r, "time");
    assert!(time.contains("fail token_expired (exp "), "{time}");
    assert!(
        time.contains("judged at 4102444800 = 2100-01-01T00:00:00Z; clock skew 60 s)"),
        "{time}"
    );
    let exp: Value = {
        use base64::Engine as _;
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let exp = exp["exp"].as_i64().unwrap();
    let exp_text = {
        let out = cli(
            &[
                "token",
                "check",
                "--config",
                config.to_str().unwrap(),
                "--at",
                &exp.to_string(),
                &token,
            ],
            None,
        );
        text(&out.stdout)
    };
    let times = exp_text
        .lines()
        .find(|l| l.starts_with("token times: "))
        .unwrap();
    assert!(times.contains(&format!("exp {exp} (")), "{times}");
    assert!(time.contains(&format!("exp {exp} = ")), "{time}");
    assert!(time.contains("Z; judged at"), "{time}");

    let claims_config = dir.join("claims.json");
    let mut with_claims: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    with_claims["required_claims"] = json!({"roles": ["Model.Score", "Model.Admin"]});
    std::fs::write(&claims_config, with_claims.to_string()).unwrap();
    let r = check(
        &claims_config,
        &[],
        &issue("rsa-a.pem", &["--claim-json", "roles=[\"Reader\"]"]),
    );
    assert!(
        line(&r, "claims").ends_with(
            "fail claim_not_allowed (claim `roles`) (holds [\"Reader\"]; required: one of Model.Score, Model.Admin)"
        ),
        "{}",
        r.stdout
    );
}

/// Issue 20, defect 1: the README's `token check` example works against the demo's own
/// configuration (services selected by route), with a token and key set made like the demo's.
#[test]
fn the_readme_token_check_example_works_against_the_demo_config() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("aml-auth token check --config dist/demo/plugin-config.json")
        .expect("the README's token check example");
    let command: String = readme[start..]
        .split("```")
        .next()
        .unwrap()
        .replace("\\\n", " ");
    let words: Vec<&str> = command.split_whitespace().skip(1).collect();
    let dir = scratch_dir("check-readme");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, jwks_of(&["rsa-a.pem"]).to_string()).unwrap();
    let token = issue(
        "rsa-a.pem",
        &[
            "--issuer",
            "https://workspace.demo.local",
            "--audience",
            "https://ml.azure.com",
        ],
    );
    let config = repo_root().join("envoy/plugin-config.json");
    let args: Vec<String> = words
        .iter()
        .map(|w| match *w {
            "dist/demo/plugin-config.json" => config.display().to_string(),
            "dist/demo/workspace/jwks.json" => jwks.display().to_string(),
            "\"$TOKEN\"" => token.clone(),
            other => other.to_string(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = report(&cli(&args, None));
    assert_eq!(r.code, Some(0), "{args:?}\n{}", r.stdout);
    assert!(
        r.stdout.contains("service: demo-token (services[1], route demo-token) chosen by --route demo-token, mode token"),
        "{}",
        r.stdout
    );
    assert!(r.verdict.starts_with("allow"), "{}", r.verdict);
}
