//! Verify-cost micro-benchmark: the time of one token verification per algorithm, natively and,
//! built for wasm32-wasip1, in V8 (`bench/micro/run.mjs` under `node --no-liftoff`, the tier
//! Envoy uses). Reads `micro.json` (written by `bench micro-data DIR`) from the directory given as
//! the first argument and prints one line per measurement (CPU time, not wall time).

use aml_auth_filter::jwks::{parse_jwks, Alg};
use aml_auth_filter::jwt::{self, TokenPolicy};
use aml_auth_filter::token_cache::TokenCache;
use serde_json::Value;

/// CPU time this process has used, in ns: unlike wall time, barely moved by other processes
/// competing for the cores (WASI's process CPU clock in V8, `CLOCK_PROCESS_CPUTIME_ID` natively).
#[cfg(target_arch = "wasm32")]
fn cpu_ns() -> u64 {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn clock_time_get(id: u32, precision: u64, time: *mut u64) -> u16;
    }
    let mut t = 0u64;
    // SAFETY: `t` is a valid, writable u64 for the duration of the call.
    let _ = unsafe { clock_time_get(2, 1, &mut t) };
    t
}

#[cfg(not(target_arch = "wasm32"))]
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Runs `f` over the inputs until at least `min_ms` of CPU time have passed; CPU microseconds
/// per call, and the percentage of calls that returned true.
fn time_per_call(inputs: &[String], min_ms: f64, mut f: impl FnMut(&str) -> bool) -> (f64, usize) {
    for t in inputs.iter().take(4) {
        f(t);
    }
    let started = cpu_ns();
    let elapsed_ms = || cpu_ns().saturating_sub(started) as f64 / 1e6;
    let mut calls = 0usize;
    let mut ok = 0;
    while elapsed_ms() < min_ms {
        for t in inputs {
            ok += usize::from(f(t));
            calls += 1;
        }
    }
    (elapsed_ms() * 1e3 / calls as f64, ok * 100 / calls.max(1))
}

fn main() -> std::process::ExitCode {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let Ok(text) = std::fs::read_to_string(format!("{dir}/micro.json")) else {
        eprintln!("micro: cannot read {dir}/micro.json (run `bench micro-data {dir}`)");
        return std::process::ExitCode::FAILURE;
    };
    let Ok(data) = serde_json::from_str::<Value>(&text) else {
        eprintln!("micro: {dir}/micro.json is not JSON");
        return std::process::ExitCode::FAILURE;
    };
    let Ok(parsed) = parse_jwks(
        data.get("jwks")
            .map(Value::to_string)
            .unwrap_or_default()
            .as_bytes(),
    ) else {
        eprintln!("micro: unusable JWKS");
        return std::process::ExitCode::FAILURE;
    };
    let keys = parsed.keys;
    let issuer = data
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let policy = TokenPolicy {
        audiences: Some(vec![data
            .get("audience")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()]),
        ..TokenPolicy::new(vec![issuer])
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let where_ = if cfg!(target_arch = "wasm32") {
        "wasm/V8"
    } else {
        "native"
    };
    println!(
        "{where_:<8} {:<14} {:>12} {:>12} {:>6}",
        "algorithm", "verify µs", "sig only µs", "ok %"
    );
    let Some(sets) = data.get("tokens").and_then(Value::as_object) else {
        return std::process::ExitCode::FAILURE;
    };
    for (name, list) in sets {
        let tokens: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let (full, ok) = time_per_call(&tokens, 1500.0, |t| {
            jwt::verify(t, &keys, &policy, now).is_ok()
        });
        let alg = if name.contains("RS256") {
            Alg::Rs256
        } else if name.contains("ES256") {
            Alg::Es256
        } else {
            Alg::EdDsa
        };
        let kid = match alg {
            Alg::Es256 => "p256-a",
            Alg::EdDsa => "ed-a",
            _ => "rsa-a",
        };
        let (sig, _) = match keys.get(kid) {
            Some(key) => {
                let split: Vec<(String, Vec<u8>)> = tokens
                    .iter()
                    .filter_map(|t| {
                        let (input, s) = t.rsplit_once('.')?;
                        let sig = base64_url_decode(s)?;
                        Some((input.to_string(), sig))
                    })
                    .collect();
                let mut i = 0;
                time_per_call(&tokens, 1500.0, |_| {
                    i = (i + 1) % split.len().max(1);
                    split
                        .get(i)
                        .is_some_and(|(m, s)| jwt::verify_signature(key, alg, m.as_bytes(), s))
                })
            }
            None => (f64::NAN, 0),
        };
        println!("{where_:<8} {name:<14} {full:>12.1} {sig:>12.1} {ok:>6}");
    }
    if let Some(token) = sets
        .get("RS256")
        .and_then(|l| l.get(0))
        .and_then(Value::as_str)
    {
        let tokens = vec![token.to_string()];
        let cache = TokenCache::new(&[7u8; 32], 16);
        cache.use_key_set(1);
        if let Ok(verified) = jwt::verify(token, &keys, &policy, now) {
            cache.insert(token, std::rc::Rc::new(verified));
        }
        let (lookup_us, _) = time_per_call(&tokens, 500.0, |t| cache.get(t, now).is_some());
        let (hit_us, ok) = time_per_call(&tokens, 500.0, |t| {
            cache.use_key_set(1);
            cache
                .get(t, now)
                .is_some_and(|v| v.check_policy(&policy, now).is_ok())
        });
        println!("{where_:<8} {:<14} {lookup_us:>12.2} {hit_us:>12.2} {ok:>6}   (lookup; lookup + policy re-check: a {}-byte RS256 token)", "cache hit", token.len());
    }
    std::process::ExitCode::SUCCESS
}

fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}
