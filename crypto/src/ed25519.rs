//! Ed25519 (EdDSA, RFC 8032), verification only: cofactorless, S < L required, R compared as
//! its canonical encoding.
//!
//! [S]B - [k]A is computed with two 8-tooth combs sharing their doublings (as in
//! [`super::weierstrass`]) on the twisted Edwards curve -x^2 + y^2 = 1 + d x^2 y^2 in extended
//! coordinates, whose addition is complete: no special cases. B's table is built once per
//! process, -A's when the key is parsed; the result is encoded and compared with R byte for byte,
//! so a non-canonical R never verifies. Everything handled is public: variable time is fine.
//! Limb and index arithmetic is on fixed sizes (8 limbs, 255 table entries, 32 columns), so
//! clippy's arithmetic lint is off for this module.
#![allow(clippy::arithmetic_side_effects)]

use std::sync::OnceLock;

use sha2::{Digest, Sha512};

use super::mont::{self, bit, hex, is_zero, lt, Limbs, Modulus};
use super::PointError;

type Fe = Limbs<8>;

static P: Modulus<8> = Modulus::new(hex(
    "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed",
));
static L: Modulus<8> = Modulus::new(hex(
    "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed",
));
const D: Fe = hex("52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3");
const SQRT_M1: Fe = hex("2b8324804fc1df0b2b4d00993dfbd7a72f431806ad2fe478c4ee1b274a0ea0b0");
const BX: Fe = hex("216936d3cd6e53fec0a4e231fdd6dc5c692cc7609525a7b2c9562d608f25d51a");
const BY: Fe = hex("6666666666666666666666666666666666666666666666666666666666666658");
/// (p - 5) / 8, the exponent of the square root.
const SQRT_EXP: Fe = hex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffd");

const TEETH: usize = 8;
const ENTRIES: usize = (1 << TEETH) - 1;
/// Comb column length: 8 columns of 32 bits cover scalars below 2^256.
const SPACING: usize = 32;

/// A point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, T = XY/Z; Montgomery form.
#[derive(Clone, Copy)]
struct Point {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

/// An affine point as (y + x, y - x, 2d x y), Montgomery form.
#[derive(Clone, Copy)]
struct Niels {
    ypx: Fe,
    ymx: Fe,
    t2d: Fe,
}

struct Table {
    entries: Box<[Niels]>,
}

static BASE: OnceLock<Option<Table>> = OnceLock::new();

fn identity() -> Point {
    Point {
        x: [0; 8],
        y: P.one,
        z: P.one,
        t: [0; 8],
    }
}

fn double(q: &Point) -> Point {
    let f = &P;
    let a = f.sqr(&q.x);
    let b = f.sqr(&q.y);
    let zz = f.sqr(&q.z);
    let c = f.add(&zz, &zz);
    let d = f.neg(&a);
    let xy = f.add(&q.x, &q.y);
    let e = f.sub(&f.sub(&f.sqr(&xy), &a), &b);
    let g = f.add(&d, &b);
    let ff = f.sub(&g, &c);
    let h = f.sub(&d, &b);
    Point {
        x: f.mul(&e, &ff),
        y: f.mul(&g, &h),
        z: f.mul(&ff, &g),
        t: f.mul(&e, &h),
    }
}

fn add_niels(q: &Point, n: &Niels) -> Point {
    let f = &P;
    let a = f.mul(&f.sub(&q.y, &q.x), &n.ymx);
    let b = f.mul(&f.add(&q.y, &q.x), &n.ypx);
    let c = f.mul(&q.t, &n.t2d);
    let d = f.add(&q.z, &q.z);
    let e = f.sub(&b, &a);
    let ff = f.sub(&d, &c);
    let g = f.add(&d, &c);
    let h = f.add(&b, &a);
    Point {
        x: f.mul(&e, &ff),
        y: f.mul(&g, &h),
        z: f.mul(&ff, &g),
        t: f.mul(&e, &h),
    }
}

fn niels_of_affine(x: &Fe, y: &Fe) -> Niels {
    let f = &P;
    let d2 = f.to_mont(&f.add(&D, &D));
    Niels {
        ypx: f.add(y, x),
        ymx: f.sub(y, x),
        t2d: f.mul(&f.mul(x, y), &d2),
    }
}

/// Affine (x, y) of points with Z != 0 (always so on this curve), one inversion for all.
fn normalize(points: &[Point]) -> Option<Vec<(Fe, Fe)>> {
    let f = &P;
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = f.one;
    for q in points {
        acc = f.mul(&acc, &q.z);
        prefix.push(acc);
    }
    let mut inv = f.inv_mont(&acc)?;
    let mut out = vec![([0u32; 8], [0u32; 8]); points.len()];
    for (i, q) in points.iter().enumerate().rev() {
        let before = if i == 0 { f.one } else { *prefix.get(i - 1)? };
        let zinv = f.mul(&inv, &before);
        inv = f.mul(&inv, &q.z);
        *out.get_mut(i)? = (f.mul(&q.x, &zinv), f.mul(&q.y, &zinv));
    }
    Some(out)
}

fn table(x: &Fe, y: &Fe) -> Option<Table> {
    let f = &P;
    let mut q = Point {
        x: *x,
        y: *y,
        z: f.one,
        t: f.mul(x, y),
    };
    let mut teeth = vec![niels_of_affine(x, y)];
    for _ in 1..TEETH {
        for _ in 0..SPACING {
            q = double(&q);
        }
        let (tx, ty) = *normalize(&[q])?.first()?;
        teeth.push(niels_of_affine(&tx, &ty));
    }
    let mut sums: Vec<Point> = Vec::with_capacity(ENTRIES);
    for k in 1..=ENTRIES {
        let high = usize::BITS - 1 - k.leading_zeros();
        let tooth = teeth.get(high as usize)?;
        let rest = k ^ (1 << high);
        let base = match rest {
            0 => identity(),
            _ => *sums.get(rest - 1)?,
        };
        sums.push(add_niels(&base, tooth));
    }
    let entries = normalize(&sums)?
        .iter()
        .map(|(x, y)| niels_of_affine(x, y))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    Some(Table { entries })
}

fn base_table() -> Option<&'static Table> {
    BASE.get_or_init(|| table(&P.to_mont(&BX), &P.to_mont(&BY)))
        .as_ref()
}

fn pow(base: &Fe, exp: &Fe) -> Fe {
    let mut acc = P.one;
    for i in (0..256).rev() {
        acc = P.sqr(&acc);
        if bit(exp, i) == 1 {
            acc = P.mul(&acc, base);
        }
    }
    acc
}

/// Decodes a point encoding (RFC 8032 5.1.3, canonical y only); affine (x, y), Montgomery form.
fn decode(bytes: &[u8; 32]) -> Option<(Fe, Fe)> {
    let f = &P;
    let mut y_bytes = *bytes;
    let sign = y_bytes.last().map_or(0, |b| b >> 7);
    if let Some(last) = y_bytes.last_mut() {
        *last &= 0x7f;
    }
    let y = mont::from_le::<8>(&y_bytes)?;
    if !lt(&y, &f.m) {
        return None;
    }
    let y = f.to_mont(&y);
    let yy = f.sqr(&y);
    let u = f.sub(&yy, &f.one);
    let v = f.add(&f.mul(&yy, &f.to_mont(&D)), &f.one);
    let v3 = f.mul(&f.sqr(&v), &v);
    let v7 = f.mul(&f.sqr(&v3), &v);
    let mut x = f.mul(&f.mul(&u, &v3), &pow(&f.mul(&u, &v7), &SQRT_EXP));
    let vxx = f.mul(&v, &f.sqr(&x));
    if vxx != u {
        if vxx != f.neg(&u) {
            return None;
        }
        x = f.mul(&x, &f.to_mont(&SQRT_M1));
    }
    let plain = f.out_of_mont(&x);
    if is_zero(&plain) && sign == 1 {
        return None;
    }
    if plain.first().map_or(0, |l| l & 1) != u32::from(sign) {
        x = f.neg(&x);
    }
    Some((x, y))
}

fn encode(q: &Point) -> Option<[u8; 32]> {
    let f = &P;
    let zinv = f.inv_mont(&q.z)?;
    let x = f.out_of_mont(&f.mul(&q.x, &zinv));
    let y = f.out_of_mont(&f.mul(&q.y, &zinv));
    let mut out = [0u8; 32];
    for (chunk, limb) in out.chunks_exact_mut(4).zip(y) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    if let Some(last) = out.last_mut() {
        *last |= ((x.first().copied().unwrap_or(0) & 1) as u8) << 7;
    }
    Some(out)
}

/// An Ed25519 public key with the comb table of its negation (built once, when the key is parsed).
pub struct PublicKey {
    encoded: [u8; 32],
    minus_a: Table,
}

impl PublicKey {
    /// The key of a 32-byte encoding; refused unless it is a canonical encoding of a point of
    /// large order (a small-order key would verify forged signatures).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PointError> {
        let encoded: [u8; 32] = bytes.try_into().map_err(|_| PointError::Length)?;
        let (x, y) = decode(&encoded).ok_or(PointError::NotOnCurve)?;
        let f = &P;
        let mut q = Point {
            x,
            y,
            z: f.one,
            t: f.mul(&x, &y),
        };
        for _ in 0..3 {
            q = double(&q);
        }
        if is_zero(&q.x) {
            return Err(PointError::NotOnCurve);
        }
        let minus_a = table(&f.neg(&x), &y).ok_or(PointError::NotOnCurve)?;
        Ok(PublicKey { encoded, minus_a })
    }

    /// Whether `signature` (R || S, 64 bytes, S < L) is this key's Ed25519 signature of `message`:
    /// the encoding of [S]B - [k]A, k = SHA-512(R || A || message) mod L, equals R.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let (r, s) = sig.split_at(32);
        let Some(s) = mont::from_le::<8>(s) else {
            return false;
        };
        if !lt(&s, &L.m) {
            return false;
        }
        let digest = Sha512::new()
            .chain_update(r)
            .chain_update(self.encoded)
            .chain_update(message)
            .finalize();
        let Some(k) = reduce_wide(&digest) else {
            return false;
        };
        let Some(b) = base_table() else {
            return false;
        };
        let mut acc = identity();
        for j in (0..SPACING).rev() {
            acc = double(&acc);
            if let Some(n) = pattern(&s, j).checked_sub(1).and_then(|i| b.entries.get(i)) {
                acc = add_niels(&acc, n);
            }
            if let Some(n) = pattern(&k, j)
                .checked_sub(1)
                .and_then(|i| self.minus_a.entries.get(i))
            {
                acc = add_niels(&acc, n);
            }
        }
        encode(&acc).is_some_and(|e| e.as_slice() == r)
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Ed25519 public key")
    }
}

fn pattern(k: &Fe, j: usize) -> usize {
    (0..TEETH).fold(0usize, |acc, c| {
        acc | ((bit(k, j + c * SPACING) as usize) << c)
    })
}

/// A 64-byte little-endian integer mod L: lo + hi * 2^256, in Montgomery form lo*R + hi*R^2.
fn reduce_wide(bytes: &[u8]) -> Option<Fe> {
    let (lo, hi) = bytes.split_at_checked(32)?;
    let lo = mont::from_le::<8>(lo)?;
    let hi = mont::from_le::<8>(hi)?;
    let m = L.add(&L.mul(&lo, &L.r2), &L.mul(&hi, &L.r3));
    Some(L.out_of_mont(&m))
}
