//! ECDSA (ES256, ES384, ES512) against the `p256`, `p384` and `p521` crates.
//!
//! Keys and signatures come from chosen scalars: the key Q = qG is the reference crate's public
//! key of q, and a signature with nonce k is r = x(kG) mod n, s = k^-1 (e + r q) mod n, computed
//! here, so the scalars u1 = e/s and u2 = r/s the verifier's combs read are known to the test.

use aml_auth_filter::token::jwks::Alg;
use num_bigint::BigUint;
use p256::ecdsa::signature::Verifier as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use rand_chacha::rand_core::RngCore;
use serde_json::json;
use sha2::Digest as _;

use super::{b64, be, big, hex_big, random_bytes, rng, OurKey, Tally};

/// One curve: its constants and the reference crate's operations.
pub struct Curve {
    pub name: &'static str,
    pub alg: Alg,
    /// Bytes of a coordinate or scalar.
    pub size: usize,
    /// Bits of n.
    pub bits: usize,
    pub p: BigUint,
    pub n: BigUint,
    pub b: BigUint,
    hash: fn(&[u8]) -> Vec<u8>,
    /// (x, y) of kG for a scalar k in 1..n-1, `size` big-endian bytes.
    point: fn(&[u8]) -> Option<(Vec<u8>, Vec<u8>)>,
    /// (x, y) of (k + i·delta)G for i in 0..count (one point addition per step).
    walk: fn(&[u8], &[u8], usize) -> Vec<(Vec<u8>, Vec<u8>)>,
    /// The reference's verdict on a SEC1 uncompressed key, a message and r || s.
    reference: fn(&[u8], &[u8], &[u8]) -> bool,
}

macro_rules! curve {
    ($krate:ident, $name:expr, $alg:expr, $size:expr, $bits:expr, $hash:ty, $p:expr, $n:expr, $b:expr) => {
        Curve {
            name: $name,
            alg: $alg,
            size: $size,
            bits: $bits,
            p: hex_big($p),
            n: hex_big($n),
            b: hex_big($b),
            hash: |m| <$hash>::digest(m).to_vec(),
            point: |k| {
                let pk = $krate::SecretKey::from_slice(k).ok()?.public_key();
                let e = pk.to_encoded_point(false);
                Some((e.x()?.to_vec(), e.y()?.to_vec()))
            },
            walk: |k, delta, count| {
                let pk = $krate::SecretKey::from_slice(k).unwrap().public_key();
                let step = $krate::SecretKey::from_slice(delta).unwrap().public_key();
                let step = step.to_projective();
                let mut p = pk.to_projective();
                let mut out = Vec::with_capacity(count);
                for _ in 0..count {
                    let a = $krate::AffinePoint::from(p).to_encoded_point(false);
                    out.push((a.x().unwrap().to_vec(), a.y().unwrap().to_vec()));
                    p += step;
                }
                out
            },
            reference: |sec1, msg, sig| {
                let Ok(vk) = $krate::ecdsa::VerifyingKey::from_sec1_bytes(sec1) else {
                    return false;
                };
                let Ok(sig) = $krate::ecdsa::Signature::from_slice(sig) else {
                    return false;
                };
                vk.verify(msg, &sig).is_ok()
            },
        }
    };
}

pub fn curves() -> [Curve; 3] {
    [
        curve!(
            p256,
            "P-256",
            Alg::Es256,
            32,
            256,
            sha2::Sha256,
            "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
            "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
            "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"
        ),
        curve!(
            p384,
            "P-384",
            Alg::Es384,
            48,
            384,
            sha2::Sha384,
            "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
            "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
            "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"
        ),
        curve!(
            p521,
            "P-521",
            Alg::Es512,
            66,
            521,
            sha2::Sha512,
            "1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
            "51953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"
        ),
    ]
}

/// A public key both sides read: the JWK (coordinates as given) and the reference's SEC1 form
/// (coordinates left-padded to the curve's size; `None` when one is longer).
pub struct Key {
    ours: OurKey,
    sec1: Option<Vec<u8>>,
}

impl Curve {
    fn spacing(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// e: the digest of `msg` as an integer (every digest here is at most n's size in bits).
    pub fn e(&self, msg: &[u8]) -> BigUint {
        big(&(self.hash)(msg))
    }

    pub fn public(&self, q: &BigUint) -> (Vec<u8>, Vec<u8>) {
        (self.point)(&be(q, self.size)).unwrap()
    }

    pub fn key(&self, x: &[u8], y: &[u8]) -> Key {
        let jwk = json!({"kty": "EC", "crv": self.name, "x": b64(x), "y": b64(y)});
        let pad = |c: &[u8]| {
            (c.len() <= self.size).then(|| [vec![0u8; self.size - c.len()], c.to_vec()].concat())
        };
        let sec1 = pad(x).zip(pad(y)).map(|(x, y)| [vec![4u8], x, y].concat());
        Key {
            ours: OurKey::parse(jwk),
            sec1,
        }
    }

    /// (ours, reference) on one signature.
    pub fn verdicts(&self, key: &Key, msg: &[u8], sig: &[u8]) -> (bool, bool) {
        let ours = key.ours.verify(self.alg, msg, sig);
        let reference = key
            .sec1
            .as_ref()
            .is_some_and(|s| (self.reference)(s, msg, sig));
        (ours, reference)
    }

    /// r = x(kG) mod n for the nonce k.
    pub fn r_of(&self, k: &BigUint) -> BigUint {
        let (rx, _) = (self.point)(&be(k, self.size)).unwrap();
        big(&rx) % &self.n
    }

    /// The signature (r, s) of digest value `e` by key q with nonce k (r = [`Curve::r_of`] k),
    /// and its (u1, u2); `None` when r or s is 0.
    pub fn sign_r(
        &self,
        q: &BigUint,
        k: &BigUint,
        r: &BigUint,
        e: &BigUint,
    ) -> Option<(Vec<u8>, BigUint, BigUint)> {
        let n = &self.n;
        let s = k.modinv(n)? * ((e + r * q) % n) % n;
        if *r == BigUint::ZERO || s == BigUint::ZERO {
            return None;
        }
        let w = s.modinv(n)?;
        let (u1, u2) = ((e % n) * &w % n, r * &w % n);
        Some(([be(r, self.size), be(&s, self.size)].concat(), u1, u2))
    }

    /// [`Curve::sign_r`] with a fresh nonce.
    pub fn sign(
        &self,
        q: &BigUint,
        k: &BigUint,
        e: &BigUint,
    ) -> Option<(Vec<u8>, BigUint, BigUint)> {
        self.sign_r(q, k, &self.r_of(k), e)
    }

    /// The 8-bit pattern of the comb's first (top) column of scalar u: bit D-1 + c*D for tooth c.
    pub fn top_pattern(&self, u: &BigUint) -> u32 {
        let d = self.spacing();
        (0..8).fold(0, |acc, c| {
            acc | (u32::from(u.bit((d - 1 + c * d) as u64)) << c)
        })
    }

    fn random_scalar(&self, rng: &mut impl RngCore) -> BigUint {
        let v = big(&random_bytes(rng, self.size + 8)) % (&self.n - 1u32);
        v + 1u32
    }

    /// y with y^2 = x^3 - 3x + b when x^3 - 3x + b is a square mod p (p = 3 mod 4 on all three).
    fn y_for(&self, x: &BigUint) -> Option<BigUint> {
        let p = &self.p;
        let rhs = (x.modpow(&3u32.into(), p) + &self.b + p * 3u32 - (x * 3u32) % p) % p;
        let y = rhs.modpow(&((p + 1u32) >> 2), p);
        (&y * &y % p == rhs).then_some(y)
    }
}

/// The reference accepts `sig` and so must ours (valid by construction), then one flipped bit
/// of the signature and another message, which both must refuse.
fn valid_and_mutated(
    t: &mut Tally,
    c: &Curve,
    class: &str,
    key: &Key,
    msg: &[u8],
    sig: &[u8],
    flip: usize,
) {
    let (ours, reference) = c.verdicts(key, msg, sig);
    assert!(
        reference,
        "{} {class}: the crafted signature is not valid",
        c.name
    );
    t.check(class, &c.name, ours, reference, None);
    let mut bad = sig.to_vec();
    let at = flip % bad.len();
    bad[at] ^= 1 << (flip % 8);
    let (ours, reference) = c.verdicts(key, msg, &bad);
    t.check(
        class,
        &format!("{} flipped bit", c.name),
        ours,
        reference,
        None,
    );
    let other = [msg, b"!"].concat();
    let (ours, reference) = c.verdicts(key, &other, sig);
    t.check(
        class,
        &format!("{} other message", c.name),
        ours,
        reference,
        None,
    );
}

/// Seeded random keys and messages: valid signatures, high s (n - s: both accept), r + n and
/// s + n where they fit (out of range: both refuse), flipped bits and other messages.
fn random(t: &mut Tally, c: &Curve, stream: u64) {
    let mut g = rng(stream);
    for i in 0..4 {
        let q = c.random_scalar(&mut g);
        let (x, y) = c.public(&q);
        let key = c.key(&x, &y);
        for j in 0..3 {
            let len = (g.next_u32() % 200) as usize;
            let msg = random_bytes(&mut g, len);
            let k = c.random_scalar(&mut g);
            let Some((sig, _, _)) = c.sign(&q, &k, &c.e(&msg)) else {
                continue;
            };
            valid_and_mutated(t, c, "random", &key, &msg, &sig, (g.next_u32()) as usize);
            let (r, s) = sig.split_at(c.size);
            let high_s = be(&(&c.n - big(s)), c.size);
            let (ours, reference) = c.verdicts(&key, &msg, &[r, &high_s].concat());
            t.check(
                "random: high s",
                &format!("{} {i} {j}", c.name),
                ours,
                reference,
                None,
            );
            for (rr, ss) in [
                (big(r) + &c.n, big(s)),
                (big(r), big(s) + &c.n),
                (BigUint::ZERO, big(s)),
                (big(r), BigUint::ZERO),
            ] {
                if rr.bits() as usize > 8 * c.size || ss.bits() as usize > 8 * c.size {
                    continue;
                }
                let (ours, reference) =
                    c.verdicts(&key, &msg, &[be(&rr, c.size), be(&ss, c.size)].concat());
                t.check(
                    "random: r or s out of range",
                    &c.name,
                    ours,
                    reference,
                    None,
                );
            }
        }
    }
}

/// Comb-column collisions and the keys ±2^(c·D)·G (D = ceil(bits/8), c = 0..7; c = 0 is ±G).
///
/// Entry p of a key's comb table is the sum of 2^(c'·D)·Q over the set bits c' of p. For
/// Q = ±2^(c·D)·G that is ±(entry p << c of G's table). The first (top) column starts from the
/// point at infinity, adds G's entry for u1's pattern p1 (the `add_affine` branch from
/// infinity), then the key's entry for u2's pattern p2: when p1 == p2 << c the two points are
/// equal (+: `add_affine` reaches `double`) or opposite (-: it returns infinity, and the next
/// column adds to infinity again). Messages are tried with a fixed nonce until the patterns
/// collide (about 2^(8+c) tries, walking the nonce k, k + δ, k + 2δ, ... (δ random) by one point
/// addition each;
/// forced for c <= 2, plain random signatures for the other c).
fn comb_collisions(t: &mut Tally, c: &Curve, stream: u64) {
    let mut g = rng(stream);
    let d = c.spacing();
    for shift in 0..8usize {
        let power = BigUint::from(1u32) << (shift * d);
        for negative in [false, true] {
            let q = if negative {
                &c.n - &power
            } else {
                power.clone()
            };
            let (x, y) = c.public(&q);
            let key = c.key(&x, &y);
            let class = format!(
                "comb: key {}2^({shift}D)G",
                if negative { "-" } else { "+" }
            );
            if shift <= 2 {
                let (k0, delta) = (c.random_scalar(&mut g), c.random_scalar(&mut g));
                let found = (0..40usize).find_map(|chunk| {
                    let start = (&k0 + &delta * (chunk * 512)) % &c.n;
                    let xs = (c.walk)(&be(&start, c.size), &be(&delta, c.size), 512);
                    xs.iter().enumerate().find_map(|(i, (x, _))| {
                        let k = (&start + &delta * i) % &c.n;
                        let msg = format!("collide {shift} {negative} {chunk} {i}").into_bytes();
                        let (sig, u1, u2) = c.sign_r(&q, &k, &(big(x) % &c.n), &c.e(&msg))?;
                        let (p1, p2) = (c.top_pattern(&u1), c.top_pattern(&u2));
                        (p2 != 0 && (p2 << shift) < 256 && p1 == p2 << shift).then_some((msg, sig))
                    })
                });
                let (msg, sig) = found.unwrap_or_else(|| {
                    panic!("{} {shift} {negative}: no colliding message", c.name)
                });
                let what = if negative { "infinity" } else { "doubling" };
                valid_and_mutated(
                    t,
                    c,
                    &format!("{class}: first column collides ({what})"),
                    &key,
                    &msg,
                    &sig,
                    g.next_u32() as usize,
                );
            }
            {
                let msg = random_bytes(&mut g, 40);
                let k = c.random_scalar(&mut g);
                if let Some((sig, _, _)) = c.sign(&q, &k, &c.e(&msg)) {
                    valid_and_mutated(t, c, &class, &key, &msg, &sig, g.next_u32() as usize);
                }
            }
        }
    }
}

/// Keys that are not canonical points of the curve, read through the JWK: x + p (x small, so
/// x + p still fits the coordinate's size: the `>= p` check, not the length check, refuses it),
/// y + p (P-521 only, where 66 bytes hold 2^528 > y + p), x = p, coordinates of all ones, twist
/// points (x whose x^3 - 3x + b is not a square, any y) and points of other curves
/// y^2 = x^3 - 3x + b' (random x, y). Each key is also tried with a signature of a valid key.
/// Short coordinates (leading zero bytes dropped, from scalars whose public x or y starts with
/// a zero byte) must be the same key for both.
fn bad_and_short_keys(t: &mut Tally, c: &Curve, stream: u64) {
    let mut g = rng(stream);
    let q = c.random_scalar(&mut g);
    let k = c.random_scalar(&mut g);
    let msg = b"key classes";
    let (sig, _, _) = c.sign(&q, &k, &c.e(msg)).unwrap();
    let judge = |t: &mut Tally, class: &str, x: &[u8], y: &[u8]| {
        let key = c.key(x, y);
        let reference_key = key.sec1.as_ref().is_some_and(|s| parses(c, s));
        t.check(class, &c.name, key.ours.accepted(), reference_key, None);
        let (ours, reference) = c.verdicts(&key, msg, &sig);
        t.check(
            class,
            &format!("{} signature", c.name),
            ours,
            reference,
            None,
        );
    };
    let mut small_x = BigUint::ZERO;
    let mut found = 0;
    while found < 3 {
        if let Some(y) = c.y_for(&small_x) {
            let x_plus_p = &small_x + &c.p;
            if x_plus_p.bits() as usize <= 8 * c.size {
                judge(t, "key: x + p", &be(&x_plus_p, c.size), &be(&y, c.size));
                judge(t, "key: x (small)", &be(&small_x, c.size), &be(&y, c.size));
                found += 1;
            }
            if c.name == "P-521" {
                judge(
                    t,
                    "key: y + p",
                    &be(&small_x, c.size),
                    &be(&(&y + &c.p), c.size),
                );
            }
        }
        small_x += 1u32;
    }
    let (x, y) = c.public(&q);
    judge(t, "key: x = p", &be(&c.p, c.size), &y);
    judge(t, "key: all ones", &vec![0xff; c.size], &vec![0xff; c.size]);
    let (mut twist, mut other) = (0, 0);
    while twist < 4 || other < 4 {
        let x = big(&random_bytes(&mut g, c.size)) % &c.p;
        let y = big(&random_bytes(&mut g, c.size)) % &c.p;
        if c.y_for(&x).is_none() && twist < 4 {
            judge(t, "key: twist x", &be(&x, c.size), &be(&y, c.size));
            twist += 1;
        } else if other < 4 {
            judge(
                t,
                "key: another curve's point",
                &be(&x, c.size),
                &be(&y, c.size),
            );
            other += 1;
        }
    }
    judge(t, "key: valid", &x, &y);
    for in_x in [true, false] {
        let (q0, delta) = (c.random_scalar(&mut g), c.random_scalar(&mut g));
        let points = (c.walk)(&be(&q0, c.size), &be(&delta, c.size), 2048);
        let (i, (x, y)) = points
            .into_iter()
            .enumerate()
            .find(|(_, (x, y))| (if in_x { x } else { y })[0] == 0)
            .unwrap();
        let q = (&q0 + &delta * i) % &c.n;
        let strip = |v: &[u8]| v[v.iter().take_while(|&&b| b == 0).count()..].to_vec();
        let (sx, sy) = if in_x { (strip(&x), y) } else { (x, strip(&y)) };
        let key = c.key(&sx, &sy);
        let class = format!("key: short {}", if in_x { "x" } else { "y" });
        t.check(
            &class,
            &c.name,
            key.ours.accepted(),
            key.sec1.is_some(),
            None,
        );
        let msg = b"short coordinate";
        let k = c.random_scalar(&mut g);
        let (sig, _, _) = c.sign(&q, &k, &c.e(msg)).unwrap();
        valid_and_mutated(t, c, &class, &key, msg, &sig, 3);
    }
}

/// Whether the reference reads a SEC1 key (a key it refuses cannot verify anything).
fn parses(c: &Curve, sec1: &[u8]) -> bool {
    match c.name {
        "P-256" => p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1).is_ok(),
        "P-384" => p384::ecdsa::VerifyingKey::from_sec1_bytes(sec1).is_ok(),
        _ => p521::ecdsa::VerifyingKey::from_sec1_bytes(sec1).is_ok(),
    }
}

pub fn run(t: &mut Tally) {
    for (i, c) in curves().iter().enumerate() {
        let stream = 10 * i as u64;
        random(t, c, stream + 1);
        comb_collisions(t, c, stream + 2);
        bad_and_short_keys(t, c, stream + 3);
    }
}
