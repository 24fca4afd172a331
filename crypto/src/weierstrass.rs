//! ECDSA verification on the NIST prime curves y^2 = x^3 - 3x + b (P-256, P-384, P-521), one
//! generic code over the limb count N.
//!
//! u1*G + u2*Q is computed with two 8-tooth combs that share their doublings: the scalars are read
//! in 8 columns of D = ceil(bits/8) bits; the table of a point P holds, for each non-zero 8-bit
//! pattern, the sum of 2^(c*D)*P over the pattern's set bits c, in affine form. A verify is then D
//! doublings and at most 2D mixed additions. G's table is built once per process, a key's when
//! the key is parsed. Everything handled is public data: variable time is fine.
//! Limb and index arithmetic is on fixed sizes (N limbs, 255 table entries, D < 67 columns), so
//! clippy's arithmetic lint is off for this module.
#![allow(clippy::arithmetic_side_effects)]

use super::mont::{self, bit, is_zero, lt, Limbs, Modulus};
use super::PointError;

/// Comb teeth: each table has 2^TEETH - 1 entries.
const TEETH: usize = 8;
const ENTRIES: usize = (1 << TEETH) - 1;

/// The constants of one curve.
pub(crate) struct Curve<const N: usize> {
    /// Field modulus p.
    pub(crate) p: Modulus<N>,
    /// Group order n (prime; the cofactor is 1).
    pub(crate) n: Modulus<N>,
    /// b, plain form.
    pub(crate) b: Limbs<N>,
    /// Generator, plain form.
    pub(crate) gx: Limbs<N>,
    pub(crate) gy: Limbs<N>,
    /// Bytes of one coordinate or scalar (32, 48, 66).
    pub(crate) bytes: usize,
    /// Bits of the order n.
    pub(crate) bits: usize,
}

/// An affine point, Montgomery form.
#[derive(Clone, Copy)]
pub(crate) struct Affine<const N: usize> {
    x: Limbs<N>,
    y: Limbs<N>,
}

/// A Jacobian point (X/Z^2, Y/Z^3), Montgomery form; Z = 0 is the point at infinity.
#[derive(Clone, Copy)]
struct Jacobian<const N: usize> {
    x: Limbs<N>,
    y: Limbs<N>,
    z: Limbs<N>,
}

/// The comb table of one point: entry k - 1 is the affine sum of 2^(c*D)*P over the set bits c of k.
pub(crate) struct Table<const N: usize> {
    entries: Box<[Affine<N>]>,
}

impl<const N: usize> Curve<N> {
    fn spacing(&self) -> usize {
        self.bits.div_ceil(TEETH)
    }

    fn infinity(&self) -> Jacobian<N> {
        Jacobian {
            x: self.p.one,
            y: self.p.one,
            z: [0; N],
        }
    }

    /// 2P (dbl-2001-b, a = -3); infinity stays infinity.
    fn double(&self, q: &Jacobian<N>) -> Jacobian<N> {
        let f = &self.p;
        let delta = f.sqr(&q.z);
        let gamma = f.sqr(&q.y);
        let beta = f.mul(&q.x, &gamma);
        let t = f.mul(&f.sub(&q.x, &delta), &f.add(&q.x, &delta));
        let alpha = f.add(&f.add(&t, &t), &t);
        let beta4 = {
            let b2 = f.add(&beta, &beta);
            f.add(&b2, &b2)
        };
        let x3 = f.sub(&f.sqr(&alpha), &f.add(&beta4, &beta4));
        let yz = f.add(&q.y, &q.z);
        let z3 = f.sub(&f.sub(&f.sqr(&yz), &gamma), &delta);
        let g2 = f.sqr(&gamma);
        let g8 = {
            let g = f.add(&g2, &g2);
            let g = f.add(&g, &g);
            f.add(&g, &g)
        };
        let y3 = f.sub(&f.mul(&alpha, &f.sub(&beta4, &x3)), &g8);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// P + A for an affine A, every case included (P infinity, P = A, P = -A).
    fn add_affine(&self, q: &Jacobian<N>, a: &Affine<N>) -> Jacobian<N> {
        let f = &self.p;
        if is_zero(&q.z) {
            return Jacobian {
                x: a.x,
                y: a.y,
                z: f.one,
            };
        }
        let z1z1 = f.sqr(&q.z);
        let u2 = f.mul(&a.x, &z1z1);
        let s2 = f.mul(&a.y, &f.mul(&q.z, &z1z1));
        let h = f.sub(&u2, &q.x);
        let r = f.sub(&s2, &q.y);
        if is_zero(&h) {
            return if is_zero(&r) {
                self.double(q)
            } else {
                self.infinity()
            };
        }
        let hh = f.sqr(&h);
        let hhh = f.mul(&h, &hh);
        let v = f.mul(&q.x, &hh);
        let x3 = f.sub(&f.sub(&f.sqr(&r), &hhh), &f.add(&v, &v));
        let y3 = f.sub(&f.mul(&r, &f.sub(&v, &x3)), &f.mul(&q.y, &hhh));
        let z3 = f.mul(&q.z, &h);
        Jacobian {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// Affine forms of non-infinite points with one inversion (Montgomery's trick); `None` if one
    /// is at infinity.
    fn normalize(&self, points: &[Jacobian<N>]) -> Option<Vec<Affine<N>>> {
        let f = &self.p;
        let mut prefix = Vec::with_capacity(points.len());
        let mut acc = f.one;
        for q in points {
            if is_zero(&q.z) {
                return None;
            }
            acc = f.mul(&acc, &q.z);
            prefix.push(acc);
        }
        let mut inv = f.inv_mont(&acc)?;
        let mut out = vec![
            Affine {
                x: [0; N],
                y: [0; N]
            };
            points.len()
        ];
        for (i, q) in points.iter().enumerate().rev() {
            let before = if i == 0 { f.one } else { *prefix.get(i - 1)? };
            let zinv = f.mul(&inv, &before);
            inv = f.mul(&inv, &q.z);
            let zinv2 = f.sqr(&zinv);
            let slot = out.get_mut(i)?;
            slot.x = f.mul(&q.x, &zinv2);
            slot.y = f.mul(&q.y, &f.mul(&zinv2, &zinv));
        }
        Some(out)
    }

    /// The comb table of an affine point of order n.
    fn table(&self, point: &Affine<N>) -> Option<Table<N>> {
        let d = self.spacing();
        let mut teeth = Vec::with_capacity(TEETH);
        let mut q = Jacobian {
            x: point.x,
            y: point.y,
            z: self.p.one,
        };
        teeth.push(q);
        for _ in 1..TEETH {
            for _ in 0..d {
                q = self.double(&q);
            }
            teeth.push(q);
        }
        let teeth = self.normalize(&teeth)?;
        let mut sums: Vec<Jacobian<N>> = Vec::with_capacity(ENTRIES);
        for k in 1..=ENTRIES {
            let high = usize::BITS - 1 - k.leading_zeros();
            let tooth = teeth.get(high as usize)?;
            let rest = k ^ (1 << high);
            let sum = match rest {
                0 => Jacobian {
                    x: tooth.x,
                    y: tooth.y,
                    z: self.p.one,
                },
                _ => self.add_affine(sums.get(rest - 1)?, tooth),
            };
            sums.push(sum);
        }
        self.normalize(&sums).map(|entries| Table {
            entries: entries.into_boxed_slice(),
        })
    }

    /// The generator's comb table.
    pub(crate) fn generator_table(&self) -> Option<Table<N>> {
        let g = Affine {
            x: self.p.to_mont(&self.gx),
            y: self.p.to_mont(&self.gy),
        };
        self.table(&g)
    }

    /// The comb table of the public key (x, y) (big-endian coordinates of 1 to `bytes` bytes: a
    /// shorter one is the same integer with its leading zero bytes dropped, as BoringSSL reads JWK
    /// coordinates), after checking that it is a point of the curve (never infinity: it has no
    /// affine form).
    pub(crate) fn public_key(&self, x: &[u8], y: &[u8]) -> Result<Table<N>, PointError> {
        let size = 1..=self.bytes;
        if !size.contains(&x.len()) || !size.contains(&y.len()) {
            return Err(PointError::Length);
        }
        let (Some(x), Some(y)) = (mont::from_be::<N>(x), mont::from_be::<N>(y)) else {
            return Err(PointError::Length);
        };
        if !lt(&x, &self.p.m) || !lt(&y, &self.p.m) {
            return Err(PointError::NotOnCurve);
        }
        let f = &self.p;
        let (xm, ym) = (f.to_mont(&x), f.to_mont(&y));
        let x3 = f.mul(&f.sqr(&xm), &xm);
        let three_x = f.add(&f.add(&xm, &xm), &xm);
        let rhs = f.add(&f.sub(&x3, &three_x), &f.to_mont(&self.b));
        if f.sqr(&ym) != rhs {
            return Err(PointError::NotOnCurve);
        }
        self.table(&Affine { x: xm, y: ym })
            .ok_or(PointError::NotOnCurve)
    }

    /// The 8-bit comb pattern of column j of scalar k.
    #[inline]
    fn pattern(k: &Limbs<N>, j: usize, d: usize) -> usize {
        (0..TEETH).fold(0usize, |acc, c| acc | ((bit(k, j + c * d) as usize) << c))
    }

    /// ECDSA: whether (r, s) (`sig` = r || s, big-endian, `bytes` bytes each) signs the digest
    /// `hash` (its leftmost `bits` bits) under the key whose table is `key`; r and s must be in 1..n-1.
    pub(crate) fn verify(&self, g: &Table<N>, key: &Table<N>, hash: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 2 * self.bytes {
            return false;
        }
        let (r_bytes, s_bytes) = sig.split_at(self.bytes);
        let (Some(r), Some(s)) = (mont::from_be::<N>(r_bytes), mont::from_be::<N>(s_bytes)) else {
            return false;
        };
        let n = &self.n;
        if is_zero(&r) || is_zero(&s) || !lt(&r, &n.m) || !lt(&s, &n.m) {
            return false;
        }
        let Some(mut e) = self.digest_scalar(hash) else {
            return false;
        };
        if !lt(&e, &n.m) {
            mont::sub_in_place(&mut e, &n.m);
        }
        let Some(w) = n.inv(&s) else {
            return false;
        };
        let w = n.to_mont(&w);
        let u1 = n.mul(&e, &w);
        let u2 = n.mul(&r, &w);
        let d = self.spacing();
        let mut acc = self.infinity();
        for j in (0..d).rev() {
            acc = self.double(&acc);
            let p1 = Self::pattern(&u1, j, d);
            if let Some(a) = p1.checked_sub(1).and_then(|i| g.entries.get(i)) {
                acc = self.add_affine(&acc, a);
            }
            let p2 = Self::pattern(&u2, j, d);
            if let Some(a) = p2.checked_sub(1).and_then(|i| key.entries.get(i)) {
                acc = self.add_affine(&acc, a);
            }
        }
        if is_zero(&acc.z) {
            return false;
        }
        // x(acc) mod n == r, with x(acc) = X / Z^2 < p: x(acc) is r or, when r + n < p, r + n.
        let f = &self.p;
        let z2 = f.sqr(&acc.z);
        if f.mul(&f.to_mont(&r), &z2) == acc.x {
            return true;
        }
        let mut r_plus_n = r;
        if mont::add_in_place(&mut r_plus_n, &n.m) || !lt(&r_plus_n, &f.m) {
            return false;
        }
        f.mul(&f.to_mont(&r_plus_n), &z2) == acc.x
    }

    /// The leftmost `bits` bits of the digest as an integer (below 2^bits).
    fn digest_scalar(&self, hash: &[u8]) -> Option<Limbs<N>> {
        let hash_bits = hash.len() * 8;
        if hash_bits <= self.bits {
            return mont::from_be::<N>(hash);
        }
        let keep = hash.get(..self.bits.div_ceil(8))?;
        let mut e = mont::from_be::<N>(keep)?;
        for _ in 0..(keep.len() * 8 - self.bits) {
            shr1(&mut e);
        }
        Some(e)
    }
}

fn shr1<const N: usize>(x: &mut Limbs<N>) {
    let mut carry = 0u32;
    for l in x.iter_mut().rev() {
        let next = *l & 1;
        *l = (*l >> 1) | (carry << 31);
        carry = next;
    }
}
