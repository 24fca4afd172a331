//! Tests for JWKS parsing: which keys are kept, which are dropped and why, and whole-document errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};

use super::testkit::{b64, ec_jwk, ec_jwk_on, ed_jwk, jwks_body, rsa_jwk};
use super::*;

fn odd_modulus(bits: usize) -> String {
    let mut n = vec![0xA5_u8; bits / 8];
    n[0] = 0xC3;
    let last = n.len() - 1;
    n[last] |= 1;
    b64(&n)
}

fn with(mut jwk: Value, member: &str, value: Value) -> Value {
    jwk[member] = value;
    jwk
}

fn without(mut jwk: Value, member: &str) -> Value {
    jwk.as_object_mut().unwrap().remove(member);
    jwk
}

fn single_key_outcome(jwk: Value) -> Result<Vec<Alg>, DropReason> {
    match parse_jwks(&jwks_body(&[jwk])) {
        Ok(parsed) => {
            assert_eq!(parsed.keys.len(), 1);
            Ok(parsed.keys.iter().next().unwrap().admitted_algs())
        }
        Err(JwksError::NoUsableKeys { dropped }) => {
            assert_eq!(dropped.len(), 1);
            Err(dropped[0].reason.clone())
        }
        Err(other) => panic!("unexpected document error {other:?}"),
    }
}

const RSA_ALGS_LIST: [Alg; 6] = [
    Alg::Rs256,
    Alg::Rs384,
    Alg::Rs512,
    Alg::Ps256,
    Alg::Ps384,
    Alg::Ps512,
];

#[test]
fn usable_keys_admit_the_right_algorithms() {
    let cases: Vec<(&str, Value, Vec<Alg>)> = vec![
        (
            "rsa without alg",
            rsa_jwk(Some("a"), None),
            RSA_ALGS_LIST.to_vec(),
        ),
        (
            "rsa RS256",
            rsa_jwk(Some("a"), Some("RS256")),
            vec![Alg::Rs256],
        ),
        (
            "rsa PS512",
            rsa_jwk(Some("a"), Some("PS512")),
            vec![Alg::Ps512],
        ),
        (
            "rsa use sig",
            with(rsa_jwk(None, None), "use", json!("sig")),
            RSA_ALGS_LIST.to_vec(),
        ),
        (
            "rsa key_ops verify",
            with(rsa_jwk(None, None), "key_ops", json!(["verify", "sign"])),
            RSA_ALGS_LIST.to_vec(),
        ),
        ("ec without alg", ec_jwk(Some("e"), None), vec![Alg::Es256]),
        (
            "ec ES256",
            ec_jwk(Some("e"), Some("ES256")),
            vec![Alg::Es256],
        ),
        ("ed without alg", ed_jwk(None, None), vec![Alg::EdDsa]),
        ("ed EdDSA", ed_jwk(None, Some("EdDSA")), vec![Alg::EdDsa]),
        (
            "unknown members ignored",
            with(rsa_jwk(None, None), "x5c", json!(["MIIB"])),
            RSA_ALGS_LIST.to_vec(),
        ),
    ];
    for (name, jwk, algs) in cases {
        assert_eq!(single_key_outcome(jwk), Ok(algs), "{name}");
    }
}

#[test]
fn unusable_keys_are_dropped_with_their_reason() {
    let ec = ec_jwk(Some("e"), None);
    let x = B64URL.decode(ec["x"].as_str().unwrap()).unwrap();
    let mut y = B64URL.decode(ec["y"].as_str().unwrap()).unwrap();
    let mut x33 = vec![0_u8];
    x33.extend_from_slice(&x);
    y[31] ^= 1;
    let cases: Vec<(&str, Value, DropReason)> = vec![
        ("not an object", json!("RSA"), DropReason::NotAnObject),
        (
            "kty missing",
            without(rsa_jwk(None, None), "kty"),
            DropReason::MissingMember("kty"),
        ),
        (
            "kty number",
            with(rsa_jwk(None, None), "kty", json!(1)),
            DropReason::MalformedMember("kty"),
        ),
        (
            "kty oct",
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            DropReason::SymmetricKey,
        ),
        (
            "kty oct alg HS256",
            json!({"kty": "oct", "alg": "HS256", "k": "c2VjcmV0"}),
            DropReason::SymmetricKey,
        ),
        (
            "kty unknown",
            json!({"kty": "DSA"}),
            DropReason::UnsupportedKeyType,
        ),
        (
            "kty lowercase",
            with(rsa_jwk(None, None), "kty", json!("rsa")),
            DropReason::UnsupportedKeyType,
        ),
        (
            "use enc",
            with(rsa_jwk(None, None), "use", json!("enc")),
            DropReason::NotForSignatures,
        ),
        (
            "use number",
            with(rsa_jwk(None, None), "use", json!(1)),
            DropReason::MalformedMember("use"),
        ),
        (
            "key_ops encrypt",
            with(rsa_jwk(None, None), "key_ops", json!(["encrypt"])),
            DropReason::KeyOpsWithoutVerify,
        ),
        (
            "key_ops empty",
            with(rsa_jwk(None, None), "key_ops", json!([])),
            DropReason::KeyOpsWithoutVerify,
        ),
        (
            "key_ops string",
            with(rsa_jwk(None, None), "key_ops", json!("verify")),
            DropReason::MalformedMember("key_ops"),
        ),
        (
            "private d on rsa",
            with(rsa_jwk(None, None), "d", json!("AQAB")),
            DropReason::PrivateKeyMaterial,
        ),
        (
            "private p",
            with(rsa_jwk(None, None), "p", json!("AQAB")),
            DropReason::PrivateKeyMaterial,
        ),
        (
            "private qi",
            with(rsa_jwk(None, None), "qi", json!("AQAB")),
            DropReason::PrivateKeyMaterial,
        ),
        (
            "private d on ec",
            with(ec.clone(), "d", json!("AQAB")),
            DropReason::PrivateKeyMaterial,
        ),
        (
            "private d on okp",
            with(ed_jwk(None, None), "d", json!("AQAB")),
            DropReason::PrivateKeyMaterial,
        ),
        (
            "private k on rsa",
            with(rsa_jwk(None, None), "k", json!("AQAB")),
            DropReason::PrivateKeyMaterial,
        ),
        (
            "alg none",
            rsa_jwk(None, Some("none")),
            DropReason::UnsupportedAlgorithm,
        ),
        (
            "alg HS256 on rsa",
            rsa_jwk(None, Some("HS256")),
            DropReason::UnsupportedAlgorithm,
        ),
        (
            "alg rs256 lowercase",
            rsa_jwk(None, Some("rs256")),
            DropReason::UnsupportedAlgorithm,
        ),
        (
            "alg RSA1_5",
            rsa_jwk(None, Some("RSA1_5")),
            DropReason::UnsupportedAlgorithm,
        ),
        (
            "alg number",
            with(rsa_jwk(None, None), "alg", json!(256)),
            DropReason::MalformedMember("alg"),
        ),
        (
            "alg ES256 on rsa",
            rsa_jwk(None, Some("ES256")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg RS256 on ec",
            ec_jwk(None, Some("RS256")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg ES256 on okp",
            ed_jwk(None, Some("ES256")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg EdDSA on ec",
            ec_jwk(None, Some("EdDSA")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg ES384 on P-256",
            ec_jwk(None, Some("ES384")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg ES256 on P-384",
            ec_jwk_on("P-384", None, Some("ES256")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg ES384 on P-521",
            ec_jwk_on("P-521", None, Some("ES384")),
            DropReason::AlgorithmKeyMismatch,
        ),
        (
            "alg ES256K",
            ec_jwk(None, Some("ES256K")),
            DropReason::UnsupportedAlgorithm,
        ),
        (
            "rsa 1024 bits",
            with(rsa_jwk(None, None), "n", json!(odd_modulus(1024))),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa 2040 bits",
            with(rsa_jwk(None, None), "n", json!(odd_modulus(2040))),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa 8192 bits",
            with(rsa_jwk(None, None), "n", json!(odd_modulus(8192))),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa exponent 1",
            with(rsa_jwk(None, None), "e", json!("AQ")),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa exponent 2",
            with(rsa_jwk(None, None), "e", json!("Ag")),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa exponent 65536",
            with(rsa_jwk(None, None), "e", json!(b64(&[1, 0, 0]))),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa exponent 5 bytes",
            with(rsa_jwk(None, None), "e", json!(b64(&[1, 0, 0, 0, 1]))),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa even modulus",
            with(rsa_jwk(None, None), "n", json!(b64(&[0xC0; 256]))),
            DropReason::RsaKeyRejected,
        ),
        (
            "rsa n missing",
            without(rsa_jwk(None, None), "n"),
            DropReason::MissingMember("n"),
        ),
        (
            "rsa e missing",
            without(rsa_jwk(None, None), "e"),
            DropReason::MissingMember("e"),
        ),
        (
            "rsa n padded",
            with(
                rsa_jwk(None, None),
                "n",
                json!(format!("{}=", odd_modulus(2048))),
            ),
            DropReason::MalformedMember("n"),
        ),
        (
            "rsa n standard alphabet",
            with(rsa_jwk(None, None), "n", json!("ab+/")),
            DropReason::MalformedMember("n"),
        ),
        (
            "rsa n empty",
            with(rsa_jwk(None, None), "n", json!("")),
            DropReason::MalformedMember("n"),
        ),
        (
            "rsa n number",
            with(rsa_jwk(None, None), "n", json!(7)),
            DropReason::MalformedMember("n"),
        ),
        (
            "ec off the curve",
            with(ec.clone(), "y", json!(b64(&y))),
            DropReason::InvalidPoint,
        ),
        (
            "ec identity-ish zero point",
            with(
                with(ec.clone(), "x", json!(b64(&[0; 32]))),
                "y",
                json!(b64(&[0; 32])),
            ),
            DropReason::InvalidPoint,
        ),
        (
            "ec x 31 bytes, its last byte dropped (another integer, off the curve)",
            with(ec.clone(), "x", json!(b64(&x[..31]))),
            DropReason::InvalidPoint,
        ),
        (
            "ec x 33 bytes",
            with(ec.clone(), "x", json!(b64(&x33))),
            DropReason::BadKeyLength,
        ),
        (
            "ec y missing",
            without(ec.clone(), "y"),
            DropReason::MissingMember("y"),
        ),
        (
            "ec crv missing",
            without(ec.clone(), "crv"),
            DropReason::MissingMember("crv"),
        ),
        (
            "P-256 coordinates labelled P-384 (short coordinates: another point, off the curve)",
            with(ec.clone(), "crv", json!("P-384")),
            DropReason::InvalidPoint,
        ),
        (
            "P-256 coordinates labelled P-521 (short coordinates: another point, off the curve)",
            with(ec.clone(), "crv", json!("P-521")),
            DropReason::InvalidPoint,
        ),
        (
            "P-384 coordinates labelled P-521 (short coordinates: another point, off the curve)",
            with(ec_jwk_on("P-384", None, None), "crv", json!("P-521")),
            DropReason::InvalidPoint,
        ),
        (
            "P-384 off the curve",
            {
                let k = ec_jwk_on("P-384", None, None);
                let mut y = crate::token::jwks::B64URL
                    .decode(k["y"].as_str().unwrap())
                    .unwrap();
                y[47] ^= 1;
                with(k, "y", json!(b64(&y)))
            },
            DropReason::InvalidPoint,
        ),
        (
            "P-521 off the curve",
            {
                let k = ec_jwk_on("P-521", None, None);
                let mut y = crate::token::jwks::B64URL
                    .decode(k["y"].as_str().unwrap())
                    .unwrap();
                y[65] ^= 1;
                with(k, "y", json!(b64(&y)))
            },
            DropReason::InvalidPoint,
        ),
        (
            "P-521 x of 2^521 - 1 (not below p)",
            {
                let mut x = vec![0xff_u8; 66];
                x[0] = 0x01;
                with(ec_jwk_on("P-521", None, None), "x", json!(b64(&x)))
            },
            DropReason::InvalidPoint,
        ),
        (
            "ec secp256k1",
            with(ec.clone(), "crv", json!("secp256k1")),
            DropReason::UnsupportedCurve,
        ),
        (
            "okp X25519",
            with(ed_jwk(None, None), "crv", json!("X25519")),
            DropReason::UnsupportedCurve,
        ),
        (
            "okp Ed448",
            with(ed_jwk(None, None), "crv", json!("Ed448")),
            DropReason::UnsupportedCurve,
        ),
        (
            "okp 31 bytes",
            with(ed_jwk(None, None), "x", json!(b64(&[9; 31]))),
            DropReason::BadKeyLength,
        ),
        (
            "okp small order point",
            with(ed_jwk(None, None), "x", json!(b64(&[0; 32]))),
            DropReason::InvalidPoint,
        ),
        (
            "kid number",
            with(rsa_jwk(None, None), "kid", json!(3)),
            DropReason::MalformedMember("kid"),
        ),
        (
            "kid too long",
            rsa_jwk(Some(&"k".repeat(MAX_KID_LEN + 1)), None),
            DropReason::KidTooLong,
        ),
    ];
    for (name, jwk, reason) in cases {
        assert_eq!(single_key_outcome(jwk), Err(reason), "{name}");
    }
}

#[test]
fn roca_fingerprinted_modulus_is_dropped() {
    let product = ROCA_PRIMES
        .iter()
        .fold(rsa::BigUint::from(1_u32), |acc, p| acc * *p);
    let n = rsa::BigUint::from(65_537_u32) + product * (rsa::BigUint::from(1_u32) << 1830);
    let n_bytes = n.to_bytes_be();
    assert!(has_roca_fingerprint(&n_bytes));
    let jwk = with(rsa_jwk(None, None), "n", json!(b64(&n_bytes)));
    assert_eq!(single_key_outcome(jwk), Err(DropReason::RocaVulnerable));
    let mut shifted = n_bytes.clone();
    let last = shifted.len() - 1;
    shifted[last] ^= 2;
    assert!(!has_roca_fingerprint(&shifted));
}

#[test]
fn duplicate_member_inside_a_key_drops_it() {
    let good = rsa_jwk(Some("good"), None).to_string();
    let body = format!(
        r#"{{"keys":[{good},{{"kty":"EC","kty":"RSA","kid":"dup","n":"AQ","e":"AQAB"}}]}}"#
    );
    let parsed = parse_jwks(body.as_bytes()).unwrap();
    assert_eq!(parsed.keys.len(), 1);
    assert_eq!(parsed.dropped.len(), 1);
    assert_eq!(parsed.dropped[0].reason, DropReason::DuplicateMember);
    assert_eq!(parsed.dropped[0].kid.as_deref(), Some("dup"));
}

#[test]
fn first_usable_key_keeps_a_duplicate_kid() {
    let parsed = parse_jwks(&jwks_body(&[
        with(rsa_jwk(Some("k1"), None), "use", json!("enc")),
        ec_jwk(Some("k1"), None),
        rsa_jwk(Some("k1"), None),
        ed_jwk(Some("k2"), None),
    ]))
    .unwrap();
    assert_eq!(parsed.keys.len(), 2);
    assert!(parsed.keys.get("k1").unwrap().admits(Alg::Es256));
    assert!(parsed.keys.get("k2").unwrap().admits(Alg::EdDsa));
    let reasons: Vec<(usize, &str)> = parsed
        .dropped
        .iter()
        .map(|d| (d.index, d.reason.as_str()))
        .collect();
    assert_eq!(reasons, vec![(0, "use_not_sig"), (2, "duplicate_kid")]);
}

#[test]
fn kid_lookup_is_exact_and_kidless_keys_are_listed_apart() {
    let parsed = parse_jwks(&jwks_body(&[
        rsa_jwk(Some("Key-1"), None),
        ec_jwk(None, None),
        ed_jwk(None, None),
    ]))
    .unwrap();
    let set = parsed.keys;
    assert!(set.get("Key-1").is_some());
    for miss in ["key-1", "KEY-1", "Key-1 ", " Key-1", "Key-", "Key-1\0", ""] {
        assert!(set.get(miss).is_none(), "{miss:?}");
    }
    assert_eq!(set.without_kid().count(), 2);
    assert_eq!(set.iter().count(), 3);
    let shared = set.clone();
    assert!(Arc::ptr_eq(&set.layers, &shared.layers));
}

#[test]
fn some_bad_keys_keep_the_good_ones() {
    let parsed = parse_jwks(&jwks_body(&[
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        rsa_jwk(Some("rsa"), None),
        with(rsa_jwk(Some("small"), None), "n", json!(odd_modulus(1024))),
        ec_jwk(Some("ec"), None),
        json!(42),
    ]))
    .unwrap();
    assert_eq!(parsed.keys.len(), 2);
    let dropped: Vec<(usize, Option<&str>, &str)> = parsed
        .dropped
        .iter()
        .map(|d| (d.index, d.kid.as_deref(), d.reason.as_str()))
        .collect();
    assert_eq!(
        dropped,
        vec![
            (0, Some("hmac"), "symmetric_key"),
            (2, Some("small"), "rsa_key_rejected"),
            (4, None, "not_an_object"),
        ]
    );
}

#[test]
fn document_errors() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_in_keys = format!(
        r#"{{"keys":[{}{}]}}"#,
        "{\"a\":".repeat(5_000),
        "1}".repeat(5_000)
    );
    let deep_ignored = format!(r#"{{"x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", b"".to_vec(), "not_json"),
        ("not json", b"<html>".to_vec(), "not_json"),
        (
            "truncated",
            br#"{"keys":[{"kty":"RSA""#.to_vec(),
            "not_json",
        ),
        ("trailing garbage", br#"{"keys":[]} x"#.to_vec(), "not_json"),
        (
            "invalid utf-8",
            b"{\"keys\":[\"\xff\"]}".to_vec(),
            "not_json",
        ),
        (
            "deep nesting (past 64 levels)",
            deep.into_bytes(),
            "not_json",
        ),
        (
            "deep nesting in a key",
            deep_in_keys.into_bytes(),
            "not_json",
        ),
        ("array", b"[]".to_vec(), "not_an_object"),
        ("string", br#""keys""#.to_vec(), "not_an_object"),
        ("number", b"1".to_vec(), "not_an_object"),
        ("null", b"null".to_vec(), "not_an_object"),
        (
            "deep nesting in an ignored member (past 64 levels)",
            deep_ignored.into_bytes(),
            "not_json",
        ),
        ("keys missing", br#"{"key":[]}"#.to_vec(), "missing_keys"),
        (
            "keys object",
            br#"{"keys":{"kty":"RSA"}}"#.to_vec(),
            "keys_not_array",
        ),
        (
            "keys string",
            br#"{"keys":"[]"}"#.to_vec(),
            "keys_not_array",
        ),
        ("keys null", br#"{"keys":null}"#.to_vec(), "keys_not_array"),
        (
            "keys twice",
            br#"{"keys":[],"keys":[]}"#.to_vec(),
            "duplicate_keys",
        ),
        ("keys empty", br#"{"keys":[]}"#.to_vec(), "no_usable_keys"),
    ];
    for (name, body, code) in cases {
        let err = parse_jwks(&body).expect_err(name);
        assert_eq!(err.as_str(), code, "{name}");
    }
}

#[test]
fn nesting_is_capped_at_64_levels_everywhere_in_the_document() {
    let key = rsa_jwk(Some("k"), None);
    let with_member = |levels: usize| {
        let mut entry = key.clone();
        entry["x-ext"] =
            serde_json::from_str(&format!("{}{}", "[".repeat(levels), "]".repeat(levels)))
                .unwrap_or(Value::Null);
        entry
    };
    // Levels: document 1, `keys` 2, the key 3, its member from 4.
    let in_key = |levels: usize| jwks_body(&[with_member(levels)]);
    let beside = |levels: usize| {
        format!(
            r#"{{"keys":[{key}],"x":{}{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
        .into_bytes()
    };
    let after_the_cap = |levels: usize| {
        let mut entries = vec![key.clone(); MAX_KEYS];
        entries.push(with_member(levels));
        jwks_body(&entries)
    };
    for (name, body, ok) in [
        ("in a key, 64", in_key(61), true),
        ("in a key, 65", in_key(62), false),
        ("beside keys, 64", beside(63), true),
        ("beside keys, 65", beside(64), false),
        ("skipped entry, 65", after_the_cap(62), false),
    ] {
        assert_eq!(parse_jwks(&body).is_ok(), ok, "{name}");
    }
}

#[test]
fn only_bad_keys_is_no_usable_keys_with_reasons() {
    let err = parse_jwks(&jwks_body(&[
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        with(rsa_jwk(Some("r"), None), "e", json!("AQ")),
        with(ec_jwk(None, None), "crv", json!("secp256k1")),
    ]))
    .unwrap_err();
    let JwksError::NoUsableKeys { dropped } = err else {
        panic!("expected NoUsableKeys, got {err:?}");
    };
    let reasons: Vec<&str> = dropped.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(
        reasons,
        vec!["symmetric_key", "rsa_key_rejected", "unsupported_curve"]
    );
}

#[test]
fn ten_thousand_keys_are_bounded() {
    let mut keys = vec![ec_jwk(Some("first"), None)];
    let filler = rsa_jwk(None, None);
    keys.extend((1..10_000).map(|i| with(filler.clone(), "kid", json!(format!("k{i}")))));
    let body = jwks_body(&keys);
    assert!(body.len() > 3_000_000);
    let started = std::time::Instant::now();
    let parsed = parse_jwks(&body).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(parsed.keys.len(), MAX_KEYS);
    assert!(parsed.keys.get("first").is_some());
    assert!(parsed.keys.get(&format!("k{}", MAX_KEYS - 1)).is_some());
    assert!(parsed.keys.get(&format!("k{MAX_KEYS}")).is_none());
    assert_eq!(
        parsed.dropped,
        vec![DroppedKey {
            index: MAX_KEYS,
            kid: None,
            reason: DropReason::TooManyKeys {
                ignored: 10_000 - MAX_KEYS
            },
        }]
    );
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
}

#[test]
fn ten_megabyte_body_is_linear() {
    let big = "A".repeat(10 * 1024 * 1024);
    let body = format!(r#"{{"padding":"{big}","keys":[{}]}}"#, ec_jwk(None, None));
    let parsed = parse_jwks(body.as_bytes()).unwrap();
    assert_eq!(parsed.keys.len(), 1);
    let many_small = format!("{{\"keys\":[{}{{}}]}}", "{},".repeat(3_000_000));
    let err = parse_jwks(many_small.as_bytes()).unwrap_err();
    let JwksError::NoUsableKeys { dropped } = err else {
        panic!("expected NoUsableKeys");
    };
    assert_eq!(dropped.len(), MAX_KEYS + 1);
}

#[test]
fn drop_reason_codes_are_distinct() {
    let all = [
        DropReason::NotAnObject,
        DropReason::DuplicateMember,
        DropReason::MissingMember("n"),
        DropReason::MalformedMember("n"),
        DropReason::SymmetricKey,
        DropReason::UnsupportedKeyType,
        DropReason::PrivateKeyMaterial,
        DropReason::NotForSignatures,
        DropReason::KeyOpsWithoutVerify,
        DropReason::UnsupportedAlgorithm,
        DropReason::AlgorithmKeyMismatch,
        DropReason::UnsupportedCurve,
        DropReason::BadKeyLength,
        DropReason::InvalidPoint,
        DropReason::RsaKeyRejected,
        DropReason::RocaVulnerable,
        DropReason::KidTooLong,
        DropReason::DuplicateKid,
        DropReason::TooManyKeys { ignored: 1 },
    ];
    let codes: std::collections::HashSet<&str> = all.iter().map(DropReason::as_str).collect();
    assert_eq!(codes.len(), all.len());
}

#[test]
fn alg_names_are_exact() {
    for alg in Alg::ALL {
        assert_eq!(Alg::from_name(alg.as_str()), Some(alg));
    }
    for name in [
        "none", "None", "NONE", "HS256", "rs256", "Rs256", "RS256 ", "es384", "ES256K", "ES521",
        "EDDSA", "Ed25519", "",
    ] {
        assert_eq!(Alg::from_name(name), None, "{name}");
    }
}

/// google/jwt_verify_lib's ES512 test key has a 65-byte `y` (its leading zero byte dropped), as
/// BoringSSL reads it: such a key is the same point, kept, and verifies its signatures. The key
/// is derived from the first scalar whose public `y` starts with a zero byte.
#[test]
fn ec_coordinates_without_their_leading_zero_bytes_are_kept() {
    use ::p256::ecdsa::signature::Signer;
    use ::p521::elliptic_curve::sec1::ToEncodedPoint;
    let (sk, x, y) = (1u8..)
        .find_map(|k| {
            let mut scalar = [0u8; 66];
            scalar[65] = k;
            let sk = ::p521::ecdsa::SigningKey::from_slice(&scalar).unwrap();
            let p = ::p521::ecdsa::VerifyingKey::from(&sk).to_encoded_point(false);
            let (x, y) = (p.x().unwrap().to_vec(), p.y().unwrap().to_vec());
            (y[0] == 0 && x[0] != 0).then_some((sk, x, y))
        })
        .unwrap();
    let jwk = json!({"kty": "EC", "crv": "P-521", "kid": "short", "x": b64(&x), "y": b64(&y[1..])});
    assert_eq!(B64URL.decode(jwk["y"].as_str().unwrap()).unwrap().len(), 65);
    assert_eq!(single_key_outcome(jwk.clone()), Ok(vec![Alg::Es512]));
    let parsed = parse_jwks(&jwks_body(&[jwk])).unwrap();
    let key = parsed.keys.get("short").unwrap();
    let sig: ::p521::ecdsa::Signature = sk.sign(b"header.payload");
    let sig = sig.to_bytes();
    assert!(crate::token::jwt::verify_signature(
        key,
        Alg::Es512,
        b"header.payload",
        &sig
    ));
    assert!(!crate::token::jwt::verify_signature(
        key,
        Alg::Es512,
        b"header.payload2",
        &sig
    ));
    let long =
        json!({"kty": "EC", "crv": "P-521", "x": b64(&[&[0u8][..], &x].concat()), "y": b64(&y)});
    assert_eq!(single_key_outcome(long), Err(DropReason::BadKeyLength));
}
