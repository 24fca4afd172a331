//! HTTPS to the JWKS host: the shipped production example (`envoy/envoy-entra.yaml`) passes
//! `envoy --mode validate`, and its JWKS cluster's TLS shape (SNI, CA bundle, SAN match), pointed
//! at a local HTTPS JWKS server with a test CA made here by openssl, fetches keys from a server
//! whose certificate chains to the CA and names the host, and never from one whose certificate
//! does not chain or names another host (keys never obtained: 503).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aml_auth_filter::signing::jwks;
use common::*;
use serde_json::{json, Value};

const EXAMPLE: &str = "envoy/envoy-entra.yaml";
const HOST: &str = "jwks.test.local";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>-ca.pem`) and a server certificate it signs for `dns` (`<name>.pem`, key
/// `<name>.key`), all P-256, valid two days.
fn make_certs(dir: &Path, name: &str, dns: &str) {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let cert = format!("{name}.pem");
    let ext = format!("{name}.ext");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca,
            "-days",
            "2",
            "-subj",
            &format!("/CN=aml-auth test CA {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={dns}"),
        ],
    );
    std::fs::write(
        dir.join(&ext),
        format!("subjectAltName=DNS:{dns}\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

/// A local HTTPS server (Python's ssl module) answering every GET with a JWKS; killed on drop.
struct HttpsJwks {
    child: Child,
    port: u16,
}

const SERVER: &str = r#"
import http.server, ssl, sys
body = open(sys.argv[3], "rb").read()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        print("GET " + self.path, flush=True)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl HttpsJwks {
    fn start(dir: &Path, name: &str, body: &Value) -> HttpsJwks {
        let body_path = dir.join(format!("{name}.jwks.json"));
        std::fs::write(&body_path, body.to_string()).unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(dir.join(format!("{name}.pem")))
            .arg(dir.join(format!("{name}.key")))
            .arg(&body_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port: {line:?}"));
        HttpsJwks { child, port }
    }
}

impl Drop for HttpsJwks {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped example as JSON, read by PyYAML (a python3 that has it: `AML_PYTHON`,
/// `python3`, or the one `./build.sh` installs in `.venv`).
fn example() -> Value {
    const LOAD: &str =
        "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)";
    let candidates: Vec<PathBuf> = std::env::var_os("AML_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            PathBuf::from("python3"),
            repo_root().join(".venv/bin/python3"),
        ])
        .collect();
    for python in &candidates {
        let Ok(out) = Command::new(python)
            .args(["-c", LOAD])
            .arg(repo_root().join(EXAMPLE))
            .output()
        else {
            continue;
        };
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
    }
    panic!("no python3 with PyYAML among {candidates:?} to read {EXAMPLE} (run ./build.sh test, which installs it, or set AML_PYTHON)");
}

/// The example's JWKS cluster with its TLS shape kept, pointed at 127.0.0.1:`port` for `HOST`
/// and trusting `ca` instead of the system bundle.
fn cluster_like_the_example(name: &str, port: u16, ca: &Path) -> Value {
    let config = example();
    let shipped = config["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "entra_login")
        .expect("the example has the entra_login cluster")
        .clone();
    let mut tls = shipped["transport_socket"].clone();
    let ctx = &mut tls["typed_config"];
    assert_eq!(ctx["sni"], "login.microsoftonline.com");
    ctx["sni"] = json!(HOST);
    let validation = &mut ctx["common_tls_context"]["validation_context"];
    assert_eq!(
        validation["trusted_ca"]["filename"],
        "/etc/ssl/certs/ca-certificates.crt"
    );
    validation["trusted_ca"]["filename"] = json!(ca);
    assert_eq!(
        validation["match_typed_subject_alt_names"][0]["matcher"]["exact"],
        "login.microsoftonline.com"
    );
    validation["match_typed_subject_alt_names"][0]["matcher"]["exact"] = json!(HOST);
    let mut c = cluster(name, format!("127.0.0.1:{port}").parse().unwrap());
    c["transport_socket"] = tls;
    c
}

fn tls_source(cluster: &str) -> Value {
    json!({
        "cluster": cluster,
        "uri": format!("https://{HOST}/discovery/v2.0/keys"),
        "timeout_seconds": 2,
        "refresh_interval_seconds": 1,
        "max_stale_seconds": 86_400
    })
}

fn start(upstream: &Server, jwks_cluster: Value) -> Envoy {
    Envoy::start(&bootstrap(
        vec![listener(
            "main",
            vec![wasm_filter(&token_config(tls_source("jwks_tls")))],
            vec![route_to("upstream")],
        )],
        vec![cluster("upstream", upstream.addr), jwks_cluster],
    ))
}

fn token() -> String {
    signing_key("rsa-a.pem")
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap()
}

fn key_set() -> Value {
    jwks(vec![signing_key("rsa-a.pem").public_jwk("rsa-a", None)])
}

#[test]
fn the_shipped_tls_example_validates() {
    let dir = scratch_dir("entra-example");
    let text = std::fs::read_to_string(repo_root().join(EXAMPLE)).unwrap();
    assert!(text.contains("EDIT"), "the example marks what to edit");
    let text = text.replace(
        "../dist/aml_auth_filter.wasm",
        wasm_path().to_str().unwrap(),
    );
    let path: PathBuf = dir.join("envoy-entra.yaml");
    std::fs::write(&path, text).unwrap();
    let v = validate_file(&path);
    assert!(v.ok, "{}", v.output);
}

#[test]
fn keys_are_fetched_over_tls_from_a_server_the_ca_vouches_for() {
    let dir = scratch_dir("tls-good");
    make_certs(&dir, "good", HOST);
    let server = HttpsJwks::start(&dir, "good", &key_set());
    let upstream = Server::upstream();
    let envoy = start(
        &upstream,
        cluster_like_the_example("jwks_tls", server.port, &dir.join("good-ca.pem")),
    );
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no fetch over TLS:\n{}",
        envoy.log_tail(20)
    );
    assert_eq!(get_bearer(envoy.main(), "/", &token()).status, 200);
    assert!(envoy.stat("cluster.jwks_tls.ssl.handshake") >= 1);
}

#[test]
fn a_server_the_ca_does_not_vouch_for_is_refused() {
    let dir = scratch_dir("tls-bad");
    make_certs(&dir, "trusted", HOST);
    make_certs(&dir, "stranger", HOST);
    make_certs(&dir, "othername", "elsewhere.test.local");
    for (server_cert, ca, why) in [
        ("stranger", "trusted-ca.pem", "a chain to another CA"),
        (
            "othername",
            "othername-ca.pem",
            "a certificate for another name",
        ),
    ] {
        let server = HttpsJwks::start(&dir, server_cert, &key_set());
        let upstream = Server::upstream();
        let envoy = start(
            &upstream,
            cluster_like_the_example("jwks_tls", server.port, &dir.join(ca)),
        );
        assert!(
            envoy.wait_stat_at_least("aml_auth.jwks.fetch_failure", 2),
            "{why}: no failed fetch:\n{}",
            envoy.log_tail(20)
        );
        assert!(
            envoy.stat("cluster.jwks_tls.ssl.fail_verify_error")
                + envoy.stat("cluster.jwks_tls.ssl.fail_verify_san")
                >= 1,
            "{why}: the failures were not certificate refusals: {:?}",
            envoy
                .stats()
                .into_iter()
                .filter(|(k, _)| k.starts_with("cluster.jwks_tls.ssl"))
                .collect::<Vec<_>>()
        );
        assert_eq!(envoy.stat("aml_auth.jwks.fetch_success"), 0, "{why}");
        let resp = get_bearer(envoy.main(), "/", &token());
        assert_eq!(resp.status, 503, "{why}: {}", resp.text());
        assert_eq!(resp.json()["reason"], "jwks_unavailable");
        assert_eq!(upstream.count(), 0);
    }
}
