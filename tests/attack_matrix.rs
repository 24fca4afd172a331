//! The attack matrix through the real Envoy: every hostile request is answered 401 (403 for a
//! valid token whose audience is not allowed, 503 with Retry-After when keys are unavailable,
//! 400 when Envoy's own codec refuses the bytes), never reaches the upstream, and the VM answers
//! the next valid request with 200. Rows are data (`tests/attacks/mod.rs`); each failure names
//! its row. One Envoy per group: key mode, token mode, hostile JWKS bodies, fetch faults.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod attacks;
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use attacks::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

/// Sends one row and checks everything the matrix promises; returns the failures, each naming the row.
fn check_row(
    addr: SocketAddr,
    upstream: &Server,
    row: &Case,
    valid: &Auth,
    table: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let name = format!("[{table}] {}", row.name);
    let before = upstream.count();
    match try_send_raw(addr, &request_bytes("/score", &row.auth, false)) {
        Err(e) => failures.push(format!("{name}: no response: {e}")),
        Ok(resp) => {
            if resp.status != row.status {
                failures.push(format!(
                    "{name}: status {} (want {}): {}",
                    resp.status,
                    row.status,
                    resp.text()
                ));
            }
            if let Some(reason) = row.reason {
                let got = serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|b| b["reason"].as_str().map(str::to_string));
                if got.as_deref() != Some(reason) {
                    failures.push(format!(
                        "{name}: reason {got:?} (want {reason}): {}",
                        resp.text()
                    ));
                }
                let challenge = resp.header("www-authenticate").unwrap_or_default();
                let wanted = match (row.status, reason) {
                    (401, "missing_credential") => "Bearer realm=\"aml\"".to_string(),
                    (401, _) => "error=\"invalid_token\"".to_string(),
                    (403, _) => "error=\"insufficient_scope\"".to_string(),
                    _ => String::new(),
                };
                if !challenge.contains(&wanted) {
                    failures.push(format!("{name}: challenge {challenge:?} lacks {wanted:?}"));
                }
                if row.status == 503 && resp.header("retry-after").is_none() {
                    failures.push(format!("{name}: 503 without Retry-After"));
                }
            }
        }
    }
    let forwarded = usize::from(row.status == 200);
    let after = upstream.count();
    if after != before + forwarded {
        failures.push(format!(
            "{name}: upstream saw {} request(s), want {forwarded}",
            after - before
        ));
    }
    match try_send_raw(addr, &request_bytes("/score", valid, false)) {
        Ok(r) if r.status == 200 => {}
        Ok(r) => failures.push(format!(
            "{name}: the next valid request got {}: {}",
            r.status,
            r.text()
        )),
        Err(e) => failures.push(format!("{name}: the next valid request failed: {e}")),
    }
    if upstream.count() != after + 1 {
        failures.push(format!(
            "{name}: the next valid request did not reach the upstream"
        ));
    }
    failures
}

/// Runs tables of rows and checks the per-reason denial stats match the rows exactly.
fn run_tables(envoy: &Envoy, upstream: &Server, valid: &Auth, tables: &[(&str, Vec<Case>)]) {
    let denied_before = envoy.stat("aml_auth.requests_denied");
    let mut failures = Vec::new();
    let mut by_reason: BTreeMap<&str, i64> = BTreeMap::new();
    let mut filter_denials = 0;
    let mut names = std::collections::HashSet::new();
    for (table, rows) in tables {
        for row in rows {
            assert!(
                names.insert(row.name.clone()),
                "row name used twice: {}",
                row.name
            );
            failures.extend(check_row(envoy.main(), upstream, row, valid, table));
            if let (Some(reason), true) = (row.reason, row.status != 200) {
                *by_reason.entry(reason).or_default() += 1;
                filter_denials += 1;
            }
        }
    }
    for (reason, count) in &by_reason {
        let stat = envoy.stat(&format!("aml_auth.denied.{reason}"));
        if stat != *count {
            failures.push(format!(
                "stat aml_auth.denied.{reason} is {stat}, want {count} (one per row)"
            ));
        }
    }
    let denied = envoy.stat("aml_auth.requests_denied") - denied_before;
    if denied != filter_denials {
        failures.push(format!(
            "aml_auth.requests_denied grew by {denied}, want {filter_denials}"
        ));
    }
    let rows: usize = tables.iter().map(|(_, r)| r.len()).sum();
    assert!(
        failures.is_empty(),
        "{} of {rows} rows failed:\n{}\n--- envoy log tail ---\n{}",
        failures.len(),
        failures.join("\n"),
        envoy.log_tail(20)
    );
}

fn token_mode_config(remote: Value) -> Value {
    let mut config = token_config(remote);
    config["token"]["clock_skew_seconds"] = json!(SKEW);
    config["token"]["max_lifetime_seconds"] = json!(MAX_LIFETIME);
    config
}

fn wait_for_keys(envoy: &Envoy, at_least: i64) {
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", at_least),
        "no JWKS fetch succeeded:\n{}",
        envoy.log_tail(30)
    );
}

#[test]
fn key_mode_matrix() {
    let upstream = Server::upstream();
    let kit = Kit::new();
    let envoy = Envoy::start(&filter_in_front_of(
        &json!({"primary_key": PRIMARY, "secondary_key": SECONDARY}),
        &upstream,
    ));
    let vm_created = envoy.vm_created();
    run_tables(
        &envoy,
        &upstream,
        &bearer(PRIMARY),
        &[("key mode", key_mode_rows(&kit))],
    );
    let log = envoy.log();
    assert!(
        !log.contains(PRIMARY) && !log.contains(SECONDARY),
        "a key leaked into the log"
    );
    envoy.assert_no_vm_restart(vm_created);
}

#[test]
fn token_mode_matrix() {
    let upstream = Server::upstream();
    let attacker = Server::start(|_| Reply::new(200, "{\"keys\":[]}"));
    let kit = Kit::new();
    let server = jwks_server(&kit.jwks());
    let envoy = Envoy::start(&filter_with_clusters(
        &token_mode_config(remote_source("jwks", 600, 86_400)),
        &upstream,
        &[("jwks", &server)],
    ));
    let vm_created = envoy.vm_created();
    wait_for_keys(&envoy, 1);
    let attacker_url = format!("http://{}", attacker.addr);
    run_tables(
        &envoy,
        &upstream,
        &bearer(&kit.valid()),
        &[
            ("token headers", token_header_rows(&kit)),
            ("structure", structure_rows(&kit)),
            ("jose header", header_rows(&kit, &attacker_url)),
            ("signature", signature_rows(&kit)),
            ("claims", claim_rows(&kit)),
        ],
    );
    for (i, token) in kit.valid_all().iter().enumerate() {
        let resp = get_bearer(envoy.main(), "/score", token);
        assert_eq!(resp.status, 200, "valid token {i}: {}", resp.text());
    }
    assert_eq!(
        attacker.count(),
        0,
        "jku/x5u/jwk/x5c made the filter contact the attacker's server"
    );
    envoy.assert_no_vm_restart(vm_created);
}

// ---------------------------------------------------------------------------------------------
// Hostile JWKS bodies

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWKS key the filter must drop: row name, the key's JSON text, its kid, the drop reason
/// logged, and optionally a token naming that kid with the refusal it must get.
struct BadKey {
    name: &'static str,
    json: String,
    kid: &'static str,
    reason: &'static str,
    probe: Option<(String, &'static str)>,
}

fn bad_keys(kit: &Kit) -> Vec<BadKey> {
    let rsa = kit.rsa_a.public_jwk("x", None);
    let ec = kit.p256.public_jwk("x", Some("ES256"));
    let with = |base: &Value, kid: &str, patch: Value| {
        let mut k = base.clone();
        k["kid"] = json!(kid);
        for (m, v) in patch.as_object().unwrap() {
            k[m] = v.clone();
        }
        k.to_string()
    };
    let rs = |kid: &str| kit.rsa_a.sign("RS256", Some(kid), &kit.claims()).unwrap();
    let es = |kid: &str| kit.p256.sign("ES256", Some(kid), &kit.claims()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(ec["y"].as_str().unwrap()).unwrap();
    let mut y_off = y.clone();
    y_off[31] ^= 0x01;
    let x = URL_SAFE_NO_PAD.decode(ec["x"].as_str().unwrap()).unwrap();
    let mut big_n = vec![0xffu8; 513];
    big_n[512] = 0xfd;
    let hs_kid = {
        let input = format!(
            "{}.{}",
            b64(r#"{"alg":"HS256","kid":"hmac"}"#),
            b64(kit.claims().to_string())
        );
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(mac.finalize().into_bytes()))
    };
    vec![
        BadKey {
            name: "jwks: RSA modulus under 2048 bits (1024)",
            json: kit.attacker.public_jwk("weak-1024", None).to_string(),
            kid: "weak-1024",
            reason: "rsa_key_rejected",
            probe: Some((
                kit.attacker
                    .sign("RS256", Some("weak-1024"), &kit.claims())
                    .unwrap(),
                "unknown_kid",
            )),
        },
        BadKey {
            name: "jwks: RSA modulus over 4096 bits",
            json: with(&rsa, "rsa-4104", json!({"n": b64(&big_n)})),
            kid: "rsa-4104",
            reason: "rsa_key_rejected",
            probe: None,
        },
        BadKey {
            name: "jwks: RSA exponent 1",
            json: with(&rsa, "e-one", json!({"e": "AQ"})),
            kid: "e-one",
            reason: "rsa_key_rejected",
            probe: Some((rs("e-one"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: RSA exponent even (65536)",
            json: with(&rsa, "e-even", json!({"e": "AQAA"})),
            kid: "e-even",
            reason: "rsa_key_rejected",
            probe: Some((rs("e-even"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: EC point off the curve",
            json: with(&ec, "ec-off", json!({"y": b64(&y_off)})),
            kid: "ec-off",
            reason: "invalid_point",
            probe: Some((es("ec-off"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: EC coordinate 31 bytes, its last byte dropped (another point)",
            json: with(&ec, "ec-31", json!({"x": b64(&x[..31])})),
            kid: "ec-31",
            reason: "invalid_point",
            probe: Some((es("ec-31"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: EC coordinate 33 bytes",
            json: with(&ec, "ec-33", json!({"x": b64([&[0u8][..], &x].concat())})),
            kid: "ec-33",
            reason: "bad_key_length",
            probe: Some((es("ec-33"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: kty oct (HMAC secret)",
            json: r#"{"kty":"oct","kid":"hmac","k":"c2VjcmV0","alg":"HS256"}"#.to_string(),
            kid: "hmac",
            reason: "symmetric_key",
            probe: Some((hs_kid, "unsupported_alg")),
        },
        BadKey {
            name: "jwks: use enc",
            json: with(&rsa, "enc", json!({"use": "enc"})),
            kid: "enc",
            reason: "use_not_sig",
            probe: Some((rs("enc"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: key_ops without verify",
            json: with(&rsa, "ops", json!({"key_ops": ["encrypt"]})),
            kid: "ops",
            reason: "key_ops_without_verify",
            probe: Some((rs("ops"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: private member d",
            json: with(&ec, "with-d", json!({"d": b64([1u8; 32])})),
            kid: "with-d",
            reason: "private_key_material",
            probe: Some((es("with-d"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: private members of an RSA key (p, q)",
            json: with(&rsa, "with-pq", json!({"p": "AQ", "q": "AQ"})),
            kid: "with-pq",
            reason: "private_key_material",
            probe: Some((rs("with-pq"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: alg none on a key",
            json: with(&rsa, "alg-none", json!({"alg": "none"})),
            kid: "alg-none",
            reason: "unsupported_alg",
            probe: Some((rs("alg-none"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: duplicate member inside a key",
            json: format!(
                "{},\"kty\":\"RSA\"}}",
                with(&rsa, "dup-member", json!({})).trim_end_matches('}')
            ),
            kid: "dup-member",
            reason: "duplicate_member",
            probe: Some((rs("dup-member"), "unknown_kid")),
        },
        BadKey {
            name: "jwks: duplicate kid (second key under a trusted kid)",
            json: kit.rsa_b.public_jwk("rsa-a", None).to_string(),
            kid: "rsa-a",
            reason: "duplicate_kid",
            probe: Some((
                kit.rsa_b
                    .sign("RS256", Some("rsa-a"), &kit.claims())
                    .unwrap(),
                "invalid_signature",
            )),
        },
    ]
}

fn body_of(entries: &[String]) -> String {
    format!("{{\"keys\":[{}]}}", entries.join(","))
}

#[test]
fn jwks_matrix() {
    let upstream = Server::upstream();
    let kit = Kit::new();
    let good: Vec<String> = kit.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect();
    let bad = bad_keys(&kit);
    let mut mixed = good.clone();
    mixed.extend(bad.iter().map(|b| b.json.clone()));
    let mixed_body = body_of(&mixed);
    let server = Server::start(move |_| Reply::new(200, mixed_body.clone()));
    let envoy = Envoy::start(&filter_with_clusters(
        &token_mode_config(remote_source("jwks", 1, 86_400)),
        &upstream,
        &[("jwks", &server)],
    ));
    let vm_created = envoy.vm_created();
    wait_for_keys(&envoy, 1);
    let valid = bearer(&kit.valid());
    let mut failures = Vec::new();

    // Bad keys are dropped (logged with their reason; a token naming them is refused), good ones kept.
    let log_has = |needle: &str| wait_until(DEADLINE, || envoy.log().contains(needle));
    let mut probes = Vec::new();
    for b in &bad {
        let needle = format!("(kid Some(\"{}\")) dropped: {}", b.kid, b.reason);
        if !log_has(&needle) {
            failures.push(format!("{}: no log line {needle:?}", b.name));
        }
        if let Some((token, reason)) = &b.probe {
            probes.push(Case::token(b.name, token, 401, reason));
        }
    }
    for (i, token) in kit.valid_all().iter().enumerate() {
        probes.push(Case::accepted(
            format!("jwks: good key {i} kept beside the bad ones"),
            token,
        ));
    }
    for row in &probes {
        failures.extend(check_row(
            envoy.main(),
            &upstream,
            row,
            &valid,
            "bad keys dropped",
        ));
    }

    // Wholly bad sets: the fetch fails with its reason and the last good set stays in place.
    let junk = r#"{"kty":"EC"}"#;
    // The duplicate-kid entry is usable on its own (it is only refused after a first `rsa-a`).
    let only_bad = body_of(
        &bad.iter()
            .filter(|b| b.reason != "duplicate_kid")
            .map(|b| b.json.clone())
            .collect::<Vec<_>>(),
    );
    let mut ten_thousand_junk = vec![junk.to_string(); 10_000];
    ten_thousand_junk[9_999] = good[2].clone();
    let ten_mb = format!(
        "{{\"keys\":[{}],\"pad\":\"{}\"}}",
        good.join(","),
        "x".repeat(10 * 1024 * 1024)
    );
    let bodies: Vec<(&str, String, &str)> = vec![
        ("jwks: not JSON", "{\"keys\": [".to_string(), "not_json"),
        (
            "jwks: HTML error page",
            "<html>502</html>".to_string(),
            "not_json",
        ),
        (
            "jwks: a JSON array, not an object",
            "[]".to_string(),
            "not_an_object",
        ),
        (
            "jwks: `keys` missing",
            "{\"other\":[]}".to_string(),
            "missing_keys",
        ),
        (
            "jwks: `keys` an object",
            "{\"keys\":{}}".to_string(),
            "keys_not_array",
        ),
        (
            "jwks: `keys` a string",
            "{\"keys\":\"rsa-a\"}".to_string(),
            "keys_not_array",
        ),
        (
            "jwks: `keys` twice",
            format!("{{\"keys\":[{}],\"keys\":[]}}", good[0]),
            "duplicate_keys",
        ),
        (
            "jwks: empty `keys`",
            "{\"keys\":[]}".to_string(),
            "no_usable_keys",
        ),
        ("jwks: only bad keys", only_bad, "no_usable_keys"),
        (
            "jwks: 10 000 keys, the only good one past the first 256",
            body_of(&ten_thousand_junk),
            "no_usable_keys",
        ),
        ("jwks: 10 MB body", ten_mb, "too_large"),
    ];
    for (name, body, reason) in bodies {
        let stat = format!("aml_auth.jwks.fetch_failure.{reason}");
        let before = envoy.stat(&stat);
        server.set_handler(move |_| Reply::new(200, body.clone()));
        if !envoy.wait_stat_at_least(&stat, before + 1) {
            failures.push(format!("{name}: {stat} never counted"));
        }
        let row = Case::accepted(format!("{name}: last good set kept"), &kit.valid());
        failures.extend(check_row(
            envoy.main(),
            &upstream,
            &row,
            &valid,
            "wholly bad set",
        ));
    }

    // 10 000 keys with good ones first: the first 256 are examined, the rest skipped and reported.
    let mut many = good.clone();
    many.extend(std::iter::repeat_n(junk.to_string(), 10_000 - good.len()));
    let many_body = body_of(&many);
    let success = envoy.stat("aml_auth.jwks.fetch_success");
    server.set_handler(move |_| Reply::new(200, many_body.clone()));
    if !envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", success + 1) {
        failures.push("jwks: 10 000 keys, good ones first: never accepted".to_string());
    }
    if !log_has("dropped: too_many_keys") {
        failures.push("jwks: 10 000 keys: the skipped entries were not reported".to_string());
    }
    for (i, token) in kit.valid_all().iter().enumerate() {
        let row = Case::accepted(
            format!("jwks: 10 000 keys, good key {i} first: accepted"),
            token,
        );
        failures.extend(check_row(
            envoy.main(),
            &upstream,
            &row,
            &valid,
            "10 000 keys",
        ));
    }
    assert!(
        failures.is_empty(),
        "{}\n--- envoy log tail ---\n{}",
        failures.join("\n"),
        envoy.log_tail(20)
    );
    envoy.assert_no_vm_restart(vm_created);
}

// ---------------------------------------------------------------------------------------------
// Fetch faults: one Envoy, one listener (and one VM) per fault, plus a key-mode listener.

fn token_listener(name: &str, remote: Value) -> Value {
    listener(
        name,
        vec![wasm_filter_with(
            &token_mode_config(remote),
            json!({"vm_id": format!("aml_auth_{name}")}),
        )],
        vec![route_to("upstream")],
    )
}

fn unavailable(addr: SocketAddr, upstream: &Server, kit: &Kit, fault: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let before = upstream.count();
    let resp = get_bearer(addr, "/score", &kit.valid());
    if resp.status != 503 || resp.json()["reason"] != "jwks_unavailable" {
        failures.push(format!(
            "{fault}: want 503 jwks_unavailable, got {}: {}",
            resp.status,
            resp.text()
        ));
    }
    if resp.header("retry-after") != Some("5") {
        failures.push(format!("{fault}: no Retry-After: 5 on the 503"));
    }
    let resp = get(addr, "/score", &[]);
    if resp.status != 401 {
        failures.push(format!(
            "{fault}: a request without credential got {}",
            resp.status
        ));
    }
    let resp = get_bearer(addr, "/score", "not.a.token");
    if resp.status != 503 {
        failures.push(format!("{fault}: an unjudgeable token got {}", resp.status));
    }
    if upstream.count() != before {
        failures.push(format!("{fault}: a request reached the upstream"));
    }
    failures
}

#[test]
fn fault_matrix() {
    let upstream = Server::upstream();
    let kit = Kit::new();
    let jwks_body = kit.jwks().to_string();
    let slow = Server::start(|_| Reply::new(200, "{}").delayed(Duration::from_secs(4)));
    let flaky = Server::start(|_| Reply::new(500, "internal error"));
    let mut remote_unknown = remote_source("no-such-cluster", 600, 86_400);
    remote_unknown["timeout_seconds"] = json!(1);
    let mut remote_slow = remote_source("slow", 1, 86_400);
    remote_slow["timeout_seconds"] = json!(1);
    let remote_flaky = remote_source("flaky", 1, 86_400);
    let envoy = Envoy::start(&bootstrap(
        vec![
            listener(
                "main",
                vec![wasm_filter(&json!({"primary_key": PRIMARY}))],
                vec![route_to("upstream")],
            ),
            token_listener("unknown", remote_unknown),
            token_listener("hang", remote_slow),
            token_listener("flaky", remote_flaky),
        ],
        vec![
            cluster("upstream", upstream.addr),
            cluster("slow", slow.addr),
            cluster("flaky", flaky.addr),
        ],
    ));
    let vm_created = envoy.vm_created();
    let mut failures = Vec::new();
    let healthy = |failures: &mut Vec<String>, fault: &str| {
        let resp = get_bearer(envoy.main(), "/score", PRIMARY);
        if resp.status != 200 {
            failures.push(format!(
                "{fault}: the key-mode listener then got {}",
                resp.status
            ));
        }
    };

    // The config names a cluster Envoy does not have: the fetch cannot start; tokens get 503.
    if !envoy.wait_stat_at_least("aml_auth.jwks.fetch_failure.unknown_cluster", 1) {
        failures.push("faults: JWKS cluster unknown: unknown_cluster never counted".into());
    }
    failures.extend(unavailable(
        envoy.listener("unknown"),
        &upstream,
        &kit,
        "faults: JWKS cluster unknown",
    ));
    healthy(&mut failures, "faults: JWKS cluster unknown");

    // The endpoint hangs past timeout_seconds: the fetch times out; tokens get 503; then it recovers.
    // Envoy ends the timed-out call with its own 504, so the failure is counted as timeout;
    // the log line names this listener's VM.
    if !wait_until(DEADLINE, || {
        envoy
            .log()
            .contains("aml_auth_hang: aml-auth-filter: JWKS fetch from source 0 failed: timeout")
    }) {
        failures.push("faults: JWKS endpoint hanging: the failed fetch was never logged".into());
    }
    if slow.count() == 0 {
        failures.push("faults: JWKS endpoint hanging: the endpoint was never called".into());
    }
    failures.extend(unavailable(
        envoy.listener("hang"),
        &upstream,
        &kit,
        "faults: JWKS endpoint hanging past the timeout",
    ));
    healthy(&mut failures, "faults: JWKS endpoint hanging");
    let body = jwks_body.clone();
    slow.set_handler(move |_| Reply::new(200, body.clone()));
    let token = kit.valid();
    if !wait_until(DEADLINE, || {
        get_bearer(envoy.listener("hang"), "/s", &token).status == 200
    }) {
        failures.push("faults: JWKS endpoint hanging: never recovered".into());
    }

    // The endpoint answers 500, then recovers.
    if !wait_until(DEADLINE, || {
        envoy.log().contains(
            "aml_auth_flaky: aml-auth-filter: JWKS fetch from source 0 failed: bad_status",
        )
    }) {
        failures.push("faults: JWKS answering 500: the failed fetch was never logged".into());
    }
    if envoy.stat("aml_auth.jwks.fetch_failure.bad_status") == 0 {
        failures.push("faults: JWKS answering 500: bad_status never counted".into());
    }
    failures.extend(unavailable(
        envoy.listener("flaky"),
        &upstream,
        &kit,
        "faults: JWKS answering 500",
    ));
    healthy(&mut failures, "faults: JWKS answering 500");
    let body = jwks_body.clone();
    flaky.set_handler(move |_| Reply::new(200, body.clone()));
    if !wait_until(DEADLINE, || {
        get_bearer(envoy.listener("flaky"), "/s", &token).status == 200
    }) {
        failures.push("faults: JWKS answering 500: never recovered".into());
    }
    // Still no keys for the unknown cluster: 503 again, never an allow.
    failures.extend(unavailable(
        envoy.listener("unknown"),
        &upstream,
        &kit,
        "faults: JWKS cluster unknown, later",
    ));
    assert!(
        failures.is_empty(),
        "{}\n--- envoy log tail ---\n{}",
        failures.join("\n"),
        envoy.log_tail(30)
    );
    envoy.assert_no_vm_restart(vm_created);
}

/// The proof table of `docs/security.md` lists every row of the matrix (so the table and the tests
/// cannot drift).
#[test]
fn security_doc_table_lists_every_row() {
    let kit = Kit::new();
    let doc = std::fs::read_to_string(repo_root().join("docs/security.md")).unwrap();
    let rows = [
        key_mode_rows(&kit),
        token_header_rows(&kit),
        structure_rows(&kit),
        header_rows(&kit, "http://attacker"),
        signature_rows(&kit),
        claim_rows(&kit),
    ];
    let missing: Vec<String> = rows
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .chain(bad_keys(&kit).iter().map(|b| b.name.to_string()))
        .filter(|name| !doc.contains(&format!("| {name} |")))
        .collect();
    assert!(
        missing.is_empty(),
        "rows missing from the docs/security.md proof table:\n{}",
        missing.join("\n")
    );
}
