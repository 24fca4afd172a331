//! The plugin configuration parser: `config::parse`; an accepted configuration is then used as
//! the host would (router built, a few requests routed and decided).
#![no_main]

use aml_auth_filter::config::parse;
use aml_auth_filter::request::policy::{decide, Keys, TokenInputs};
use aml_auth_filter::request::router::{Router, Target};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env = |name: &str| match name {
        "AML_FUZZ_KEY" => Some("fuzz-key-0123456789".to_string()),
        "AML_FUZZ_DIGEST" => Some(
            "sha256:0000000000000000000000000000000000000000000000000000000000000000".to_string(),
        ),
        _ => None,
    };
    let Ok(config) = parse(data, &env) else {
        return;
    };
    let router = Router::new(&config.services);
    for (authority, path) in [
        (&b""[..], &b"/"[..]),
        (b"Example.COM:8080", b"/api/v1/service/demo/score?x=1"),
        (b"[::1]:80", b"/a/b/c#frag"),
        (b"example.com.", b"/A/b;c/%2e/d"),
    ] {
        let Ok(selected) = router.select(Target {
            authority: Some(authority),
            path: Some(path),
            route_name: Some("route"),
            cluster: Some("cluster"),
        }) else {
            continue;
        };
        let policy = selected
            .service
            .and_then(|i| config.services.get(i))
            .map_or(&config.default_policy, |s| &s.policy);
        let headers = [("authorization", &b"Bearer fuzz-key-0123456789"[..])];
        let _ = decide(
            policy,
            headers,
            TokenInputs {
                now: Some(1_700_000_000),
                keys: Keys::NotYet,
                cache: None,
            },
        );
    }
});
