//! ECDSA cases that need a chosen digest, against the RustCrypto curves' prehash verifiers (the
//! rest of the differential test is `tests/crypto_differential.rs`, through the public path):
//! - e = 0 mod n (an all-zero digest, and a digest equal to n where the digest is as wide as n):
//!   u1 = 0, G's comb never adds; valid signatures both accept;
//! - e in n..2^bits (digest n + 5): the one subtraction of n in `verify`; valid, both accept;
//! - e = 5 under the key q = -5/r mod n: u1·G + u2·Q = (e + r·q)/s · G is the point at
//!   infinity: both refuse;
//! - x(R) >= n: a key Q whose x is n + t (t small, x^3 - 3x + b a square) and the signature
//!   (r, s) = (x - n, x - n) of e = 0: u1 = 0, u2 = 1, R = Q and x(R) = r + n, the second
//!   comparison of `verify`; both accept.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use num_bigint::BigUint;

struct Case {
    name: &'static str,
    digest: Vec<u8>,
    sig: Vec<u8>,
    key: (Vec<u8>, Vec<u8>),
    valid: bool,
}

fn be(x: &BigUint, len: usize) -> Vec<u8> {
    let b = x.to_bytes_be();
    [vec![0u8; len - b.len()], b].concat()
}

fn hex_big(s: &str) -> BigUint {
    BigUint::parse_bytes(s.as_bytes(), 16).unwrap()
}

/// The cases of one curve; `point` is the reference's k -> kG.
fn cases(
    size: usize,
    hash_len: usize,
    p: &BigUint,
    n: &BigUint,
    b: &BigUint,
    point: &dyn Fn(&[u8]) -> (Vec<u8>, Vec<u8>),
) -> Vec<Case> {
    let q = BigUint::from(0x1234_5678_9abc_u64) * 7919u32 % n;
    let k = BigUint::from(0x0fed_cba9_8765_u64) * 104_729u32 % n;
    let key = point(&be(&q, size));
    let r = BigUint::from_bytes_be(&point(&be(&k, size)).0) % n;
    let sign = |e: &BigUint| {
        let s = k.modinv(n).unwrap() * ((e + &r * &q) % n) % n;
        [be(&r, size), be(&s, size)].concat()
    };
    let mut out = vec![Case {
        name: "e = 0 (zero digest)",
        digest: vec![0; hash_len],
        sig: sign(&BigUint::ZERO),
        key: key.clone(),
        valid: true,
    }];
    if hash_len == size {
        out.push(Case {
            name: "e = n",
            digest: be(n, size),
            sig: sign(&BigUint::ZERO),
            key: key.clone(),
            valid: true,
        });
        out.push(Case {
            name: "e = n + 5",
            digest: be(&(n + 5u32), size),
            sig: sign(&BigUint::from(5u32)),
            key: key.clone(),
            valid: true,
        });
    }
    let s = BigUint::from(77u32);
    let q_inf = (n - 5u32) * r.modinv(n).unwrap() % n;
    out.push(Case {
        name: "sum at infinity",
        digest: be(&BigUint::from(5u32), hash_len),
        sig: [be(&r, size), be(&s, size)].concat(),
        key: point(&be(&q_inf, size)),
        valid: false,
    });
    let mut x = n + 1u32;
    let y = loop {
        let rhs = (x.modpow(&3u32.into(), p) + b + p * 3u32 - (&x * 3u32) % p) % p;
        let y = rhs.modpow(&((p + 1u32) >> 2), p);
        if &y * &y % p == rhs {
            break y;
        }
        x += 1u32;
    };
    let r_small = &x - n;
    out.push(Case {
        name: "x(R) >= n",
        digest: vec![0; hash_len],
        sig: [be(&r_small, size), be(&r_small, size)].concat(),
        key: (be(&x, size), be(&y, size)),
        valid: true,
    });
    out
}

macro_rules! curve_test {
    ($test:ident, $krate:ident, $ours:ident, $size:expr, $hash_len:expr, $p:expr, $n:expr, $b:expr) => {
        #[test]
        fn $test() {
            use ::$krate::ecdsa::signature::hazmat::PrehashVerifier as _;
            use ::$krate::elliptic_curve::sec1::ToEncodedPoint as _;
            let point = |k: &[u8]| {
                let pk = ::$krate::SecretKey::from_slice(k).unwrap().public_key();
                let e = pk.to_encoded_point(false);
                (e.x().unwrap().to_vec(), e.y().unwrap().to_vec())
            };
            let (p, n, b) = (hex_big($p), hex_big($n), hex_big($b));
            for case in cases($size, $hash_len, &p, &n, &b, &point) {
                let (x, y) = &case.key;
                let ours = super::$ours::PublicKey::from_coordinates(x, y)
                    .unwrap()
                    .verify_digest(&case.digest, &case.sig);
                let sec1 = [&[4u8][..], x, y].concat();
                let vk = ::$krate::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
                let sig = ::$krate::ecdsa::Signature::from_slice(&case.sig).unwrap();
                let reference = vk.verify_prehash(&case.digest, &sig).is_ok();
                assert_eq!(
                    reference,
                    case.valid,
                    "{} reference: {}",
                    stringify!($krate),
                    case.name
                );
                assert_eq!(
                    ours,
                    case.valid,
                    "{} ours: {}",
                    stringify!($krate),
                    case.name
                );
            }
        }
    };
}

curve_test!(
    p256_chosen_digests,
    p256,
    p256,
    32,
    32,
    "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"
);

curve_test!(
    p384_chosen_digests,
    p384,
    p384,
    48,
    48,
    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"
);

curve_test!(
    p521_chosen_digests,
    p521,
    p521,
    66,
    64,
    "1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    "51953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"
);
