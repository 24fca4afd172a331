//! One gateway, many services: longest-prefix routing across modes, inheritance of top-level
//! defaults, the default policy for unmatched paths, 500 services, and the 10,000-services limit,
//! against a real Envoy.

mod common;

use aml_auth_filter::signing::jwks;
use common::*;
use serde_json::{json, Value};

const TOP_PRIMARY: &str = "top-primary-key-0123456789";
const TOP_SECONDARY: &str = "top-secondary-key-0123456789";
const SPECIAL_KEY: &str = "special-service-key-0123456789";

fn gateway_config() -> Value {
    json!({
        "primary_key": TOP_PRIMARY,
        "secondary_key": TOP_SECONDARY,
        "token": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "remote_jwks": remote_source("jwks", 600, 86_400)
        },
        "services": [
            {"name": "alpha", "path_prefix": "/api/v1/service/alpha/"},
            {"name": "alpha-special", "path_prefix": "/api/v1/service/alpha/special/",
             "primary_key": SPECIAL_KEY, "secondary_key": null_key()},
            {"name": "beta", "path_prefix": "/api/v1/service/beta/",
             "auth_enabled": false, "token_auth_enabled": true,
             "claim_to_headers": [{"claim": "sub", "header": "x-caller"}]},
            {"name": "beta-strict", "path_prefix": "/api/v1/service/beta/strict/",
             "auth_enabled": false, "token_auth_enabled": true,
             "token": {"audiences": ["https://strict.example"]}},
            {"name": "open", "path_prefix": "/public/", "auth_enabled": false},
            {"name": "internal", "path_prefix": "/api/v1/service/alpha/",
             "hosts": ["internal.example.com"], "auth_enabled": false},
            {"name": "forwarding", "path_prefix": "/fwd/", "forward_authorization": true}
        ]
    })
}

/// A second key for alpha-special, so that the top-level secondary is not inherited.
fn null_key() -> &'static str {
    "special-secondary-key-0123456789"
}

fn start(config: &Value, upstream: &Server, server: &Server) -> Envoy {
    Envoy::start(&filter_with_clusters(config, upstream, &[("jwks", server)]))
}

fn get_host(envoy: &Envoy, host: &str, path: &str, credential: Option<&str>) -> Response {
    let auth = credential.map(|c| format!("Bearer {c}"));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    let raw = raw_request("GET", path, &headers, b"");
    let text =
        String::from_utf8(raw)
            .unwrap()
            .replacen("host: test.local", &format!("host: {host}"), 1);
    send_raw(envoy.main(), text.as_bytes())
}

#[test]
fn routing_inheritance_and_default_policy() {
    let upstream = Server::upstream();
    let server = jwks_server(&jwks(vec![
        signing_key("rsa-a.pem").public_jwk("rsa-a", None)
    ]));
    let envoy = start(&gateway_config(), &upstream, &server);
    let token = signing_key("rsa-a.pem")
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert!(wait_until(DEADLINE, || {
        get_bearer(envoy.main(), "/api/v1/service/beta/score", &token).status == 200
    }));
    upstream.clear();

    let h = "gateway.example.com";
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        // alpha: key mode, inherits the top-level keys
        (
            h,
            "/api/v1/service/alpha/score",
            Some(TOP_PRIMARY),
            200,
            "alpha inherits primary",
        ),
        (
            h,
            "/api/v1/service/alpha/score",
            Some(TOP_SECONDARY),
            200,
            "alpha inherits secondary",
        ),
        (
            h,
            "/api/v1/service/alpha/score",
            Some(&token),
            401,
            "alpha refuses tokens",
        ),
        (
            h,
            "/api/v1/service/alpha/score",
            None,
            401,
            "alpha needs a credential",
        ),
        // alpha-special: longer prefix, own keys
        (
            h,
            "/api/v1/service/alpha/special/score",
            Some(SPECIAL_KEY),
            200,
            "longest prefix wins",
        ),
        (
            h,
            "/api/v1/service/alpha/special/score",
            Some(TOP_PRIMARY),
            401,
            "own keys replace inherited ones",
        ),
        // beta: token mode
        (
            h,
            "/api/v1/service/beta/score",
            Some(&token),
            200,
            "beta accepts tokens",
        ),
        (
            h,
            "/api/v1/service/beta/score",
            Some(TOP_PRIMARY),
            401,
            "beta refuses keys",
        ),
        // beta-strict: service audiences override the workspace's
        (
            h,
            "/api/v1/service/beta/strict/score",
            Some(&token),
            403,
            "per-service audiences",
        ),
        // open: no auth
        (h, "/public/health", None, 200, "open passes through"),
        // internal: host-restricted service on alpha's prefix
        (
            "internal.example.com",
            "/api/v1/service/alpha/score",
            None,
            200,
            "host-restricted service",
        ),
        (
            "INTERNAL.example.com:8080",
            "/api/v1/service/alpha/score",
            None,
            200,
            "host match ignores case and port",
        ),
        // default policy: top-level key mode for paths no service claims
        (
            h,
            "/unclaimed/path",
            None,
            401,
            "default policy for unknown paths",
        ),
        (
            h,
            "/unclaimed/path",
            Some(TOP_SECONDARY),
            200,
            "default policy accepts top-level keys",
        ),
        (
            h,
            "/api/v1/service/alph",
            Some(SPECIAL_KEY),
            401,
            "a shorter path matches no service",
        ),
    ];
    for (host, path, credential, status, why) in &cases {
        let resp = get_host(&envoy, host, path, *credential);
        assert_eq!(
            resp.status,
            *status,
            "{why}: {host} {path}: {}",
            resp.text()
        );
    }
    let allowed = cases.iter().filter(|c| c.3 == 200).count();
    assert_eq!(
        upstream.count(),
        allowed,
        "only allowed requests reach the upstream"
    );
    let beta = upstream
        .received()
        .into_iter()
        .find(|r| r.path.starts_with("/api/v1/service/beta/"))
        .unwrap();
    assert_eq!(beta.header("x-caller"), Some("user-1"));
    assert_eq!(envoy.stat("aml_auth.service.alpha.requests_allowed"), 2);
    assert_eq!(
        envoy.stat("aml_auth.service.alpha.denied.malformed_token"),
        0
    );
    assert_eq!(
        envoy.stat("aml_auth.service.beta-strict.denied.audience_not_allowed"),
        1
    );
    assert_eq!(
        envoy.stat("aml_auth.service.default.denied.missing_credential"),
        1
    );
    assert_eq!(
        envoy.stat("aml_auth.service.open.requests_passed_through"),
        1
    );
    assert_eq!(server.count(), 1, "one JWKS fetch for the whole gateway");
}

#[test]
fn inherited_forward_authorization_and_per_service_override() {
    let upstream = Server::upstream();
    let config = json!({
        "primary_key": TOP_PRIMARY,
        "forward_authorization": true,
        "services": [
            {"name": "keeps", "path_prefix": "/keeps/"},
            {"name": "strips", "path_prefix": "/strips/", "forward_authorization": false}
        ]
    });
    let envoy = Envoy::start(&filter_in_front_of(&config, &upstream));
    assert_eq!(
        get_bearer(envoy.main(), "/keeps/x", TOP_PRIMARY).status,
        200
    );
    assert_eq!(
        get_bearer(envoy.main(), "/strips/x", TOP_PRIMARY).status,
        200
    );
    let got = upstream.received();
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {TOP_PRIMARY}").as_str())
    );
    assert_eq!(got[1].header("authorization"), None);
}

#[test]
fn five_hundred_services() {
    let upstream = Server::upstream();
    let services: Vec<Value> = (0..500)
        .map(|i| {
            json!({
                "name": format!("model-{i}"),
                "path_prefix": format!("/api/v1/service/model-{i}/"),
                "auth_enabled": true,
                "primary_key": format!("model-{i}-primary-key-000000"),
                "secondary_key": format!("model-{i}-secondary-key-00000")
            })
        })
        .collect();
    let config = json!({"auth_enabled": false, "services": services});
    let envoy = Envoy::start(&filter_in_front_of(&config, &upstream));
    for i in [0, 1, 42, 137, 250, 499] {
        let path = format!("/api/v1/service/model-{i}/score");
        let own = format!("model-{i}-primary-key-000000");
        let other = format!("model-{}-primary-key-000000", (i + 1) % 500);
        assert_eq!(
            get_bearer(envoy.main(), &path, &own).status,
            200,
            "model-{i} own key"
        );
        assert_eq!(
            get_bearer(envoy.main(), &path, &other).status,
            401,
            "model-{i} another's key"
        );
        let secondary = format!("model-{i}-secondary-key-00000");
        assert_eq!(get_bearer(envoy.main(), &path, &secondary).status, 200);
    }
    assert_eq!(
        get(envoy.main(), "/api/v1/service/model-500/score", &[]).status,
        200,
        "default: no auth"
    );
    assert_eq!(envoy.stat("aml_auth.service.model-499.requests_allowed"), 2);
}

#[test]
fn service_configuration_errors_name_the_service() {
    let upstream = Server::upstream();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"primary_key": TOP_PRIMARY, "services": [
                {"name": "both", "path_prefix": "/b/", "token_auth_enabled": true}]}),
            "field `services[0].token_auth_enabled`: service `both`: token authentication can't be used at the same time",
        ),
        (
            json!({"primary_key": TOP_PRIMARY, "services": [
                {"name": "a", "path_prefix": "/a/"}, {"name": "a", "path_prefix": "/b/"}]}),
            "field `services[1].name`: service name `a` is used twice",
        ),
        (
            json!({"primary_key": TOP_PRIMARY, "services": [
                {"name": "a", "path_prefix": "/a/"}, {"name": "b", "path_prefix": "/a/"}]}),
            "field `services[1].path_prefix`",
        ),
        (
            json!({"primary_key": TOP_PRIMARY, "services": [{"name": "a", "path_prefix": "a/"}]}),
            "field `services[0].path_prefix`: must start with `/`",
        ),
        (
            json!({"primary_key": TOP_PRIMARY, "services": [{"name": "a b", "path_prefix": "/a/"}]}),
            "field `services[0].name`",
        ),
        (
            json!({"primary_key": TOP_PRIMARY, "services": [
                {"name": "t", "path_prefix": "/t/", "auth_enabled": false, "token_auth_enabled": true}]}),
            "service `t`: token authentication needs the top-level `token` settings",
        ),
        (
            json!({"auth_enabled": false, "services": [{"name": "k", "path_prefix": "/k/", "primary_key": TOP_PRIMARY}]}),
            "field `services[0].primary_key`: service `k`: sets primary_key but auth_enabled is false",
        ),
        (
            json!({"primary_key": TOP_PRIMARY, "services": [{"name": "a", "path_prefix": "/a/", "issuer": "x"}]}),
            "field `services[0].issuer`: unknown field",
        ),
    ];
    assert_configs_refused(&upstream, &cases);
}

#[test]
fn envoy_refuses_more_than_10000_services_naming_the_field_and_the_limit() {
    let upstream = Server::upstream();
    let services = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"name": format!("s{i}"), "path_prefix": format!("/s{i}/")}))
            .collect()
    };
    let config = |n| json!({"primary_key": "fleet-key-0123456789", "services": services(n)});
    assert!(validate(&filter_in_front_of(&config(10_000), &upstream)).ok);
    assert_configs_refused(
        &upstream,
        &[(
            config(10_001),
            "field `services`: at most 10000 services are supported, found 10001",
        )],
    );
}
