//! Arithmetic modulo an odd N-limb modulus (little-endian 32-bit limbs), products in Montgomery form.
//!
//! wasm multiplies 32x32->64 bits in one instruction while 64x64->128 is emulated, so limbs are
//! u32 and products u64. Every value is public (keys, signatures, messages): variable time is fine.
//! Arithmetic is on fixed-size arrays whose bounds are the type's, so `+`, `*`, `<<` here cannot
//! overflow: each u64 sum is at most (2^32-1)^2 + 2*(2^32-1) < 2^64 (clippy's arithmetic lint
//! is off for this module for that reason; wrapping ops are spelled out where wrapping is meant).
//! The `const fn`s run at compile time only (they build the constants of [`Modulus::new`]), where
//! an index out of range is a build error, not a trap.
#![allow(clippy::arithmetic_side_effects)]

/// N little-endian 32-bit limbs.
pub(crate) type Limbs<const N: usize> = [u32; N];

/// An odd modulus m with its Montgomery constants (R = 2^(32N)).
pub(crate) struct Modulus<const N: usize> {
    /// The modulus.
    pub(crate) m: Limbs<N>,
    /// -m^-1 mod 2^32.
    n0: u32,
    /// R^2 mod m.
    pub(crate) r2: Limbs<N>,
    /// R^3 mod m.
    pub(crate) r3: Limbs<N>,
    /// R mod m: one in Montgomery form.
    pub(crate) one: Limbs<N>,
}

impl<const N: usize> Modulus<N> {
    /// The constants of an odd modulus above 2^32 (computed at compile time).
    pub(crate) const fn new(m: Limbs<N>) -> Self {
        let mut one = [0u32; N];
        one[0] = 1;
        let one = const_double_times(one, &m, 32 * N);
        let r2 = const_double_times(one, &m, 32 * N);
        let r3 = const_double_times(r2, &m, 32 * N);
        let mut inv: u32 = 1;
        let mut i = 0;
        while i < 5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(m[0].wrapping_mul(inv)));
            i += 1;
        }
        Modulus {
            m,
            n0: inv.wrapping_neg(),
            r2,
            r3,
            one,
        }
    }

    /// a * b / R mod m for a * b < m * R (so for a, b < m); the result is below m.
    #[inline(never)]
    pub(crate) fn mul(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        const LOW: u64 = 0xffff_ffff;
        let mut t = [0u32; N];
        let mut top: u64 = 0;
        let (Some(&a0), Some(&m0)) = (a.first(), self.m.first()) else {
            return t;
        };
        let (a0, m0) = (u64::from(a0), u64::from(m0));
        for &bi in b {
            let bi = u64::from(bi);
            let Some((first, rest)) = t.split_first_mut() else {
                break;
            };
            // One pass: t = (t + a * bi + q * m) / 2^32, with q making the low limb vanish; the
            // two products keep separate carries so no sum exceeds 2^64.
            let v1 = u64::from(*first) + a0 * bi;
            let q = u64::from((v1 as u32).wrapping_mul(self.n0));
            let mut c1 = v1 >> 32;
            let mut c2 = ((v1 & LOW) + q * m0) >> 32;
            let mut prev = first;
            for ((tj, &aj), &mj) in rest
                .iter_mut()
                .zip(a.iter().skip(1))
                .zip(self.m.iter().skip(1))
            {
                let v1 = u64::from(*tj) + u64::from(aj) * bi + c1;
                c1 = v1 >> 32;
                let v2 = (v1 & LOW) + q * u64::from(mj) + c2;
                c2 = v2 >> 32;
                *prev = v2 as u32;
                prev = tj;
            }
            let v1 = top + c1;
            let v2 = (v1 & LOW) + c2;
            *prev = v2 as u32;
            top = (v1 >> 32) + (v2 >> 32);
        }
        if top != 0 || !lt(&t, &self.m) {
            sub_in_place(&mut t, &self.m);
        }
        t
    }

    /// a^2 / R mod m.
    #[inline]
    pub(crate) fn sqr(&self, a: &Limbs<N>) -> Limbs<N> {
        self.mul(a, a)
    }

    /// a + b mod m for a, b < m.
    #[inline(never)]
    pub(crate) fn add(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let mut t = *a;
        let carry = add_in_place(&mut t, b);
        if carry || !lt(&t, &self.m) {
            sub_in_place(&mut t, &self.m);
        }
        t
    }

    /// a - b mod m for a, b < m.
    #[inline(never)]
    pub(crate) fn sub(&self, a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let mut t = *a;
        if sub_in_place(&mut t, b) {
            add_in_place(&mut t, &self.m);
        }
        t
    }

    /// -a mod m for a < m.
    #[inline]
    pub(crate) fn neg(&self, a: &Limbs<N>) -> Limbs<N> {
        self.sub(&[0; N], a)
    }

    /// a in Montgomery form (a * R mod m), for a < m.
    pub(crate) fn to_mont(&self, a: &Limbs<N>) -> Limbs<N> {
        self.mul(a, &self.r2)
    }

    /// a from Montgomery form (a / R mod m).
    pub(crate) fn out_of_mont(&self, a: &Limbs<N>) -> Limbs<N> {
        let mut one = [0u32; N];
        if let Some(first) = one.first_mut() {
            *first = 1;
        }
        self.mul(a, &one)
    }

    /// a^-1 mod m for 0 < a < m, m prime (binary extended Euclid, plain form in and out); `None`
    /// for a = 0.
    pub(crate) fn inv(&self, a: &Limbs<N>) -> Option<Limbs<N>> {
        if is_zero(a) {
            return None;
        }
        let mut one = [0u32; N];
        if let Some(first) = one.first_mut() {
            *first = 1;
        }
        let (mut u, mut v) = (*a, self.m);
        let (mut x1, mut x2) = (one, [0u32; N]);
        // Each round removes at least one bit from u or v: 64N rounds bound a loop that ends far
        // sooner for a prime modulus.
        for _ in 0..64 * N {
            if u == one {
                return Some(x1);
            }
            if v == one {
                return Some(x2);
            }
            while is_even(&u) {
                shr1(&mut u, false);
                self.half(&mut x1);
            }
            while is_even(&v) {
                shr1(&mut v, false);
                self.half(&mut x2);
            }
            if lt(&u, &v) {
                sub_in_place(&mut v, &u);
                x2 = self.sub(&x2, &x1);
            } else {
                sub_in_place(&mut u, &v);
                x1 = self.sub(&x1, &x2);
            }
            if is_zero(&u) || is_zero(&v) {
                return None;
            }
        }
        None
    }

    /// x / 2 mod m for x < m.
    fn half(&self, x: &mut Limbs<N>) {
        if is_even(x) {
            shr1(x, false);
        } else {
            let carry = add_in_place(x, &self.m);
            shr1(x, carry);
        }
    }

    /// Montgomery form of a^-1 from the Montgomery form of a; `None` for zero.
    pub(crate) fn inv_mont(&self, a: &Limbs<N>) -> Option<Limbs<N>> {
        self.inv(&self.out_of_mont(a)).map(|i| self.to_mont(&i))
    }
}

/// Whether a < b.
#[inline]
pub(crate) fn lt<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// Whether every limb is zero.
#[inline]
pub(crate) fn is_zero<const N: usize>(a: &Limbs<N>) -> bool {
    a.iter().all(|&l| l == 0)
}

fn is_even<const N: usize>(a: &Limbs<N>) -> bool {
    a.first().is_none_or(|l| l & 1 == 0)
}

/// x >>= 1, shifting `top` in as the new most significant bit.
fn shr1<const N: usize>(x: &mut Limbs<N>, top: bool) {
    let mut carry = u32::from(top);
    for l in x.iter_mut().rev() {
        let next = *l & 1;
        *l = (*l >> 1) | (carry << 31);
        carry = next;
    }
}

/// x += y; returns the carry out.
#[inline]
pub(crate) fn add_in_place<const N: usize>(x: &mut Limbs<N>, y: &Limbs<N>) -> bool {
    let mut c = 0u64;
    for (a, &b) in x.iter_mut().zip(y) {
        let v = u64::from(*a) + u64::from(b) + c;
        *a = v as u32;
        c = v >> 32;
    }
    c != 0
}

/// x -= y; returns the borrow out.
#[inline]
pub(crate) fn sub_in_place<const N: usize>(x: &mut Limbs<N>, y: &Limbs<N>) -> bool {
    let mut borrow = 0u64;
    for (a, &b) in x.iter_mut().zip(y) {
        let v = u64::from(*a)
            .wrapping_sub(u64::from(b))
            .wrapping_sub(borrow);
        *a = v as u32;
        borrow = v >> 63;
    }
    borrow != 0
}

/// Big-endian bytes (exactly 4N or fewer, zero-extended on the left) to limbs; `None` when longer.
pub(crate) fn from_be<const N: usize>(bytes: &[u8]) -> Option<Limbs<N>> {
    if bytes.len() > 4 * N {
        return None;
    }
    let mut out = [0u32; N];
    for (i, &b) in bytes.iter().rev().enumerate() {
        let limb = out.get_mut(i / 4)?;
        *limb |= u32::from(b) << (8 * (i % 4));
    }
    Some(out)
}

/// Little-endian bytes (at most 4N) to limbs; `None` when longer.
pub(crate) fn from_le<const N: usize>(bytes: &[u8]) -> Option<Limbs<N>> {
    if bytes.len() > 4 * N {
        return None;
    }
    let mut out = [0u32; N];
    for (i, &b) in bytes.iter().enumerate() {
        let limb = out.get_mut(i / 4)?;
        *limb |= u32::from(b) << (8 * (i % 4));
    }
    Some(out)
}

/// Bit i of x (zero past the end).
#[inline]
pub(crate) fn bit<const N: usize>(x: &Limbs<N>, i: usize) -> u32 {
    x.get(i / 32).map_or(0, |l| (l >> (i % 32)) & 1)
}

/// x * 2^times mod m by repeated doubling, for x < m; compile time only.
#[allow(clippy::indexing_slicing)]
const fn const_double_times<const N: usize>(
    mut x: Limbs<N>,
    m: &Limbs<N>,
    times: usize,
) -> Limbs<N> {
    let mut k = 0;
    while k < times {
        let mut carry = 0u32;
        let mut i = 0;
        while i < N {
            let next = x[i] >> 31;
            x[i] = (x[i] << 1) | carry;
            carry = next;
            i += 1;
        }
        if carry != 0 || !const_lt(&x, m) {
            let mut borrow = 0u64;
            let mut i = 0;
            while i < N {
                let v = (x[i] as u64).wrapping_sub(m[i] as u64).wrapping_sub(borrow);
                x[i] = v as u32;
                borrow = v >> 63;
                i += 1;
            }
        }
        k += 1;
    }
    x
}

#[allow(clippy::indexing_slicing)]
const fn const_lt<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> bool {
    let mut i = N;
    while i > 0 {
        i -= 1;
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// Parses big-endian hex (at most 8N digits) into limbs; compile time only (a bad digit or a
/// long string is a build error).
#[allow(clippy::indexing_slicing, clippy::panic)]
pub(crate) const fn hex<const N: usize>(s: &str) -> Limbs<N> {
    let b = s.as_bytes();
    let mut out = [0u32; N];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("hex digit"),
        };
        let pos = b.len() - 1 - i;
        out[pos / 8] |= (d as u32) << (4 * (pos % 8));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const P256: Modulus<8> = Modulus::new(hex(
        "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    ));

    #[test]
    fn montgomery_round_trip_and_inverse() {
        let m = &P256;
        let a: Limbs<8> = hex("123456789abcdef0fedcba98765432100f1e2d3c4b5a69788796a5b4c3d2e1f0");
        let b: Limbs<8> = hex("ffffffff00000001000000000000000000000000fffffffffffffffffffffffe");
        let am = m.to_mont(&a);
        assert_eq!(m.out_of_mont(&am), a);
        let bm = m.to_mont(&b);
        // b = -1, so a * b = -a.
        assert_eq!(m.out_of_mont(&m.mul(&am, &bm)), m.neg(&a));
        let inv = m.inv(&a).unwrap();
        assert_eq!(m.out_of_mont(&m.mul(&m.to_mont(&inv), &am)), {
            let mut one = [0; 8];
            one[0] = 1;
            one
        });
        assert_eq!(m.out_of_mont(&m.inv_mont(&am).unwrap()), inv);
        assert!(m.inv(&[0; 8]).is_none());
        assert_eq!(m.add(&b, &m.to_mont(&[0; 8])), b);
        assert_eq!(m.sub(&[0; 8], &a), m.neg(&a));
    }
}
