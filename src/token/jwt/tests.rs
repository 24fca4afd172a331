//! Tests for token verification: every algorithm accepted, every documented rejection, check order, header-value rendering.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hmac::{Hmac, Mac};
use serde_json::{json, Value};

use super::*;
use crate::token::jwks::testkit::{
    b64, ec_jwk, ec_jwk_on, ed_jwk, jwks_body, mint, mint_bytes, mint_raw, rsa_jwk, sign,
    standard_keyset,
};
use crate::token::jwks::{parse_jwks, Alg};

const ISS: &str = "https://login.example.com/tenant/v2.0";
const AUD: &str = "api://scoring";
const NOW: i64 = 1_700_000_000;
const SKEW: i64 = 60;
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

fn policy() -> TokenPolicy {
    TokenPolicy {
        issuers: vec![ISS.to_owned()],
        audiences: Some(vec![AUD.to_owned(), "api://other".to_owned()]),
        clock_skew_seconds: SKEW as u64,
        max_lifetime_seconds: Some(86_400),
        require_expiration: true,
        max_token_bytes: DEFAULT_MAX_TOKEN_LEN,
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 3600,
    })
}

fn kid_for(alg: Alg) -> &'static str {
    match alg {
        Alg::Es256 => "ec",
        Alg::Es384 => "ec384",
        Alg::Es512 => "ec521",
        Alg::EdDsa => "ed",
        _ => "rsa",
    }
}

fn header(alg: Alg) -> Value {
    json!({"alg": alg.as_str(), "typ": "JWT", "kid": kid_for(alg)})
}

fn with(mut v: Value, member: &str, value: Value) -> Value {
    v[member] = value;
    v
}

fn without(mut v: Value, member: &str) -> Value {
    v.as_object_mut().unwrap().remove(member);
    v
}

fn good(alg: Alg) -> String {
    mint(&header(alg), &claims())
}

fn check(token: &str) -> Result<VerifiedToken, TokenError> {
    verify(token, &standard_keyset(), &policy(), NOW)
}

fn split3(token: &str) -> [String; 3] {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3);
    [v[0].to_owned(), v[1].to_owned(), v[2].to_owned()]
}

fn join(parts: &[String; 3]) -> String {
    parts.join(".")
}

fn code(result: Result<VerifiedToken, TokenError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.as_str(),
    }
}

fn run_table(cases: Vec<(&str, String, &str)>) {
    let mut failures = Vec::new();
    for (name, token, expected) in cases {
        let got = code(check(&token));
        if got != expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_algorithm_is_accepted_with_and_without_kid() {
    let kidless = parse_jwks(&jwks_body(&[
        rsa_jwk(None, None),
        ec_jwk(None, None),
        ec_jwk_on("P-384", None, None),
        ec_jwk_on("P-521", None, None),
        ed_jwk(None, None),
    ]))
    .unwrap()
    .keys;
    for alg in Alg::ALL {
        let verified = check(&good(alg)).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.alg(), alg);
        assert_eq!(verified.kid(), Some(kid_for(alg)));
        assert_eq!(verified.exp(), Some(NOW + 3600));

        let token = mint(&json!({"alg": alg.as_str()}), &claims());
        let verified = verify(&token, &kidless, &policy(), NOW)
            .unwrap_or_else(|e| panic!("{alg} without kid: {e}"));
        assert_eq!(verified.kid(), None);
        assert_eq!(
            verify(&token, &standard_keyset(), &policy(), NOW).map(|v| v.alg()),
            Ok(alg),
            "{alg}: a kidless token may use keys that have a kid"
        );
    }
}

#[test]
fn signature_path_per_family() {
    let set = standard_keyset();
    let msg = b"header.payload";
    for alg in Alg::ALL {
        let key = set.get(kid_for(alg)).unwrap();
        let sig = sign(alg, msg);
        assert!(verify_signature(key, alg, msg, &sig), "{alg} verifies");
        assert!(
            !verify_signature(key, alg, b"header.payloaD", &sig),
            "{alg} other message"
        );
        let mut flipped = sig.clone();
        flipped[sig.len() / 2] ^= 0x01;
        assert!(
            !verify_signature(key, alg, msg, &flipped),
            "{alg} flipped signature"
        );
        assert!(
            !verify_signature(key, alg, msg, &sig[1..]),
            "{alg} truncated"
        );
        let mut longer = sig.clone();
        longer.push(0);
        assert!(!verify_signature(key, alg, msg, &longer), "{alg} extended");
        assert!(!verify_signature(key, alg, msg, &[]), "{alg} empty");
        for other in Alg::ALL.into_iter().filter(|o| *o != alg) {
            assert!(
                !verify_signature(key, other, msg, &sig),
                "{alg} signature accepted as {other}"
            );
        }
    }
}

fn flip_trailing_bit(part: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert_ne!(part.len() % 4, 0, "part has no trailing bits");
    let mut bytes = part.as_bytes().to_vec();
    let last = bytes.len() - 1;
    let idx = ALPHABET.iter().position(|c| *c == bytes[last]).unwrap();
    bytes[last] = ALPHABET[idx ^ 1];
    String::from_utf8(bytes).unwrap()
}

fn token_with_trailing_bits_in_every_part() -> String {
    for pad in 0..6 {
        let token = mint(
            &with(header(Alg::Es256), "x", json!("a".repeat(pad))),
            &with(claims(), "pad", json!("b".repeat(pad))),
        );
        let p = split3(&token);
        if p.iter().all(|s| s.len() % 4 != 0) {
            return token;
        }
    }
    panic!("could not build a token with trailing bits in every part");
}

fn der_from_p1363(sig: &[u8]) -> Vec<u8> {
    fn int(bytes: &[u8]) -> Vec<u8> {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let mut v = bytes[start..].to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }
    let mut body = int(&sig[..32]);
    body.extend(int(&sig[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn structure_rejections() {
    let t = good(Alg::Es256);
    let p = split3(&t);
    let tb = token_with_trailing_bits_in_every_part();
    let tbp = split3(&tb);
    let es = |h: &str, pl: &str| mint_raw(h, pl, Alg::Es256);
    let payload = claims().to_string();
    let hdr = header(Alg::Es256).to_string();
    let deep = format!(
        r#"{{"iss":"{ISS}","x":{}{}}}"#,
        "[".repeat(2_700),
        "]".repeat(2_700)
    );
    let mut invalid_utf8_header = br#"{"alg":"ES256","kid":"ec","x":""#.to_vec();
    invalid_utf8_header.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8_header.extend_from_slice(br#""}"#);
    let mut invalid_utf8_payload = payload.as_bytes()[..payload.len() - 1].to_vec();
    invalid_utf8_payload.extend_from_slice(b",\"x\":\"\xc3\x28\"}");

    let cases: Vec<(&str, String, &str)> = vec![
        ("baseline", t.clone(), "ok"),
        ("empty token", String::new(), "malformed_token"),
        ("two parts", format!("{}.{}", p[0], p[1]), "malformed_token"),
        (
            "two parts with trailing dot removed",
            format!("{}.{}", p[0], p[2]),
            "malformed_token",
        ),
        ("four parts", format!("{t}.{}", p[2]), "malformed_token"),
        ("four parts empty last", format!("{t}."), "malformed_token"),
        (
            "five parts (JWE shape)",
            format!("{t}.a.b"),
            "malformed_token",
        ),
        (
            "empty signature",
            format!("{}.{}.", p[0], p[1]),
            "malformed_token",
        ),
        (
            "empty payload",
            format!("{}..{}", p[0], p[2]),
            "malformed_token",
        ),
        (
            "empty header",
            format!(".{}.{}", p[1], p[2]),
            "malformed_token",
        ),
        ("only dots", "..".to_owned(), "malformed_token"),
        (
            "json serialization",
            format!(
                r#"{{"payload":"{}","signatures":[{{"protected":"{}","signature":"{}"}}]}}"#,
                p[1], p[0], p[2]
            ),
            "malformed_token",
        ),
        (
            "json flattened serialization",
            format!(
                r#"{{"payload":"{}","protected":"{}","signature":"{}"}}"#,
                p[1], p[0], p[2]
            ),
            "malformed_token",
        ),
        (
            "padding on header",
            format!("{}=.{}.{}", tbp[0], tbp[1], tbp[2]),
            "bad_base64",
        ),
        (
            "padding on payload",
            format!("{}.{}=.{}", tbp[0], tbp[1], tbp[2]),
            "bad_base64",
        ),
        (
            "padding on signature",
            format!("{}.{}.{}=", tbp[0], tbp[1], tbp[2]),
            "bad_base64",
        ),
        (
            "double padding",
            format!("{}.{}.{}==", tbp[0], tbp[1], tbp[2]),
            "bad_base64",
        ),
        (
            "plus in signature",
            format!("{}.{}.+{}", p[0], p[1], &p[2][1..]),
            "bad_base64",
        ),
        (
            "slash in signature",
            format!("{}.{}./{}", p[0], p[1], &p[2][1..]),
            "bad_base64",
        ),
        (
            "plus in payload",
            format!("{}.+{}.{}", p[0], &p[1][1..], p[2]),
            "bad_base64",
        ),
        (
            "space in payload",
            format!("{}.{} {}.{}", p[0], &p[1][..4], &p[1][4..], p[2]),
            "bad_base64",
        ),
        (
            "newline in header",
            format!("{}\n{}.{}.{}", &p[0][..4], &p[0][4..], p[1], p[2]),
            "bad_base64",
        ),
        ("leading space", format!(" {t}"), "bad_base64"),
        ("trailing newline", format!("{t}\n"), "bad_base64"),
        (
            "impossible length",
            format!(
                "{}.{}.{}A",
                tbp[0],
                tbp[1],
                &tbp[2][..tbp[2].len() - tbp[2].len() % 4]
            ),
            "bad_base64",
        ),
        (
            "non-ascii",
            format!("{}.{}é.{}", p[0], p[1], p[2]),
            "bad_base64",
        ),
        ("trailing bits baseline", tb.clone(), "ok"),
        (
            "trailing bits in header",
            format!("{}.{}.{}", flip_trailing_bit(&tbp[0]), tbp[1], tbp[2]),
            "bad_base64",
        ),
        (
            "trailing bits in payload",
            format!("{}.{}.{}", tbp[0], flip_trailing_bit(&tbp[1]), tbp[2]),
            "bad_base64",
        ),
        (
            "trailing bits in signature",
            format!("{}.{}.{}", tbp[0], tbp[1], flip_trailing_bit(&tbp[2])),
            "bad_base64",
        ),
        (
            "header is an array",
            es(r#"["ES256"]"#, &payload),
            "malformed_header",
        ),
        (
            "header is a string",
            es(r#""ES256""#, &payload),
            "malformed_header",
        ),
        ("header is null", es("null", &payload), "malformed_header"),
        (
            "header is not json",
            es("alg=ES256", &payload),
            "malformed_header",
        ),
        (
            "header has trailing data",
            es(&format!("{hdr} {{}}"), &payload),
            "malformed_header",
        ),
        (
            "payload is an array",
            es(&hdr, "[1,2]"),
            "malformed_payload",
        ),
        (
            "payload is a number",
            es(&hdr, "1700000000"),
            "malformed_payload",
        ),
        (
            "payload is a string",
            es(&hdr, r#""claims""#),
            "malformed_payload",
        ),
        ("payload is not json", es(&hdr, "foo"), "malformed_payload"),
        (
            "header invalid utf-8",
            mint_bytes(&invalid_utf8_header, payload.as_bytes(), Alg::Es256),
            "malformed_header",
        ),
        (
            "payload invalid utf-8",
            mint_bytes(hdr.as_bytes(), &invalid_utf8_payload, Alg::Es256),
            "malformed_payload",
        ),
        (
            "payload nested too deep",
            es(&hdr, &deep),
            "malformed_payload",
        ),
        (
            "payload nested 64 levels (the cap)",
            es(&hdr, &nested_claims(63)),
            "ok",
        ),
        (
            "payload nested 65 levels",
            es(&hdr, &nested_claims(64)),
            "malformed_payload",
        ),
        (
            "payload nested 101 levels (jwt_authn refuses too)",
            es(&hdr, &nested_claims(100)),
            "malformed_payload",
        ),
        (
            "header nested 65 levels",
            es(
                &format!(
                    r#"{{"alg":"ES256","kid":"ec","x":{}{}}}"#,
                    "[".repeat(64),
                    "]".repeat(64)
                ),
                &payload,
            ),
            "malformed_header",
        ),
        (
            "duplicate alg",
            es(r#"{"alg":"ES256","kid":"ec","alg":"ES256"}"#, &payload),
            "duplicate_member",
        ),
        (
            "duplicate alg, other value",
            es(r#"{"alg":"none","kid":"ec","alg":"ES256"}"#, &payload),
            "duplicate_member",
        ),
        (
            "duplicate kid",
            es(r#"{"alg":"ES256","kid":"ec","kid":"rsa"}"#, &payload),
            "duplicate_member",
        ),
        (
            "duplicate exp",
            es(
                &hdr,
                &format!(
                    r#"{{"iss":"{ISS}","aud":"{AUD}","exp":1,"exp":{}}}"#,
                    NOW + 60
                ),
            ),
            "duplicate_member",
        ),
        (
            "duplicate aud",
            es(
                &hdr,
                &format!(
                    r#"{{"iss":"{ISS}","aud":"x","aud":"{AUD}","exp":{}}}"#,
                    NOW + 60
                ),
            ),
            "duplicate_member",
        ),
        (
            "duplicate iss",
            es(
                &hdr,
                &format!(
                    r#"{{"iss":"{ISS}","iss":"{ISS}","aud":"{AUD}","exp":{}}}"#,
                    NOW + 60
                ),
            ),
            "duplicate_member",
        ),
        (
            "duplicate nested member",
            es(
                &hdr,
                &format!(
                    r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"roles":{{"a":1,"a":2}}}}"#,
                    NOW + 60
                ),
            ),
            "duplicate_member",
        ),
        (
            "escaped duplicate",
            es(
                &hdr,
                &format!(
                    r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"e\u0078p":1}}"#,
                    NOW + 60
                ),
            ),
            "duplicate_member",
        ),
        (
            "too long",
            mint(
                &with(header(Alg::Es256), "pad", json!("p".repeat(MAX_TOKEN_LEN))),
                &claims(),
            ),
            "token_too_long",
        ),
        (
            "too long garbage",
            "!".repeat(MAX_TOKEN_LEN + 1),
            "token_too_long",
        ),
    ];
    run_table(cases);
    assert!(
        es(&hdr, &deep).len() <= MAX_TOKEN_LEN,
        "deep case must hit the depth limit, not the length cap"
    );
}

/// The standard claims plus `x`, an array nested `levels` deep (the payload object adds one).
fn nested_claims(levels: usize) -> String {
    let mut c = claims().to_string();
    c.pop();
    format!(r#"{c},"x":{}{}}}"#, "[".repeat(levels), "]".repeat(levels))
}

#[test]
fn registered_claims_of_the_wrong_type_are_refused() {
    let es = header(Alg::Es256);
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    for claim in ["sub", "jti"] {
        for (kind, value) in [
            ("number", json!(123)),
            ("null", Value::Null),
            ("true", json!(true)),
            ("object", json!({"id": "x"})),
            ("array", json!(["x"])),
        ] {
            cases.push((
                format!("{claim} {kind}"),
                mint(&es, &with(claims(), claim, value)),
                "invalid_claim_type",
            ));
        }
        cases.push((
            format!("{claim} string"),
            mint(&es, &with(claims(), claim, json!("id-1"))),
            "ok",
        ));
    }
    for claim in ["exp", "nbf", "iat"] {
        cases.push((
            format!("{claim} string"),
            mint(&es, &with(claims(), claim, json!("1700000000"))),
            "invalid_claim_type",
        ));
    }
    cases.push((
        "aud array with a number".to_string(),
        mint(&es, &with(claims(), "aud", json!([AUD, 7]))),
        "invalid_claim_type",
    ));
    cases.push((
        "unregistered claims may have any type".to_string(),
        mint(&es, &with(claims(), "azp", json!({"x": [1, null]}))),
        "ok",
    ));
    run_table(
        cases
            .iter()
            .map(|(n, t, c)| (n.as_str(), t.clone(), *c))
            .collect(),
    );
}

#[test]
fn several_issuers_and_the_size_cap() {
    let es = header(Alg::Es256);
    let keys = standard_keyset();
    let two = TokenPolicy {
        issuers: vec!["https://sts.windows.net/t/".to_owned(), ISS.to_owned()],
        ..policy()
    };
    let cases: &[(&str, &str)] = &[
        (ISS, "ok"),
        ("https://sts.windows.net/t/", "ok"),
        ("https://sts.windows.net/t", "issuer_mismatch"),
        ("https://STS.windows.net/t/", "issuer_mismatch"),
        ("", "issuer_mismatch"),
    ];
    for (iss, want) in cases {
        let token = mint(&es, &with(claims(), "iss", json!(iss)));
        assert_eq!(code(verify(&token, &keys, &two, NOW)), *want, "{iss}");
    }
    let token = good(Alg::Es256);
    for (cap, want) in [
        (token.len(), "ok"),
        (token.len() - 1, "token_too_long"),
        (usize::MAX, "ok"),
    ] {
        let capped = TokenPolicy {
            max_token_bytes: cap,
            ..policy()
        };
        assert_eq!(code(verify(&token, &keys, &capped, NOW)), want, "{cap}");
    }
    let big = mint(
        &es,
        &with(claims(), "groups", json!(vec!["0".repeat(36); 1_500])),
    );
    assert!(big.len() > MAX_TOKEN_LEN);
    let unlimited = TokenPolicy {
        max_token_bytes: usize::MAX,
        ..policy()
    };
    assert_eq!(code(verify(&big, &keys, &unlimited, NOW)), "token_too_long");
}

fn hs256_with_rsa_public_key() -> String {
    let jwk = rsa_jwk(Some("rsa"), None);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","kid":"rsa"}"#),
        b64(claims().to_string().as_bytes())
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(jwk.to_string().as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

#[test]
fn header_rejections() {
    let c = claims();
    let c_str = c.to_string();
    let fake_sig = b64(&[7_u8; 64]);
    let unsigned = |h: &str| format!("{}.{}.", b64(h.as_bytes()), b64(c_str.as_bytes()));
    let fake = |h: &str| format!("{}.{}.{fake_sig}", b64(h.as_bytes()), b64(c_str.as_bytes()));
    let attacker = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let attacker_point = attacker.verifying_key().to_encoded_point(false);
    let attacker_jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": b64(attacker_point.x().unwrap()), "y": b64(attacker_point.y().unwrap()),
    });
    let attacker_input = format!(
        "{}.{}",
        b64(json!({"alg": "ES256", "kid": "ec", "jwk": attacker_jwk})
            .to_string()
            .as_bytes()),
        b64(c_str.as_bytes())
    );
    let attacker_sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&attacker, attacker_input.as_bytes());
    let attacker_sig = attacker_sig.to_bytes();
    let attacker_token = format!("{attacker_input}.{}", b64(&attacker_sig));

    let es = header(Alg::Es256);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none unsigned",
            unsigned(r#"{"alg":"none"}"#),
            "malformed_token",
        ),
        ("alg none", fake(r#"{"alg":"none"}"#), "unsupported_alg"),
        ("alg None", fake(r#"{"alg":"None"}"#), "unsupported_alg"),
        (
            "alg NONE",
            fake(r#"{"alg":"NONE","kid":"rsa"}"#),
            "unsupported_alg",
        ),
        ("alg nOnE", fake(r#"{"alg":"nOnE"}"#), "unsupported_alg"),
        (
            "HS256 with the RSA public key as secret",
            hs256_with_rsa_public_key(),
            "unsupported_alg",
        ),
        (
            "HS384",
            fake(r#"{"alg":"HS384","kid":"rsa"}"#),
            "unsupported_alg",
        ),
        (
            "lowercase rs256",
            mint_raw(r#"{"alg":"rs256","kid":"rsa"}"#, &c_str, Alg::Rs256),
            "unsupported_alg",
        ),
        (
            "lowercase eddsa",
            mint_raw(r#"{"alg":"EDDSA","kid":"ed"}"#, &c_str, Alg::EdDsa),
            "unsupported_alg",
        ),
        (
            "ES256K",
            fake(r#"{"alg":"ES256K","kid":"ec"}"#),
            "unsupported_alg",
        ),
        (
            "ES384 under the P-256 key",
            fake(r#"{"alg":"ES384","kid":"ec"}"#),
            "key_alg_mismatch",
        ),
        (
            "ES256 under the P-384 key",
            fake(r#"{"alg":"ES256","kid":"ec384"}"#),
            "key_alg_mismatch",
        ),
        (
            "RSA1_5",
            fake(r#"{"alg":"RSA1_5","kid":"rsa"}"#),
            "unsupported_alg",
        ),
        (
            "alg with space",
            fake(r#"{"alg":"RS256 ","kid":"rsa"}"#),
            "unsupported_alg",
        ),
        ("alg missing", fake(r#"{"kid":"rsa"}"#), "malformed_header"),
        (
            "alg number",
            fake(r#"{"alg":256,"kid":"rsa"}"#),
            "malformed_header",
        ),
        (
            "alg array",
            fake(r#"{"alg":["RS256"],"kid":"rsa"}"#),
            "malformed_header",
        ),
        (
            "alg null",
            fake(r#"{"alg":null,"kid":"rsa"}"#),
            "malformed_header",
        ),
        (
            "ES256 signed, kid of the RSA key",
            mint(&json!({"alg": "ES256", "kid": "rsa"}), &c),
            "key_alg_mismatch",
        ),
        (
            "RS256 signed, kid of the EC key",
            mint(&json!({"alg": "RS256", "kid": "ec"}), &c),
            "key_alg_mismatch",
        ),
        (
            "EdDSA signed, kid of the EC key",
            mint(&json!({"alg": "EdDSA", "kid": "ec"}), &c),
            "key_alg_mismatch",
        ),
        (
            "unknown kid",
            mint(&with(es.clone(), "kid", json!("nope")), &c),
            "unknown_kid",
        ),
        (
            "kid differs in case",
            mint(&with(es.clone(), "kid", json!("EC")), &c),
            "unknown_kid",
        ),
        (
            "kid path traversal",
            mint(&with(es.clone(), "kid", json!("../../etc/passwd")), &c),
            "unknown_kid",
        ),
        (
            "kid with NUL",
            mint(&with(es.clone(), "kid", json!("ec\u{0}")), &c),
            "unknown_kid",
        ),
        (
            "kid empty is no kid (as in jwt_authn): the kidless search finds the key",
            mint(&with(es.clone(), "kid", json!("")), &c),
            "ok",
        ),
        (
            "kid 10 KB",
            mint(&with(es.clone(), "kid", json!("k".repeat(10_240))), &c),
            "invalid_kid",
        ),
        (
            "kid 40 KB",
            mint(&with(es.clone(), "kid", json!("k".repeat(40_960))), &c),
            "token_too_long",
        ),
        (
            "kid over the cap",
            mint(
                &with(es.clone(), "kid", json!("k".repeat(MAX_KID_LEN + 1))),
                &c,
            ),
            "invalid_kid",
        ),
        (
            "kid number",
            mint(&with(es.clone(), "kid", json!(1)), &c),
            "invalid_kid",
        ),
        (
            "kid null",
            mint(&with(es.clone(), "kid", Value::Null), &c),
            "invalid_kid",
        ),
        (
            "kid object",
            mint(&with(es.clone(), "kid", json!({"kid": "ec"})), &c),
            "invalid_kid",
        ),
        (
            "crit",
            mint(&with(es.clone(), "crit", json!(["exp"])), &c),
            "crit_not_supported",
        ),
        (
            "crit empty",
            mint(&with(es.clone(), "crit", json!([])), &c),
            "crit_not_supported",
        ),
        (
            "crit b64",
            mint(
                &with(
                    with(es.clone(), "crit", json!(["b64"])),
                    "b64",
                    json!(false),
                ),
                &c,
            ),
            "crit_not_supported",
        ),
        (
            "cty JWT",
            mint(&with(es.clone(), "cty", json!("JWT")), &c),
            "nested_token",
        ),
        (
            "cty jwt",
            mint(&with(es.clone(), "cty", json!("jwt")), &c),
            "nested_token",
        ),
        (
            "cty number",
            mint(&with(es.clone(), "cty", json!(1)), &c),
            "malformed_header",
        ),
        (
            "cty other is fine",
            mint(&with(es.clone(), "cty", json!("application/json")), &c),
            "ok",
        ),
        (
            "embedded attacker jwk ignored",
            attacker_token,
            "invalid_signature",
        ),
        (
            "jku and x5u never fetched",
            mint(
                &with(
                    with(es.clone(), "jku", json!("https://evil.example/jwks")),
                    "x5u",
                    json!("https://evil.example/x5u"),
                ),
                &c,
            ),
            "ok",
        ),
        (
            "x5c ignored",
            mint(&with(es.clone(), "x5c", json!(["MIIB"])), &c),
            "ok",
        ),
    ];
    run_table(cases);
}

#[test]
fn key_alg_restricts_and_header_never_widens() {
    let set = parse_jwks(&jwks_body(&[
        rsa_jwk(Some("rs256-only"), Some("RS256")),
        rsa_jwk(Some("ps384-only"), Some("PS384")),
        rsa_jwk(Some("any-rsa"), None),
    ]))
    .unwrap()
    .keys;
    let cases = [
        ("rs256-only", Alg::Rs256, "ok"),
        ("rs256-only", Alg::Ps256, "key_alg_mismatch"),
        ("rs256-only", Alg::Rs512, "key_alg_mismatch"),
        ("ps384-only", Alg::Ps384, "ok"),
        ("ps384-only", Alg::Rs384, "key_alg_mismatch"),
        ("any-rsa", Alg::Rs384, "ok"),
        ("any-rsa", Alg::Ps512, "ok"),
    ];
    for (kid, alg, expected) in cases {
        let token = mint(&json!({"alg": alg.as_str(), "kid": kid}), &claims());
        assert_eq!(
            code(verify(&token, &set, &policy(), NOW)),
            expected,
            "{kid} {alg}"
        );
    }
    let ec_only = parse_jwks(&jwks_body(&[ec_jwk(None, None)])).unwrap().keys;
    let token = mint(&json!({"alg": "RS256"}), &claims());
    assert_eq!(
        code(verify(&token, &ec_only, &policy(), NOW)),
        "key_alg_mismatch"
    );
}

#[test]
fn kidless_tokens_try_a_bounded_number_of_keys() {
    let many: Vec<Value> = (0..=MAX_KIDLESS_CANDIDATES)
        .map(|i| rsa_jwk(Some(&format!("k{i}")), None))
        .collect();
    let set = parse_jwks(&jwks_body(&many)).unwrap().keys;
    let token = mint(&json!({"alg": "RS256"}), &claims());
    assert_eq!(code(verify(&token, &set, &policy(), NOW)), "kid_required");
    let with_kid = mint(&json!({"alg": "RS256", "kid": "k3"}), &claims());
    assert_eq!(code(verify(&with_kid, &set, &policy(), NOW)), "ok");

    let few = parse_jwks(&jwks_body(&many[..MAX_KIDLESS_CANDIDATES]))
        .unwrap()
        .keys;
    assert_eq!(code(verify(&token, &few, &policy(), NOW)), "ok");
}

#[test]
fn signature_rejections() {
    let t = good(Alg::Es256);
    let p = split3(&t);
    let sig = crate::token::jwks::B64URL.decode(&p[2]).unwrap();
    let with_sig = |s: &[u8]| format!("{}.{}.{}", p[0], p[1], b64(s));
    let mut r_n = P256_N.to_vec();
    r_n.extend_from_slice(&sig[32..]);
    let mut s_n = sig[..32].to_vec();
    s_n.extend_from_slice(&P256_N);
    let mut r_zero = vec![0_u8; 32];
    r_zero.extend_from_slice(&sig[32..]);
    let mut s_zero = sig[..32].to_vec();
    s_zero.extend_from_slice(&[0; 32]);
    let mut s_minus = sig[..32].to_vec();
    let neg_s = {
        let mut out = [0_u8; 32];
        let mut borrow = 0_i16;
        for i in (0..32).rev() {
            let d = i16::from(P256_N[i]) - i16::from(sig[32 + i]) - borrow;
            borrow = i16::from(d < 0);
            out[i] = (d + 256 * borrow) as u8;
        }
        out
    };
    s_minus.extend_from_slice(&neg_s);
    let mut padded65 = vec![0_u8];
    padded65.extend_from_slice(&sig);

    let mut cases: Vec<(&str, String, &str)> = vec![
        ("baseline", t.clone(), "ok"),
        ("r=s=0", with_sig(&[0; 64]), "invalid_signature"),
        ("r=0", with_sig(&r_zero), "invalid_signature"),
        ("s=0", with_sig(&s_zero), "invalid_signature"),
        ("r=n", with_sig(&r_n), "invalid_signature"),
        ("s=n", with_sig(&s_n), "invalid_signature"),
        (
            "r=s=n",
            with_sig(&[P256_N, P256_N].concat()),
            "invalid_signature",
        ),
        ("r=s=0xff..", with_sig(&[0xff; 64]), "invalid_signature"),
        (
            "high s (malleated) is still a valid ECDSA signature",
            with_sig(&s_minus),
            "ok",
        ),
        (
            "DER encoded",
            with_sig(&der_from_p1363(&sig)),
            "invalid_signature",
        ),
        ("63 bytes", with_sig(&sig[..63]), "invalid_signature"),
        (
            "65 bytes, leading zero",
            with_sig(&padded65),
            "invalid_signature",
        ),
        (
            "65 bytes, trailing zero",
            with_sig(&[sig.clone(), vec![0]].concat()),
            "invalid_signature",
        ),
        (
            "128 bytes",
            with_sig(&[sig.clone(), sig.clone()].concat()),
            "invalid_signature",
        ),
        ("1 byte", with_sig(&[1]), "invalid_signature"),
    ];

    let mut tampered = Vec::new();
    for alg in Alg::ALL {
        let base = good(alg);
        let q = split3(&base);
        let h2 = with(header(alg), "typ", json!("JWS"));
        let c2 = with(claims(), "sub", json!("user-2"));
        let mut sig = crate::token::jwks::B64URL.decode(&q[2]).unwrap();
        let mid = sig.len() / 2;
        sig[mid] ^= 0x10;
        tampered.push((
            format!("{alg} header bit"),
            join(&[b64(h2.to_string().as_bytes()), q[1].clone(), q[2].clone()]),
        ));
        tampered.push((
            format!("{alg} payload bit"),
            join(&[q[0].clone(), b64(c2.to_string().as_bytes()), q[2].clone()]),
        ));
        tampered.push((
            format!("{alg} signature bit"),
            join(&[q[0].clone(), q[1].clone(), b64(&sig)]),
        ));
        tampered.push((
            format!("{alg} last signature byte"),
            join(&[q[0].clone(), q[1].clone(), {
                let mut s = crate::token::jwks::B64URL.decode(&q[2]).unwrap();
                let last = s.len() - 1;
                s[last] ^= 0x01;
                b64(&s)
            }]),
        ));
    }
    for (name, token) in &tampered {
        cases.push((name.as_str(), token.clone(), "invalid_signature"));
    }
    run_table(cases);
}

#[test]
fn issuer_rejections() {
    let es = header(Alg::Es256);
    let cases: Vec<(&str, String, &str)> = vec![
        ("exact", mint(&es, &claims()), "ok"),
        (
            "case differs",
            mint(&es, &with(claims(), "iss", json!(ISS.to_uppercase()))),
            "issuer_mismatch",
        ),
        (
            "one letter case",
            mint(
                &es,
                &with(claims(), "iss", json!(ISS.replace("login", "Login"))),
            ),
            "issuer_mismatch",
        ),
        (
            "trailing slash",
            mint(&es, &with(claims(), "iss", json!(format!("{ISS}/")))),
            "issuer_mismatch",
        ),
        (
            "missing",
            mint(&es, &without(claims(), "iss")),
            "issuer_mismatch",
        ),
        (
            "number",
            mint(&es, &with(claims(), "iss", json!(1))),
            "invalid_claim_type",
        ),
        (
            "array",
            mint(&es, &with(claims(), "iss", json!([ISS]))),
            "invalid_claim_type",
        ),
        (
            "null",
            mint(&es, &with(claims(), "iss", Value::Null)),
            "invalid_claim_type",
        ),
    ];
    run_table(cases);
}

#[test]
fn time_claims() {
    let es = header(Alg::Es256);
    let c = |member: &str, value: Value| mint(&es, &with(claims(), member, value));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "exp missing",
            mint(&es, &without(claims(), "exp")),
            "missing_exp",
        ),
        (
            "exp beyond skew",
            c("exp", json!(NOW - SKEW - 1)),
            "token_expired",
        ),
        (
            "exp exactly at the boundary (now == exp + skew)",
            c("exp", json!(NOW - SKEW)),
            "token_expired",
        ),
        (
            "exp one second inside the skew",
            c("exp", json!(NOW - SKEW + 1)),
            "ok",
        ),
        ("exp long ago", c("exp", json!(1)), "token_expired"),
        ("exp zero", c("exp", json!(0)), "token_expired"),
        (
            "nbf beyond skew",
            c("nbf", json!(NOW + SKEW + 1)),
            "token_not_yet_valid",
        ),
        (
            "nbf exactly at now + skew",
            c("nbf", json!(NOW + SKEW)),
            "ok",
        ),
        (
            "iat beyond skew",
            c("iat", json!(NOW + SKEW + 1)),
            "iat_in_future",
        ),
        (
            "iat exactly at now + skew",
            c("iat", json!(NOW + SKEW)),
            "ok",
        ),
        (
            "exp string",
            c("exp", json!((NOW + 60).to_string())),
            "invalid_claim_type",
        ),
        ("exp bool", c("exp", json!(true)), "invalid_claim_type"),
        ("exp null", c("exp", Value::Null), "invalid_claim_type"),
        (
            "exp object",
            c("exp", json!({"t": NOW})),
            "invalid_claim_type",
        ),
        (
            "exp array",
            c("exp", json!([NOW + 60])),
            "invalid_claim_type",
        ),
        ("nbf string", c("nbf", json!("0")), "invalid_claim_type"),
        ("nbf bool", c("nbf", json!(false)), "invalid_claim_type"),
        ("nbf null", c("nbf", Value::Null), "invalid_claim_type"),
        ("iat string", c("iat", json!("now")), "invalid_claim_type"),
        ("iat bool", c("iat", json!(true)), "invalid_claim_type"),
        ("iat null", c("iat", Value::Null), "invalid_claim_type"),
        ("exp float", c("exp", json!(NOW as f64 + 100.9)), "ok"),
        ("nbf float", c("nbf", json!(NOW as f64 + 0.5)), "ok"),
        ("iat float", c("iat", json!(NOW as f64 - 0.25)), "ok"),
        (
            "exp float exactly at the boundary after truncation",
            c("exp", json!((NOW - SKEW) as f64 + 0.999)),
            "token_expired",
        ),
        ("exp negative", c("exp", json!(-1)), "invalid_time_claim"),
        (
            "exp negative float",
            c("exp", json!(-0.5)),
            "invalid_time_claim",
        ),
        ("nbf negative", c("nbf", json!(-100)), "invalid_time_claim"),
        ("iat negative", c("iat", json!(-5)), "invalid_time_claim"),
        ("exp 1e20", c("exp", json!(1e20)), "invalid_time_claim"),
        (
            "exp u64 max",
            c("exp", json!(u64::MAX)),
            "invalid_time_claim",
        ),
        (
            "exp i64 max",
            c("exp", json!(i64::MAX)),
            "invalid_time_claim",
        ),
        (
            "exp i64 min",
            c("exp", json!(i64::MIN)),
            "invalid_time_claim",
        ),
        ("exp 1e308", c("exp", json!(1e308)), "invalid_time_claim"),
        (
            "exp just past year 9999",
            c("exp", json!(MAX_TIMESTAMP + 1)),
            "invalid_time_claim",
        ),
        (
            "nbf -8334601228800",
            c("nbf", json!(-8_334_601_228_800_i64)),
            "invalid_time_claim",
        ),
        (
            "iat -8334601228800",
            c("iat", json!(-8_334_601_228_800_i64)),
            "invalid_time_claim",
        ),
        ("nbf 1e20", c("nbf", json!(1e20)), "invalid_time_claim"),
        ("nbf zero", c("nbf", json!(0)), "ok"),
        (
            "iat zero is past the lifetime cap",
            c("iat", json!(0)),
            "lifetime_too_long",
        ),
        (
            "lifetime exactly the cap",
            mint(
                &es,
                &with(
                    with(claims(), "iat", json!(NOW)),
                    "exp",
                    json!(NOW + 86_400),
                ),
            ),
            "ok",
        ),
        (
            "lifetime over the cap",
            mint(
                &es,
                &with(
                    with(claims(), "iat", json!(NOW)),
                    "exp",
                    json!(NOW + 86_401),
                ),
            ),
            "lifetime_too_long",
        ),
        (
            "lifetime without iat uses now",
            mint(
                &es,
                &with(without(claims(), "iat"), "exp", json!(NOW + 86_401)),
            ),
            "lifetime_too_long",
        ),
        (
            "lifetime without iat within cap",
            mint(
                &es,
                &with(without(claims(), "iat"), "exp", json!(NOW + 86_400)),
            ),
            "ok",
        ),
    ];
    run_table(cases);
    let float = mint(&es, &with(claims(), "exp", json!(NOW as f64 + 100.9)));
    assert_eq!(check(&float).unwrap().exp(), Some(NOW + 100));
}

#[test]
fn time_policy_switches_and_extreme_clocks() {
    let es = header(Alg::Es256);
    let no_exp = mint(&es, &without(claims(), "exp"));
    let far = mint(&es, &with(claims(), "exp", json!(MAX_TIMESTAMP)));
    let keys = standard_keyset();
    let relaxed = TokenPolicy {
        require_expiration: false,
        max_lifetime_seconds: None,
        ..policy()
    };
    assert_eq!(code(verify(&no_exp, &keys, &relaxed, NOW)), "ok");
    assert_eq!(verify(&no_exp, &keys, &relaxed, NOW).unwrap().exp(), None);
    let capped = TokenPolicy {
        require_expiration: false,
        ..policy()
    };
    assert_eq!(
        code(verify(&no_exp, &keys, &capped, NOW)),
        "lifetime_too_long"
    );
    assert_eq!(code(verify(&far, &keys, &relaxed, NOW)), "ok");
    assert_eq!(
        code(verify(&far, &keys, &policy(), NOW)),
        "lifetime_too_long"
    );

    let huge_skew = TokenPolicy {
        clock_skew_seconds: u64::MAX,
        ..relaxed.clone()
    };
    for now in [i64::MIN, -1, 0, i64::MAX] {
        for token in [&no_exp, &far, &good(Alg::Es256)] {
            let _ = verify(token, &keys, &policy(), now);
            let _ = verify(token, &keys, &relaxed, now);
            let _ = verify(token, &keys, &huge_skew, now);
        }
    }
    assert_eq!(
        code(verify(&far, &keys, &relaxed, i64::MAX)),
        "token_expired"
    );
    assert_eq!(
        code(verify(&good(Alg::Es256), &keys, &relaxed, i64::MIN)),
        "token_not_yet_valid"
    );
}

#[test]
fn audience() {
    let es = header(Alg::Es256);
    let a = |value: Value| mint(&es, &with(claims(), "aud", value));
    let forged_wrong_aud = {
        let t = a(json!("api://elsewhere"));
        let p = split3(&t);
        join(&[p[0].clone(), p[1].clone(), b64(&[1_u8; 64])])
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("string match", a(json!(AUD)), "ok"),
        ("second allowed audience", a(json!("api://other")), "ok"),
        ("array with a match", a(json!(["api://x", AUD])), "ok"),
        (
            "string not allowed",
            a(json!("api://elsewhere")),
            "audience_not_allowed",
        ),
        (
            "case differs",
            a(json!(AUD.to_uppercase())),
            "audience_not_allowed",
        ),
        (
            "array without a match",
            a(json!(["api://x", "api://y"])),
            "audience_not_allowed",
        ),
        ("empty array", a(json!([])), "invalid_audience"),
        ("number", a(json!(42)), "invalid_claim_type"),
        ("mixed array", a(json!([AUD, 1])), "invalid_claim_type"),
        (
            "array with null",
            a(json!([AUD, null])),
            "invalid_claim_type",
        ),
        ("object", a(json!({"aud": AUD})), "invalid_claim_type"),
        ("null", a(Value::Null), "invalid_claim_type"),
        (
            "missing",
            mint(&es, &without(claims(), "aud")),
            "invalid_audience",
        ),
        (
            "not allowed but forged: the signature decides first",
            forged_wrong_aud,
            "invalid_signature",
        ),
    ];
    run_table(cases);

    let keys = standard_keyset();
    let any_aud = TokenPolicy {
        audiences: None,
        ..policy()
    };
    for token in [
        a(json!("api://elsewhere")),
        mint(&es, &without(claims(), "aud")),
    ] {
        assert_eq!(code(verify(&token, &keys, &any_aud, NOW)), "ok");
    }
    assert_eq!(
        code(verify(&a(json!(42)), &keys, &any_aud, NOW)),
        "invalid_claim_type"
    );
    let err = check(&a(json!("api://elsewhere"))).unwrap_err();
    assert!(err.is_forbidden());
}

#[test]
fn cheap_checks_run_before_the_signature() {
    let es = header(Alg::Es256);
    let forge = |h: &Value, c: &Value| {
        let t = mint(h, c);
        let p = split3(&t);
        join(&[p[0].clone(), p[1].clone(), b64(&[3_u8; 64])])
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "forged, expired",
            forge(&es, &with(claims(), "exp", json!(1))),
            "token_expired",
        ),
        (
            "forged, wrong issuer",
            forge(&es, &with(claims(), "iss", json!("x"))),
            "issuer_mismatch",
        ),
        (
            "forged, unknown kid, wrong issuer",
            forge(
                &with(es.clone(), "kid", json!("new")),
                &with(claims(), "iss", json!("x")),
            ),
            "unknown_kid",
        ),
        (
            "forged, bad aud type",
            forge(&es, &with(claims(), "aud", json!(1))),
            "invalid_claim_type",
        ),
        (
            "forged, bad time type, wrong issuer",
            forge(
                &es,
                &with(with(claims(), "exp", json!("x")), "iss", json!("x")),
            ),
            "invalid_claim_type",
        ),
        (
            "forged, crit, unknown kid",
            forge(
                &with(with(es.clone(), "crit", json!(["x"])), "kid", json!("new")),
                &claims(),
            ),
            "crit_not_supported",
        ),
        (
            "forged, otherwise fine",
            forge(&es, &claims()),
            "invalid_signature",
        ),
    ];
    run_table(cases);
}

#[test]
fn claim_header_values() {
    let extra = json!({
        "name": "Ada Lovelace",
        "oid": "00000000-0000-0000-0000-000000000001",
        "n": 42,
        "f": 1.5,
        "yes": true,
        "roles": ["reader", "scorer"],
        "empty": [],
        "mixed": ["a", 1],
        "nested": ["a", ["b"]],
        "obj": {"a": 1},
        "null": null,
        "crlf": "a\r\nX-Injected: 1",
        "lf": "a\nb",
        "nul": "a\u{0}b",
        "tab": "a\tb",
        "del": "a\u{7f}b",
        "c1": "a\u{85}b",
        "role_crlf": ["ok", "bad\r\n"],
        "unicode": "Zoë",
    });
    let mut c = claims();
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    let verified = check(&mint(&header(Alg::EdDsa), &c)).unwrap();
    let cases: [(&str, Option<&str>); 21] = [
        ("name", Some("Ada Lovelace")),
        ("oid", Some("00000000-0000-0000-0000-000000000001")),
        ("n", Some("42")),
        ("f", Some("1.5")),
        ("yes", Some("true")),
        ("roles", Some(r#"["reader","scorer"]"#)),
        ("aud", Some(AUD)),
        ("unicode", Some("Zoë")),
        ("empty", Some("[]")),
        ("mixed", Some(r#"["a",1]"#)),
        ("nested", Some(r#"["a",["b"]]"#)),
        ("obj", Some(r#"{"a":1}"#)),
        ("null", Some("null")),
        ("crlf", None),
        ("lf", None),
        ("nul", None),
        ("tab", None),
        ("del", None),
        ("c1", None),
        ("role_crlf", Some(r#"["ok","bad\r\n"]"#)),
        ("absent", None),
    ];
    for (claim, expected) in cases {
        assert_eq!(
            verified.claim_header_value(claim).as_deref(),
            expected,
            "{claim}"
        );
    }
}

#[test]
fn error_codes_are_distinct_and_only_audience_is_forbidden() {
    let all = crate::stats::TOKEN_ERRORS;
    let codes: std::collections::HashSet<&str> = all.iter().map(|e| e.as_str()).collect();
    assert_eq!(codes.len(), all.len());
    for e in all {
        assert!(e
            .as_str()
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert_eq!(e.is_forbidden(), e == TokenError::AudienceNotAllowed, "{e}");
    }
}

#[test]
fn jws_layer_accepts_opaque_payloads() {
    let keys = standard_keyset();
    for alg in Alg::ALL {
        let token = mint_bytes(
            header(alg).to_string().as_bytes(),
            b"not json \x00\xff",
            alg,
        );
        assert_eq!(verify_jws(&token, &keys), Ok(alg));
        assert_eq!(
            code(verify(&token, &keys, &policy(), NOW)),
            "malformed_payload"
        );
    }
}
