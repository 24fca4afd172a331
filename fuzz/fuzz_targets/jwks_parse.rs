//! The JWKS parser on arbitrary bodies: `jwks::parse_jwks`, then every kept key is used once.
#![no_main]

use aml_auth_filter::token::jwks::{parse_jwks, Alg};
use aml_auth_filter::token::jwt::verify_signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_jwks(data) {
        Ok(parsed) => {
            assert!(!parsed.keys.is_empty(), "a parsed set always has a key");
            for key in parsed.keys.iter() {
                if let Some(kid) = key.kid() {
                    assert!(parsed.keys.get(kid).is_some(), "a kept kid resolves");
                }
                for alg in Alg::ALL {
                    let _ = verify_signature(key, alg, b"a.b", &[0u8; 64]);
                }
                // Fuzzer-made moduli through the RSA arithmetic: a signature of each possible
                // modulus length, its bytes taken from the input.
                for len in [256usize, 384, 512] {
                    let sig: Vec<u8> = data.iter().rev().copied().cycle().take(len).collect();
                    let _ = verify_signature(key, Alg::Rs256, b"a.b", &sig);
                    let _ = verify_signature(key, Alg::Ps512, b"a.b", &sig);
                }
                // And through the curve arithmetic (ECDSA r || s, Ed25519 R || S) of fuzzed keys.
                for (alg, len) in [
                    (Alg::Es256, 64usize),
                    (Alg::Es384, 96),
                    (Alg::Es512, 132),
                    (Alg::EdDsa, 64),
                ] {
                    let sig: Vec<u8> = data.iter().copied().cycle().take(len).collect();
                    let _ = verify_signature(key, alg, data, &sig);
                }
            }
            for d in &parsed.dropped {
                let _ = d.reason.as_str();
            }
        }
        Err(e) => {
            let _ = e.as_str();
        }
    }
});
