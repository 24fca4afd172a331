//! The verified-token cache in a real Envoy: bounded by bytes, least recently used evicted first,
//! so a hot token keeps hitting the cache through a flood of distinct large valid tokens; its
//! budget is configured (`token.cache_max_bytes`) and checked.

mod common;

use aml_auth_filter::signing::{jwks, SigningKey};
use common::*;
use serde_json::{json, Value};

const HIT: &str = "aml_auth.token_cache.hit";
const MISS: &str = "aml_auth.token_cache.miss";

fn ed() -> SigningKey {
    signing_key("ed25519-a.pem")
}

/// Resident set size of a process in KiB, from `/proc` (for the report only).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A valid token of about 30 KB (a large `groups` claim), distinct per `n`.
fn large_token(n: usize) -> String {
    let mut claims = good_claims();
    claims["sub"] = json!(format!("flood-{n}"));
    claims["groups"] = json!(vec!["0123456789abcdef0123"; 965]);
    ed().sign("EdDSA", Some("ed-a"), &claims).unwrap()
}

#[test]
fn a_hot_token_keeps_hitting_the_cache_through_a_flood_of_distinct_large_tokens() {
    let upstream = Server::upstream();
    let server = jwks_server(&jwks(vec![ed().public_jwk("ed-a", Some("EdDSA"))]));
    let config: Value = token_config(remote_source("jwks", 600, 3_600));
    let envoy = Envoy::start(&filter_with_clusters(
        &config,
        &upstream,
        &[("jwks", &server)],
    ));
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no JWKS fetch succeeded:\n{}",
        envoy.log_tail(30)
    );
    let created = envoy.vm_created();
    let hot = ed().sign("EdDSA", Some("ed-a"), &good_claims()).unwrap();
    let send = |token: &str| {
        let resp = get_bearer(envoy.main(), "/score", token);
        assert_eq!(resp.status, 200, "{}", resp.text());
    };
    send(&hot);
    send(&hot);
    assert_eq!((envoy.stat(HIT), envoy.stat(MISS)), (1, 1));
    let rss_before = rss_kib(envoy.pid());

    const FLOOD: usize = 2_100;
    let mut hot_sent = 0;
    let mut size = 0;
    for n in 0..FLOOD {
        let token = large_token(n);
        size = size.max(token.len());
        send(&token);
        if n % 20 == 19 {
            send(&hot);
            hot_sent += 1;
        }
    }
    let rss_after = rss_kib(envoy.pid());
    eprintln!(
        "flood of {FLOOD} distinct tokens of up to {size} bytes: Envoy RSS {rss_before:?} KiB \
         before, {rss_after:?} KiB after; hits {}, misses {}",
        envoy.stat(HIT),
        envoy.stat(MISS)
    );
    assert!(size > 29_000, "the flood's tokens are large: {size}");
    // Every flood token was verified in full once; the hot token never again after its first miss.
    assert_eq!(envoy.stat(MISS), 1 + FLOOD as i64);
    assert_eq!(envoy.stat(HIT), 1 + hot_sent);
    envoy.assert_no_vm_restart(created);
}

#[test]
fn the_cache_budget_is_configurable_and_checked_by_envoy() {
    let upstream = Server::upstream();
    let server = jwks_server(&jwks(vec![ed().public_jwk("ed-a", Some("EdDSA"))]));
    let with_budget = |budget: Value| {
        let mut config = token_config(remote_source("jwks", 600, 3_600));
        config["token"]["cache_max_bytes"] = budget;
        config
    };
    assert_configs_refused(
        &upstream,
        &[
            (
                with_budget(json!(1_073_741_825u64)),
                "field `token.cache_max_bytes`: must be a whole number from 0 to 1073741824",
            ),
            (with_budget(json!("8MiB")), "field `token.cache_max_bytes`"),
        ],
    );
    // 0 turns the cache off: the same token is verified in full every time.
    let envoy = Envoy::start(&filter_with_clusters(
        &with_budget(json!(0)),
        &upstream,
        &[("jwks", &server)],
    ));
    assert!(envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1));
    let token = ed().sign("EdDSA", Some("ed-a"), &good_claims()).unwrap();
    for _ in 0..3 {
        assert_eq!(get_bearer(envoy.main(), "/score", &token).status, 200);
    }
    assert_eq!((envoy.stat(HIT), envoy.stat(MISS)), (0, 3));
}
