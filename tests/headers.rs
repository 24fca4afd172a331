//! A repeated Authorization header reaches the filter as one comma-joined value, which the
//! credential parser refuses as `multiple_authorization`, over HTTP/1.1 and HTTP/2 (curl, prior
//! knowledge), with and without routed services: the premise for reading the Authorization
//! header alone (one host call) instead of the whole map.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const KEY: &str = "headers-Key_0123456789abcdefghij";
const OTHER: &str = "headers-Other_0123456789abcdefgh";

/// One response over HTTP/2 (h2c with prior knowledge): the HTTP version curl used, the status
/// and the body.
fn get_h2(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--http2-prior-knowledge", "--max-time", "20"])
        .args(["-w", "\n%{http_version} %{http_code}"]);
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, last) = text.rsplit_once('\n').unwrap();
    let (version, status) = last.split_once(' ').unwrap();
    (
        version.to_string(),
        status.parse().unwrap(),
        body.to_string(),
    )
}

fn reason(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("no reason in {body:?}"))
}

fn check(config: &Value, path: &str) {
    let upstream = Server::upstream();
    let envoy = Envoy::start(&filter_in_front_of(config, &upstream));
    let good = format!("Bearer {KEY}");
    let other = format!("Bearer {OTHER}");
    let repeated: [&[(&str, &str)]; 3] = [
        &[("authorization", &good), ("authorization", &good)],
        &[("authorization", &good), ("authorization", &other)],
        &[("authorization", &other), ("Authorization", &good)],
    ];

    let resp = get(envoy.main(), path, &[("authorization", &good)]);
    assert_eq!(resp.status, 200, "HTTP/1.1 one key: {}", resp.text());
    for headers in repeated {
        let resp = get(envoy.main(), path, headers);
        assert_eq!(resp.status, 401, "HTTP/1.1 {headers:?}: {}", resp.text());
        assert_eq!(
            reason(&resp.text()),
            "multiple_authorization",
            "HTTP/1.1 {headers:?}"
        );
    }

    let (version, status, body) = get_h2(envoy.main(), path, &[("authorization", &good)]);
    assert_eq!(
        (version.as_str(), status),
        ("2", 200),
        "HTTP/2 one key: {body}"
    );
    for headers in repeated {
        let (version, status, body) = get_h2(envoy.main(), path, headers);
        assert_eq!(
            (version.as_str(), status),
            ("2", 401),
            "HTTP/2 {headers:?}: {body}"
        );
        assert_eq!(
            reason(&body),
            "multiple_authorization",
            "HTTP/2 {headers:?}"
        );
    }
    let forwarded = upstream.received();
    assert_eq!(
        forwarded.len(),
        2,
        "only the two single-key requests reach the upstream"
    );
    for r in forwarded {
        assert!(
            r.header_values("authorization").is_empty(),
            "{:?}",
            r.headers
        );
    }
    assert!(envoy.wait_stat_at_least("aml_auth.denied.multiple_authorization", 6));
}

#[test]
fn repeated_authorization_is_refused_over_http1_and_http2_without_services() {
    check(&json!({"primary_key": KEY}), "/score");
}

#[test]
fn repeated_authorization_is_refused_over_http1_and_http2_with_routed_services() {
    let config = json!({
        "primary_key": "default-primary-0123456789abcdef",
        "services": [{
            "name": "svc",
            "path_prefix": "/api/v1/service/svc/",
            "primary_key": KEY
        }]
    });
    check(&config, "/api/v1/service/svc/score");
}
