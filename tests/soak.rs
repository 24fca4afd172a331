//! Soak: a million requests of a mixed stream (valid keys and tokens of every algorithm, every
//! row of the attack matrix, random bytes) against one real Envoy over keep-alive connections
//! from several client threads. Every request has an expected status (and reason); the run
//! reports and asserts zero wrong decisions, zero 5xx, and bounded Envoy memory growth (RSS from
//! /proc and the admin /memory endpoint, measured after a warm-up and at the end).
//!
//! Not part of the default run: `./build.sh soak`, or
//! `cargo test --test soak -- --ignored --nocapture` (`SOAK_REQUESTS`, `SOAK_THREADS`).
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
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use attacks::*;
use common::*;
use serde_json::json;

/// RSS growth allowed between the end of the warm-up and the end of the run.
const RSS_GROWTH_BOUND_KB: i64 = 64 * 1024;
/// Growth of Envoy's allocated heap (admin /memory `allocated`) allowed over the same span.
const ALLOCATED_GROWTH_BOUND: i64 = 32 * 1024 * 1024;

/// A minimal keep-alive upstream that only counts requests (the recording server would hold a
/// million requests in memory).
fn counting_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let c = c.clone();
            thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut content_length = 0usize;
                    let mut line = String::new();
                    let mut first = true;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" && !first {
                            break;
                        }
                        first = false;
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            content_length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; content_length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    c.fetch_add(1, Ordering::Relaxed);
                    if writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nupstream-ok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

/// One kind of request of the mix, with its pre-built bytes and expected answer.
struct Kind {
    name: String,
    bytes: Vec<u8>,
    status: u16,
    reason: Option<String>,
    weight: u32,
}

struct Outcome {
    status: u16,
    body: Vec<u8>,
    close: bool,
}

struct Conn {
    addr: SocketAddr,
    reader: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn send(&mut self, bytes: &[u8]) -> Result<Outcome, String> {
        if self.reader.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
            s.set_nodelay(true).ok();
            s.set_read_timeout(Some(Duration::from_secs(30))).ok();
            self.reader = Some(BufReader::new(s));
        }
        let reader = self.reader.as_mut().unwrap();
        reader
            .get_mut()
            .write_all(bytes)
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut length, mut close) = (0usize, false);
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("eof in headers".into());
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            } else if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
        if close || status == 400 {
            self.reader = None;
        }
        Ok(Outcome {
            status,
            body,
            close,
        })
    }
}

/// xorshift64*: a fast deterministic generator per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn request(path: &str, auth: &Auth) -> Vec<u8> {
    request_bytes(path, auth, true)
}

fn kinds(kit: &Kit) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for (key, which) in [(PRIMARY, "primary"), (SECONDARY, "secondary")] {
        kinds.push(Kind {
            name: format!("valid: {which} key"),
            bytes: request("/key/score", &bearer(key)),
            status: 200,
            reason: None,
            weight: 150,
        });
    }
    for (i, token) in kit.valid_all().iter().enumerate() {
        kinds.push(Kind {
            name: format!("valid: token {i}"),
            bytes: request("/score", &bearer(token)),
            status: 200,
            reason: None,
            weight: 60,
        });
    }
    let attacker = "http://127.0.0.1:9";
    let token_rows = [
        token_header_rows(kit),
        structure_rows(kit),
        header_rows(kit, attacker),
        signature_rows(kit),
        claim_rows(kit),
    ];
    for row in key_mode_rows(kit) {
        kinds.push(Kind {
            name: format!("key: {}", row.name),
            bytes: request("/key/score", &row.auth),
            status: row.status,
            reason: row.reason.map(str::to_string),
            weight: 3,
        });
    }
    for row in token_rows.into_iter().flatten() {
        kinds.push(Kind {
            name: format!("token: {}", row.name),
            bytes: request("/score", &row.auth),
            status: row.status,
            reason: row.reason.map(str::to_string),
            weight: 3,
        });
    }
    kinds
}

/// A random credential of visible ASCII, spaces and high bytes: always refused with 401.
fn random_request(rng: &mut Rng) -> Vec<u8> {
    let len = 1 + rng.below(300) as usize;
    let mut value = Vec::with_capacity(len + 7);
    if rng.below(2) == 0 {
        value.extend_from_slice(b"Bearer ");
    }
    for _ in 0..len {
        let b = match rng.below(10) {
            0 => b' ',
            1 => 0x80 + rng.below(0x80) as u8,
            _ => 0x21 + rng.below(0x5e) as u8,
        };
        value.push(b);
    }
    let path = if rng.below(2) == 0 {
        "/score"
    } else {
        "/key/score"
    };
    request(path, &Auth::One(value))
}

fn rss_kb(pid: u32) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn allocated(envoy: &Envoy) -> (i64, i64) {
    let mem = envoy.admin_get("/memory").json();
    let num = |k: &str| -> i64 {
        mem[k]
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| mem[k].as_i64())
            .unwrap_or(-1)
    };
    (num("allocated"), num("heap_size"))
}

#[derive(Default)]
struct Tally {
    sent: u64,
    allowed_expected: u64,
    wrong: BTreeMap<String, (u64, String)>,
    server_errors: u64,
    transport_errors: u64,
    by_status: BTreeMap<u16, u64>,
}

fn run_batch(
    addr: SocketAddr,
    kinds: &[Kind],
    total_weight: u32,
    n: u64,
    seed: u64,
    random_share: u64,
) -> Tally {
    let mut rng = Rng(seed | 1);
    let mut conn = Conn { addr, reader: None };
    let mut t = Tally::default();
    for _ in 0..n {
        let random = rng.below(100) < random_share;
        let (name, bytes, status, reason): (&str, Vec<u8>, u16, Option<&str>);
        let owned;
        if random {
            owned = random_request(&mut rng);
            name = "random bytes";
            bytes = owned;
            status = 401;
            reason = None;
        } else {
            let mut pick = rng.below(u64::from(total_weight)) as u32;
            let kind = kinds
                .iter()
                .find(|k| {
                    if pick < k.weight {
                        true
                    } else {
                        pick -= k.weight;
                        false
                    }
                })
                .unwrap();
            name = &kind.name;
            bytes = kind.bytes.clone();
            status = kind.status;
            reason = kind.reason.as_deref();
        }
        t.sent += 1;
        if status == 200 {
            t.allowed_expected += 1;
        }
        let outcome = match conn.send(&bytes) {
            Ok(o) => o,
            Err(_) => {
                // One retry on a fresh connection (a keep-alive connection may have been closed).
                conn.reader = None;
                match conn.send(&bytes) {
                    Ok(o) => o,
                    Err(e) => {
                        t.transport_errors += 1;
                        t.wrong.entry(name.to_string()).or_insert((0, e)).0 += 1;
                        continue;
                    }
                }
            }
        };
        *t.by_status.entry(outcome.status).or_default() += 1;
        if outcome.status >= 500 {
            t.server_errors += 1;
        }
        let reason_ok = reason.is_none_or(|r| {
            let needle = format!("\"reason\":\"{r}\"");
            outcome
                .body
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        });
        if outcome.status != status || !reason_ok {
            let e = t.wrong.entry(name.to_string()).or_insert((
                0,
                format!(
                    "got {} {}",
                    outcome.status,
                    String::from_utf8_lossy(&outcome.body)
                ),
            ));
            e.0 += 1;
        }
        let _ = outcome.close;
    }
    t
}

fn merge(into: &mut Tally, t: Tally) {
    into.sent += t.sent;
    into.allowed_expected += t.allowed_expected;
    into.server_errors += t.server_errors;
    into.transport_errors += t.transport_errors;
    for (k, (n, e)) in t.wrong {
        into.wrong.entry(k).or_insert((0, e)).0 += n;
    }
    for (k, n) in t.by_status {
        *into.by_status.entry(k).or_default() += n;
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "soak: ./build.sh soak (a million requests, minutes)"]
fn soak_one_million_mixed_requests() {
    let total = env_u64("SOAK_REQUESTS", 1_000_000);
    let threads = env_u64("SOAK_THREADS", 4);
    let warmup = env_u64("SOAK_WARMUP", (total / 20).max(1_000));
    let kit = Kit::new();
    let (upstream_addr, upstream_count) = counting_upstream();
    let jwks = jwks_server(&kit.jwks());
    let mut config = token_config(remote_source("jwks", 600, 86_400));
    config["token"]["clock_skew_seconds"] = json!(SKEW);
    config["token"]["max_lifetime_seconds"] = json!(MAX_LIFETIME);
    config["services"] = json!([{
        "name": "keys", "path_prefix": "/key/", "auth_enabled": true, "token_auth_enabled": false,
        "primary_key": PRIMARY, "secondary_key": SECONDARY
    }]);
    let envoy = Envoy::start_with(
        &bootstrap(
            vec![listener(
                "main",
                vec![wasm_filter(&config)],
                vec![route_to("upstream")],
            )],
            vec![
                cluster("upstream", upstream_addr),
                cluster("jwks", jwks.addr),
            ],
        ),
        &EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
    );
    let vm_created = envoy.vm_created();
    assert!(
        envoy.wait_stat_at_least("aml_auth.jwks.fetch_success", 1),
        "no JWKS"
    );
    let kinds = Arc::new(kinds(&kit));
    let total_weight: u32 = kinds.iter().map(|k| k.weight).sum();
    let addr = envoy.main();
    let random_share = 5;
    let run = |n: u64, salt: u64| -> (Tally, Duration) {
        let start = Instant::now();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (kinds, tally) = (kinds.clone(), tally.clone());
                let share = n / threads + u64::from(i < n % threads);
                thread::spawn(move || {
                    let t = run_batch(
                        addr,
                        &kinds,
                        total_weight,
                        share,
                        0x9E37_79B9_7F4A_7C15 ^ (salt * 1_000 + i),
                        random_share,
                    );
                    merge(&mut tally.lock().unwrap(), t);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let t = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
        (t, start.elapsed())
    };

    let (warm, warm_time) = run(warmup, 1);
    let rss_before = rss_kb(envoy.pid());
    let (alloc_before, heap_before) = allocated(&envoy);
    let allowed_before = envoy.stat("aml_auth.requests_allowed");
    let upstream_before = upstream_count.load(Ordering::Relaxed);
    let (main, elapsed) = run(total - warmup.min(total), 2);
    let rss_after = rss_kb(envoy.pid());
    let (alloc_after, heap_after) = allocated(&envoy);
    let allowed = envoy.stat("aml_auth.requests_allowed") - allowed_before;
    let forwarded = upstream_count.load(Ordering::Relaxed) - upstream_before;

    let mut all = Tally::default();
    merge(&mut all, warm);
    let main_allowed_expected = main.allowed_expected;
    let main_sent = main.sent;
    merge(&mut all, main);
    let secs = (warm_time + elapsed).as_secs_f64();
    let report = format!(
        "soak: {} requests ({} warm-up) in {:.1} s = {:.0} req/s, {} threads, {} request kinds + random bytes\n\
         soak: statuses {:?}\n\
         soak: wrong decisions {}, 5xx {}, transport errors {}\n\
         soak: after warm-up: expected allowed {main_allowed_expected}, filter allowed {allowed}, upstream reached {forwarded} (of {main_sent})\n\
         soak: Envoy RSS {rss_before} kB -> {rss_after} kB ({:+} kB, bound {RSS_GROWTH_BOUND_KB} kB)\n\
         soak: Envoy /memory allocated {alloc_before} -> {alloc_after} ({:+} bytes, bound {ALLOCATED_GROWTH_BOUND}), heap_size {heap_before} -> {heap_after}",
        all.sent,
        warmup,
        secs,
        all.sent as f64 / secs,
        threads,
        kinds.len(),
        all.by_status,
        all.wrong.values().map(|(n, _)| n).sum::<u64>(),
        all.server_errors,
        all.transport_errors,
        rss_after - rss_before,
        alloc_after - alloc_before,
    );
    {
        let mut err = std::io::stderr();
        let _ = writeln!(err, "{report}");
        for (name, (n, example)) in &all.wrong {
            let _ = writeln!(err, "soak: WRONG {n} x {name}: {example}");
        }
    }
    assert!(all.wrong.is_empty(), "wrong decisions:\n{report}");
    assert_eq!(all.server_errors, 0, "5xx answers:\n{report}");
    assert_eq!(allowed as u64, main_allowed_expected, "{report}");
    assert_eq!(forwarded as u64, main_allowed_expected, "{report}");
    assert!(
        rss_after - rss_before < RSS_GROWTH_BOUND_KB,
        "Envoy RSS grew too much:\n{report}"
    );
    assert!(
        alloc_after - alloc_before < ALLOCATED_GROWTH_BOUND,
        "Envoy heap grew too much:\n{report}"
    );
    envoy.assert_no_vm_restart(vm_created);
}
