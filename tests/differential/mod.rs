//! Shared parts of the differential test: the tally that judges ours against the reference, the
//! public path (a JWK through `parse_jwks`, then `verify_signature`), the seeded generator and
//! big-integer helpers.
#![allow(dead_code)]

pub mod ecdsa;
pub mod ed25519;
pub mod rsa;

use std::collections::BTreeMap;

use aml_auth_filter::token::jwks::{parse_jwks, Alg, ParsedJwks};
use aml_auth_filter::token::jwt::verify_signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use num_bigint::BigUint;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};

/// Classes where ours refuses what the reference accepts, by design; any other refusal of a
/// reference-accepted case fails the test, and an acceptance of a reference-refused case always does.
pub const BY_DESIGN: &[(&str, &str)] = &[
    (
        "ed25519-cofactored-only",
        "Ed25519 is verified cofactorless ([S]B - [k]A must encode to R exactly, RFC 8032 5.1.7 \
         allows either); ed25519-compact also accepts when the difference is a small-order point: \
         a key or an R with a small-order component signs differently on other verifiers, so such \
         signatures are refused",
    ),
    (
        "rsa-key-policy",
        "RSA keys under 2048 or over 4096 bits, even moduli and exponents 1, even or over 4 bytes \
         are dropped when the JWKS is parsed",
    ),
];

/// Counts of one run, per verifier family.
#[derive(Default)]
pub struct Tally {
    pub cases: usize,
    pub both_accept: usize,
    pub both_refuse: usize,
    pub by_design: BTreeMap<&'static str, usize>,
    pub classes: BTreeMap<String, usize>,
}

impl Tally {
    /// Judges one case of `class`: ours must never accept what the reference refuses, and may
    /// refuse what it accepts only when `allowed` names a [`BY_DESIGN`] class.
    pub fn check(
        &mut self,
        class: &str,
        case: &dyn std::fmt::Display,
        ours: bool,
        reference: bool,
        allowed: Option<&'static str>,
    ) {
        self.cases += 1;
        *self.classes.entry(class.to_string()).or_default() += 1;
        assert!(
            !(ours && !reference),
            "{class}: {case}: ours accepts what the reference refuses"
        );
        match (ours, reference) {
            (true, true) => self.both_accept += 1,
            (false, false) => self.both_refuse += 1,
            _ => {
                let Some(why) = allowed else {
                    panic!("{class}: {case}: ours refuses what the reference accepts");
                };
                assert!(
                    BY_DESIGN.iter().any(|(name, _)| *name == why),
                    "{why} is not a listed by-design class"
                );
                *self.by_design.entry(why).or_default() += 1;
            }
        }
    }

    /// One line per class and the totals, printed with `--nocapture`.
    pub fn report(&self, family: &str) {
        eprintln!(
            "{family}: {} cases, {} both accept, {} both refuse, by design {:?}",
            self.cases, self.both_accept, self.both_refuse, self.by_design
        );
        for (class, n) in &self.classes {
            eprintln!("  {class}: {n}");
        }
    }
}

/// The deterministic generator of the seeded random cases.
pub fn rng(stream: u64) -> rand_chacha::ChaCha8Rng {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(0x21_d1ff);
    r.set_stream(stream);
    r
}

pub fn random_bytes(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `x` big-endian on exactly `len` bytes (left-padded; panics when longer).
pub fn be(x: &BigUint, len: usize) -> Vec<u8> {
    let b = x.to_bytes_be();
    assert!(b.len() <= len, "{} bytes do not fit in {len}", b.len());
    [vec![0u8; len - b.len()], b].concat()
}

pub fn big(bytes: &[u8]) -> BigUint {
    BigUint::from_bytes_be(bytes)
}

pub fn hex_big(s: &str) -> BigUint {
    BigUint::parse_bytes(s.as_bytes(), 16).unwrap()
}

/// A key as the filter reads it: one JWK (kid "k") through `parse_jwks`; `None` when dropped.
pub struct OurKey(Option<ParsedJwks>);

impl OurKey {
    pub fn parse(mut jwk: Value) -> OurKey {
        jwk["kid"] = json!("k");
        let body = json!({ "keys": [jwk] }).to_string();
        OurKey(parse_jwks(body.as_bytes()).ok())
    }

    pub fn accepted(&self) -> bool {
        self.0.is_some()
    }

    /// `verify_signature` with the parsed key (false when the key was dropped).
    pub fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        self.0
            .as_ref()
            .and_then(|p| p.keys.get("k"))
            .is_some_and(|k| verify_signature(k, alg, msg, sig))
    }
}
