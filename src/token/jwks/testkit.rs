//! Test-only key material and token minting with real RSA-2048, P-256, P-384, P-521 and Ed25519 keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use base64::Engine;
use p256::ecdsa::signature::Signer;
use rand_core::{OsRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{parse_jwks, Alg, KeySet, B64URL};

/// The private keys every test signs with (generated once per test binary).
pub(crate) struct TestKeys {
    pub(crate) rsa: RsaPrivateKey,
    pub(crate) p256: p256::ecdsa::SigningKey,
    pub(crate) p384: p384::ecdsa::SigningKey,
    pub(crate) p521: p521::ecdsa::SigningKey,
    pub(crate) ed25519: ed25519_compact::KeyPair,
}

pub(crate) fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut seed = [0_u8; 32];
        OsRng.fill_bytes(&mut seed);
        TestKeys {
            rsa: RsaPrivateKey::new(&mut OsRng, 2048).unwrap(),
            p256: p256::ecdsa::SigningKey::random(&mut OsRng),
            p384: p384::ecdsa::SigningKey::random(&mut OsRng),
            p521: p521::ecdsa::SigningKey::random(&mut OsRng),
            ed25519: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed)),
        }
    })
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

/// Public RSA JWK for the test key.
pub(crate) fn rsa_jwk(kid: Option<&str>, alg: Option<&str>) -> Value {
    let k = &keys().rsa;
    let mut jwk = json!({
        "kty": "RSA",
        "n": b64(&k.n().to_bytes_be()),
        "e": b64(&k.e().to_bytes_be()),
    });
    add_kid_alg(&mut jwk, kid, alg);
    jwk
}

/// Public EC P-256 JWK for the test key.
pub(crate) fn ec_jwk(kid: Option<&str>, alg: Option<&str>) -> Value {
    let point = keys().p256.verifying_key().to_encoded_point(false);
    let mut jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64(point.x().unwrap()),
        "y": b64(point.y().unwrap()),
    });
    add_kid_alg(&mut jwk, kid, alg);
    jwk
}

/// Public EC JWK of one of the test keys: `crv` is "P-256", "P-384" or "P-521".
pub(crate) fn ec_jwk_on(crv: &str, kid: Option<&str>, alg: Option<&str>) -> Value {
    let (x, y) = match crv {
        "P-256" => {
            let p = keys().p256.verifying_key().to_encoded_point(false);
            (p.x().unwrap().to_vec(), p.y().unwrap().to_vec())
        }
        "P-384" => {
            let p = keys().p384.verifying_key().to_encoded_point(false);
            (p.x().unwrap().to_vec(), p.y().unwrap().to_vec())
        }
        _ => {
            let p = p521::ecdsa::VerifyingKey::from(&keys().p521).to_encoded_point(false);
            (p.x().unwrap().to_vec(), p.y().unwrap().to_vec())
        }
    };
    let mut jwk = json!({"kty": "EC", "crv": crv, "x": b64(&x), "y": b64(&y)});
    add_kid_alg(&mut jwk, kid, alg);
    jwk
}

/// Public OKP Ed25519 JWK for the test key.
pub(crate) fn ed_jwk(kid: Option<&str>, alg: Option<&str>) -> Value {
    let mut jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64(keys().ed25519.pk.as_ref()),
    });
    add_kid_alg(&mut jwk, kid, alg);
    jwk
}

fn add_kid_alg(jwk: &mut Value, kid: Option<&str>, alg: Option<&str>) {
    if let Some(kid) = kid {
        jwk["kid"] = json!(kid);
    }
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
}

/// Serialized `{"keys": [...]}`.
pub(crate) fn jwks_body(keys: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

/// The standard key set: RSA kid "rsa", EC kids "ec" (P-256), "ec384" and "ec521", Ed25519 kid "ed".
pub(crate) fn standard_keyset() -> KeySet {
    parse_jwks(&jwks_body(&[
        rsa_jwk(Some("rsa"), None),
        ec_jwk(Some("ec"), None),
        ec_jwk_on("P-384", Some("ec384"), None),
        ec_jwk_on("P-521", Some("ec521"), None),
        ed_jwk(Some("ed"), None),
    ]))
    .unwrap()
    .keys
}

/// Signs `msg` with the test key that fits `alg`.
pub(crate) fn sign(alg: Alg, msg: &[u8]) -> Vec<u8> {
    let k = keys();
    match alg {
        Alg::Rs256 => k
            .rsa
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg))
            .unwrap(),
        Alg::Rs384 => k
            .rsa
            .sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg))
            .unwrap(),
        Alg::Rs512 => k
            .rsa
            .sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg))
            .unwrap(),
        Alg::Ps256 => k
            .rsa
            .sign_with_rng(&mut OsRng, Pss::new::<Sha256>(), &Sha256::digest(msg))
            .unwrap(),
        Alg::Ps384 => k
            .rsa
            .sign_with_rng(&mut OsRng, Pss::new::<Sha384>(), &Sha384::digest(msg))
            .unwrap(),
        Alg::Ps512 => k
            .rsa
            .sign_with_rng(&mut OsRng, Pss::new::<Sha512>(), &Sha512::digest(msg))
            .unwrap(),
        Alg::Es256 => {
            let sig: p256::ecdsa::Signature = k.p256.sign(msg);
            sig.to_bytes().to_vec()
        }
        Alg::Es384 => {
            let sig: p384::ecdsa::Signature = k.p384.sign(msg);
            sig.to_bytes().to_vec()
        }
        Alg::Es512 => {
            let sig: p521::ecdsa::Signature = k.p521.sign(msg);
            sig.to_bytes().to_vec()
        }
        Alg::EdDsa => k.ed25519.sk.sign(msg, None).to_vec(),
    }
}

/// A token from raw header and payload bytes, signed by the key for `signer`.
pub(crate) fn mint_bytes(header: &[u8], payload: &[u8], signer: Alg) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign(signer, input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// A token from raw header and payload JSON text, signed by the key for `signer`.
pub(crate) fn mint_raw(header_json: &str, payload_json: &str, signer: Alg) -> String {
    mint_bytes(header_json.as_bytes(), payload_json.as_bytes(), signer)
}

/// A token from header and claims values, signed by the key for the header's `alg`.
pub(crate) fn mint(header: &Value, claims: &Value) -> String {
    let alg = header["alg"].as_str().and_then(Alg::from_name).unwrap();
    mint_raw(&header.to_string(), &claims.to_string(), alg)
}
