//! Runs the Wycheproof RSA PKCS#1 v1.5 and PSS verification vectors against `aml_auth_filter::rsa`.
//!
//! Vectors are read from `tests/data/wycheproof/` (see SOURCE.md there); a missing file fails the test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use aml_auth_filter::rsa::{HashAlg, RsaPublicKey};
use serde_json::Value;

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, and
/// the per-file vector counts must be seen in every run.
macro_rules! shout {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Pkcs1v15,
    Pss,
}

/// Valid vectors that may sit under a key our constructor refuses: (file, tcId, reason).
const REFUSED_VALID_OK: &[(&str, u64, &str)] = &[];

fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wycheproof"
    ))
}

fn hash_alg(name: &str) -> HashAlg {
    match name {
        "SHA-256" => HashAlg::Sha256,
        "SHA-384" => HashAlg::Sha384,
        "SHA-512" => HashAlg::Sha512,
        other => panic!("unexpected hash {other}"),
    }
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap_or_else(|| panic!("missing {key}"))).unwrap()
}

fn run_file(file: &str, scheme: Scheme) {
    let dir = vectors_dir();
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let (mut run, mut agreed, mut refused_keys, mut refused_vectors) = (0, 0, 0, 0);
    let (mut acceptable, mut acceptable_accepted) = (0, 0);
    let mut disagreements = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let hash = hash_alg(group["sha"].as_str().unwrap());
        if scheme == Scheme::Pss {
            assert_eq!(group["mgf"], "MGF1", "{file}");
            assert_eq!(group["mgfSha"], group["sha"], "{file}");
            let h_len = match hash {
                HashAlg::Sha256 => 32,
                HashAlg::Sha384 => 48,
                HashAlg::Sha512 => 64,
            };
            assert_eq!(group["sLen"].as_u64(), Some(h_len), "{file}");
        }
        let n = hex_field(&group["publicKey"], "modulus");
        let e = hex_field(&group["publicKey"], "publicExponent");
        let tests = group["tests"].as_array().unwrap();
        let key = match RsaPublicKey::new(&n, &e) {
            Ok(key) => key,
            Err(err) => {
                refused_keys += 1;
                for t in tests {
                    let id = t["tcId"].as_u64().unwrap();
                    refused_vectors += 1;
                    let listed = REFUSED_VALID_OK
                        .iter()
                        .any(|&(f, i, _)| f == file && i == id);
                    if t["result"] == "valid" && !listed {
                        disagreements
                            .push(format!("tcId {id}: valid vector under refused key ({err})"));
                    }
                }
                continue;
            }
        };
        for t in tests {
            run += 1;
            let id = t["tcId"].as_u64().unwrap();
            let msg = hex_field(t, "msg");
            let sig = hex_field(t, "sig");
            let ok = match scheme {
                Scheme::Pkcs1v15 => key.verify_pkcs1v15(hash, &msg, &sig),
                Scheme::Pss => key.verify_pss(hash, &msg, &sig),
            };
            let agrees = match t["result"].as_str().unwrap() {
                "valid" => ok,
                "invalid" => !ok,
                "acceptable" => {
                    acceptable += 1;
                    acceptable_accepted += usize::from(ok);
                    true
                }
                other => panic!("unexpected result {other}"),
            };
            if agrees {
                agreed += 1;
            } else {
                disagreements.push(format!(
                    "tcId {id} ({}; flags {}): expected {}, verify said {ok}",
                    t["comment"], t["flags"], t["result"]
                ));
            }
        }
    }
    shout!(
        "{file}: {run} vectors run, {agreed} agreed ({acceptable} acceptable, {acceptable_accepted} of them \
         accepted), {refused_keys} refused keys ({refused_vectors} vectors not run)"
    );
    assert!(
        disagreements.is_empty(),
        "{file}: disagreements:\n{}",
        disagreements.join("\n")
    );
    assert!(run > 0, "{file}: no vectors run");
}

/// Base64url without padding (RFC 7515 section 2); None on any other character or a dangling bit group.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut nbits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
        }
    }
    (nbits < 6 && acc & ((1 << nbits) - 1) == 0).then_some(out)
}

/// The RS*/PS* verification a JWS consumer would run for a compact JWS; any structural problem rejects.
fn verify_compact_jws(key: &RsaPublicKey, jws: &str) -> bool {
    let parts: Vec<&str> = jws.split('.').collect();
    let [header, payload, sig] = parts[..] else {
        return false;
    };
    let Some(header_json) =
        base64url(header).and_then(|h| serde_json::from_slice::<Value>(&h).ok())
    else {
        return false;
    };
    let Some(sig) = base64url(sig) else {
        return false;
    };
    let input = format!("{header}.{payload}");
    let (scheme, hash) = match header_json["alg"].as_str() {
        Some("RS256") => (Scheme::Pkcs1v15, HashAlg::Sha256),
        Some("RS384") => (Scheme::Pkcs1v15, HashAlg::Sha384),
        Some("RS512") => (Scheme::Pkcs1v15, HashAlg::Sha512),
        Some("PS256") => (Scheme::Pss, HashAlg::Sha256),
        Some("PS384") => (Scheme::Pss, HashAlg::Sha384),
        Some("PS512") => (Scheme::Pss, HashAlg::Sha512),
        _ => return false,
    };
    match scheme {
        Scheme::Pkcs1v15 => key.verify_pkcs1v15(hash, input.as_bytes(), &sig),
        Scheme::Pss => key.verify_pss(hash, input.as_bytes(), &sig),
    }
}

/// JWS vectors that are invalid for a reason outside the signature primitive: (tcId, reason).
const JWS_POLICY_ONLY: &[(u64, &str)] = &[
    (
        332,
        "RS256 signature by a key whose JWK says alg PS512: the caller matches alg",
    ),
    (
        334,
        "RS384 signature by a key whose JWK says alg PS512: the caller matches alg",
    ),
    (
        336,
        "RS512 signature by a key whose JWK says alg PS512: the caller matches alg",
    ),
    (
        338,
        "PS256 signature by a key whose JWK says alg PS512: the caller matches alg",
    ),
    (
        340,
        "PS384 signature by a key whose JWK says alg PS512: the caller matches alg",
    ),
];

/// json_web_signature_test.json, RSA groups: the signature part of JWS validation (RS256..PS512).
/// Groups whose key is marked for encryption are skipped: refusing those is the caller's key policy.
#[test]
fn jws_rsa() {
    let file = "json_web_signature_test.json";
    let dir = vectors_dir();
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let (mut run, mut agreed, mut skipped_groups, mut policy_only) = (0, 0, 0, 0);
    let mut disagreements = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let jwk = &group["public"];
        if jwk["kty"] != "RSA" {
            continue;
        }
        let for_verify = jwk["use"].as_str().is_none_or(|u| u == "sig")
            && jwk["key_ops"]
                .as_array()
                .is_none_or(|ops| ops.iter().any(|op| op == "verify"));
        if !for_verify {
            skipped_groups += 1;
            continue;
        }
        let n = base64url(jwk["n"].as_str().unwrap()).unwrap();
        let e = base64url(jwk["e"].as_str().unwrap()).unwrap();
        let key = RsaPublicKey::new(&n, &e).unwrap();
        for t in group["tests"].as_array().unwrap() {
            run += 1;
            let ok = t["jws"]
                .as_str()
                .is_some_and(|jws| verify_compact_jws(&key, jws));
            let expected = t["result"] == "valid";
            let id = t["tcId"]
                .as_u64()
                .or_else(|| t["tcId"].as_str().and_then(|id| id.parse().ok()))
                .unwrap_or(0);
            if ok == expected {
                agreed += 1;
            } else if ok && JWS_POLICY_ONLY.iter().any(|&(listed, _)| listed == id) {
                policy_only += 1;
            } else {
                disagreements.push(format!(
                    "tcId {} ({}): expected {}",
                    t["tcId"], t["comment"], t["result"]
                ));
            }
        }
    }
    shout!(
        "{file} (RSA groups): {run} vectors run, {agreed} agreed, {policy_only} listed as key-policy only, \
         {skipped_groups} groups skipped (encryption keys)"
    );
    assert_eq!(
        policy_only,
        JWS_POLICY_ONLY.len(),
        "{file}: stale JWS_POLICY_ONLY"
    );
    assert!(
        disagreements.is_empty(),
        "{file}: disagreements:\n{}",
        disagreements.join("\n")
    );
    assert!(run > 0, "{file}: no vectors run");
}

#[test]
fn pkcs1v15_2048_sha256() {
    run_file("rsa_signature_2048_sha256_test.json", Scheme::Pkcs1v15);
}

#[test]
fn pkcs1v15_3072_sha256() {
    run_file("rsa_signature_3072_sha256_test.json", Scheme::Pkcs1v15);
}

#[test]
fn pkcs1v15_4096_sha256() {
    run_file("rsa_signature_4096_sha256_test.json", Scheme::Pkcs1v15);
}

#[test]
fn pss_2048_sha256_mgf1_32() {
    run_file("rsa_pss_2048_sha256_mgf1_32_test.json", Scheme::Pss);
}
