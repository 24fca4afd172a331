//! Signatures made by tests/data/rsa/gen_vectors.py (plain Python) for key sizes and hashes Wycheproof lacks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use aml_auth_filter::rsa::{HashAlg, RsaPublicKey};
use serde_json::Value;

const VECTORS: &str = include_str!("data/rsa/generated_vectors.json");

/// Writes to the process's stderr directly: libtest captures `eprintln!` of passing tests, and
/// the per-file vector counts must be seen in every run.
macro_rules! shout {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn verify(key: &RsaPublicKey, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
    let hash = match &alg[2..] {
        "256" => HashAlg::Sha256,
        "384" => HashAlg::Sha384,
        "512" => HashAlg::Sha512,
        other => panic!("hash {other}"),
    };
    match &alg[..2] {
        "RS" => key.verify_pkcs1v15(hash, msg, sig),
        "PS" => key.verify_pss(hash, msg, sig),
        other => panic!("scheme {other}"),
    }
}

#[test]
fn generated_vectors() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    for v in vectors {
        let alg = v["alg"].as_str().unwrap();
        let bits = v["bits"].as_u64().unwrap() as usize;
        let n = hex::decode(v["n"].as_str().unwrap()).unwrap();
        let e = v["e"].as_u64().unwrap() as u32;
        let msg = hex::decode(v["msg"].as_str().unwrap()).unwrap();
        let sig = hex::decode(v["sig"].as_str().unwrap()).unwrap();
        let key = RsaPublicKey::new(&n, &e.to_be_bytes()).unwrap();
        let what = format!("{bits}-bit {alg}");
        assert_eq!(key.bits(), bits, "{what}");
        assert!(
            verify(&key, alg, &msg, &sig),
            "{what}: valid signature refused"
        );

        for other in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
            if other != alg {
                assert!(
                    !verify(&key, other, &msg, &sig),
                    "{what} accepted as {other}"
                );
            }
        }
        let mut other_msg = msg.clone();
        other_msg.push(0);
        assert!(
            !verify(&key, alg, &other_msg, &sig),
            "{what}: other message accepted"
        );
        for bit in (0..8 * sig.len()).step_by(97) {
            let mut bad = sig.clone();
            bad[bit / 8] ^= 0x80 >> (bit % 8);
            assert!(
                !verify(&key, alg, &msg, &bad),
                "{what}: bit {bit} flipped accepted"
            );
        }
        let mut longer = vec![0];
        longer.extend_from_slice(&sig);
        assert!(
            !verify(&key, alg, &msg, &longer),
            "{what}: leading zero accepted"
        );
    }
    shout!("generated_vectors.json: {} vectors verified", vectors.len());
}
