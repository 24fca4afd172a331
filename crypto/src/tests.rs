//! Native checks of the verifiers against the RustCrypto signers (random keys and messages),
//! and of the refusals every verifier owes: r, s outside 1..n-1, wrong lengths, points off the
//! curve, non-canonical Ed25519 encodings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use p256::ecdsa::signature::Signer;
use rand_core::{OsRng, RngCore};

use super::{ed25519, p256 as our256, p384 as our384, p521 as our521, PointError};

fn random_message() -> Vec<u8> {
    let mut len = [0u8; 1];
    OsRng.fill_bytes(&mut len);
    let mut msg = vec![0u8; usize::from(len[0])];
    OsRng.fill_bytes(&mut msg);
    msg
}

/// Verifies good signatures and refuses every one-bit change of signature or message.
fn exercise(verify: &dyn Fn(&[u8], &[u8]) -> bool, sign: &dyn Fn(&[u8]) -> Vec<u8>) {
    for _ in 0..4 {
        let msg = random_message();
        let sig = sign(&msg);
        assert!(verify(&msg, &sig));
        for bit in [0, 7, sig.len() * 4, sig.len() * 8 - 1] {
            let mut bad = sig.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify(&msg, &bad), "flipped bit {bit}");
        }
        let mut other = msg.clone();
        other.push(0);
        assert!(!verify(&other, &sig));
        assert!(!verify(&msg, &sig[..sig.len() - 1]));
        assert!(!verify(&msg, &[sig.as_slice(), &[0]].concat()));
    }
}

/// (r, s) pairs that must be refused whatever the message: 0 and n (and n + 1 when it fits) for each.
fn range_refusals(n_be: &[u8], good: &[u8]) -> Vec<Vec<u8>> {
    let size = n_be.len();
    let (r, s) = good.split_at(size);
    let zero = vec![0u8; size];
    let mut n_plus_one = n_be.to_vec();
    *n_plus_one.last_mut().unwrap() += 1;
    vec![
        [zero.as_slice(), &zero].concat(),
        [zero.as_slice(), s].concat(),
        [r, zero.as_slice()].concat(),
        [n_be, s].concat(),
        [r, n_be].concat(),
        [n_be, n_be].concat(),
        [n_plus_one.as_slice(), s].concat(),
        [r, n_plus_one.as_slice()].concat(),
        vec![0xff; 2 * size],
    ]
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn p256_agrees_with_the_p256_crate() {
    let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
    let point = sk.verifying_key().to_encoded_point(false);
    let key = our256::PublicKey::from_coordinates(point.x().unwrap(), point.y().unwrap()).unwrap();
    let sign = |m: &[u8]| {
        let s: p256::ecdsa::Signature = sk.sign(m);
        s.to_bytes().to_vec()
    };
    exercise(&|m, s| key.verify(m, s), &sign);
    let good = sign(b"m");
    let n = unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    for bad in range_refusals(&n, &good) {
        assert!(!key.verify(b"m", &bad));
    }
}

#[test]
fn p384_agrees_with_the_p384_crate() {
    let sk = p384::ecdsa::SigningKey::random(&mut OsRng);
    let point = sk.verifying_key().to_encoded_point(false);
    let key = our384::PublicKey::from_coordinates(point.x().unwrap(), point.y().unwrap()).unwrap();
    let sign = |m: &[u8]| {
        let s: p384::ecdsa::Signature = sk.sign(m);
        s.to_bytes().to_vec()
    };
    exercise(&|m, s| key.verify(m, s), &sign);
    let good = sign(b"m");
    let n = unhex("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973");
    for bad in range_refusals(&n, &good) {
        assert!(!key.verify(b"m", &bad));
    }
}

#[test]
fn p521_agrees_with_the_p521_crate() {
    let sk = p521::ecdsa::SigningKey::random(&mut OsRng);
    let point = p521::ecdsa::VerifyingKey::from(&sk).to_encoded_point(false);
    let key = our521::PublicKey::from_coordinates(point.x().unwrap(), point.y().unwrap()).unwrap();
    let sign = |m: &[u8]| {
        let s: p521::ecdsa::Signature = sk.sign(m);
        s.to_bytes().to_vec()
    };
    exercise(&|m, s| key.verify(m, s), &sign);
    let good = sign(b"m");
    let n = unhex("01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409");
    for bad in range_refusals(&n, &good) {
        assert!(!key.verify(b"m", &bad));
    }
}

#[test]
fn ecdsa_keys_off_the_curve_or_mis_sized_are_refused() {
    let sk = p256::ecdsa::SigningKey::random(&mut OsRng);
    let point = sk.verifying_key().to_encoded_point(false);
    let (x, y) = (point.x().unwrap().to_vec(), point.y().unwrap().to_vec());
    let mut y_off = y.clone();
    y_off[31] ^= 1;
    let p = unhex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    let cases: Vec<(Vec<u8>, Vec<u8>, PointError)> = vec![
        (x.clone(), y_off, PointError::NotOnCurve),
        (vec![0; 32], vec![0; 32], PointError::NotOnCurve),
        (p.clone(), y.clone(), PointError::NotOnCurve),
        ([&[0u8][..], &x].concat(), y.clone(), PointError::Length),
        (x.clone(), vec![], PointError::Length),
    ];
    let mut cases = cases;
    if x[0] != 0 {
        cases.push((x[1..].to_vec(), y.clone(), PointError::NotOnCurve));
    }
    for (cx, cy, want) in cases {
        assert_eq!(
            our256::PublicKey::from_coordinates(&cx, &cy).err(),
            Some(want)
        );
    }
    assert!(our256::PublicKey::from_coordinates(&x, &y).is_ok());
    assert!(our384::PublicKey::from_coordinates(&x, &y).is_err());
}

#[test]
fn ed25519_agrees_with_ed25519_compact() {
    let kp = ed25519_compact::KeyPair::generate();
    let key = ed25519::PublicKey::from_bytes(kp.pk.as_ref()).unwrap();
    let sign = |m: &[u8]| kp.sk.sign(m, None).to_vec();
    exercise(&|m, s| key.verify(m, s), &sign);
    let good = sign(b"m");
    // S + L: the same scalar, non-canonical, must be refused.
    let l = unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut s_plus_l = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(good[32 + i]) + u16::from(l[i]) + carry;
        s_plus_l[i] = v as u8;
        carry = v >> 8;
    }
    assert!(!key.verify(b"m", &[&good[..32], &s_plus_l[..]].concat()));
    assert!(!key.verify(b"m", &[&good[..32], &l[..]].concat()));
}

#[test]
fn ed25519_keys_must_be_canonical_points_of_large_order() {
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    // y = p (non-canonical encoding of y = 0), and y = 2 (x^2 = 3/(4d + 1) is not a square).
    let y_is_p = unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    let mut two = [0u8; 32];
    two[0] = 2;
    let mut minus_zero = identity;
    minus_zero[31] |= 0x80;
    for (name, bytes) in [
        ("identity", identity.to_vec()),
        (
            "order 2 (y = -1)",
            unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        ),
        ("y = p", y_is_p),
        ("y = 2", two.to_vec()),
        ("x = -0", minus_zero.to_vec()),
    ] {
        assert_eq!(
            ed25519::PublicKey::from_bytes(&bytes).err(),
            Some(PointError::NotOnCurve),
            "{name}"
        );
    }
    assert_eq!(
        ed25519::PublicKey::from_bytes(&[9; 31]).err(),
        Some(PointError::Length)
    );
}

/// The first scalar k = 1, 2, ... whose public point kG has a coordinate (x when `in_x`, else y)
/// with a leading zero byte, as (k as big-endian scalar bytes, x, y).
fn key_with_leading_zero(
    size: usize,
    in_x: bool,
    point: &dyn Fn(&[u8]) -> (Vec<u8>, Vec<u8>),
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    for k in 1u32.. {
        let mut scalar = vec![0u8; size];
        scalar[size - 4..].copy_from_slice(&k.to_be_bytes());
        let (x, y) = point(&scalar);
        if (if in_x { &x } else { &y })[0] == 0 {
            return (scalar, x, y);
        }
    }
    unreachable!()
}

/// A JWK coordinate with its leading zero bytes dropped (google/jwt_verify_lib's ES512 test key
/// has a 65-byte `y`) is the same integer, so the same point: accepted, and it verifies that
/// key's signatures. Longer than the curve's size stays refused; dropping a non-zero byte names
/// another integer (not on the curve here).
#[test]
fn short_coordinates_are_left_padded() {
    type Parse = dyn Fn(&[u8], &[u8]) -> Result<Box<dyn Fn(&[u8], &[u8]) -> bool>, PointError>;
    type Point = dyn Fn(&[u8]) -> (Vec<u8>, Vec<u8>);
    type Sign = dyn Fn(&[u8], &[u8]) -> Vec<u8>;
    let p256_point = |k: &[u8]| {
        let p = p256::SecretKey::from_slice(k).unwrap().public_key();
        let e = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&p, false);
        (e.x().unwrap().to_vec(), e.y().unwrap().to_vec())
    };
    let p384_point = |k: &[u8]| {
        let p = p384::SecretKey::from_slice(k).unwrap().public_key();
        let e = p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&p, false);
        (e.x().unwrap().to_vec(), e.y().unwrap().to_vec())
    };
    let p521_point = |k: &[u8]| {
        let p = p521::SecretKey::from_slice(k).unwrap().public_key();
        let e = p521::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&p, false);
        (e.x().unwrap().to_vec(), e.y().unwrap().to_vec())
    };
    let p256_parse = |x: &[u8], y: &[u8]| {
        our256::PublicKey::from_coordinates(x, y)
            .map(|k| Box::new(move |m: &[u8], s: &[u8]| k.verify(m, s)) as Box<_>)
    };
    let p384_parse = |x: &[u8], y: &[u8]| {
        our384::PublicKey::from_coordinates(x, y)
            .map(|k| Box::new(move |m: &[u8], s: &[u8]| k.verify(m, s)) as Box<_>)
    };
    let p521_parse = |x: &[u8], y: &[u8]| {
        our521::PublicKey::from_coordinates(x, y)
            .map(|k| Box::new(move |m: &[u8], s: &[u8]| k.verify(m, s)) as Box<_>)
    };
    let p256_sign = |k: &[u8], m: &[u8]| {
        let s: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from_slice(k).unwrap().sign(m);
        s.to_bytes().to_vec()
    };
    let p384_sign = |k: &[u8], m: &[u8]| {
        let s: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from_slice(k).unwrap().sign(m);
        s.to_bytes().to_vec()
    };
    let p521_sign = |k: &[u8], m: &[u8]| {
        let s: p521::ecdsa::Signature = p521::ecdsa::SigningKey::from_slice(k).unwrap().sign(m);
        s.to_bytes().to_vec()
    };
    let curves: [(&str, usize, &Point, &Parse, &Sign); 3] = [
        ("P-256", 32, &p256_point, &p256_parse, &p256_sign),
        ("P-384", 48, &p384_point, &p384_parse, &p384_sign),
        ("P-521", 66, &p521_point, &p521_parse, &p521_sign),
    ];
    for (name, size, point, parse, sign) in curves {
        for in_x in [false, true] {
            let (k, x, y) = key_with_leading_zero(size, in_x, point);
            let sig = sign(&k, b"m");
            let zeros = |c: &[u8]| c.iter().take_while(|&&b| b == 0).count();
            let (short_x, short_y) = if in_x {
                (x[zeros(&x)..].to_vec(), y.clone())
            } else {
                (x.clone(), y[zeros(&y)..].to_vec())
            };
            assert!(short_x.len() < size || short_y.len() < size);
            let key =
                parse(&short_x, &short_y).unwrap_or_else(|e| panic!("{name} in_x={in_x}: {e:?}"));
            assert!(key(b"m", &sig), "{name} in_x={in_x}");
            assert!(!key(b"other", &sig), "{name} in_x={in_x}");
            let long = [&[0u8][..], &x].concat();
            assert_eq!(parse(&long, &y).err(), Some(PointError::Length), "{name}");
            assert_eq!(parse(&[], &y).err(), Some(PointError::Length), "{name}");
            let nonzero = if in_x { &y } else { &x };
            if nonzero[0] != 0 {
                let dropped = nonzero[1..].to_vec();
                let refused = if in_x {
                    parse(&x, &dropped)
                } else {
                    parse(&dropped, &y)
                };
                assert_eq!(refused.err(), Some(PointError::NotOnCurve), "{name}");
            }
        }
    }
}
