//! End-to-end benchmark driver behind `./build.sh bench`: mints tokens, starts ONE Envoy
//! (`--concurrency 1`, direct-response routes, no upstream) with one listener per scenario,
//! drives each listener with wrk in interleaved rounds, and writes `bench/results.{md,json}` and
//! `bench/ratios.svg`. `micro-data DIR` writes the micro-benchmark's inputs instead.
//!
//! Usage: `bench [--rounds N] [--seconds S] [--connections C] [--only a,b] [--out DIR]
//! --wasm FILE --floor FILE --floor-key FILE --envoy FILE --wrk FILE`, `bench render DIR` (the
//! table and chart again from DIR/results.json) or `bench micro-data DIR`.
//! The floor modules (bench/floor/*.wat) are the physical limit every wasm scenario is also
//! measured against: the smallest module Envoy runs, and that module plus key mode's host work.

#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aml_auth_filter::signing::{jwks, SigningKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

const ISSUER: &str = "https://login.microsoftonline.com/tenant-0000/v2.0";
const AUDIENCE: &str = "https://ml.azure.com";
/// Distinct tokens minted per algorithm (and forged tokens).
const DISTINCT: usize = 20_000;
/// Distinct RS256 tokens: fewer, as the `rsa` crate signs slowly; still far more than the
/// filter's token cache holds, so cycling through them never hits it.
const DISTINCT_RS256: usize = 6_000;
/// Lifetime of minted tokens; a token set is re-minted once less than half of it is left.
const TOKEN_LIFETIME: i64 = 6 * 3600;
const PRIMARY_KEY: &str = "bench-primary-key-0123456789abcdefABCDEF";
const SECONDARY_KEY: &str = "bench-secondary-key-0123456789abcdefABCDEF";
const MANY_SERVICES: usize = 500;

type Result<T> = std::result::Result<T, String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn key(file: &str) -> Result<SigningKey> {
    let path = root().join("tests/data").join(file);
    let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    SigningKey::from_pem(&pem).map_err(|e| format!("{file}: {e}"))
}

/// The test keys, their kids and algorithms.
struct Keys {
    rsa: SigningKey,
    p256: SigningKey,
    ed: SigningKey,
}

impl Keys {
    fn load() -> Result<Self> {
        Ok(Keys {
            rsa: key("rsa-a.pem")?,
            p256: key("p256-a.pem")?,
            ed: key("ed25519-a.pem")?,
        })
    }

    fn jwks(&self) -> Value {
        jwks(vec![
            self.rsa.public_jwk("rsa-a", Some("RS256")),
            self.p256.public_jwk("p256-a", Some("ES256")),
            self.ed.public_jwk("ed-a", Some("EdDSA")),
        ])
    }

    fn signer(&self, alg: &str) -> (&SigningKey, &'static str) {
        match alg {
            "ES256" => (&self.p256, "p256-a"),
            "EdDSA" => (&self.ed, "ed-a"),
            _ => (&self.rsa, "rsa-a"),
        }
    }
}

fn claims(now: i64, n: usize) -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": format!("client-{n}"), "jti": format!("bench-{now}-{n}"),
        "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME
    })
}

/// `count` distinct tokens for `alg`, signed on every core.
fn mint(keys: &Keys, alg: &str, count: usize, now: i64) -> Result<Vec<String>> {
    let (signer, kid) = keys.signer(alg);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = count.div_ceil(threads);
    let parts: Vec<Result<Vec<String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(count))
                        .map(|n| {
                            signer
                                .sign(alg, Some(kid), &claims(now, n))
                                .map_err(|e| e.to_string())
                        })
                        .collect::<Result<Vec<String>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("minting thread died".into()))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(count);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Tokens with valid claims and kid but a random signature of the right length that the
/// verifier must check in full before refusing it: for RS256 below the modulus (a full modular
/// exponentiation), for ES256 r and s both in 1..n-1 (a full double-scalar multiplication).
fn forge(alg: &str, count: usize, now: i64) -> Result<Vec<String>> {
    let (header, len) = match alg {
        "ES256" => (r#"{"alg":"ES256","typ":"JWT","kid":"p256-a"}"#, 64),
        _ => (r#"{"alg":"RS256","typ":"JWT","kid":"rsa-a"}"#, 256),
    };
    let header = URL_SAFE_NO_PAD.encode(header);
    let mut random = vec![0u8; len * count];
    getrandom::getrandom(&mut random).map_err(|e| e.to_string())?;
    for sig in random.chunks_mut(len) {
        sig[0] &= 0x3f;
        if len == 64 {
            sig[32] &= 0x3f;
            sig[31] |= 1;
            sig[63] |= 1;
        }
    }
    Ok(random
        .chunks(len)
        .enumerate()
        .map(|(n, sig)| {
            format!(
                "{header}.{}.{}",
                URL_SAFE_NO_PAD.encode(claims(now, n).to_string()),
                URL_SAFE_NO_PAD.encode(sig)
            )
        })
        .collect())
}

/// Token files under `dir`, re-minted when missing or past half their lifetime.
fn token_files(keys: &Keys, dir: &Path) -> Result<BTreeMap<&'static str, PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let stamp = dir.join("minted_at");
    let now = unix_now();
    let minted_at: i64 = std::fs::read_to_string(&stamp)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let names = [
        "rs256",
        "rs256_one",
        "es256",
        "es256_one",
        "eddsa",
        "eddsa_one",
        "forged",
        "forged_es256",
    ];
    let files: BTreeMap<&'static str, PathBuf> = names
        .iter()
        .map(|n| (*n, dir.join(format!("{n}.txt"))))
        .collect();
    let fresh = now - minted_at < TOKEN_LIFETIME / 2 && files.values().all(|p| p.exists());
    if fresh {
        return Ok(files);
    }
    eprintln!("bench: minting distinct tokens (kept for 3 hours in target/bench/tokens)");
    for (name, alg, count) in [
        ("rs256", "RS256", DISTINCT_RS256),
        ("es256", "ES256", DISTINCT),
        ("eddsa", "EdDSA", DISTINCT),
    ] {
        let started = Instant::now();
        let tokens = mint(keys, alg, count, now)?;
        eprintln!("bench:   {alg}: {:.1} s", started.elapsed().as_secs_f64());
        write_lines(&dir.join(format!("{name}.txt")), &tokens)?;
        write_lines(&dir.join(format!("{name}_one.txt")), &tokens[..1])?;
    }
    write_lines(&dir.join("forged.txt"), &forge("RS256", DISTINCT, now)?)?;
    write_lines(
        &dir.join("forged_es256.txt"),
        &forge("ES256", DISTINCT, now)?,
    )?;
    std::fs::write(&stamp, now.to_string()).map_err(|e| e.to_string())?;
    Ok(files)
}

fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// One benchmarked configuration: a listener and the traffic sent to it.
struct Scenario {
    name: &'static str,
    label: &'static str,
    /// Native scenario this one is compared with, if any.
    native: Option<&'static str>,
    filters: Vec<Value>,
    path: &'static str,
    tokens: Option<&'static str>,
    status: u16,
}

fn wasm_filter(vm_id: &str, wasm: &Path, plugin_config: &Value) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "aml_auth",
                "root_id": "aml_auth",
                "failure_policy": "FAIL_CLOSED",
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config.to_string()
                }
            }
        }
    })
}

fn native_jwt(jwks: &Value, cache: bool) -> Value {
    let mut provider = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": jwks.to_string()},
        "forward": false
    });
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 100});
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"workspace": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "workspace"}}]
        }
    })
}

fn native_key() -> Value {
    json!({
        "name": "envoy.filters.http.api_key_auth",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth",
            "credentials": [
                {"key": PRIMARY_KEY, "client": "primary"},
                {"key": SECONDARY_KEY, "client": "secondary"}
            ],
            "key_sources": [{"header": "authorization"}]
        }
    })
}

fn key_services(count: usize) -> Value {
    let services: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "name": format!("svc{i}"),
                "path_prefix": format!("/api/v1/service/svc{i}/"),
                "primary_key": if i == count / 2 { PRIMARY_KEY.to_string() } else { format!("svc{i}-primary-0123456789") },
                "secondary_key": if i == count / 2 { SECONDARY_KEY.to_string() } else { format!("svc{i}-secondary-0123456789") }
            })
        })
        .collect();
    json!({"primary_key": "default-primary-0123456789", "services": services})
}

fn scenarios(o: &Options, jwks: &Value) -> Vec<Scenario> {
    let wasm = o.wasm.as_path();
    let token_config = json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "token": {"issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": jwks}
    });
    let wasm_token = |vm: &str| vec![wasm_filter(vm, wasm, &token_config)];
    let s = |name, label, native, filters, path, tokens, status| Scenario {
        name,
        label,
        native,
        filters,
        path,
        tokens,
        status,
    };
    vec![
        s(
            "no_auth",
            "no auth filter",
            None,
            vec![],
            "/score",
            None,
            200,
        ),
        s(
            "floor",
            "floor: smallest proxy-wasm module (bench/floor/floor.wat)",
            None,
            vec![wasm_filter("floor", &o.floor, &json!({}))],
            "/score",
            None,
            200,
        ),
        s(
            "floor_key",
            "floor + key mode's host work (bench/floor/floor_key.wat)",
            None,
            vec![wasm_filter("floor_key", &o.floor_key, &json!({}))],
            "/score",
            Some("key"),
            200,
        ),
        s(
            "wasm_pass",
            "wasm filter, no auth configured (its fixed cost)",
            None,
            vec![wasm_filter("pass", wasm, &json!({"auth_enabled": false}))],
            "/score",
            None,
            200,
        ),
        s(
            "native_key",
            "native api_key_auth",
            None,
            vec![native_key()],
            "/score",
            Some("key"),
            200,
        ),
        s(
            "wasm_key_1",
            "wasm key mode, 1 service",
            Some("native_key"),
            vec![wasm_filter("key1", wasm, &key_services(1))],
            "/api/v1/service/svc0/score",
            Some("key"),
            200,
        ),
        s(
            "wasm_key_500",
            "wasm key mode, 500 services",
            Some("native_key"),
            vec![wasm_filter("key500", wasm, &key_services(MANY_SERVICES))],
            "/api/v1/service/svc250/score",
            Some("key"),
            200,
        ),
        s(
            "native_rs256",
            "native jwt_authn RS256, distinct tokens",
            None,
            vec![native_jwt(jwks, false)],
            "/score",
            Some("rs256"),
            200,
        ),
        s(
            "native_rs256_cache",
            "native jwt_authn RS256 + jwt_cache, one token",
            None,
            vec![native_jwt(jwks, true)],
            "/score",
            Some("rs256_one"),
            200,
        ),
        s(
            "wasm_rs256_one",
            "wasm RS256, one token",
            Some("native_rs256_cache"),
            wasm_token("rs_one"),
            "/score",
            Some("rs256_one"),
            200,
        ),
        s(
            "wasm_rs256",
            "wasm RS256, distinct tokens",
            Some("native_rs256"),
            wasm_token("rs"),
            "/score",
            Some("rs256"),
            200,
        ),
        s(
            "native_es256",
            "native jwt_authn ES256, distinct tokens",
            None,
            vec![native_jwt(jwks, false)],
            "/score",
            Some("es256"),
            200,
        ),
        s(
            "wasm_es256_one",
            "wasm ES256, one token",
            Some("native_rs256_cache"),
            wasm_token("es_one"),
            "/score",
            Some("es256_one"),
            200,
        ),
        s(
            "wasm_es256",
            "wasm ES256, distinct tokens",
            Some("native_es256"),
            wasm_token("es"),
            "/score",
            Some("es256"),
            200,
        ),
        s(
            "native_eddsa",
            "native jwt_authn EdDSA, distinct tokens",
            None,
            vec![native_jwt(jwks, false)],
            "/score",
            Some("eddsa"),
            200,
        ),
        s(
            "wasm_eddsa_one",
            "wasm EdDSA, one token",
            Some("native_rs256_cache"),
            wasm_token("ed_one"),
            "/score",
            Some("eddsa_one"),
            200,
        ),
        s(
            "wasm_eddsa",
            "wasm EdDSA, distinct tokens",
            Some("native_eddsa"),
            wasm_token("ed"),
            "/score",
            Some("eddsa"),
            200,
        ),
        s(
            "native_forged",
            "native jwt_authn, forged RS256 flood",
            None,
            vec![native_jwt(jwks, false)],
            "/score",
            Some("forged"),
            401,
        ),
        s(
            "wasm_forged",
            "wasm, forged RS256 flood",
            Some("native_forged"),
            wasm_token("forged"),
            "/score",
            Some("forged"),
            401,
        ),
        s(
            "native_forged_es256",
            "native jwt_authn, forged ES256 flood",
            None,
            vec![native_jwt(jwks, false)],
            "/score",
            Some("forged_es256"),
            401,
        ),
        s(
            "wasm_forged_es256",
            "wasm, forged ES256 flood",
            Some("native_forged_es256"),
            wasm_token("forged_es"),
            "/score",
            Some("forged_es256"),
            401,
        ),
    ]
}

/// `s` run by the filter build `b` instead of `a`, named `NAME@b`.
fn twin(s: &Scenario, a: &Path, b: &Path) -> Scenario {
    let name: &'static str = Box::leak(format!("{}@b", s.name).into_boxed_str());
    let label: &'static str = Box::leak(format!("{} [{}]", s.label, b.display()).into_boxed_str());
    let mut filters = s.filters.clone();
    for f in &mut filters {
        let vm = &mut f["typed_config"]["config"]["vm_config"];
        if vm["code"]["local"]["filename"] == json!(a) {
            vm["code"]["local"]["filename"] = json!(b);
            vm["vm_id"] = json!(format!("{}@b", vm["vm_id"].as_str().unwrap_or("")));
        }
    }
    Scenario {
        name,
        label,
        native: s.native,
        filters,
        path: s.path,
        tokens: s.tokens,
        status: s.status,
    }
}

fn listener(name: &str, filters: &[Value]) -> Value {
    let mut http_filters = filters.to_vec();
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
                ]}]},
                "http_filters": http_filters
            }
        }]}]
    })
}

fn http_get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let auth = authorization.map_or(String::new(), |a| format!("authorization: {a}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\n{auth}connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad response from {addr}: {response:?}"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

struct Envoy {
    child: Child,
    admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
    log: PathBuf,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Envoy {
    fn start(envoy: &Path, dir: &Path, bootstrap: &Value) -> Result<Envoy> {
        let config = dir.join("envoy.json");
        let admin_file = dir.join("admin.txt");
        let log = dir.join("envoy.log");
        let _ = std::fs::remove_file(&admin_file);
        std::fs::write(&config, bootstrap.to_string()).map_err(|e| e.to_string())?;
        let child = Command::new(envoy)
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                "warn",
            ])
            .arg("--log-path")
            .arg(&log)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", envoy.display()))?;
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 1)),
            listeners: BTreeMap::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(format!("envoy exited ({status}):\n{}", envoy.log_tail()));
            }
            if let Some(addr) = std::fs::read_to_string(&admin_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                envoy.admin = addr;
                if http_get(addr, "/ready", None).is_ok_and(|(s, _)| s == 200) {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err(format!("envoy did not become ready:\n{}", envoy.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, body) = http_get(envoy.admin, "/listeners?format=json", None)?;
        let listeners: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        for l in listeners["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let sa = &l["local_address"]["socket_address"];
            let addr = format!(
                "{}:{}",
                sa["address"].as_str().unwrap_or(""),
                sa["port_value"]
            );
            if let (Some(name), Ok(addr)) = (l["name"].as_str(), addr.parse()) {
                envoy.listeners.insert(name.to_string(), addr);
            }
        }
        Ok(envoy)
    }

    /// CPU time Envoy's threads have run so far, in ns (from /proc/PID/task/*/schedstat).
    fn cpu_ns(&self) -> u64 {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn counters(&self, filter: &str) -> BTreeMap<String, i64> {
        let path = format!("/stats?filter={filter}");
        let body = http_get(self.admin, &path, None).map_or(String::new(), |(_, b)| b);
        body.lines()
            .filter_map(|l| {
                let (n, v) = l.split_once(": ")?;
                Some((n.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }
}

/// One wrk run's summary (see bench/wrk.lua).
#[derive(Clone, Debug)]
struct Run {
    requests: usize,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    unexpected: i64,
    /// Envoy's CPU time (all threads) per request during the run, in µs: unlike req/s, barely
    /// moved by other processes competing for the cores.
    cpu_us: f64,
}

struct Wrk<'a> {
    wrk: &'a Path,
    script: PathBuf,
    connections: u32,
}

impl Wrk<'_> {
    fn run(
        &self,
        addr: SocketAddr,
        scenario: &Scenario,
        file: &str,
        seconds: f64,
        offset: usize,
    ) -> Result<Run> {
        let out = Command::new(self.wrk)
            .args(["-t1", &format!("-c{}", self.connections)])
            .arg(format!("-d{}s", seconds.round().max(1.0) as u64))
            .args(["--timeout", "10s", "-s"])
            .arg(&self.script)
            .arg(format!("http://{addr}"))
            .args(["--", scenario.path, file, &offset.to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", self.wrk.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| {
                format!(
                    "wrk printed no summary: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        let num = |k: &str| v[k].as_f64().unwrap_or(0.0);
        let requests = num("requests");
        let non2xx = num("non2xx");
        let unexpected = if scenario.status == 200 {
            non2xx
        } else {
            requests - non2xx
        };
        Ok(Run {
            requests: requests as usize,
            rps: requests / (num("duration_us") / 1e6).max(1e-9),
            p50_us: num("p50_us"),
            p99_us: num("p99_us"),
            unexpected: unexpected as i64 + num("socket_errors") as i64,
            cpu_us: 0.0,
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Options {
    rounds: usize,
    seconds: f64,
    connections: u32,
    wasm: PathBuf,
    floor: PathBuf,
    floor_key: PathBuf,
    envoy: PathBuf,
    wrk: PathBuf,
    only: Option<Vec<String>>,
    out: PathBuf,
    /// Another build of the filter: every wasm scenario also runs with it, as `NAME@b`.
    compare: Option<PathBuf>,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        rounds: 5,
        seconds: 3.0,
        connections: 16,
        wasm: root().join("dist/aml_auth_filter.wasm"),
        floor: root().join("target/bench/floor/floor.wasm"),
        floor_key: root().join("target/bench/floor/floor_key.wasm"),
        envoy: root().join(".venv/bin/envoy"),
        wrk: PathBuf::from("wrk"),
        only: None,
        out: root().join("bench"),
        compare: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--rounds" => o.rounds = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => o.seconds = value.parse().map_err(|e| bad(&e))?,
            "--connections" => o.connections = value.parse().map_err(|e| bad(&e))?,
            "--wasm" => o.wasm = PathBuf::from(value),
            "--floor" => o.floor = PathBuf::from(value),
            "--floor-key" => o.floor_key = PathBuf::from(value),
            "--envoy" => o.envoy = PathBuf::from(value),
            "--wrk" => o.wrk = PathBuf::from(value),
            "--only" => o.only = Some(value.split(',').map(str::to_string).collect()),
            "--out" => o.out = PathBuf::from(value),
            "--compare" => o.compare = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn run(o: &Options) -> Result<()> {
    let work = root().join("target/bench");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let keys = Keys::load()?;
    let files = token_files(&keys, &work.join("tokens"))?;
    let key_file = work.join("key.txt");
    write_lines(&key_file, &[PRIMARY_KEY.to_string()])?;
    let jwks = keys.jwks();
    let mut all = scenarios(o, &jwks);
    if let Some(only) = &o.only {
        all.retain(|s| ["no_auth", "floor"].contains(&s.name) || only.iter().any(|n| n == s.name));
    }
    if let Some(b) = &o.compare {
        let twins: Vec<Scenario> = all
            .iter()
            .filter(|s| s.name.starts_with("wasm_"))
            .map(|s| twin(s, &o.wasm, b))
            .collect();
        all.extend(twins);
    }
    let listeners: Vec<Value> = all.iter().map(|s| listener(s.name, &s.filters)).collect();
    let bootstrap = json!({
        "node": {"id": "aml-auth-bench", "cluster": "aml-auth-bench"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": []}
    });
    let load_before = load_average();
    let envoy = Envoy::start(&o.envoy, &work, &bootstrap)?;
    let file_of = |s: &Scenario| -> String {
        match s.tokens {
            None => "-".to_string(),
            Some("key") => key_file.display().to_string(),
            Some(name) => files
                .get(name)
                .map_or("-".into(), |p| p.display().to_string()),
        }
    };
    let addr_of = |s: &Scenario| -> Result<SocketAddr> {
        envoy
            .listeners
            .get(s.name)
            .copied()
            .ok_or_else(|| format!("no listener {}", s.name))
    };
    for s in &all {
        let file = file_of(s);
        let first = if file == "-" {
            None
        } else {
            std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().map(|l| format!("Bearer {l}")))
        };
        let (status, body) = http_get(addr_of(s)?, s.path, first.as_deref())?;
        if status != s.status {
            return Err(format!(
                "{}: expected {} got {status}: {body}\n{}",
                s.name,
                s.status,
                envoy.log_tail()
            ));
        }
    }
    let wrk = Wrk {
        wrk: &o.wrk,
        script: root().join("bench/wrk.lua"),
        connections: o.connections,
    };
    eprintln!(
        "bench: warm-up (1 s per scenario), then {} rounds of {} s per scenario, {} scenarios",
        o.rounds,
        o.seconds,
        all.len()
    );
    // Each run of a scenario starts where its previous run stopped, so a distinct-token run
    // only meets a token again after the whole file: never within the filter's token cache.
    let mut offsets: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &all {
        let warm = wrk.run(addr_of(s)?, s, &file_of(s), 1.0, 0)?;
        offsets.insert(s.name, warm.requests);
    }
    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    let mut cache: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for round in 0..o.rounds {
        let mut order: Vec<&Scenario> = all.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for s in order {
            let before = envoy.counters("token_cache");
            let offset = offsets.get(s.name).copied().unwrap_or(0);
            let cpu_before = envoy.cpu_ns();
            let mut r = wrk.run(addr_of(s)?, s, &file_of(s), o.seconds, offset)?;
            r.cpu_us =
                envoy.cpu_ns().saturating_sub(cpu_before) as f64 / 1e3 / r.requests.max(1) as f64;
            offsets.insert(s.name, offset + r.requests);
            let after = envoy.counters("token_cache");
            let delta =
                |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
            let c = cache.entry(s.name).or_default();
            c.0 += delta("wasmcustom.aml_auth.token_cache.hit");
            c.1 += delta("wasmcustom.aml_auth.token_cache.miss");
            eprintln!(
                "bench: round {} {:<20} {:>9.0} req/s  cpu {:>7.2} us/req  p50 {:>6.0} us  p99 {:>6.0} us{}",
                round + 1,
                s.name,
                r.rps,
                r.cpu_us,
                r.p50_us,
                r.p99_us,
                if r.unexpected > 0 {
                    format!("  UNEXPECTED {}", r.unexpected)
                } else {
                    String::new()
                }
            );
            runs.entry(s.name).or_default().push(r);
        }
    }
    let load_after = load_average();
    drop(envoy);
    let base: Vec<f64> = runs
        .get("no_auth")
        .map(|v| v.iter().map(|r| r.rps).collect())
        .unwrap_or_default();
    // Ratios are of Envoy CPU per request, round by round (the other scenario's cost over this
    // one's: 1 is as cheap, 0.5 twice the cost), then the median over the rounds.
    let ratio_to = |name: &str, other: &str| -> Option<f64> {
        let a = runs.get(name)?;
        let b = runs.get(other)?;
        Some(median(
            a.iter()
                .zip(b)
                .filter(|(x, _)| x.cpu_us > 0.0)
                .map(|(x, y)| y.cpu_us / x.cpu_us)
                .collect(),
        ))
    };
    let wasm_size = std::fs::metadata(&o.wasm).map(|m| m.len()).unwrap_or(0);
    let mut rows = Vec::new();
    for s in &all {
        let Some(rs) = runs.get(s.name) else { continue };
        let (hits, misses) = cache.get(s.name).copied().unwrap_or((0, 0));
        rows.push(json!({
            "scenario": s.name,
            "label": s.label,
            "requests_per_second": median(rs.iter().map(|r| r.rps).collect()).round(),
            "p50_us": median(rs.iter().map(|r| r.p50_us).collect()).round(),
            "p99_us": median(rs.iter().map(|r| r.p99_us).collect()).round(),
            "envoy_cpu_us_per_request": (median(rs.iter().map(|r| r.cpu_us).collect()) * 100.0).round() / 100.0,
            "ratio_to_no_auth": ratio_to(s.name, "no_auth").map(|r| (r * 1000.0).round() / 1000.0),
            "native": s.native,
            "ratio_to_native": s.native.and_then(|n| ratio_to(s.name, n)).map(|r| (r * 1000.0).round() / 1000.0),
            "ratio_to_floor": is_wasm(s.name).then(|| ratio_to(s.name, "floor")).flatten().map(|r| (r * 1000.0).round() / 1000.0),
            "ratio_to_floor_key": (s.name.starts_with("wasm_key") || s.name.ends_with("_one") || s.name.contains("_one@")).then(|| ratio_to(s.name, "floor_key")).flatten().map(|r| (r * 1000.0).round() / 1000.0),
            "ratio_to_a": s.name.strip_suffix("@b").and_then(|a| ratio_to(s.name, a)).map(|r| (r * 1000.0).round() / 1000.0),
            "rounds_cpu_us": rs.iter().map(|r| (r.cpu_us * 100.0).round() / 100.0).collect::<Vec<_>>(),
            "expected_status": s.status,
            "unexpected_responses": rs.iter().map(|r| r.unexpected).sum::<i64>(),
            "token_cache_hits": hits,
            "token_cache_misses": misses,
            "rounds_rps": rs.iter().map(|r| r.rps.round()).collect::<Vec<_>>(),
        }));
    }
    let _ = base;
    let envoy_version = Command::new(&o.envoy)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default();
    let report = json!({
        "date_unix": unix_now(),
        "envoy": envoy_version,
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rounds": o.rounds,
        "seconds_per_run": o.seconds,
        "connections": o.connections,
        "wasm_bytes": wasm_size,
        "floor_bytes": std::fs::metadata(&o.floor).map(|m| m.len()).unwrap_or(0),
        "floor_key_bytes": std::fs::metadata(&o.floor_key).map(|m| m.len()).unwrap_or(0),
        "scenarios": rows,
    });
    let out = &o.out;
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(out.join("results.md"), markdown(&report)).map_err(|e| e.to_string())?;
    std::fs::write(out.join("ratios.svg"), svg(&report)).map_err(|e| e.to_string())?;
    print!("{}", markdown(&report));
    Ok(())
}

/// Scenarios run by a proxy-wasm module (this filter or a floor module).
fn is_wasm(name: &str) -> bool {
    name.starts_with("wasm_") || name == "floor_key"
}

/// Issue 21's targets, on Envoy CPU per request: (what, scenario, ratio field, at least).
const TARGETS: &[(&str, &str, &str, f64)] = &[
    ("pass-through ÷ floor", "wasm_pass", "ratio_to_floor", 0.95),
    (
        "key mode, 1 service ÷ key-work floor",
        "wasm_key_1",
        "ratio_to_floor_key",
        0.90,
    ),
    (
        "key mode, 500 services ÷ key-work floor",
        "wasm_key_500",
        "ratio_to_floor_key",
        0.90,
    ),
    (
        "RS256 repeated token ÷ key-work floor",
        "wasm_rs256_one",
        "ratio_to_floor_key",
        0.85,
    ),
    (
        "ES256 repeated token ÷ key-work floor",
        "wasm_es256_one",
        "ratio_to_floor_key",
        0.85,
    ),
    (
        "EdDSA repeated token ÷ key-work floor",
        "wasm_eddsa_one",
        "ratio_to_floor_key",
        0.85,
    ),
    (
        "distinct RS256 ÷ native",
        "wasm_rs256",
        "ratio_to_native",
        0.60,
    ),
    (
        "distinct ES256 ÷ native",
        "wasm_es256",
        "ratio_to_native",
        0.60,
    ),
    (
        "distinct EdDSA ÷ native",
        "wasm_eddsa",
        "ratio_to_native",
        0.70,
    ),
    (
        "forged RS256 flood ÷ native",
        "wasm_forged",
        "ratio_to_native",
        0.60,
    ),
    (
        "forged ES256 flood ÷ native",
        "wasm_forged_es256",
        "ratio_to_native",
        0.60,
    ),
];

/// Largest module the issue allows (300 KB, counted as 300 000 bytes).
const MAX_WASM_BYTES: u64 = 300_000;

fn fmt_ratio(v: &Value) -> String {
    v.as_f64().map_or("".into(), |r| format!("{r:.2}"))
}

/// The results table in Markdown.
fn markdown(report: &Value) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| scenario | req/s | p50 µs | p99 µs | Envoy CPU µs/req | ÷ no auth | ÷ floor | ÷ native | native counterpart |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in report["scenarios"].as_array().into_iter().flatten() {
        let unexpected = row["unexpected_responses"].as_i64().unwrap_or(0);
        let _ = writeln!(
            md,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row["label"].as_str().unwrap_or(""),
            if unexpected > 0 {
                format!(" ({unexpected} unexpected responses)")
            } else {
                String::new()
            },
            row["requests_per_second"],
            row["p50_us"],
            row["p99_us"],
            row["envoy_cpu_us_per_request"],
            fmt_ratio(&row["ratio_to_no_auth"]),
            fmt_ratio(&row["ratio_to_floor"]),
            fmt_ratio(&row["ratio_to_native"]),
            row["native"].as_str().unwrap_or(""),
        );
    }
    let _ = writeln!(
        md,
        "\nEnvoy `{}` (`--concurrency 1`, direct response), wrk 1 thread {} connections, {} interleaved rounds of {} s (medians; each ratio is the named scenario's Envoy CPU per request ÷ this one's, the median of per-round ratios). {} cores ({}), load average {} before, {} after. Filter module: {} bytes.",
        report["envoy"].as_str().unwrap_or("").split_whitespace().nth(2).unwrap_or(""),
        report["connections"], report["rounds"], report["seconds_per_run"], report["cores"],
        report["cpu"].as_str().unwrap_or(""), report["load_average_before"].as_str().unwrap_or(""),
        report["load_average_after"].as_str().unwrap_or(""), report["wasm_bytes"],
    );
    let _ = writeln!(
        md,
        "Floor modules: {} and {} bytes. ÷ the key-work floor (bench/floor/floor_key.wat): {}.",
        report["floor_bytes"],
        report["floor_key_bytes"],
        rows_of(report)
            .filter(|r| !r["ratio_to_floor_key"].is_null())
            .map(|r| format!(
                "{} {}",
                r["scenario"].as_str().unwrap_or(""),
                fmt_ratio(&r["ratio_to_floor_key"])
            ))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let _ = writeln!(
        md,
        "{}",
        rows_of(report)
            .filter(|r| !r["ratio_to_a"].is_null())
            .map(|r| format!(
                "Compared: {} {} µs per request with the module under test, {} µs with the other build; under test ÷ other, median of per-round ratios: {}.\n",
                r["scenario"].as_str().unwrap_or("").trim_end_matches("@b"),
                rows_of(report)
                    .find(|a| a["scenario"].as_str() == r["scenario"].as_str().map(|n| n.trim_end_matches("@b")))
                    .map_or(Value::Null, |a| a["envoy_cpu_us_per_request"].clone()),
                r["envoy_cpu_us_per_request"],
                r["ratio_to_a"].as_f64().map_or(String::new(), |x| format!("{x:.3}")),
            ))
            .collect::<String>(),
    );
    let _ = writeln!(
        md,
        "\n| target (Envoy CPU per request) | measured | at least | |\n|---|---:|---:|---|"
    );
    for (what, scenario, field, min) in TARGETS {
        let measured = rows_of(report)
            .find(|r| r["scenario"] == *scenario)
            .and_then(|r| r[*field].as_f64());
        let verdict = match measured {
            None => "not run".to_string(),
            Some(m) if m >= *min => "met".to_string(),
            Some(m) => format!("missed by {:.3}", min - m),
        };
        let _ = writeln!(
            md,
            "| {what} | {} | {min:.2} | {verdict} |",
            measured.map_or("".into(), |m| format!("{m:.3}"))
        );
    }
    let bytes = report["wasm_bytes"].as_u64().unwrap_or(0);
    let _ = writeln!(
        md,
        "| module size | {bytes} B | at most {MAX_WASM_BYTES} B | {} |",
        if bytes <= MAX_WASM_BYTES {
            "met".to_string()
        } else {
            format!("missed by {} B", bytes - MAX_WASM_BYTES)
        }
    );
    md
}

fn rows_of(report: &Value) -> impl Iterator<Item = &Value> {
    report["scenarios"].as_array().into_iter().flatten()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar chart of every scenario's ratio to no auth, and to its native counterpart.
fn svg(report: &Value) -> String {
    let rows: Vec<&Value> = report["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let (label_w, bar_w, row_h, top) = (380.0, 420.0, 36.0, 50.0);
    let height = top + row_h * rows.len() as f64 + 40.0;
    let width = label_w + bar_w + 80.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">Envoy CPU per request as a ratio (Envoy --concurrency 1, wrk {} connections)</text>"#,
        report["connections"]
    );
    let _ = writeln!(
        s,
        r##"<rect x="{label_w}" y="30" width="12" height="10" fill="#4878a8"/><text x="{}" y="39">÷ no auth</text><rect x="{}" y="30" width="12" height="10" fill="#60a060"/><text x="{}" y="39">÷ floor module</text><rect x="{}" y="30" width="12" height="10" fill="#e0a030"/><text x="{}" y="39">÷ native counterpart</text>"##,
        label_w + 16.0,
        label_w + 100.0,
        label_w + 116.0,
        label_w + 220.0,
        label_w + 236.0
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0, 1.25] {
        let x = label_w + bar_w * tick / 1.25;
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#ccc"/><text x="{x}" y="{}" text-anchor="middle" fill="#666">{tick}</text>"##,
            top - 4.0,
            height - 28.0,
            height - 14.0
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + 20.0,
            xml_escape(row["label"].as_str().unwrap_or(""))
        );
        for (j, (key, color)) in [
            ("ratio_to_no_auth", "#4878a8"),
            ("ratio_to_floor", "#60a060"),
            ("ratio_to_native", "#e0a030"),
        ]
        .iter()
        .enumerate()
        {
            if let Some(r) = row[*key].as_f64() {
                let w = bar_w * r.min(1.25) / 1.25;
                let by = y + 3.0 + 10.0 * j as f64;
                let _ = writeln!(
                    s,
                    r#"<rect x="{label_w}" y="{by}" width="{w:.1}" height="9" fill="{color}"/><text x="{:.1}" y="{}" font-size="9">{r:.2}</text>"#,
                    label_w + w + 3.0,
                    by + 8.0
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Rewrites `DIR/results.md` and `DIR/ratios.svg` from `DIR/results.json` (no new run).
fn render(dir: &Path) -> Result<()> {
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let report: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.md"), markdown(&report)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("ratios.svg"), svg(&report)).map_err(|e| e.to_string())
}

/// Inputs of the micro-benchmark: the JWKS, the policy, and tokens per algorithm.
fn micro_data(dir: &Path) -> Result<()> {
    let keys = Keys::load()?;
    let now = unix_now();
    let mut tokens = serde_json::Map::new();
    for alg in ["RS256", "ES256", "EdDSA"] {
        tokens.insert(alg.to_string(), json!(mint(&keys, alg, 64, now)?));
    }
    tokens.insert("forged RS256".to_string(), json!(forge("RS256", 64, now)?));
    tokens.insert("forged ES256".to_string(), json!(forge("ES256", 64, now)?));
    let data =
        json!({"issuer": ISSUER, "audience": AUDIENCE, "jwks": keys.jwks(), "tokens": tokens});
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("micro.json"), data.to_string()).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("render") => match args.get(1) {
            Some(dir) => render(Path::new(dir)),
            None => Err("usage: bench render DIR".into()),
        },
        Some("micro-data") => match args.get(1) {
            Some(dir) => micro_data(Path::new(dir)),
            None => Err("usage: bench micro-data DIR".into()),
        },
        _ => parse_options(&args).and_then(|o| run(&o)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
