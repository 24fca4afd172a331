//! EdDSA (Ed25519) against `ed25519-compact`.
//!
//! Signatures are built here from their scalars (S = r + k·a mod L, k = SHA-512(R || A || M)),
//! with a point arithmetic of its own (affine, big integers) to add small-order points T to keys
//! and to R. ed25519-compact accepts when [S]B - [k]A - R has small order (so it accepts a
//! small-order difference) and refuses small-order keys and R; ours is cofactorless: [S]B - [k]A
//! must encode to R byte for byte.

use aml_auth_filter::token::jwks::Alg;
use num_bigint::BigUint;
use rand_chacha::rand_core::RngCore;
use serde_json::json;
use sha2::{Digest as _, Sha512};

use super::{b64, hex_big, random_bytes, rng, OurKey, Tally};

type Point = (BigUint, BigUint);

struct Field {
    p: BigUint,
    d: BigUint,
    sqrt_m1: BigUint,
    l: BigUint,
}

impl Field {
    fn new() -> Field {
        let p = (BigUint::from(1u32) << 255) - 19u32;
        let inv = |x: &BigUint| x.modpow(&(&p - 2u32), &p);
        let d = (&p - 121_665u32) * inv(&BigUint::from(121_666u32)) % &p;
        let sqrt_m1 = BigUint::from(2u32).modpow(&((&p - 1u32) >> 2), &p);
        let l = (BigUint::from(1u32) << 252) + hex_big("14def9dea2f79cd65812631a5cf5d3ed");
        Field { p, d, sqrt_m1, l }
    }

    fn inv(&self, x: &BigUint) -> BigUint {
        x.modpow(&(&self.p - 2u32), &self.p)
    }

    fn add(&self, a: &Point, b: &Point) -> Point {
        let p = &self.p;
        let t = &self.d * &a.0 % p * &b.0 % p * &a.1 % p * &b.1 % p;
        let x = (&a.0 * &b.1 + &a.1 * &b.0) % p * self.inv(&((BigUint::from(1u32) + &t) % p)) % p;
        let y = (&a.1 * &b.1 + &a.0 * &b.0) % p * self.inv(&((p + 1u32 - &t) % p)) % p;
        (x, y)
    }

    fn decode(&self, enc: &[u8; 32]) -> Option<Point> {
        let p = &self.p;
        let sign = enc[31] >> 7;
        let mut le = *enc;
        le[31] &= 0x7f;
        let y = BigUint::from_bytes_le(&le);
        if &y >= p {
            return None;
        }
        let y2 = &y * &y % p;
        let u = (&y2 + p - 1u32) % p;
        let v = (&self.d * &y2 + 1u32) % p;
        let v3 = v.modpow(&3u32.into(), p);
        let v7 = v.modpow(&7u32.into(), p);
        let mut x = &u * &v3 % p * (&u * &v7 % p).modpow(&((p - 5u32) >> 3), p) % p;
        let vx2 = &v * &x % p * &x % p;
        if vx2 != u {
            if vx2 != (p - &u) % p {
                return None;
            }
            x = x * &self.sqrt_m1 % p;
        }
        if x == BigUint::ZERO && sign == 1 {
            return None;
        }
        if u8::from(x.bit(0)) != sign {
            x = p - x;
        }
        Some((x, y))
    }

    fn encode(&self, pt: &Point) -> [u8; 32] {
        let mut out = [0u8; 32];
        let y = pt.1.to_bytes_le();
        out[..y.len()].copy_from_slice(&y);
        out[31] |= u8::from(pt.0.bit(0)) << 7;
        out
    }

    /// The eight points of order dividing 8: T_i = i·T for one point T of order 8.
    fn torsion(&self) -> Vec<Point> {
        let t8 = self
            .decode(&hex32(
                "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            ))
            .unwrap();
        let mut all = vec![(BigUint::ZERO, BigUint::from(1u32))];
        for i in 1..=8 {
            let next = self.add(&all[i - 1], &t8);
            all.push(next);
        }
        assert_eq!(all[8], all[0], "T has order 8");
        assert_ne!(all[4], all[0], "T has order 8");
        all.truncate(8);
        all
    }
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// (a as an integer, A's encoding) of a seed, as RFC 8032 derives them.
fn key_of(seed: [u8; 32]) -> (BigUint, [u8; 32]) {
    let h = Sha512::digest(seed);
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
    (BigUint::from_bytes_le(&a), *kp.pk)
}

fn k_of(f: &Field, r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> BigUint {
    let h = Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(msg)
        .finalize();
    BigUint::from_bytes_le(&h) % &f.l
}

/// R || S with S = r + k·a mod L for these encodings of R and A.
fn sign(
    f: &Field,
    r: &BigUint,
    r_enc: &[u8; 32],
    a: &BigUint,
    a_enc: &[u8; 32],
    msg: &[u8],
) -> Vec<u8> {
    let s = (r + k_of(f, r_enc, a_enc, msg) * a) % &f.l;
    let mut s_le = s.to_bytes_le();
    s_le.resize(32, 0);
    [r_enc.to_vec(), s_le].concat()
}

fn reference(a_enc: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (
        ed25519_compact::PublicKey::from_slice(a_enc),
        ed25519_compact::Signature::from_slice(sig),
    ) else {
        return false;
    };
    pk.verify(msg, &sig).is_ok()
}

fn ours(a_enc: &[u8]) -> OurKey {
    OurKey::parse(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(a_enc)}))
}

fn judge(
    t: &mut Tally,
    class: &str,
    key: &OurKey,
    a_enc: &[u8],
    msg: &[u8],
    sig: &[u8],
    allowed: Option<&'static str>,
) -> (bool, bool) {
    let o = key.verify(Alg::EdDsa, msg, sig);
    let r = reference(a_enc, msg, sig);
    t.check(class, &hex::encode(&sig[..8]), o, r, allowed);
    (o, r)
}

/// Seeded random keys and messages, signed by ed25519-compact: valid, a flipped bit, another
/// message, S + L and S = L (non-canonical S: both refuse).
fn random(t: &mut Tally, f: &Field) {
    let mut g = rng(100);
    for _ in 0..6 {
        let seed: [u8; 32] = random_bytes(&mut g, 32).try_into().unwrap();
        let kp = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed));
        let key = ours(&kp.pk[..]);
        for _ in 0..4 {
            let len = (g.next_u32() % 300) as usize;
            let msg = random_bytes(&mut g, len);
            let sig = kp.sk.sign(&msg, None).to_vec();
            let (o, r) = judge(t, "random", &key, &kp.pk[..], &msg, &sig, None);
            assert!(o && r);
            let mut bad = sig.clone();
            let bit = (g.next_u32() % 512) as usize;
            bad[bit / 8] ^= 1 << (bit % 8);
            judge(t, "random: flipped bit", &key, &kp.pk[..], &msg, &bad, None);
            judge(
                t,
                "random: other message",
                &key,
                &kp.pk[..],
                &[&msg[..], b"!"].concat(),
                &sig,
                None,
            );
            let s = BigUint::from_bytes_le(&sig[32..]);
            for (name, s2) in [("S + L", &s + &f.l), ("S = L", f.l.clone())] {
                let mut le = s2.to_bytes_le();
                le.resize(32, 0);
                let non_canonical = [&sig[..32], &le[..]].concat();
                judge(
                    t,
                    &format!("random: {name}"),
                    &key,
                    &kp.pk[..],
                    &msg,
                    &non_canonical,
                    None,
                );
            }
        }
    }
}

/// Mixed-order keys A' = A + T_j (T_j = j·T, T of order 8, j = 1..7) signing with the private
/// scalar a: [S]B - [k]A' = R - [k]T_j, which is R exactly when k·j = 0 mod 8 (ours and the
/// reference accept; for each key a message with such a k is searched for) and differs from R by
/// a small-order point otherwise (the reference accepts, ours refuses: by design).
/// Cofactored-only signatures of an honest key: R' = R + T_j, S = r + k'·a with
/// k' = H(R' || A || M): [S]B - [k']A = R, not R', so only a cofactored check accepts.
fn small_order_components(t: &mut Tally, f: &Field) {
    let torsion = f.torsion();
    let mut g = rng(101);
    for round in 0..2 {
        let seed: [u8; 32] = random_bytes(&mut g, 32).try_into().unwrap();
        let (a, a_enc) = key_of(seed);
        let a_pt = f.decode(&a_enc).unwrap();
        let nonce_seed: [u8; 32] = random_bytes(&mut g, 32).try_into().unwrap();
        let (r, r_enc) = key_of(nonce_seed);
        let honest = sign(f, &r, &r_enc, &a, &a_enc, b"honest");
        assert!(
            reference(&a_enc, b"honest", &honest),
            "the arithmetic signs as RFC 8032"
        );
        for (j, tj) in torsion.iter().enumerate().skip(1) {
            let mixed = f.encode(&f.add(&a_pt, tj));
            let key = ours(&mixed);
            assert!(key.accepted(), "a mixed-order key is of large order");
            let mut agreed = false;
            for i in 0..64 {
                let msg = format!("mixed {round} {j} {i}").into_bytes();
                let k = k_of(f, &r_enc, &mixed, &msg);
                let cofactorless = (&k * j % 8u32) == BigUint::ZERO;
                if agreed && cofactorless {
                    continue;
                }
                let sig = sign(f, &r, &r_enc, &a, &mixed, &msg);
                let allowed = (!cofactorless).then_some("ed25519-cofactored-only");
                let (o, rf) = judge(t, "mixed-order key", &key, &mixed, &msg, &sig, allowed);
                assert!(rf, "the reference accepts a mixed-order key's signature");
                assert_eq!(o, cofactorless, "ours is cofactorless");
                agreed |= cofactorless;
                if agreed && i >= 3 {
                    break;
                }
            }
            assert!(agreed, "no message with k·{j} = 0 mod 8");
            let r_pt = f.decode(&r_enc).unwrap();
            let r_mixed = f.encode(&f.add(&r_pt, tj));
            let msg = format!("cofactored {round} {j}").into_bytes();
            let sig = sign(f, &r, &r_mixed, &a, &a_enc, &msg);
            let honest_key = ours(&a_enc);
            let (o, rf) = judge(
                t,
                "cofactored-only signature (R + T)",
                &honest_key,
                &a_enc,
                &msg,
                &sig,
                Some("ed25519-cofactored-only"),
            );
            assert!(rf && !o, "R + T: reference {rf}, ours {o}");
        }
    }
}

/// Small-order keys (the eight points of order dividing 8) and non-canonical encodings (y + p
/// for y = 0 and 1, x = -0): refused as keys by both; the forgery R = identity, S = 0 (which
/// verifies any message under a small-order key on a verifier that lets such keys in) is refused.
fn small_order_keys(t: &mut Tally, f: &Field) {
    let mut encodings: Vec<[u8; 32]> = f.torsion().iter().map(|p| f.encode(p)).collect();
    let y_plus_p = |low: u8, sign: u8| {
        let mut e = [0xffu8; 32];
        e[0] = low;
        e[31] = 0x7f | sign;
        e
    };
    encodings.extend([
        y_plus_p(0xed, 0),
        y_plus_p(0xee, 0),
        y_plus_p(0xed, 0x80),
        y_plus_p(0xee, 0x80),
    ]);
    let mut minus_zero = [0u8; 32];
    minus_zero[0] = 1;
    minus_zero[31] = 0x80;
    encodings.push(minus_zero);
    let mut forged = [0u8; 64];
    forged[0] = 1;
    for enc in encodings {
        let key = ours(&enc);
        let reference_key = ed25519_compact::PublicKey::new(enc).validate().is_ok();
        t.check(
            "small-order or non-canonical key",
            &hex::encode(enc),
            key.accepted(),
            reference_key,
            None,
        );
        judge(
            t,
            "small-order key: forged R = identity, S = 0",
            &key,
            &enc,
            b"any",
            &forged,
            None,
        );
    }
}

pub fn run(t: &mut Tally) {
    let f = Field::new();
    random(t, &f);
    small_order_components(t, &f);
    small_order_keys(t, &f);
}
