//! Differential routing test against the real Envoy: a corpus of Host and path spellings sent over
//! HTTP/1.1 and HTTP/2 (raw frames, so any byte reaches Envoy), through catch-all and Istio-style
//! route domains, with and without Envoy's path normalisation, by prefix and by route name, to an
//! upstream that reads the path the way Python servers do (every escape decoded, then dot
//! segments resolved; also the backslash-, case- and `;`-tolerant readings). Whenever the upstream
//! serves a protected service's resource, the request must have carried that service's key.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOP_KEY: &str = "top-level-key-0123456789";
const FRAUD_KEY: &str = "fraud-service-key-0123456789";
const CHURN_KEY: &str = "churn-service-key-0123456789";
const HOST: &str = "models.contoso.com";
const CHURN: &str = "/api/v1/service/churn/";
const FRAUD: &str = "/api/v1/service/fraud/";

// ---------------------------------------------------------------------------------------------
// The upstream: raw bytes in, every request recorded.

#[derive(Clone, Debug)]
struct Seen {
    target: Vec<u8>,
    host: Vec<u8>,
    probe: String,
}

struct RawUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl RawUpstream {
    fn start() -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                thread::spawn(move || serve_raw(stream, &s));
            }
        });
        RawUpstream { addr, seen, stop }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_raw(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head: Vec<u8> = buf.drain(..end).collect();
        let mut lines = head
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = lines.next().unwrap_or_default();
        let target = request_line
            .split(|b| *b == b' ')
            .nth(1)
            .unwrap_or_default()
            .to_vec();
        let mut host = Vec::new();
        let mut probe = String::new();
        for line in lines {
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"host") {
                host = value.to_vec();
            }
            if name.eq_ignore_ascii_case(b"x-probe") {
                probe = String::from_utf8_lossy(value).into_owned();
            }
        }
        seen.lock().unwrap().push(Seen {
            target,
            host,
            probe,
        });
        let body = b"served";
        let reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        if stream
            .write_all(reply.as_bytes())
            .and_then(|_| stream.write_all(body))
            .is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// How a lenient upstream reads a request.

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// RFC 3986 remove_dot_segments, with empty segments merged as many servers do.
fn resolve_dots(path: &str, merge: bool) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (i, s) in segments.iter().enumerate() {
        match *s {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            "" if merge && i != last => {}
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Every reading of a request target a lenient upstream might make: WSGI (decode all, resolve
/// dots), with `\` as `/`, without `;` parameters (Tomcat), lowercased (IIS).
fn readings(target: &[u8], with_case: bool) -> Vec<String> {
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    let path = if let Some(rest) = path.strip_prefix(b"http://") {
        rest.iter()
            .position(|b| *b == b'/')
            .map_or(&b"/"[..], |i| &rest[i..])
    } else {
        path
    };
    let mut out = Vec::new();
    let params_stripped: Vec<u8> = path
        .split(|b| *b == b'/')
        .map(|s| s.split(|b| *b == b';').next().unwrap_or_default().to_vec())
        .collect::<Vec<_>>()
        .join(&b'/');
    for raw in [path.to_vec(), params_stripped] {
        let decoded: String = percent_decode(&raw).iter().map(|&b| b as char).collect();
        for text in [decoded.clone(), decoded.replace('\\', "/")] {
            for merge in [false, true] {
                let resolved = resolve_dots(&text, merge);
                if with_case {
                    out.push(resolved.to_ascii_lowercase());
                }
                out.push(resolved);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The host a lenient upstream reads: lowercase, up to the first `:`, trailing dots dropped.
fn upstream_host(host: &[u8]) -> String {
    let text: String = host
        .iter()
        .map(|&b| b as char)
        .collect::<String>()
        .to_ascii_lowercase();
    let name = if text.starts_with('[') {
        text.split(']').next().unwrap_or_default().to_string() + "]"
    } else {
        text.split(':').next().unwrap_or_default().to_string()
    };
    name.trim_end_matches('.').to_string()
}

// ---------------------------------------------------------------------------------------------
// Envoy set-ups.

#[derive(Clone, Copy, Debug)]
struct Setup {
    istio_domains: bool,
    normalise: bool,
    by_route: bool,
}

fn plugin_config(by_route: bool) -> Value {
    let select = |prefix: &str, hosts: Option<&str>, route: &str| {
        if by_route {
            json!({"route_names": [route]})
        } else {
            match hosts {
                Some(h) => json!({"path_prefix": prefix, "hosts": [h]}),
                None => json!({"path_prefix": prefix}),
            }
        }
    };
    let service = |name: &str, mut select: Value, extra: Value| {
        select["name"] = json!(name);
        for (k, v) in extra.as_object().unwrap() {
            select[k] = v.clone();
        }
        select
    };
    let mut config = json!({
        "primary_key": TOP_KEY,
        "services": [
            service("churn", select(CHURN, Some(HOST), "churn"), json!({"primary_key": CHURN_KEY})),
            service("fraud", select(FRAUD, None, "fraud"), json!({"primary_key": FRAUD_KEY})),
            service("public", select("/public/", None, "public"), json!({"auth_enabled": false})),
        ]
    });
    if by_route {
        config["unmatched_routes"] = json!("top_level_policy");
    }
    config
}

fn route(name: &str, prefix: &str) -> Value {
    json!({"name": name, "match": {"prefix": prefix}, "route": {"cluster": "upstream", "timeout": "30s"}})
}

fn bootstrap_for(setup: Setup, upstream: SocketAddr) -> Value {
    let domains = if setup.istio_domains {
        json!([HOST, format!("{HOST}:*")])
    } else {
        json!(["*"])
    };
    let mut vhosts = vec![json!({"name": "models", "domains": domains, "routes": [
        route("churn", CHURN), route("fraud", FRAUD), route("public", "/public/"), route("other", "/")
    ]})];
    if !setup.by_route {
        vhosts[0]["routes"] = json!([route("other", "/")]);
    }
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "main",
        "route_config": {"virtual_hosts": vhosts},
        "http_filters": [wasm_filter(&plugin_config(setup.by_route)), router_filter()],
        "delayed_close_timeout": "0s"
    });
    if setup.normalise {
        hcm["normalize_path"] = json!(true);
        hcm["merge_slashes"] = json!(true);
        hcm["path_with_escaped_slashes_action"] = json!("REJECT_REQUEST");
    }
    let listener = json!({
        "name": "main",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}]
    });
    bootstrap(vec![listener], vec![cluster("upstream", upstream)])
}

// ---------------------------------------------------------------------------------------------
// The corpus.

fn hosts() -> Vec<&'static [u8]> {
    vec![
        b"models.contoso.com",
        b"MODELS.Contoso.com",
        b"models.contoso.com.",
        b"models.contoso.com:",
        b"models.contoso.com:443",
        b"models.contoso.com:443:443",
        b"models.contoso.com:abc",
        b"models.contoso.com.:443",
        b"models.contoso.com:443.",
        b"models.contoso.com..",
        b"models.contoso.com\xff",
        b"xn--mod-fraud-9ya.contoso.com",
        b"other.example",
        b"[::1]",
        b"[0:0::1]:80",
        b"",
    ]
}

fn paths() -> Vec<&'static [u8]> {
    vec![
        b"/api/v1/service/churn/score",
        b"/api/v1/service/fraud/score",
        b"/api/v1/service/fraud%2Fscore",
        b"/api/v1/service%2ffraud%2fscore",
        b"/api/v1/service/fraud%5Cscore",
        b"/public/..%2fapi/v1/service/fraud/score",
        b"/public/..%2Fapi%2Fv1%2Fservice%2Ffraud%2Fscore",
        b"/public/../api/v1/service/fraud/score",
        b"/public/%2e%2e/api/v1/service/fraud/score",
        b"/public/%2E%2e/api/v1/service/churn/score",
        b"/public/./../api/v1/service/fraud/score",
        b"/public/..;x/api/v1/service/fraud/score",
        b"/public;x/../api/v1/service/fraud/score",
        b"/public\\..\\api\\v1\\service\\fraud\\score",
        b"/public/..\\api/v1/service/fraud/score",
        b"//api/v1/service/fraud/score",
        b"/api//v1/service/fraud/score",
        b"/api/v1/service/fr%61ud/score",
        b"/api/v1/service/%63hurn/score",
        b"/api%2Fv1/service/fraud/score",
        b"/api;x=1/v1/service/fraud/score",
        b"/api/v1/service/fraud;x=1/score",
        b"/API/v1/service/fraud/score",
        b"/api/v1/service/FRAUD/score",
        b"/api/v1/service/fraud/score?x=\xff",
        b"/api/v1/service/fraud/\xff/score",
        b"/api/v1/service/fraud/score?access_token=abc",
        b"/public/score",
        b"/other/score",
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Proto {
    H1,
    H2,
}

struct Sent {
    host: Vec<u8>,
    path: Vec<u8>,
    credential: Option<&'static str>,
    proto: Proto,
    status: u16,
    body: String,
}

fn h1_request(host: &[u8], target: &[u8], credential: Option<&str>, probe: usize) -> Vec<u8> {
    let mut out = b"GET ".to_vec();
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host);
    out.extend_from_slice(format!("\r\nconnection: close\r\nx-probe: {probe}\r\n").as_bytes());
    if let Some(c) = credential {
        out.extend_from_slice(format!("authorization: Bearer {c}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn send(
    addr: SocketAddr,
    proto: Proto,
    host: &[u8],
    target: &[u8],
    credential: Option<&str>,
    probe: usize,
) -> (u16, String) {
    match proto {
        Proto::H1 => match try_send_raw(addr, &h1_request(host, target, credential, probe)) {
            Ok(r) => (r.status, r.text()),
            Err(e) => (0, e),
        },
        Proto::H2 => {
            let probe = probe.to_string();
            let auth = credential.map(|c| format!("Bearer {c}"));
            let mut headers: Vec<(&[u8], &[u8])> = vec![
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":path", target),
                (b"x-probe", probe.as_bytes()),
            ];
            if !host.is_empty() {
                headers.insert(2, (b":authority", host));
            }
            if let Some(a) = &auth {
                headers.push((b"authorization", a.as_bytes()));
            }
            match h2_get(addr, &headers) {
                Ok((status, body)) => (status, String::from_utf8_lossy(&body).into_owned()),
                Err(e) => (0, e),
            }
        }
    }
}

fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Runs the corpus through one Envoy and checks every request the upstream served.
fn run(setup: Setup) -> (usize, usize) {
    let upstream = RawUpstream::start();
    let envoy = Envoy::start(&bootstrap_for(setup, upstream.addr));
    let addr = envoy.main();
    let first = send(
        addr,
        Proto::H1,
        HOST.as_bytes(),
        b"/api/v1/service/fraud/score",
        Some(FRAUD_KEY),
        0,
    );
    assert_eq!(first.0, 200, "{setup:?}: control request: {}", first.1);
    let created = envoy.stat("wasm.envoy.wasm.runtime.v8.created");
    let mut sent: Vec<Sent> = Vec::new();
    let mut absolute: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for path in paths() {
        absolute.push((
            b"other.example".to_vec(),
            [b"http://models.contoso.com".as_slice(), path].concat(),
        ));
        absolute.push((
            HOST.as_bytes().to_vec(),
            [b"http://other.example".as_slice(), path].concat(),
        ));
    }
    let mut cases: Vec<(Vec<u8>, Vec<u8>, Proto)> = Vec::new();
    for host in hosts() {
        for path in paths() {
            for proto in [Proto::H1, Proto::H2] {
                cases.push((host.to_vec(), path.to_vec(), proto));
            }
        }
    }
    for (host, target) in absolute {
        cases.push((host, target, Proto::H1));
    }
    for (host, path, proto) in cases {
        for credential in [None, Some(TOP_KEY), Some(FRAUD_KEY), Some(CHURN_KEY)] {
            let probe = sent.len() + 1;
            let (status, body) = send(addr, proto, &host, &path, credential, probe);
            sent.push(Sent {
                host: host.clone(),
                path: path.clone(),
                credential,
                proto,
                status,
                body,
            });
            if status == 0 {
                break;
            }
        }
    }
    assert!(
        wait_until(DEADLINE, || upstream.seen.lock().unwrap().len()
            >= sent.iter().filter(|s| s.body == "served").count()),
        "{setup:?}: the upstream did not record every served request"
    );
    let served = upstream.take();
    let mut problems = Vec::new();
    let by_probe: HashMap<&str, &Seen> = served.iter().map(|s| (s.probe.as_str(), s)).collect();
    for (i, s) in sent.iter().enumerate() {
        let what = format!(
            "{setup:?} {:?} host {} path {} credential {:?}",
            s.proto,
            printable(&s.host),
            printable(&s.path),
            s.credential
        );
        let Some(seen) = by_probe.get((i + 1).to_string().as_str()) else {
            // Not served: refused by the filter, by Envoy, or not routed. Non-UTF-8 bytes the
            // filter sees are its 400 (Envoy's own refusals aside); `normalize_path` re-encodes
            // them in the path, which then is an ordinary spelling judged by its service.
            let bytes_bad = std::str::from_utf8(&s.host).is_err()
                || (!setup.normalise && std::str::from_utf8(&s.path).is_err());
            if bytes_bad && s.status != 400 && s.status != 0 && s.status != 404 {
                problems.push(format!(
                    "{what}: non-UTF-8 request answered {} {}",
                    s.status, s.body
                ));
            }
            continue;
        };
        let host = upstream_host(&seen.host);
        for reading in readings(&seen.target, !setup.by_route) {
            let needed = if host == HOST && reading.starts_with(CHURN) {
                Some(CHURN_KEY)
            } else if reading.starts_with(FRAUD) {
                Some(FRAUD_KEY)
            } else {
                None
            };
            if let Some(key) = needed {
                if s.credential != Some(key) {
                    problems.push(format!(
                        "{what}: the upstream served {reading} (target {}, host {}) without its key",
                        printable(&seen.target),
                        printable(&seen.host)
                    ));
                }
            }
        }
    }
    // Spellings the filter must refuse itself, whatever Envoy does before it.
    for s in &sent {
        let ours = s.body.contains("\"error\":\"invalid_request\"");
        if ours {
            assert_eq!(s.status, 400, "{:?}: {}", s.proto, s.body);
        }
        let canonical_host = s.host == HOST.as_bytes() || s.host == b"models.contoso.com.";
        if canonical_host
            && s.path == b"/api/v1/service/fraud/score?x=\xff"
            && s.proto == Proto::H2
            && !ours
        {
            problems.push(format!(
                "{setup:?}: non-UTF-8 query answered {} {}",
                s.status, s.body
            ));
        }
        if canonical_host && s.path == b"/api/v1/service/fraud/score?access_token=abc" && !ours {
            problems.push(format!(
                "{setup:?}: access_token in the query answered {} {}",
                s.status, s.body
            ));
        }
    }
    let granted = sent.iter().filter(|s| s.status == 200).count();
    let refused = sent
        .iter()
        .filter(|s| s.body.contains("invalid_request"))
        .count();
    assert!(
        problems.is_empty(),
        "{} problems, first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        granted > 50 && refused > 50,
        "{setup:?}: {granted} served, {refused} refused by the filter"
    );
    assert_eq!(
        envoy.stat("wasm.envoy.wasm.runtime.v8.created"),
        created,
        "{setup:?}: the VM was rebuilt during the run"
    );
    (granted, refused)
}

#[test]
fn catch_all_domains_without_normalisation() {
    run(Setup {
        istio_domains: false,
        normalise: false,
        by_route: false,
    });
}

#[test]
fn catch_all_domains_with_normalisation() {
    run(Setup {
        istio_domains: false,
        normalise: true,
        by_route: false,
    });
}

#[test]
fn istio_domains_without_normalisation() {
    run(Setup {
        istio_domains: true,
        normalise: false,
        by_route: false,
    });
}

#[test]
fn istio_domains_with_normalisation() {
    run(Setup {
        istio_domains: true,
        normalise: true,
        by_route: false,
    });
}

#[test]
fn by_route_name_with_normalisation() {
    run(Setup {
        istio_domains: false,
        normalise: true,
        by_route: true,
    });
}

#[test]
fn by_route_name_without_normalisation() {
    run(Setup {
        istio_domains: true,
        normalise: false,
        by_route: true,
    });
}

#[test]
fn readings_decode_like_python() {
    assert_eq!(
        readings(b"/public/..%2fapi/v1/service/fraud/score", false),
        vec!["/api/v1/service/fraud/score"]
    );
    assert!(readings(b"/a;x/b", false).contains(&"/a/b".to_string()));
    assert!(readings(b"/a\\..\\b", false).contains(&"/b".to_string()));
    assert!(readings(b"/A", true).contains(&"/a".to_string()));
    assert_eq!(upstream_host(b"Models.Contoso.com.:443:443"), HOST);
    assert_eq!(huffman_digits(&[0x68, 0x01]).as_deref(), Some("401"));
    assert_eq!(status_of(&[0x88]), 200);
    assert_eq!(status_of(&[0x48, 0x03, b'4', b'0', b'3']), 403);
}

/// Every spelling a server reads as `access_token` (PHP: `.`, `+`, `%20`, an unmatched `[`, an
/// array suffix, a name cut at `%00`; Rack and qs: brackets around the name; ASP.NET: `%u0061`)
/// is refused like the name itself, over HTTP/1.1 and HTTP/2.
#[test]
fn access_token_in_the_query_is_refused_where_the_filter_authenticates() {
    let upstream = RawUpstream::start();
    let key_mode = json!({"primary_key": TOP_KEY});
    let open = json!({"auth_enabled": false});
    let services = json!({"primary_key": TOP_KEY, "services": [
        {"name": "public", "path_prefix": "/public/", "auth_enabled": false}
    ]});
    for (config, refused) in [(key_mode, true), (open, false), (services, true)] {
        let envoy = Envoy::start(&bootstrap(
            vec![listener(
                "main",
                vec![wasm_filter(&config)],
                vec![route_to("upstream")],
            )],
            vec![cluster("upstream", upstream.addr)],
        ));
        let addr = envoy.main();
        let mut expected_refusals = 0;
        for (target, is_token) in [
            (&b"/x?access_token=abc"[..], true),
            (b"/x?a=1&Access%5FToken=abc", true),
            (b"/x?a=1;access_token", true),
            (b"/x?access.token=abc", true),
            (b"/x?access+token=abc", true),
            (b"/x?access%20token=abc", true),
            (b"/x?access[token=abc", true),
            (b"/x?a=1&access_token[]=abc", true),
            (b"/x?access_token%00x=abc", true),
            (b"/x?a=1&Access.Token%00=abc", true),
            (b"/x?%00access_token=abc", false),
            (b"/x?access_token]=abc", true),
            (b"/x?a=1&[access_token]=abc", true),
            (b"/x?%u0061ccess_token=abc", true),
            (b"/x?[x]access_token=abc", false),
            (b"/x?q=access_token", false),
            (b"/x?access-token=1", false),
            (b"/x?access_tokens=1", false),
            (b"/public/x?access_token=abc", true),
        ] {
            for proto in [Proto::H1, Proto::H2] {
                let (status, body) = send(addr, proto, b"h.example", target, Some(TOP_KEY), 1);
                let public = target.starts_with(b"/public/") && config.get("services").is_some();
                if refused && is_token && !public {
                    expected_refusals += 1;
                    assert_eq!(status, 400, "{config} {}: {body}", printable(target));
                    assert!(
                        body.contains("\"reason\":\"access_token_in_query\""),
                        "{body}"
                    );
                } else {
                    assert_eq!(status, 200, "{config} {}: {body}", printable(target));
                }
            }
        }
        assert_eq!(
            envoy.stat("wasmcustom.aml_auth.denied.access_token_in_query"),
            expected_refusals,
            "{config}"
        );
    }
    // What was served kept its query as sent: the filter never rewrites it.
    for seen in upstream.take() {
        let t = printable(&seen.target);
        assert!(
            [
                "/x?access_token=abc",
                "/x?a=1&Access%5FToken=abc",
                "/x?a=1;access_token",
                "/x?access.token=abc",
                "/x?access+token=abc",
                "/x?access%20token=abc",
                "/x?access[token=abc",
                "/x?a=1&access_token[]=abc",
                "/x?access_token%00x=abc",
                "/x?a=1&Access.Token%00=abc",
                "/x?%00access_token=abc",
                "/x?access_token]=abc",
                "/x?a=1&[access_token]=abc",
                "/x?%u0061ccess_token=abc",
                "/x?[x]access_token=abc",
                "/x?q=access_token",
                "/x?access-token=1",
                "/x?access_tokens=1",
                "/public/x?access_token=abc"
            ]
            .contains(&t.as_str()),
            "{t}"
        );
    }
}

#[test]
fn a_service_selected_by_route_keeps_its_policy_whatever_the_path() {
    let upstream = RawUpstream::start();
    let config = json!({"primary_key": TOP_KEY, "unmatched_routes": "top_level_policy", "services": [
        {"name": "fraud", "route_names": ["fraud"], "primary_key": FRAUD_KEY},
        {"name": "churn", "clusters": ["churn-cluster"], "primary_key": CHURN_KEY,
         "allow_path_parameters": true}
    ]});
    let routes = vec![
        route("fraud", "/models/fraud-alias/"),
        json!({"name": "to-churn", "match": {"prefix": "/churn/"}, "route": {"cluster": "churn-cluster"}}),
        route("other", "/"),
    ];
    let envoy = Envoy::start(&bootstrap(
        vec![listener("main", vec![wasm_filter(&config)], routes)],
        vec![
            cluster("upstream", upstream.addr),
            cluster("churn-cluster", upstream.addr),
        ],
    ));
    let addr = envoy.main();
    let cases: &[(&[u8], Option<&str>, u16, &str)] = &[
        (
            b"/models/fraud-alias/score",
            None,
            401,
            "missing_credential",
        ),
        (
            b"/models/fraud-alias/score",
            Some(TOP_KEY),
            401,
            "invalid_key",
        ),
        (b"/models/fraud-alias/score", Some(FRAUD_KEY), 200, ""),
        (b"/churn/score;jsessionid=1", Some(CHURN_KEY), 200, ""),
        (b"/churn/score", Some(TOP_KEY), 401, "invalid_key"),
        (b"/api/v1/service/fraud/score", Some(TOP_KEY), 200, ""),
        (
            b"/models/fraud-alias/../x",
            Some(FRAUD_KEY),
            400,
            "dot_segment",
        ),
        (
            b"/models/%66raud-alias/score",
            Some(TOP_KEY),
            400,
            "encoded_path_character",
        ),
        (b"/x;p", Some(TOP_KEY), 400, "path_parameter"),
    ];
    for (path, credential, status, reason) in cases {
        for proto in [Proto::H1, Proto::H2] {
            let (got, body) = send(addr, proto, HOST.as_bytes(), path, *credential, 1);
            assert_eq!(
                got,
                *status,
                "{proto:?} {} {credential:?}: {body}",
                printable(path)
            );
            assert!(body.contains(reason), "{body}");
        }
    }
    assert_eq!(envoy.stat("wasmcustom.aml_auth.denied.dot_segment"), 2);
    assert_eq!(
        envoy.stat("wasmcustom.aml_auth.service.fraud.requests_allowed"),
        2
    );
    assert_eq!(
        envoy.stat("wasmcustom.aml_auth.service.churn.requests_allowed"),
        2
    );
    assert_eq!(
        envoy.stat("wasmcustom.aml_auth.service.default.requests_allowed"),
        2
    );
}
