//! Token auth end to end: JWTs verified in a real Envoy against a JWKS the filter fetches from a
//! server the test controls (rotation, outages, fallback, bad bodies, several workers).

mod common;

use std::time::{Duration, Instant};

use aml_auth_filter::signing::{jwks, SigningKey};
use common::*;
use serde_json::{json, Value};

fn rsa_a() -> SigningKey {
    signing_key("rsa-a.pem")
}

fn standard_jwks() -> Value {
    jwks(vec![
        rsa_a().public_jwk("rsa-a", None),
        signing_key("p256-a.pem").public_jwk("p256-a", Some("ES256")),
        signing_key("p384-a.pem").public_jwk("p384-a", Some("ES384")),
        signing_key("p521-a.pem").public_jwk("p521-a", Some("ES512")),
        signing_key("ed25519-a.pem").public_jwk("ed-a", Some("EdDSA")),
    ])
}

fn assert_status(resp: &Response, status: u16, reason: Option<&str>) {
    assert_eq!(resp.status, status, "{}", resp.text());
    if let Some(reason) = reason {
        assert_eq!(resp.json()["reason"], reason, "{}", resp.text());
    }
}

/// Waits until the filter holds a key set (first fetch done).
fn wait_for_keys(envoy: &Envoy) {
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no JWKS fetch succeeded:\n{}",
        envoy.log_tail(30)
    );
}

/// The filter in token mode in front of a recording upstream, fetching the standard JWKS from a
/// server the test controls with this refresh period and staleness limit; returns once the first
/// fetch succeeded.
fn started_with_keys(refresh: u64, max_stale: u64) -> (Server, Server, Envoy) {
    started_serving(&standard_jwks(), refresh, max_stale)
}

/// Like [`started_with_keys`], with the JWKS server answering `jwks` at first.
fn started_serving(jwks: &Value, refresh: u64, max_stale: u64) -> (Server, Server, Envoy) {
    let upstream = Server::upstream();
    let server = jwks_server(jwks);
    let envoy = Envoy::start(&filter_with_clusters(
        &token_config(remote_source("jwks", refresh, max_stale)),
        &upstream,
        &[("jwks", &server)],
    ));
    wait_for_keys(&envoy);
    (upstream, server, envoy)
}

#[test]
fn every_algorithm_is_accepted_through_the_fetched_jwks() {
    let (upstream, server, envoy) = started_with_keys(600, 86_400);
    let cases = [
        ("rsa-a.pem", "rsa-a", "RS256"),
        ("rsa-a.pem", "rsa-a", "RS384"),
        ("rsa-a.pem", "rsa-a", "RS512"),
        ("rsa-a.pem", "rsa-a", "PS256"),
        ("rsa-a.pem", "rsa-a", "PS384"),
        ("rsa-a.pem", "rsa-a", "PS512"),
        ("p256-a.pem", "p256-a", "ES256"),
        ("p384-a.pem", "p384-a", "ES384"),
        ("p521-a.pem", "p521-a", "ES512"),
        ("ed25519-a.pem", "ed-a", "EdDSA"),
    ];
    for (file, kid, alg) in cases {
        let token = signing_key(file)
            .sign(alg, Some(kid), &good_claims())
            .unwrap();
        let resp = get_bearer(envoy.main(), "/score", &token);
        assert_status(&resp, 200, None);
        let got = upstream.received();
        assert!(
            got.last().unwrap().header("authorization").is_none(),
            "{alg}: token forwarded"
        );
    }
    assert_eq!(upstream.count(), cases.len());
    assert_eq!(server.count(), 1, "one fetch, not one per request");
    assert_eq!(envoy.stat("aml_auth.token_accepted"), cases.len() as i64);
}

#[test]
fn every_check_is_refused_with_its_reason() {
    let upstream = Server::upstream();
    let server = jwks_server(&standard_jwks());
    let mut config = token_config(remote_source("jwks", 600, 86_400));
    config["token"]["max_lifetime_seconds"] = json!(3600);
    let envoy = Envoy::start(&filter_with_clusters(
        &config,
        &upstream,
        &[("jwks", &server)],
    ));
    wait_for_keys(&envoy);
    let key = rsa_a();
    let now = unix_now();
    let with = |patch: Value| {
        let mut claims = good_claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        key.sign("RS256", Some("rsa-a"), &claims).unwrap()
    };
    let good = with(json!({}));
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let mut flipped_sig = sig.to_string();
    let last = flipped_sig.pop().unwrap();
    flipped_sig.push(if last == 'A' { 'Q' } else { 'A' });
    let crit = key
        .sign_raw(
            "RS256",
            r#"{"alg":"RS256","kid":"rsa-a","crit":["exp"]}"#,
            &good_claims().to_string(),
        )
        .unwrap();
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{head}.{payload}"), 401, "malformed_token"),
        (format!("{head}.{payload}.{sig}.x"), 401, "malformed_token"),
        (
            format!("{head}=.{payload}.{sig}"),
            401,
            "malformed_credential",
        ),
        (crit, 401, "crit_not_supported"),
        (
            key.sign("RS256", Some("no-such-kid"), &good_claims())
                .unwrap(),
            401,
            "unknown_kid",
        ),
        (
            with(json!({"iss": "https://evil.example"})),
            401,
            "issuer_mismatch",
        ),
        (with(json!({"exp": null})), 401, "missing_exp"),
        (
            with(json!({"exp": now - 3600, "iat": now - 4000, "nbf": null})),
            401,
            "token_expired",
        ),
        (with(json!({"nbf": now + 3600})), 401, "token_not_yet_valid"),
        (with(json!({"iat": now + 3600})), 401, "iat_in_future"),
        (with(json!({"exp": now + 7200})), 401, "lifetime_too_long"),
        (
            with(json!({"aud": "https://other.example"})),
            403,
            "audience_not_allowed",
        ),
        (
            format!("{head}.{payload}.{flipped_sig}"),
            401,
            "invalid_signature",
        ),
        (
            signing_key("rsa-b.pem")
                .sign("RS256", Some("rsa-a"), &good_claims())
                .unwrap(),
            401,
            "invalid_signature",
        ),
    ];
    for (token, status, reason) in &cases {
        let resp = get_bearer(envoy.main(), "/score", token);
        assert_status(&resp, *status, Some(reason));
        let challenge = resp.header("www-authenticate").unwrap_or_default();
        let expected_error = if *status == 403 {
            "insufficient_scope"
        } else {
            "invalid_token"
        };
        assert!(
            challenge.contains(&format!("error=\"{expected_error}\"")),
            "{reason}: {challenge}"
        );
        assert_eq!(
            envoy.stat(&format!("aml_auth.denied.{reason}")) >= 1,
            true,
            "no stat for {reason}"
        );
    }
    assert_eq!(upstream.count(), 0, "a refused token reached the upstream");
    assert_status(
        &get(envoy.main(), "/score", &[]),
        401,
        Some("missing_credential"),
    );
    assert_status(&get_bearer(envoy.main(), "/score", &good), 200, None);
}

#[test]
fn claims_are_copied_to_headers_and_spoofed_copies_removed() {
    let upstream = Server::upstream();
    let server = jwks_server(&standard_jwks());
    let mut config = token_config(remote_source("jwks", 600, 86_400));
    config["token"]["claim_to_headers"] = json!([
        {"claim": "sub", "header": "x-aml-user"},
        {"claim": "roles", "header": "x-aml-roles"}
    ]);
    let envoy = Envoy::start(&filter_with_clusters(
        &config,
        &upstream,
        &[("jwks", &server)],
    ));
    wait_for_keys(&envoy);
    let mut claims = good_claims();
    claims["roles"] = json!(["scorer", "reader"]);
    let token = rsa_a().sign("RS256", Some("rsa-a"), &claims).unwrap();
    let resp = get(
        envoy.main(),
        "/score",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-aml-user", "admin"),
            ("x-aml-roles", "owner"),
        ],
    );
    assert_status(&resp, 200, None);
    let got = &upstream.received()[0];
    assert_eq!(got.header_values("x-aml-user"), vec!["user-1"]);
    assert_eq!(
        got.header_values("x-aml-roles"),
        vec![r#"["scorer","reader"]"#]
    );
    let without_roles = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    let resp = get(
        envoy.main(),
        "/score",
        &[
            ("authorization", &format!("Bearer {without_roles}")),
            ("x-aml-roles", "owner"),
        ],
    );
    assert_status(&resp, 200, None);
    assert!(
        upstream.received()[1].header("x-aml-roles").is_none(),
        "spoofed header kept"
    );
}

#[test]
fn rotation_new_kid_after_early_refetch_and_removed_kid_after_refresh() {
    let (_upstream, server, envoy) =
        started_serving(&jwks(vec![rsa_a().public_jwk("rsa-a", None)]), 3, 86_400);
    let token_a = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    let token_b = signing_key("rsa-b.pem")
        .sign("RS256", Some("rsa-b"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token_a), 200, None);
    assert_status(
        &get_bearer(envoy.main(), "/", &token_b),
        401,
        Some("unknown_kid"),
    );

    let rotated = jwks(vec![
        rsa_a().public_jwk("rsa-a", None),
        signing_key("rsa-b.pem").public_jwk("rsa-b", None),
    ])
    .to_string();
    server.set_handler(move |_| Reply::new(200, rotated.clone()));
    let accepted = wait_until(DEADLINE, || {
        get_bearer(envoy.main(), "/", &token_b).status == 200
    });
    assert!(accepted, "new kid never accepted:\n{}", envoy.log_tail(20));

    let only_b = jwks(vec![signing_key("rsa-b.pem").public_jwk("rsa-b", None)]).to_string();
    server.set_handler(move |_| Reply::new(200, only_b.clone()));
    let removed = wait_until(DEADLINE, || {
        get_bearer(envoy.main(), "/", &token_a).status == 401
    });
    assert!(removed, "removed kid still accepted");
    assert_status(
        &get_bearer(envoy.main(), "/", &token_a),
        401,
        Some("unknown_kid"),
    );
    assert_status(&get_bearer(envoy.main(), "/", &token_b), 200, None);
}

#[test]
fn an_early_refetch_happens_without_waiting_for_the_period() {
    let (_upstream, server, envoy) = started_serving(
        &jwks(vec![rsa_a().public_jwk("rsa-a", None)]),
        3_600,
        86_400,
    );
    let b = signing_key("rsa-b.pem");
    let rotated = jwks(vec![
        rsa_a().public_jwk("rsa-a", None),
        b.public_jwk("rsa-b", None),
    ])
    .to_string();
    server.set_handler(move |_| Reply::new(200, rotated.clone()));
    let token_b = b.sign("RS256", Some("rsa-b"), &good_claims()).unwrap();
    assert_status(
        &get_bearer(envoy.main(), "/", &token_b),
        401,
        Some("unknown_kid"),
    );
    assert!(
        wait_until(DEADLINE, || server.count() >= 2),
        "no early refetch"
    );
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &token_b
    )
    .status
        == 200));
    for _ in 0..20 {
        let unknown = b
            .sign("RS256", Some("still-unknown"), &good_claims())
            .unwrap();
        assert_status(
            &get_bearer(envoy.main(), "/", &unknown),
            401,
            Some("unknown_kid"),
        );
    }
    assert_status(&get_bearer(envoy.main(), "/", &token_b), 200, None);
    assert_eq!(
        server.count(),
        2,
        "unknown kids must not cause a fetch storm (30 s limit)"
    );
}

#[test]
fn outage_after_a_first_fetch_keeps_keys_until_max_stale() {
    let (_upstream, server, envoy) = started_with_keys(1, 4);
    server.set_handler(|_| Reply::new(503, "region down"));
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_failure", 1));
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    let closed = wait_until(DEADLINE, || {
        get_bearer(envoy.main(), "/", &token).status == 503
    });
    assert!(closed, "a stale key set was still used");
    let resp = get_bearer(envoy.main(), "/", &token);
    assert_status(&resp, 503, Some("jwks_stale"));
    assert!(resp.header("retry-after").is_some());
    let std = standard_jwks().to_string();
    server.set_handler(move |_| Reply::new(200, std.clone()));
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &token
    )
    .status
        == 200));
}

#[test]
fn outage_from_the_start_is_503_then_200_when_the_region_comes_up() {
    let upstream = Server::upstream();
    let server = Server::start(|_| Reply::new(500, "not yet"));
    let envoy = Envoy::start(&filter_with_clusters(
        &token_config(remote_source("jwks", 600, 86_400)),
        &upstream,
        &[("jwks", &server)],
    ));
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_failure", 1));
    let resp = get_bearer(envoy.main(), "/", &token);
    assert_status(&resp, 503, Some("jwks_unavailable"));
    assert_eq!(resp.header("retry-after"), Some("5"));
    assert_status(
        &get(envoy.main(), "/", &[]),
        401,
        Some("missing_credential"),
    );
    let std = standard_jwks().to_string();
    server.set_handler(move |_| Reply::new(200, std.clone()));
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &token
    )
    .status
        == 200));
    assert_eq!(upstream.count(), 1);
}

#[test]
fn falls_back_to_the_paired_region() {
    let upstream = Server::upstream();
    let primary = Server::start(|_| Reply::new(502, "region down"));
    let paired = jwks_server(&standard_jwks());
    let envoy = Envoy::start(&filter_with_clusters(
        &token_config(json!([
            remote_source("region", 600, 86_400),
            remote_source("paired", 600, 86_400)
        ])),
        &upstream,
        &[("region", &primary), ("paired", &paired)],
    ));
    wait_for_keys(&envoy);
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    assert!(primary.count() >= 1 && paired.count() >= 1);
    assert!(
        primary.received()[0].at <= paired.received()[0].at,
        "sources tried in order"
    );
    assert_eq!(envoy.stat("aml_auth.jwks.source.0.fetch_failure"), 1);
    assert_eq!(envoy.stat("aml_auth.jwks.source.1.fetch_success"), 1);
    assert_eq!(paired.received()[0].path, "/discovery/v2.0/keys");
    assert_eq!(paired.received()[0].header("host"), Some("paired.test"));
}

#[test]
fn garbage_and_oversized_bodies_keep_the_last_good_set() {
    let (_upstream, server, envoy) = started_with_keys(1, 86_400);
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    let bodies: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{not json".to_vec(),
            "aml_auth.jwks.fetch_failure.not_json",
        ),
        (
            br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.to_vec(),
            "aml_auth.jwks.fetch_failure.no_usable_keys",
        ),
        (
            vec![b' '; 1024 * 1024],
            "aml_auth.jwks.fetch_failure.too_large",
        ),
    ];
    for (body, stat) in bodies {
        server.set_handler(move |_| Reply::new(200, body.clone()));
        assert!(
            envoy.wait_stat_at_least(stat, 1),
            "{stat} never counted:\n{}",
            envoy.log_tail(20)
        );
        assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    }
}

#[test]
fn several_workers_fetch_once_per_period() {
    let upstream = Server::upstream();
    let server = jwks_server(&standard_jwks());
    let envoy = Envoy::start_with(
        &filter_with_clusters(
            &token_config(remote_source("jwks", 2, 86_400)),
            &upstream,
            &[("jwks", &server)],
        ),
        &EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
    );
    let start = Instant::now();
    assert!(wait_until(Duration::from_secs(30), || server.count() >= 5));
    let elapsed = start.elapsed();
    let fetches = server.received();
    for pair in fetches.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(1_500),
            "two fetches {gap:?} apart: workers did not coordinate"
        );
    }
    assert!(
        fetches.len() as f64 <= elapsed.as_secs_f64() / 1.8 + 2.0,
        "{} fetches",
        fetches.len()
    );
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    for _ in 0..10 {
        assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    }
}

#[test]
fn local_jwks_needs_no_fetch() {
    let upstream = Server::upstream();
    let config = json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "token": {"issuer": ISSUER, "local_jwks": jwks(vec![signing_key("p256-a.pem").public_jwk("p", None)])}
    });
    let envoy = Envoy::start(&filter_in_front_of(&config, &upstream));
    let token = signing_key("p256-a.pem")
        .sign("ES256", Some("p"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
}

#[test]
fn token_configuration_errors_name_the_field() {
    let upstream = Server::upstream();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"auth_enabled": false, "token_auth_enabled": true}),
            "field `token_auth_enabled`: token authentication needs the top-level `token` settings",
        ),
        (
            json!({"auth_enabled": false, "token_auth_enabled": true, "token": {"issuer": ISSUER}}),
            "field `token.remote_jwks`: token settings need a key source",
        ),
        (
            json!({"auth_enabled": false, "token_auth_enabled": true,
                   "token": {"issuer": ISSUER, "local_jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}}}),
            "field `token.local_jwks`: is not a usable JWKS",
        ),
        (
            json!({"auth_enabled": false, "token_auth_enabled": true,
                   "token": {"issuer": ISSUER, "remote_jwks": {"cluster": "c", "uri": "ftp://x/keys"}}}),
            "field `token.remote_jwks.uri`",
        ),
        (
            json!({"auth_enabled": false, "token_auth_enabled": true,
                   "token": {"remote_jwks": {"cluster": "c", "uri": "https://x/keys"}}}),
            "field `token.issuer`: is required",
        ),
        (
            token_config(json!([
                remote_source("a", 600, 86_400),
                remote_source("b", 20, 5)
            ])),
            "field `token.remote_jwks[1].max_stale_seconds`: is 5 s, below \
             `refresh_interval_seconds` (20 s)",
        ),
    ];
    // A claim header whose spelling the filter strips as a framing header (`_` and `.` read as
    // `-`) would remove that header from every request; two spellings of one header, set by
    // two claims, land in one server variable.
    let mut cases = cases;
    for (headers, field) in [
        (
            json!(["content_length"]),
            "token.claim_to_headers[0].header",
        ),
        (
            json!(["Transfer.Encoding"]),
            "token.claim_to_headers[0].header",
        ),
        (
            json!(["x-caller", "x_caller"]),
            "token.claim_to_headers[1].header",
        ),
    ] {
        let mut config = token_config(json!([remote_source("a", 600, 86_400)]));
        config["token"]["claim_to_headers"] = json!(headers
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, h)| json!({"claim": format!("c{i}"), "header": h}))
            .collect::<Vec<_>>());
        cases.push((config, field));
    }
    assert_configs_refused(&upstream, &cases);
}

/// Token config with both a local key (Ed25519, kid `local-ed`) and the remote source.
fn local_and_remote(remote: Value) -> Value {
    let mut config = token_config(remote);
    config["token"]["local_jwks"] = jwks(vec![
        signing_key("ed25519-a.pem").public_jwk("local-ed", Some("EdDSA"))
    ]);
    config
}

fn local_token() -> String {
    signing_key("ed25519-a.pem")
        .sign("EdDSA", Some("local-ed"), &good_claims())
        .unwrap()
}

#[test]
fn a_large_remote_set_never_hides_local_keys_and_never_launders_a_duplicate_member() {
    let upstream = Server::upstream();
    let p256 = signing_key("p256-a.pem").public_jwk("dup", Some("ES256"));
    let mut keys = vec![rsa_a().public_jwk("rsa-a", None).to_string()];
    keys.extend(
        (0..299).map(|i| json!({"kty": "oct", "kid": format!("oct-{i}"), "k": "AAAA"}).to_string()),
    );
    keys.push(format!(
        r#"{{"kty":"EC","crv":"P-256","x":{},"y":{},"kid":"dup","use":"enc","use":"sig"}}"#,
        p256["x"], p256["y"]
    ));
    let body = format!(r#"{{"keys":[{}]}}"#, keys.join(","));
    let server = Server::start(move |_| Reply::new(200, body.clone()));
    let dup_token = signing_key("p256-a.pem")
        .sign("ES256", Some("dup"), &good_claims())
        .unwrap();
    let remote_token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    for with_local in [true, false] {
        let config = if with_local {
            local_and_remote(remote_source("jwks", 600, 86_400))
        } else {
            token_config(remote_source("jwks", 600, 86_400))
        };
        let envoy = Envoy::start(&filter_with_clusters(
            &config,
            &upstream,
            &[("jwks", &server)],
        ));
        wait_for_keys(&envoy);
        assert_status(&get_bearer(envoy.main(), "/", &remote_token), 200, None);
        if with_local {
            assert_status(&get_bearer(envoy.main(), "/", &local_token()), 200, None);
        }
        assert_status(
            &get_bearer(envoy.main(), "/", &dup_token),
            401,
            Some("unknown_kid"),
        );
    }
}

#[test]
fn local_keys_judge_their_tokens_and_others_get_503_until_the_remote_set_arrives() {
    let upstream = Server::upstream();
    let server = Server::start(|_| Reply::new(500, "not yet"));
    let envoy = Envoy::start(&filter_with_clusters(
        &local_and_remote(remote_source("jwks", 1, 86_400)),
        &upstream,
        &[("jwks", &server)],
    ));
    let remote_token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_failure", 1));
    assert_status(&get_bearer(envoy.main(), "/", &local_token()), 200, None);
    let resp = get_bearer(envoy.main(), "/", &remote_token);
    assert_status(&resp, 503, Some("jwks_unavailable"));
    assert_eq!(resp.header("retry-after"), Some("5"));
    let std = standard_jwks().to_string();
    server.set_handler(move |_| Reply::new(200, std.clone()));
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &remote_token
    )
    .status
        == 200));
    assert_status(&get_bearer(envoy.main(), "/", &local_token()), 200, None);
    let unknown = rsa_a()
        .sign("RS256", Some("no-such-kid"), &good_claims())
        .unwrap();
    assert_status(
        &get_bearer(envoy.main(), "/", &unknown),
        401,
        Some("unknown_kid"),
    );
}

#[test]
fn local_keys_judge_their_tokens_and_others_get_503_once_the_remote_set_is_stale() {
    let upstream = Server::upstream();
    let server = jwks_server(&standard_jwks());
    let envoy = Envoy::start(&filter_with_clusters(
        &local_and_remote(remote_source("jwks", 1, 3)),
        &upstream,
        &[("jwks", &server)],
    ));
    wait_for_keys(&envoy);
    let remote_token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &remote_token), 200, None);
    server.set_handler(|_| Reply::new(503, "region down"));
    assert!(
        wait_until(DEADLINE, || get_bearer(envoy.main(), "/", &remote_token)
            .status
            == 503),
        "a stale remote set was still used"
    );
    let resp = get_bearer(envoy.main(), "/", &remote_token);
    assert_status(&resp, 503, Some("jwks_stale"));
    assert!(resp.header("retry-after").is_some());
    let unknown = rsa_a()
        .sign("RS256", Some("no-such-kid"), &good_claims())
        .unwrap();
    assert_status(
        &get_bearer(envoy.main(), "/", &unknown),
        503,
        Some("jwks_stale"),
    );
    assert_status(&get_bearer(envoy.main(), "/", &local_token()), 200, None);
}

/// Replaces the watched ECDS file atomically (Envoy reloads on the move).
fn reload_ecds(ecds: &std::path::Path, plugin_config: &Value, version: u32) {
    let mut resource: Value = serde_json::from_slice(&std::fs::read(ecds).unwrap()).unwrap();
    resource["version_info"] = json!(version.to_string());
    resource["resources"][0]["typed_config"]["config"]["configuration"]["value"] =
        json!(plugin_config.to_string());
    let tmp = ecds.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&resource).unwrap()).unwrap();
    std::fs::rename(&tmp, ecds).unwrap();
}

#[test]
fn a_source_change_never_reuses_old_keys_and_answers_503_with_local_keys_too() {
    let upstream = Server::upstream();
    let old = jwks_server(&standard_jwks());
    let new = Server::start(|_| Reply::new(500, "not yet"));
    let dir = scratch_dir("source-change");
    let first = local_and_remote(remote_source("old", 600, 86_400));
    let (filter, ecds) = ecds_filter(&dir, &first.to_string());
    let envoy = Envoy::start(&bootstrap(
        vec![listener("main", vec![filter], vec![route_to("upstream")])],
        vec![
            cluster("upstream", upstream.addr),
            cluster("old", old.addr),
            cluster("new", new.addr),
        ],
    ));
    let remote_token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &remote_token
    )
    .status
        == 200));
    reload_ecds(
        &ecds,
        &local_and_remote(remote_source("new", 600, 86_400)),
        2,
    );
    assert!(
        wait_until(DEADLINE, || new.count() >= 1),
        "the new source was never fetched:\n{}",
        envoy.log_tail(20)
    );
    let resp = get_bearer(envoy.main(), "/", &remote_token);
    assert_status(&resp, 503, Some("jwks_unavailable"));
    assert!(resp.header("retry-after").is_some());
    assert_status(&get_bearer(envoy.main(), "/", &local_token()), 200, None);
}

#[test]
fn superseded_sources_lose_their_shared_entries() {
    let upstream = Server::upstream();
    let a = jwks_server(&standard_jwks());
    let b = jwks_server(&standard_jwks());
    let dir = scratch_dir("superseded");
    let config_a = token_config(remote_source("a", 600, 86_400));
    let (filter, ecds) = ecds_filter(&dir, &config_a.to_string());
    let envoy = Envoy::start_with(
        &bootstrap(
            vec![listener("main", vec![filter], vec![route_to("upstream")])],
            vec![
                cluster("upstream", upstream.addr),
                cluster("a", a.addr),
                cluster("b", b.addr),
            ],
        ),
        &EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
    );
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &token
    )
    .status
        == 200));
    assert_eq!(a.count(), 1);
    reload_ecds(&ecds, &token_config(remote_source("b", 600, 86_400)), 2);
    assert!(wait_until(DEADLINE, || b.count() >= 1));
    assert!(
        wait_until(Duration::from_secs(60), || envoy
            .stat("aml_auth.jwks.superseded_dropped")
            >= 1),
        "the entries of source a were never dropped:\n{}",
        envoy.log_tail(20)
    );
    assert_eq!(envoy.stat("aml_auth.jwks.sources_tracked"), 1);
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    reload_ecds(&ecds, &config_a, 3);
    assert!(
        wait_until(DEADLINE, || a.count() >= 2),
        "back on source a, its dropped key set was not fetched again"
    );
    assert!(wait_until(DEADLINE, || get_bearer(
        envoy.main(),
        "/",
        &token
    )
    .status
        == 200));
}

/// With the wall clock reading 0 (a preloaded shim), token requests get 503
/// `clock_unavailable`, even for a cached good token and for a token that expired a year ago
/// (before, the filter judged at time 0 and let both through); the key-mode service still
/// answers, no key set is fetched, and everything works again once the clock reads.
#[test]
fn an_unreadable_clock_refuses_token_requests_with_503_and_fetches_nothing() {
    let dir = scratch_dir("zero-clock");
    let flag = dir.join("clock-is-zero");
    let Some(shim) = zero_clock_shim(&dir, &flag) else {
        eprintln!("SKIPPED: gcc is missing, so the clock shim cannot be built");
        return;
    };
    let upstream = Server::upstream();
    let server = jwks_server(&standard_jwks());
    let mut config = token_config(remote_source("jwks", 2, 60));
    config["services"] = json!([
        {"name": "keyed", "path_prefix": "/keyed/", "auth_enabled": true,
         "token_auth_enabled": false, "primary_key": "pk-1", "secondary_key": "sk-2"}
    ]);
    let envoy = Envoy::start_with(
        &filter_with_clusters(&config, &upstream, &[("jwks", &server)]),
        &EnvoyOptions {
            env: vec![("LD_PRELOAD".into(), shim.display().to_string())],
            ..EnvoyOptions::default()
        },
    );
    wait_for_keys(&envoy);
    let good = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    let expired_a_year_ago = rsa_a()
        .sign(
            "RS256",
            Some("rsa-a"),
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1",
                    "exp": unix_now() - 365 * 86_400}),
        )
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &good), 200, None);
    assert_status(&get_bearer(envoy.main(), "/", &good), 200, None);
    assert_eq!(envoy.stat("aml_auth.token_cache.hit"), 1);
    assert_status(
        &get_bearer(envoy.main(), "/", &expired_a_year_ago),
        401,
        Some("token_expired"),
    );

    std::fs::write(&flag, b"").unwrap();
    assert_status(
        &get_bearer(envoy.main(), "/", &expired_a_year_ago),
        503,
        Some("clock_unavailable"),
    );
    let resp = get_bearer(envoy.main(), "/", &good);
    assert_status(&resp, 503, Some("clock_unavailable"));
    assert_eq!(resp.header("retry-after"), Some("5"));
    assert_status(&get_bearer(envoy.main(), "/keyed/", "pk-1"), 200, None);
    assert_status(
        &get_bearer(envoy.main(), "/", "not-a-token"),
        503,
        Some("clock_unavailable"),
    );
    let fetches = server.count();
    // Each root context (main thread and worker) ticks every 0.5 s: 16 ticks without a clock
    // span at least the 2-s refresh period twice.
    assert!(
        envoy.wait_stat_at_least("aml_auth.clock_unavailable", 16),
        "the tick never noticed the clock:\n{}",
        envoy.log_tail(30)
    );
    assert_eq!(
        server.count(),
        fetches,
        "a key set was fetched without a clock"
    );
    assert!(wait_until(Duration::from_secs(5), || envoy
        .log()
        .contains("the host clock cannot be read")));
    assert_eq!(envoy.stat("aml_auth.denied.clock_unavailable"), 3);

    std::fs::remove_file(&flag).unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &good), 200, None);
    assert_status(
        &get_bearer(envoy.main(), "/", &expired_a_year_ago),
        401,
        Some("token_expired"),
    );
    assert!(wait_until(Duration::from_secs(20), || server.count() > fetches));
    assert!(wait_until(Duration::from_secs(5), || envoy
        .log()
        .contains("the host clock reads again")));
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for seconds since the epoch.
fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[test]
fn retry_after_in_seconds_or_as_a_date_defers_the_next_call_of_its_source() {
    assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    let (_upstream, server, envoy) = started_with_keys(60, 86_400);
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let good = standard_jwks().to_string();
    {
        let answered = answered.clone();
        server.set_handler(move |_| {
            match answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::new(429, "slow down").header("retry-after", "6"),
                1 => Reply::new(503, "busy").header("retry-after", &http_date(unix_now() + 7)),
                _ => Reply::new(200, good.clone()),
            }
        });
    }
    server.clear();
    let unknown = rsa_a()
        .sign("RS256", Some("not-yet-published"), &good_claims())
        .unwrap();
    assert_status(
        &get_bearer(envoy.main(), "/", &unknown),
        401,
        Some("unknown_kid"),
    );
    assert!(
        wait_until(Duration::from_secs(40), || server.count() >= 3),
        "{} calls:\n{}",
        server.count(),
        envoy.log_tail(20)
    );
    let calls = server.received();
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] >= Duration::from_millis(5_500),
        "called again {:?} after `429 Retry-After: 6`",
        gaps[0]
    );
    assert!(
        gaps[1] >= Duration::from_millis(5_000),
        "called again {:?} after a 503 whose Retry-After date was 7 s ahead",
        gaps[1]
    );
    assert_eq!(envoy.stat("aml_auth.jwks.fetch_failure.throttled"), 2);
    assert_eq!(
        envoy
            .log()
            .matches("its Retry-After: no call to it for")
            .count(),
        2,
        "one log line per throttled answer"
    );
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
}

/// A JWKS server answering `body` with an `ETag`, and 304 to a request carrying it.
fn etag_server(body: String) -> Server {
    Server::start(move |r| {
        if r.header("if-none-match") == Some("\"v1\"") {
            Reply::new(304, "").header("etag", "\"v1\"")
        } else {
            Reply::new(200, body.clone())
                .header("content-type", "application/json")
                .header("etag", "\"v1\"")
        }
    })
}

#[test]
fn a_refresh_that_finds_the_same_set_keeps_it_parsed_and_keeps_the_token_cache() {
    let upstream = Server::upstream();
    let body = standard_jwks().to_string();
    let server = etag_server(body.clone());
    let envoy = Envoy::start(&filter_with_clusters(
        &token_config(remote_source("jwks", 1, 86_400)),
        &upstream,
        &[("jwks", &server)],
    ));
    wait_for_keys(&envoy);
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_not_modified", 3),
        "no 304 counted:\n{}",
        envoy.log_tail(20)
    );
    assert_eq!(
        server.received()[1].header("if-none-match"),
        Some("\"v1\""),
        "the refresh is conditional"
    );
    let hits = envoy.stat("aml_auth.token_cache.hit");
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    assert_eq!(
        envoy.stat("aml_auth.token_cache.hit"),
        hits + 1,
        "a 304 cleared the verified-token cache"
    );
    server.set_handler(move |_| Reply::new(200, body.clone()));
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_unchanged", 2),
        "a 200 with the same bytes was not recognised:\n{}",
        envoy.log_tail(20)
    );
    let hits = envoy.stat("aml_auth.token_cache.hit");
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    assert_eq!(envoy.stat("aml_auth.token_cache.hit"), hits + 1);
    assert_eq!(
        envoy.stat("aml_auth.jwks.version"),
        1,
        "the same set was parsed again as a new version"
    );
}

#[test]
fn an_unknown_kid_refetch_that_finds_the_same_set_keeps_the_token_cache() {
    let (_upstream, server, envoy) = started_with_keys(3_600, 86_400);
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    let hits = envoy.stat("aml_auth.token_cache.hit");
    assert!(hits >= 1, "the cache never hit");
    let unknown = rsa_a()
        .sign("RS256", Some("never-published"), &good_claims())
        .unwrap();
    assert_status(
        &get_bearer(envoy.main(), "/", &unknown),
        401,
        Some("unknown_kid"),
    );
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 2),
        "no early refetch"
    );
    assert_eq!(server.count(), 2);
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
    assert_eq!(
        envoy.stat("aml_auth.token_cache.hit"),
        hits + 1,
        "the early refetch of the same set cleared the verified-token cache"
    );
    assert_eq!(envoy.stat("aml_auth.jwks.fetch_unchanged"), 1);
}

#[test]
fn a_reload_that_shortens_the_refresh_period_applies_it_at_once() {
    let upstream = Server::upstream();
    let server = jwks_server(&standard_jwks());
    let dir = scratch_dir("reload-schedule");
    let (filter, ecds) = ecds_filter(
        &dir,
        &token_config(remote_source("jwks", 3_600, 86_400)).to_string(),
    );
    let envoy = Envoy::start(&bootstrap(
        vec![listener("main", vec![filter], vec![route_to("upstream")])],
        vec![
            cluster("upstream", upstream.addr),
            cluster("jwks", server.addr),
        ],
    ));
    wait_for_keys(&envoy);
    assert_eq!(server.count(), 1);
    reload_ecds(&ecds, &token_config(remote_source("jwks", 2, 4)), 2);
    assert!(
        wait_until(DEADLINE, || server.count() >= 3),
        "the old hourly schedule was kept after the reload ({} fetches):\n{}",
        server.count(),
        envoy.log_tail(20)
    );
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
}

#[test]
fn a_set_refused_for_its_content_backs_off_and_unknown_kids_wait_for_it() {
    let (_upstream, server, envoy) = started_with_keys(10, 86_400);
    server.set_handler(|_| Reply::new(200, "{not json"));
    assert!(
        wait_until(Duration::from_secs(30), || envoy
            .stat("aml_auth.jwks.fetch_failure.not_json")
            >= 1),
        "{}",
        envoy.log_tail(20)
    );
    let refused_at = server.received().last().unwrap().at;
    let unknown = rsa_a()
        .sign("RS256", Some("not-yet-published"), &good_claims())
        .unwrap();
    for _ in 0..5 {
        assert_status(
            &get_bearer(envoy.main(), "/", &unknown),
            401,
            Some("unknown_kid"),
        );
    }
    let calls = server.count();
    assert!(
        wait_until(Duration::from_secs(30), || server.count() > calls),
        "never retried"
    );
    let gap = server.received()[calls].at - refused_at;
    assert!(
        gap >= Duration::from_millis(9_500),
        "called again {gap:?} after a refused set (refresh 10 s): unknown kids or a network-sized \
         backoff broke through"
    );
    let token = rsa_a()
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_status(&get_bearer(envoy.main(), "/", &token), 200, None);
}

#[test]
fn unknown_kid_refetches_slow_down_while_they_find_the_same_set() {
    let (_upstream, server, envoy) = started_with_keys(3_600, 86_400);
    let unknown = rsa_a()
        .sign("RS256", Some("never-published"), &good_claims())
        .unwrap();
    let flooded = wait_until(Duration::from_secs(90), || {
        assert_status(
            &get_bearer(envoy.main(), "/", &unknown),
            401,
            Some("unknown_kid"),
        );
        std::thread::sleep(Duration::from_millis(200));
        server.count() >= 3
    });
    assert!(
        flooded,
        "{} fetches:\n{}",
        server.count(),
        envoy.log_tail(20)
    );
    let calls = server.received();
    let second_gap = calls[2].at - calls[1].at;
    assert!(
        second_gap >= Duration::from_millis(59_500),
        "the second early refetch came {second_gap:?} after the first, which found the same set \
         (the interval doubles to 60 s)"
    );
    assert_eq!(envoy.stat("aml_auth.jwks.fetch_unchanged"), 2);
    assert_eq!(envoy.stat("aml_auth.jwks.version"), 1);
}
