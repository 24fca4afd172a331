//! Wycheproof conformance: P-256 and P-384 P1363 ECDSA, Ed25519, JWK and JWS vectors through our JWKS parsing and verification.
//!
//! Vectors are read from `tests/data/wycheproof/` (copied from Project Wycheproof, see SOURCE.md
//! there); a missing file fails the test. A disagreement with a vector's verdict fails the test unless it is in
//! [`ALLOWED`] with its reason; every allow-list entry must still be needed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use aml_auth_filter::token::jwks::{parse_jwks, Alg, DropReason, JwksError, KeySet};
use aml_auth_filter::token::jwt::{verify, verify_jws, verify_signature, TokenPolicy};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// Which vectors an allow-list entry covers.
enum Match {
    /// One test case id.
    Tc(u64),
    /// Every vector whose JWS header `alg` starts with this.
    HeaderAlgPrefix(&'static str),
}

/// A vector where our verdict may differ from Wycheproof's, and why.
struct Allowed {
    file: &'static str,
    matcher: Match,
    /// True when we refuse a vector Wycheproof calls valid (refused by design); false when we accept one it calls invalid.
    refusal: bool,
    reason: &'static str,
}

const JWK_FILE: &str = "json_web_key_test.json";
const JWS_FILE: &str = "json_web_signature_test.json";
const P256_FILE: &str = "ecdsa_secp256r1_sha256_p1363_test.json";
const P384_FILE: &str = "ecdsa_secp384r1_sha384_p1363_test.json";
const ED25519_FILE: &str = "ed25519_test.json";

const ALLOWED: &[Allowed] = &[
    Allowed {
        file: JWK_FILE,
        matcher: Match::HeaderAlgPrefix("HS"),
        refusal: true,
        reason: "HMAC (HS*) tokens and oct keys are never used",
    },
    Allowed {
        file: JWS_FILE,
        matcher: Match::HeaderAlgPrefix("HS"),
        refusal: true,
        reason: "HMAC (HS*) tokens and oct keys are never used",
    },
    Allowed {
        file: JWS_FILE,
        matcher: Match::Tc(372),
        refusal: true,
        reason: "HS256, and the header holds a '?' that strict base64url refuses (Wycheproof calls it valid because the MAC covers the raw text)",
    },
    Allowed {
        file: JWS_FILE,
        matcher: Match::Tc(347),
        refusal: true,
        reason: "RFC 7520 figure 8 gives its P-521 JWK alg ES521, not a JOSE algorithm: an unknown JWK alg drops the key (es521_key_verifies_without_its_alg checks the signature itself)",
    },
    Allowed {
        file: JWS_FILE,
        matcher: Match::Tc(351),
        refusal: true,
        reason: "same as 347 with key_ops",
    },
    Allowed {
        file: JWS_FILE,
        matcher: Match::Tc(346),
        refusal: true,
        reason: "RFC 7520 figure 20 signs PS384 with a JWK whose alg is PS256: a JWK alg restricts the key and the header never widens it",
    },
    Allowed {
        file: JWS_FILE,
        matcher: Match::Tc(350),
        refusal: true,
        reason: "same as 346 with key_ops: the JWK alg PS256 excludes PS384",
    },
];

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, and these lines must be seen.
macro_rules! shout {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wycheproof"
    ))
}

fn load(dir: &std::path::Path, file: &str) -> Value {
    let path = dir.join(file);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header_alg(jws: &str) -> String {
    jws.split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Default)]
struct Tally {
    run: usize,
    agreed: usize,
    refused_by_design: usize,
    allowed_acceptances: usize,
    unlisted: Vec<String>,
    used_allowances: BTreeSet<usize>,
}

impl Tally {
    /// Records one vector: `expected` is Wycheproof's verdict, `accepted` ours.
    fn record(
        &mut self,
        file: &str,
        tc: u64,
        alg: &str,
        expected: &str,
        accepted: bool,
        detail: &str,
    ) {
        self.run += 1;
        let agrees = match expected {
            "valid" => accepted,
            "invalid" => !accepted,
            "acceptable" => true,
            other => panic!("{file} tc {tc}: unknown result {other}"),
        };
        if agrees {
            self.agreed += 1;
            return;
        }
        let allowance = ALLOWED.iter().position(|a| {
            a.file == file
                && a.refusal != accepted
                && match a.matcher {
                    Match::Tc(id) => id == tc,
                    Match::HeaderAlgPrefix(prefix) => alg.starts_with(prefix),
                }
        });
        match allowance {
            Some(i) => {
                self.used_allowances.insert(i);
                if accepted {
                    self.allowed_acceptances += 1;
                } else {
                    self.refused_by_design += 1;
                }
            }
            None => self.unlisted.push(format!(
                "{file} tc {tc} ({alg}): wycheproof says {expected}, we {} ({detail})",
                if accepted { "accepted" } else { "refused" }
            )),
        }
    }

    fn finish(self, file: &str) -> BTreeSet<usize> {
        shout!(
            "wycheproof {file}: run {}, agreed {}, refused-by-design {}, allowed acceptances {}, disagreements {}",
            self.run,
            self.agreed,
            self.refused_by_design,
            self.allowed_acceptances,
            self.unlisted.len()
        );
        assert!(self.run > 0, "{file}: no vector ran");
        assert!(
            self.unlisted.is_empty(),
            "{file}: disagreements not in the allow-list:\n{}",
            self.unlisted.join("\n")
        );
        self.used_allowances
    }
}

fn single_key(jwk: Value) -> Result<KeySet, JwksError> {
    parse_jwks(&serde_json::to_vec(&json!({ "keys": [jwk] })).unwrap()).map(|p| p.keys)
}

fn tests_of(group: &Value) -> &Vec<Value> {
    group["tests"].as_array().unwrap()
}

fn run_raw_signature_file(
    dir: &std::path::Path,
    file: &str,
    alg: Alg,
    jwk_of: fn(&Value) -> Value,
) -> BTreeSet<usize> {
    let doc = load(dir, file);
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().unwrap() {
        let keys = single_key(jwk_of(group));
        for t in tests_of(group) {
            let tc = t["tcId"].as_u64().unwrap();
            let expected = t["result"].as_str().unwrap();
            let (accepted, detail) = match &keys {
                Ok(keys) => {
                    let key = keys.iter().next().unwrap();
                    let msg = hex(t["msg"].as_str().unwrap());
                    let sig = hex(t["sig"].as_str().unwrap());
                    (
                        verify_signature(key, alg, &msg, &sig),
                        "signature".to_owned(),
                    )
                }
                Err(e) => (false, format!("key refused: {e:?}")),
            };
            tally.record(file, tc, alg.as_str(), expected, accepted, &detail);
        }
    }
    tally.finish(file)
}

fn p256_jwk(group: &Value) -> Value {
    let point = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
    assert_eq!(point.len(), 65);
    assert_eq!(point[0], 4);
    json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
}

fn ed25519_jwk(group: &Value) -> Value {
    let pk = hex(group["publicKey"]["pk"].as_str().unwrap());
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&pk)})
}

fn p384_jwk(group: &Value) -> Value {
    let point = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
    assert_eq!(point.len(), 97);
    assert_eq!(point[0], 4);
    json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..])})
}

fn p521_jwk(group: &Value) -> Value {
    let point = hex(group["publicKey"]["uncompressed"].as_str().unwrap());
    assert_eq!(point.len(), 133);
    assert_eq!(point[0], 4);
    json!({"kty": "EC", "crv": "P-521", "x": b64(&point[1..67]), "y": b64(&point[67..])})
}

/// Every P-384 key relabelled as P-256 is refused (its coordinates are 48 bytes), so an ES384
/// key can never be used for ES256.
fn p384_keys_do_not_pass_as_p256(dir: &std::path::Path) {
    let doc = load(dir, P384_FILE);
    for group in doc["testGroups"].as_array().unwrap() {
        let mut jwk = p384_jwk(group);
        jwk["crv"] = json!("P-256");
        match single_key(jwk) {
            Err(JwksError::NoUsableKeys { dropped }) => {
                assert_eq!(dropped[0].reason, DropReason::BadKeyLength)
            }
            other => panic!("P-384 coordinates accepted as P-256: {other:?}"),
        }
    }
}

/// A policy that leaves claims alone as far as possible (the vectors' payloads carry no claims).
fn lenient_policy() -> TokenPolicy {
    TokenPolicy {
        clock_skew_seconds: 0,
        require_expiration: false,
        ..TokenPolicy::new(vec![String::new()])
    }
}

fn keyset_of(group: &Value) -> Value {
    let set = group
        .get("public")
        .or_else(|| group.get("private"))
        .unwrap();
    if set.get("keys").is_some() {
        set.clone()
    } else {
        json!({ "keys": [set] })
    }
}

fn check_private_sets_drop_private_keys(group: &Value) {
    let Some(private) = group.get("private") else {
        return;
    };
    let set = if private.get("keys").is_some() {
        private.clone()
    } else {
        json!({ "keys": [private] })
    };
    let entries = set["keys"].as_array().unwrap();
    let dropped = match parse_jwks(&serde_json::to_vec(&set).unwrap()) {
        Ok(parsed) => parsed.dropped,
        Err(JwksError::NoUsableKeys { dropped }) => dropped,
        Err(e) => panic!("private set refused as a document: {e:?}"),
    };
    for (i, entry) in entries.iter().enumerate() {
        let secret = ["d", "k", "p", "q"].iter().any(|m| entry.get(*m).is_some());
        if secret {
            assert!(
                dropped.iter().any(|d| d.index == i),
                "{}: private entry {i} kept",
                group["comment"]
            );
        }
    }
}

fn run_jose_file(dir: &std::path::Path, file: &str) -> BTreeSet<usize> {
    let doc = load(dir, file);
    let mut tally = Tally::default();
    let mut verify_runs = 0_usize;
    let mut verify_refusals = 0_usize;
    for group in doc["testGroups"].as_array().unwrap() {
        check_private_sets_drop_private_keys(group);
        let body = serde_json::to_vec(&keyset_of(group)).unwrap();
        let keys = parse_jwks(&body);
        for t in tests_of(group) {
            let tc = t["tcId"].as_u64().unwrap();
            let expected = t["result"].as_str().unwrap();
            let jws = match &t["jws"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let alg = header_alg(&jws);
            let (accepted, detail) = match &keys {
                Ok(parsed) => match verify_jws(&jws, &parsed.keys) {
                    Ok(_) => (true, "verified".to_owned()),
                    Err(e) => (false, e.as_str().to_owned()),
                },
                Err(e) => (false, format!("keyset refused: {}", e.as_str())),
            };
            if let Ok(parsed) = &keys {
                verify_runs += 1;
                match verify(&jws, &parsed.keys, &lenient_policy(), 0) {
                    Ok(_) => assert!(
                        accepted && expected != "invalid",
                        "{file} tc {tc}: verify accepted what the JWS layer refused or the vector calls invalid"
                    ),
                    Err(_) => verify_refusals += 1,
                }
            }
            tally.record(file, tc, &alg, expected, accepted, &detail);
        }
    }
    shout!(
        "wycheproof {file}: full JWT verify ran {verify_runs}, refused {verify_refusals} (payloads are not JWT claim sets)"
    );
    tally.finish(file)
}

/// ES512 vectors made by tests/data/p521/gen_vectors.py (plain Python; Wycheproof has no P-521
/// P1363 file here), in the Wycheproof schema: every verdict must agree.
#[test]
fn generated_p521_vectors() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/p521"));
    let used = run_raw_signature_file(
        &dir,
        "ecdsa_secp521r1_sha512_p1363_generated.json",
        Alg::Es512,
        p521_jwk,
    );
    assert!(
        used.is_empty(),
        "no allowance applies to the generated vectors"
    );
}

/// The RFC 7520 ES512 vectors, whose JWK says `alg: ES521`, verify as ES512 once that alg is
/// removed: the refusal of 347 and 351 is the key's label, not the P-521 signature check.
#[test]
fn es521_key_verifies_without_its_alg() {
    let doc = load(&vectors_dir(), JWS_FILE);
    let mut verified = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let Some(public) = group.get("public") else {
            continue;
        };
        if public["alg"] != "ES521" {
            continue;
        }
        let mut jwk = public.clone();
        jwk.as_object_mut().unwrap().remove("alg");
        let keys = single_key(jwk).unwrap();
        for t in tests_of(group) {
            let jws = t["jws"].as_str().unwrap();
            let got = verify_jws(jws, &keys);
            if t["result"] == "valid" {
                assert_eq!(got, Ok(Alg::Es512), "tc {}", t["tcId"]);
                verified += 1;
            } else {
                assert!(got.is_err(), "tc {}", t["tcId"]);
            }
        }
    }
    shout!("wycheproof {JWS_FILE}: {verified} ES512 (ES521-labelled) vectors verified without the label");
    assert_eq!(verified, 2);
}

#[test]
fn wycheproof_jose_vectors() {
    let dir = vectors_dir();
    let mut used = BTreeSet::new();
    used.extend(run_raw_signature_file(
        &dir,
        P256_FILE,
        Alg::Es256,
        p256_jwk,
    ));
    used.extend(run_raw_signature_file(
        &dir,
        ED25519_FILE,
        Alg::EdDsa,
        ed25519_jwk,
    ));
    used.extend(run_raw_signature_file(
        &dir,
        P384_FILE,
        Alg::Es384,
        p384_jwk,
    ));
    p384_keys_do_not_pass_as_p256(&dir);
    used.extend(run_jose_file(&dir, JWK_FILE));
    used.extend(run_jose_file(&dir, JWS_FILE));
    let stale: Vec<&str> = ALLOWED
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, a)| a.reason)
        .collect();
    assert!(
        stale.is_empty(),
        "allow-list entries no longer needed: {stale:?}"
    );
}
