//! Fixed inputs shared by the fuzz targets: a key set of every supported type and a token policy.

use std::sync::OnceLock;

use aml_auth_filter::token::jwks::{parse_jwks, KeySet};
use aml_auth_filter::token::jwt::TokenPolicy;
use aml_auth_filter::signing::{jwks, SigningKey};

/// Issuer the fixed policy requires (the seeds use it).
pub const ISSUER: &str = "https://login.microsoftonline.com/tenant-0000/v2.0";
/// Audience the fixed policy allows.
pub const AUDIENCE: &str = "https://ml.azure.com";
/// The fixed "now" of the seeds: 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000;

fn key(pem: &str) -> SigningKey {
    match SigningKey::from_pem(pem) {
        Ok(k) => k,
        Err(e) => panic!("test key: {e}"),
    }
}

/// The trusted keys: RSA (any RSA alg), RSA (RS256 only), P-256 and Ed25519, kids as in the tests.
pub fn keyset() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let doc = jwks(vec![
            key(include_str!("../../tests/data/rsa-a.pem")).public_jwk("rsa-a", None),
            key(include_str!("../../tests/data/rsa-b.pem")).public_jwk("rsa-b", Some("RS256")),
            key(include_str!("../../tests/data/p256-a.pem")).public_jwk("p256-a", Some("ES256")),
            key(include_str!("../../tests/data/ed25519-a.pem")).public_jwk("ed-a", Some("EdDSA")),
        ]);
        match parse_jwks(doc.to_string().as_bytes()) {
            Ok(p) => p.keys,
            Err(e) => panic!("fixed JWKS refused: {e}"),
        }
    })
}

/// The fixed policy: issuer, audience, 60 s skew, one-hour lifetime cap, exp required.
pub fn policy() -> TokenPolicy {
    TokenPolicy {
        audiences: Some(vec![AUDIENCE.to_string()]),
        max_lifetime_seconds: Some(3_600),
        ..TokenPolicy::new(vec![ISSUER.to_string()])
    }
}
