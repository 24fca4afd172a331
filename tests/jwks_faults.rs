//! JWKS fetches that fail (a reset before the headers or mid-body, a stall past the timeout, a
//! 10 MB body, a body over Envoy's buffer limit), in a real Envoy with two workers while
//! keep-alive clients send key and token requests: the VM never traps (Envoy's V8 VM count is
//! unchanged), no client request fails, and each failure is counted under the reason
//! docs/token-auth.md gives. Connection refused and an unknown cluster have their own reasons.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use aml_auth_filter::signing::jwks;
use common::*;
use serde_json::{json, Value};

/// How the fault server answers the next fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// The whole key set.
    Good = 0,
    /// `200`, the full `content-length`, half the body, then a TCP reset.
    ResetMidBody = 1,
    /// `200`, the full `content-length`, half the body, then silence past the fetch timeout.
    StallMidBody = 2,
    /// `200` with a 40 MiB body (over Envoy's buffer limit for a call response).
    OverBufferLimit = 3,
    /// Nothing at all until past the fetch timeout.
    StallBeforeHeaders = 4,
    /// The request is read, then a TCP reset before any response byte.
    ResetBeforeHeaders = 5,
    /// `200` with a 10 MB body (under Envoy's buffer limit, over the filter's 256 KiB).
    TenMegabytes = 6,
}

const MODES: usize = 7;

/// A JWKS server whose answers can break in ways the recording test server cannot.
struct FaultServer {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Fetches received, per mode.
    seen: Arc<[AtomicUsize; MODES]>,
    stop: Arc<AtomicBool>,
}

impl FaultServer {
    fn start(body: Vec<u8>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(Mode::Good as u8));
        let seen: Arc<[AtomicUsize; MODES]> = Arc::new(Default::default());
        let stop = Arc::new(AtomicBool::new(false));
        let body = Arc::new(body);
        {
            let (mode, seen, stop) = (mode.clone(), seen.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (mode, seen, body) = (mode.clone(), seen.clone(), body.clone());
                    thread::spawn(move || serve(stream, &mode, &seen, &body));
                }
            });
        }
        FaultServer {
            addr,
            mode,
            seen,
            stop,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn seen(&self, mode: Mode) -> usize {
        self.seen[mode as usize].load(Ordering::SeqCst)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Closes with RST rather than FIN (SO_LINGER with a zero timeout).
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this function owns, with a correctly sized linger value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

fn serve(stream: TcpStream, mode: &AtomicU8, seen: &[AtomicUsize; MODES], body: &[u8]) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        let mut started = false;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" && started {
                break;
            }
            started = true;
        }
        let current = mode.load(Ordering::SeqCst);
        seen[usize::from(current)].fetch_add(1, Ordering::SeqCst);
        let head = |len: usize| {
            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n")
        };
        let half = &body[..body.len() / 2];
        match current {
            x if x == Mode::ResetMidBody as u8 => {
                let _ = writer.write_all(head(body.len()).as_bytes());
                let _ = writer.write_all(half);
                let _ = writer.flush();
                thread::sleep(Duration::from_millis(50));
                reset(writer);
                return;
            }
            x if x == Mode::StallMidBody as u8 => {
                let _ = writer.write_all(head(body.len()).as_bytes());
                let _ = writer.write_all(half);
                let _ = writer.flush();
                thread::sleep(Duration::from_secs(3));
                return;
            }
            x if x == Mode::ResetBeforeHeaders as u8 => {
                reset(writer);
                return;
            }
            x if x == Mode::TenMegabytes as u8 => {
                let size = 10 * 1000 * 1000;
                let mut out = head(size).into_bytes();
                out.resize(out.len() + size, b' ');
                let _ = writer.write_all(&out);
            }
            x if x == Mode::StallBeforeHeaders as u8 => {
                thread::sleep(Duration::from_secs(3));
                return;
            }
            x if x == Mode::OverBufferLimit as u8 => {
                let size = 40 * 1024 * 1024;
                let _ = writer.write_all(head(size).as_bytes());
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0;
                while sent < size {
                    if writer.write_all(&chunk).is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
                return;
            }
            _ => {
                let mut out = head(body.len()).into_bytes();
                out.extend_from_slice(body);
                if writer.write_all(&out).is_err() {
                    return;
                }
            }
        }
    }
}

/// Keep-alive clients sending key and token requests until stopped; failures are recorded.
struct Clients {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Clients {
    fn start(addr: SocketAddr, token: String) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for (path, credential) in [
            ("/keyed/score", "Bearer primary-key-0001".to_string()),
            ("/score", format!("Bearer {token}")),
            ("/keyed/score", "Bearer primary-key-0001".to_string()),
            ("/score", format!("Bearer {token}")),
        ] {
            let (stop, sent, failures) = (stop.clone(), sent.clone(), failures.clone());
            threads.push(thread::spawn(move || {
                let mut conn = KeepAlive::connect(addr).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    match conn.get(path, &[("authorization", &credential)]) {
                        Ok(resp) if resp.status == 200 => {}
                        Ok(resp) => failures.lock().unwrap().push(format!(
                            "{path}: {} {}",
                            resp.status,
                            resp.text()
                        )),
                        Err(e) => {
                            failures.lock().unwrap().push(format!("{path}: {e}"));
                            match KeepAlive::connect(addr) {
                                Ok(c) => conn = c,
                                Err(_) => return,
                            }
                        }
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(5));
                }
            }));
        }
        Clients {
            stop,
            sent,
            failures,
            threads,
        }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.sent.load(Ordering::SeqCst), failures)
    }
}

fn fault_config() -> Value {
    json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "token": {"issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": {
            "cluster": "jwks",
            "uri": "http://jwks.test/discovery/v2.0/keys",
            "timeout_seconds": 1,
            "refresh_interval_seconds": 1,
            "max_stale_seconds": 86_400
        }},
        "services": [{"name": "keyed", "path_prefix": "/keyed/", "auth_enabled": true,
                      "token_auth_enabled": false, "primary_key": "primary-key-0001"}]
    })
}

/// The sum of the filter's fetch failures counted under `reason`.
fn failures(envoy: &Envoy, reason: &str) -> i64 {
    envoy.stat(&format!("aml_auth.jwks.fetch_failure.{reason}"))
}

#[test]
fn failing_fetches_never_trap_the_vm_nor_fail_a_client_request() {
    let key = signing_key("rsa-a.pem");
    let body = jwks(vec![key.public_jwk("rsa-a", None)])
        .to_string()
        .into_bytes();
    let server = FaultServer::start(body);
    let upstream = Server::upstream();
    // FAIL_RELOAD, as the shipped ECDS resource has it: every trap makes Envoy build a new VM.
    let mut filter = wasm_filter(&fault_config());
    filter["typed_config"]["config"]["failure_policy"] = json!("FAIL_RELOAD");
    let bootstrap = bootstrap(
        vec![listener("main", vec![filter], vec![route_to("upstream")])],
        vec![
            cluster("upstream", upstream.addr),
            cluster("jwks", server.addr),
        ],
    );
    let envoy = Envoy::start_with(
        &bootstrap,
        &EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
    );
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no first fetch:\n{}",
        envoy.log_tail(30)
    );
    let created = envoy.stats().get(VM_CREATED).copied();
    let created = created.unwrap_or_else(|| {
        panic!(
            "Envoy has no {VM_CREATED} stat:\n{}",
            envoy
                .admin_get("/stats")
                .text()
                .lines()
                .filter(|l| l.contains("wasm"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let token = key.sign("RS256", Some("rsa-a"), &good_claims()).unwrap();
    let clients = Clients::start(envoy.main(), token);

    let phases = [
        (Mode::ResetBeforeHeaders, "reset"),
        (Mode::TenMegabytes, "too_large"),
        (Mode::ResetMidBody, "reset"),
        (Mode::StallMidBody, "reset"),
        (Mode::StallBeforeHeaders, "timeout"),
        (Mode::OverBufferLimit, "reset"),
    ];
    let mut report = Vec::new();
    for (mode, reason) in phases {
        let before = failures(&envoy, reason);
        let total_before = envoy.stat("aml_auth.jwks.fetch_failure");
        server.set(mode);
        let counted = wait_until(Duration::from_secs(30), || {
            server.seen(mode) >= 3 && failures(&envoy, reason) >= before + 2
        });
        report.push(format!(
            "{mode:?}: {} fetches seen, fetch_failure {} -> {}, .{reason} {} -> {}, {VM_CREATED} {}",
            server.seen(mode),
            total_before,
            envoy.stat("aml_auth.jwks.fetch_failure"),
            before,
            failures(&envoy, reason),
            envoy.stats().get(VM_CREATED).copied().unwrap_or(-1)
        ));
        assert_eq!(
            envoy.stats().get(VM_CREATED).copied(),
            Some(created),
            "the VM was rebuilt (a trap) during {mode:?}:\n{}\n{}",
            report.join("\n"),
            envoy.log_tail(30)
        );
        assert!(
            counted,
            "{mode:?} not counted as fetch_failure.{reason}:\n{}\n{}",
            report.join("\n"),
            envoy.log_tail(30)
        );
    }
    for reason in ["ended: reset (status 503", "ended: reset (status ,"] {
        for line in envoy.log().lines().filter(|l| l.contains(reason)).take(1) {
            eprintln!("{line}");
        }
    }
    assert!(
        envoy
            .log()
            .contains("buffer size limit for async client response body has been exceeded"),
        "the 40 MiB body never reached Envoy's buffer limit:\n{}",
        envoy.log_tail(30)
    );
    server.set(Mode::Good);
    let successes = envoy.stat("aml_auth.jwks.fetch_success");
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", successes + 1),
        "no recovery after the faults"
    );
    let (sent, failed) = clients.finish();
    assert!(sent > 100, "only {sent} client requests were sent");
    assert!(
        failed.is_empty(),
        "{} of {sent} client requests failed: {:?}\n{}",
        failed.len(),
        &failed[..failed.len().min(10)],
        report.join("\n")
    );
    envoy.assert_no_vm_restart(created);
    eprintln!("{}\n{sent} client requests, none failed", report.join("\n"));
}

#[test]
fn a_refused_connection_and_an_unknown_cluster_are_named_as_such() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let upstream = Server::upstream();
    let config = json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "token": {"issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": [
            remote_source("jwks-misspelled", 1, 86_400),
            remote_source("refused", 1, 86_400)
        ]}
    });
    let envoy = Envoy::start(&bootstrap(
        vec![listener(
            "main",
            vec![wasm_filter(&config)],
            vec![route_to("upstream")],
        )],
        vec![
            cluster("upstream", upstream.addr),
            cluster("refused", closed),
        ],
    ));
    let counted = wait_until(DEADLINE, || {
        failures(&envoy, "unknown_cluster") >= 2 && failures(&envoy, "connect_failed") >= 2
    });
    let log = envoy.log();
    assert!(
        counted,
        "unknown_cluster {}, connect_failed {}, bad_status {}:\n{}",
        failures(&envoy, "unknown_cluster"),
        failures(&envoy, "connect_failed"),
        failures(&envoy, "bad_status"),
        envoy.log_tail(30)
    );
    for line in log
        .lines()
        .filter(|l| l.contains("ended: connect_failed"))
        .take(1)
    {
        eprintln!("{line}");
    }
    assert!(
        log.contains("JWKS source 0: unknown cluster \"jwks-misspelled\""),
        "{}",
        envoy.log_tail(30)
    );
    assert!(log.contains("no key set obtained yet"));
    assert!(
        !log.contains("keeping the last good key set"),
        "the log claims a key set it never had"
    );
    assert_eq!(
        envoy.stat("aml_auth.jwks.source.0.fetch_failure"),
        failures(&envoy, "unknown_cluster")
    );
    let token = signing_key("rsa-a.pem")
        .sign("RS256", Some("rsa-a"), &good_claims())
        .unwrap();
    assert_eq!(get_bearer(envoy.main(), "/", &token).status, 503);
}
