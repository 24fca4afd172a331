//! The verifiers against the reference crates (`p256`, `p384`, `p521`, `ed25519-compact`, `rsa`)
//! on fuzzer-made keys and signatures, through the filter's path (`parse_jwks`, then
//! `verify_signature`). Input: an algorithm byte, a mode byte, a key scalar or seed, a message
//! and bytes that are either the signature itself or a mask XORed into the reference's own
//! signature of the message (so valid signatures and their near misses are reached).
//! Ours must never accept what the reference refuses; for ECDSA and RSA the verdicts must be
//! equal; for Ed25519 ours may refuse what the reference accepts (ours is cofactorless: a
//! signature valid only up to a small-order point is refused by design).
#![no_main]

use aml_auth_filter::token::jwks::{parse_jwks, Alg};
use aml_auth_filter::token::jwt::verify_signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
use rsa::traits::PublicKeyParts as _;
use sha2::Digest as _;

fn ours(jwk: String, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    let body = format!(r#"{{"keys":[{jwk}]}}"#);
    parse_jwks(body.as_bytes())
        .ok()
        .and_then(|p| {
            p.keys
                .iter()
                .next()
                .map(|k| verify_signature(k, alg, msg, sig))
        })
        .unwrap_or(false)
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// The signature to judge: `tail` itself (mode bit 0 clear) or the reference's signature with
/// `tail` XORed over it.
fn signature(mode: u8, good: Vec<u8>, tail: &[u8]) -> Vec<u8> {
    if mode & 1 == 0 {
        return tail.to_vec();
    }
    let mut sig = good;
    for (s, t) in sig.iter_mut().zip(tail) {
        *s ^= t;
    }
    if mode & 2 != 0 {
        sig.truncate(sig.len().saturating_sub(usize::from(mode >> 4)));
    }
    sig
}

macro_rules! ecdsa {
    ($krate:ident, $crv:expr, $alg:expr, $size:expr, $mode:expr, $rest:expr) => {{
        let Some((scalar, rest)) = $rest.split_at_checked($size) else {
            return;
        };
        let Ok(sk) = $krate::ecdsa::SigningKey::from_slice(scalar) else {
            return;
        };
        let (msg, tail) = split_message(rest);
        let vk = $krate::ecdsa::VerifyingKey::from(&sk);
        let point = vk.to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return;
        };
        // Mode bit 2 drops the coordinates' leading zero bytes (the same point).
        let strip = |c: &[u8]| {
            if $mode & 4 != 0 {
                c[c.iter().take_while(|&&b| b == 0).count()..].to_vec()
            } else {
                c.to_vec()
            }
        };
        let jwk = format!(
            r#"{{"kty":"EC","crv":"{}","x":"{}","y":"{}"}}"#,
            $crv,
            b64(&strip(x)),
            b64(&strip(y))
        );
        let good: $krate::ecdsa::Signature = sk.sign(msg);
        let sig = signature($mode, good.to_bytes().to_vec(), tail);
        let reference =
            $krate::ecdsa::Signature::from_slice(&sig).is_ok_and(|s| vk.verify(msg, &s).is_ok());
        let ours = ours(jwk, $alg, msg, &sig);
        assert_eq!(
            ours, reference,
            "{}: ours {ours}, reference {reference}",
            $crv
        );
    }};
}

/// A message of up to 255 bytes (length first), then the rest.
fn split_message(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&len, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    rest.split_at(usize::from(len).min(rest.len()))
}

fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("../../tests/data/rsa-a.pem"))
            .unwrap_or_else(|e| panic!("rsa-a.pem: {e}"))
    })
}

fn rsa_case(alg_index: u8, mode: u8, rest: &[u8]) {
    let names = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
    let name = names[usize::from(alg_index) % names.len()];
    let Some(alg) = Alg::from_name(name) else {
        return;
    };
    let (msg, tail) = split_message(rest);
    let key = rsa_key();
    let public = key.to_public_key();
    let jwk = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
        b64(&public.n().to_bytes_be()),
        b64(&public.e().to_bytes_be())
    );
    let hashed: Vec<u8> = match &name[2..] {
        "256" => sha2::Sha256::digest(msg).to_vec(),
        "384" => sha2::Sha384::digest(msg).to_vec(),
        _ => sha2::Sha512::digest(msg).to_vec(),
    };
    // A deterministic salt for PSS: the reference signs with a salt of zeros' hash length.
    let good = if name.starts_with("RS") {
        let scheme = match &name[2..] {
            "256" => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            "384" => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            _ => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        };
        key.sign(scheme, &hashed).unwrap_or_default()
    } else {
        let mut rng = ZeroRng;
        let sig = match &name[2..] {
            "256" => rsa::pss::SigningKey::<sha2::Sha256>::new(key.clone())
                .try_sign_with_rng(&mut rng, msg),
            "384" => rsa::pss::SigningKey::<sha2::Sha384>::new(key.clone())
                .try_sign_with_rng(&mut rng, msg),
            _ => rsa::pss::SigningKey::<sha2::Sha512>::new(key.clone())
                .try_sign_with_rng(&mut rng, msg),
        };
        sig.map(|s| s.to_vec()).unwrap_or_default()
    };
    let sig = signature(mode, good, tail);
    let reference = match &name[..2] {
        "RS" => {
            let scheme = match &name[2..] {
                "256" => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                "384" => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                _ => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            public.verify(scheme, &hashed, &sig).is_ok()
        }
        _ => {
            let scheme = match &name[2..] {
                "256" => rsa::Pss::new::<sha2::Sha256>(),
                "384" => rsa::Pss::new::<sha2::Sha384>(),
                _ => rsa::Pss::new::<sha2::Sha512>(),
            };
            public.verify(scheme, &hashed, &sig).is_ok()
        }
    };
    let ours = ours(jwk, alg, msg, &sig);
    assert_eq!(
        ours, reference,
        "{name}: ours {ours}, reference {reference}"
    );
}

/// A generator of zeros (the PSS salt; the signature stays a function of the input).
struct ZeroRng;

impl rand_core::RngCore for ZeroRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0);
        Ok(())
    }
}

impl rand_core::CryptoRng for ZeroRng {}

fn ed25519_case(mode: u8, rest: &[u8]) {
    let Some((seed, rest)) = rest.split_at_checked(32) else {
        return;
    };
    let (msg, tail) = split_message(rest);
    let mut seed_bytes = [0u8; 32];
    seed_bytes.copy_from_slice(seed);
    // Mode bit 2 (or an all-zero seed, which ed25519-compact refuses): the 32 bytes are the
    // public key itself (any point, small order included).
    let (pk, good) = if mode & 4 != 0 || seed_bytes == [0u8; 32] {
        (seed_bytes, vec![0u8; 64])
    } else {
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed_bytes));
        (*kp.pk, kp.sk.sign(msg, None).to_vec())
    };
    let sig = signature(mode, good, tail);
    let reference = match (
        ed25519_compact::PublicKey::from_slice(&pk),
        ed25519_compact::Signature::from_slice(&sig),
    ) {
        (Ok(k), Ok(s)) => k.verify(msg, &s).is_ok(),
        _ => false,
    };
    let jwk = format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{}"}}"#, b64(&pk));
    let ours = ours(jwk, Alg::EdDsa, msg, &sig);
    assert!(
        !ours || reference,
        "EdDSA: ours accepts what the reference refuses"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&[alg, mode], rest)) = data.split_first_chunk::<2>().map(|(a, r)| (a, r)) else {
        return;
    };
    match alg % 5 {
        0 => ecdsa!(p256, "P-256", Alg::Es256, 32, mode, rest),
        1 => ecdsa!(p384, "P-384", Alg::Es384, 48, mode, rest),
        2 => ecdsa!(p521, "P-521", Alg::Es512, 66, mode, rest),
        3 => ed25519_case(mode, rest),
        _ => rsa_case(alg / 5, mode, rest),
    }
});
