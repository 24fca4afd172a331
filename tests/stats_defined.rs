//! Issue 20, defect 11: every stat the filter can emit for the configured services exists from
//! the start, at 0, so dashboards and "watch it fall to zero" alerts see it before its first
//! count. Read from a real Envoy's /stats before any request is sent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use serde_json::json;

use common::*;

#[test]
fn every_stat_of_the_configuration_is_defined_at_zero_before_any_request() {
    let upstream = Server::upstream();
    // A key set that is never served: no fetch succeeds, so jwks.fetch_success stays 0.
    let jwks = Server::start(|_| Reply::new(503, "down"));
    let mut config = token_config(json!([remote_source("jwks", 300, 3600)]));
    config["services"] = json!([
        {"name": "fraud", "route_names": ["fraud"], "token": {"audiences": [AUDIENCE]}},
        {"name": "churn", "route_names": ["churn"], "auth_enabled": true,
         "token_auth_enabled": false, "primary_key": "a-churn-primary-key-000000"}
    ]);
    config["unmatched_routes"] = json!("top_level_policy");
    let route = |name: &str, prefix: &str| json!({"name": name, "match": {"prefix": prefix}, "route": {"cluster": "upstream", "timeout": "30s"}});
    let envoy = Envoy::start(&bootstrap(
        vec![listener(
            "main",
            vec![wasm_filter(&config)],
            vec![
                route("fraud", "/fraud/"),
                route("churn", "/churn/"),
                route_to("upstream"),
            ],
        )],
        vec![
            cluster("upstream", upstream.addr),
            cluster("jwks", jwks.addr),
        ],
    ));
    let created = envoy.vm_created();
    let names = [
        "aml_auth.requests_allowed",
        "aml_auth.requests_denied",
        "aml_auth.token_accepted",
        "aml_auth.token_cache.hit",
        "aml_auth.token_cache.miss",
        "aml_auth.key_used.primary",
        "aml_auth.key_used.secondary",
        "aml_auth.denied.unknown_kid",
        "aml_auth.denied.invalid_key",
        "aml_auth.denied.jwks_unavailable",
        "aml_auth.service.fraud.requests_allowed",
        "aml_auth.service.fraud.token_accepted",
        "aml_auth.service.fraud.denied.audience_not_allowed",
        "aml_auth.service.churn.key_used.secondary",
        "aml_auth.service.churn.denied.invalid_key",
        "aml_auth.service.default.requests_allowed",
        "aml_auth.jwks.fetch_success",
        "aml_auth.jwks.source.0.fetch_success",
        "aml_auth.jwks.version",
        "aml_auth.jwks.keys",
    ];
    let missing = || -> Vec<&str> {
        let stats = envoy.stats();
        names
            .iter()
            .filter(|n| !stats.contains_key(&format!("wasmcustom.{n}")))
            .copied()
            .collect()
    };
    assert!(
        wait_until(DEADLINE, || missing().is_empty()),
        "never defined: {:?}\n{}",
        missing(),
        envoy.log_tail(30)
    );
    let stats = envoy.stats();
    for name in names {
        assert_eq!(stats[&format!("wasmcustom.{name}")], 0, "{name}");
    }
    assert_eq!(upstream.count(), 0, "no request was sent");
    // A stat the configuration cannot emit is not defined: no `default` scope for a service
    // that selects by route is fine, but no key stats for the token-mode service.
    assert!(!stats.contains_key("wasmcustom.aml_auth.service.fraud.key_used.primary"));
    // And the stats still count from 0.
    let r = get_bearer(envoy.main(), "/churn/score", "a-churn-primary-key-000000");
    assert_eq!(r.status, 200);
    assert!(envoy.wait_stat_at_least("aml_auth.service.churn.key_used.primary", 1));
    assert_eq!(envoy.stat("aml_auth.service.churn.key_used.secondary"), 0);
    envoy.assert_no_vm_restart(created);
}
