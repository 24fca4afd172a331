//! Verify-cost micro-benchmark: the time of one token verification per algorithm, natively and,
//! built for wasm32-wasip1, in V8 (`bench/micro/run.mjs` under `node --no-liftoff`, the tier
//! Envoy uses). Reads `micro.json` (written by `bench micro-data DIR`) from the directory given as
//! the first argument and prints one line per measurement (CPU time, not wall time). The native
//! run also writes `micro-ec.json` there (a P-384 and a P-521 key with ES384 and ES512 tokens:
//! the driver's data has neither), which the wasm run reads.

use aml_auth_filter::token::jwks::{parse_jwks, Alg};
use aml_auth_filter::token::jwt::{self, TokenPolicy};
use aml_auth_filter::token::token_cache::{TokenCache, DEFAULT_MAX_BYTES};
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
    #[cfg(not(target_arch = "wasm32"))]
    if let Err(e) = write_ec_data(&dir, &data) {
        eprintln!("micro: cannot write {dir}/micro-ec.json: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let ec = std::fs::read_to_string(format!("{dir}/micro-ec.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let ec_keys = ec.as_ref().and_then(|ec| {
        parse_jwks(
            ec.get("jwks")
                .map(Value::to_string)
                .unwrap_or_default()
                .as_bytes(),
        )
        .ok()
        .map(|p| p.keys)
    });
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
    let ec_sets = ec
        .as_ref()
        .and_then(|ec| ec.get("tokens"))
        .and_then(Value::as_object);
    let all = sets.iter().map(|(n, l)| (n, l, &keys)).chain(
        ec_sets
            .into_iter()
            .flatten()
            .filter_map(|(n, l)| Some((n, l, ec_keys.as_ref()?))),
    );
    for (name, list, keys) in all {
        let tokens: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let (full, ok) = time_per_call(&tokens, 1500.0, |t| {
            jwt::verify(t, keys, &policy, now).is_ok()
        });
        let alg = if name.contains("RS256") {
            Alg::Rs256
        } else if name.contains("ES256") {
            Alg::Es256
        } else {
            Alg::from_name(name).unwrap_or(Alg::EdDsa)
        };
        let kid = match alg {
            Alg::Es256 => "p256-a",
            Alg::Es384 => "p384-a",
            Alg::Es512 => "p521-a",
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
        let cache = TokenCache::new(&[7u8; 32], DEFAULT_MAX_BYTES, 16);
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
    key_parse_costs(where_, &data, ec.as_ref());
    std::process::ExitCode::SUCCESS
}

/// Time to parse a one-key JWKS (the key's checks and its comb table), per key type.
fn key_parse_costs(where_: &str, data: &Value, ec: Option<&Value>) {
    let keys = data
        .pointer("/jwks/keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            ec.and_then(|e| e.pointer("/jwks/keys"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for key in keys {
        let kid = key.get("kid").and_then(Value::as_str).unwrap_or("?");
        let body = serde_json::json!({ "keys": [key] }).to_string();
        let inputs = vec![body];
        let (us, ok) = time_per_call(&inputs, 300.0, |b| parse_jwks(b.as_bytes()).is_ok());
        println!(
            "{where_:<8} {:<14} {us:>12.1}   (parse a one-key JWKS, table included; ok {ok} %)",
            format!("key {kid}")
        );
    }
}

/// Writes `micro-ec.json`: a P-384 and a P-521 key and 64 ES384 and ES512 tokens each, with the
/// issuer and audience of `micro.json`.
#[cfg(not(target_arch = "wasm32"))]
fn write_ec_data(dir: &str, data: &Value) -> Result<(), String> {
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer as _;
    use serde_json::json;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let p384 = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let p521 = p521::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let p384_point = p384.verifying_key().to_encoded_point(false);
    let p521_point = p521::ecdsa::VerifyingKey::from(&p521).to_encoded_point(false);
    let jwk = |kid: &str, crv: &str, x: Option<&[u8]>, y: Option<&[u8]>| {
        json!({"kty": "EC", "kid": kid, "crv": crv, "alg": format!("ES{}", if crv == "P-384" { 384 } else { 512 }),
               "x": b64(x.unwrap_or_default()), "y": b64(y.unwrap_or_default())})
    };
    let jwks = json!({"keys": [
        jwk("p384-a", "P-384", p384_point.x().map(|x| x.as_slice()), p384_point.y().map(|y| y.as_slice())),
        jwk("p521-a", "P-521", p521_point.x().map(|x| x.as_slice()), p521_point.y().map(|y| y.as_slice())),
    ]});
    let mut tokens = serde_json::Map::new();
    for (alg, kid) in [("ES384", "p384-a"), ("ES512", "p521-a")] {
        let list: Vec<String> = (0..64)
            .map(|i| {
                let header = json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string();
                let claims = json!({"iss": data.get("issuer"), "aud": data.get("audience"),
                    "sub": format!("user-{i}"), "iat": now, "exp": now + 3600})
                .to_string();
                let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
                let sig = if alg == "ES384" {
                    let s: p384::ecdsa::Signature = p384.sign(input.as_bytes());
                    s.to_bytes().to_vec()
                } else {
                    let s: p521::ecdsa::Signature = p521.sign(input.as_bytes());
                    s.to_bytes().to_vec()
                };
                format!("{input}.{}", b64(&sig))
            })
            .collect();
        tokens.insert(alg.to_string(), json!(list));
    }
    std::fs::write(
        format!("{dir}/micro-ec.json"),
        json!({"jwks": jwks, "tokens": tokens}).to_string(),
    )
    .map_err(|e| e.to_string())
}

fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}
