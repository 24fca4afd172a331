//! Verification-only RSA for JWS signatures: RS256/384/512 (PKCS#1 v1.5) and PS256/384/512 (PSS).

use core::cmp::Ordering;
use core::fmt;

use sha2::{Digest, Sha256, Sha384, Sha512};

const LIMB_BITS: u32 = 28;
const LIMB_MASK: u32 = (1 << LIMB_BITS) - 1;
const MIN_MODULUS_BITS: usize = 2048;
const MAX_MODULUS_BITS: usize = 4096;
const MAX_MODULUS_BYTES: usize = MAX_MODULUS_BITS / 8;
const MAX_LIMBS: usize = limb_count(MAX_MODULUS_BITS);
const MAX_EXPONENT_BYTES: usize = 4;
/// Rows of the Montgomery product between two carry normalisations of the accumulator.
const NORMALIZE_ROWS: usize = 64;

/// Little-endian 28-bit limbs; the limbs past a key's `len` (at least one) are always zero.
type Limbs = [u32; MAX_LIMBS + 1];
const COLUMNS: usize = 2 * MAX_LIMBS + 1;
/// Column accumulators of a Montgomery product.
type Columns = [u64; COLUMNS];

/// Number of limbs for a modulus of `bits` bits: R = 2^(28 * limbs) > 4n so that Montgomery products of
/// values below 2n stay below 2n, rounded up to an even count because rows are processed in pairs.
const fn limb_count(bits: usize) -> usize {
    ((bits + 2).div_ceil(LIMB_BITS as usize) + 1) & !1
}

/// Hash function used by a JWS RSA algorithm (the "256/384/512" of RS256, PS384, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256 (RS256, PS256).
    Sha256,
    /// SHA-384 (RS384, PS384).
    Sha384,
    /// SHA-512 (RS512, PS512).
    Sha512,
}

impl HashAlg {
    /// DER encoding of the PKCS#1 v1.5 DigestInfo up to the digest bytes (with the NULL parameters).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Why [`RsaPublicKey::new`] refused a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    /// The modulus (leading zero bytes ignored) has fewer than 2048 bits; `bits` is its length (0 for an
    /// empty or zero modulus).
    ModulusTooSmall {
        /// Bit length of the modulus.
        bits: usize,
    },
    /// The modulus has more than 4096 bits.
    ModulusTooLarge {
        /// Bit length of the modulus.
        bits: usize,
    },
    /// The modulus is even, so it cannot be an RSA modulus (and Montgomery arithmetic needs it odd).
    EvenModulus,
    /// The public exponent is even, smaller than 3, or longer than 4 bytes once leading zeros are dropped.
    BadExponent,
}

impl fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsaKeyError::ModulusTooSmall { bits } => {
                write!(
                    f,
                    "RSA modulus of {bits} bits is below the 2048-bit minimum"
                )
            }
            RsaKeyError::ModulusTooLarge { bits } => {
                write!(
                    f,
                    "RSA modulus of {bits} bits is above the 4096-bit maximum"
                )
            }
            RsaKeyError::EvenModulus => f.write_str("RSA modulus is even"),
            RsaKeyError::BadExponent => {
                f.write_str("RSA public exponent must be odd, at least 3 and at most 32 bits")
            }
        }
    }
}

impl std::error::Error for RsaKeyError {}

/// An RSA public key with everything a verification needs precomputed: the limbs of n, -n^-1 mod 2^28
/// and R^2 mod n. Build it once per key and reuse it.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// n in big-endian bytes, `k` of them used.
    n_be: [u8; MAX_MODULUS_BYTES],
    /// n in little-endian 28-bit limbs, `len` of them used.
    n: Limbs,
    /// R^2 mod n, R = 2^(28 * len).
    r2: Limbs,
    /// -n^-1 mod 2^28.
    n0inv: u32,
    e: u32,
    len: usize,
    bits: usize,
    k: usize,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.bits)
            .field("e", &self.e)
            .finish_non_exhaustive()
    }
}

impl RsaPublicKey {
    /// Builds a key from n and e as big-endian unsigned bytes (leading zero bytes allowed and ignored).
    ///
    /// Refused, checked in this order: a modulus under 2048 bits ([`RsaKeyError::ModulusTooSmall`]),
    /// over 4096 bits ([`RsaKeyError::ModulusTooLarge`]), an even modulus ([`RsaKeyError::EvenModulus`]),
    /// and an exponent longer than 4 bytes, even, or below 3, so 1 is refused ([`RsaKeyError::BadExponent`]).
    pub fn new(n: &[u8], e: &[u8]) -> Result<Self, RsaKeyError> {
        let n = strip_leading_zeros(n);
        let bits = match n.first() {
            None => 0,
            Some(&top) => (n.len() - 1)
                .saturating_mul(8)
                .saturating_add(8 - top.leading_zeros() as usize),
        };
        if bits < MIN_MODULUS_BITS {
            return Err(RsaKeyError::ModulusTooSmall { bits });
        }
        if bits > MAX_MODULUS_BITS {
            return Err(RsaKeyError::ModulusTooLarge { bits });
        }
        if n.last().is_none_or(|&low| low & 1 == 0) {
            return Err(RsaKeyError::EvenModulus);
        }
        let e = strip_leading_zeros(e);
        if e.len() > MAX_EXPONENT_BYTES {
            return Err(RsaKeyError::BadExponent);
        }
        let e = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        if e < 3 || e & 1 == 0 {
            return Err(RsaKeyError::BadExponent);
        }

        let len = limb_count(bits);
        let mut n_be = [0u8; MAX_MODULUS_BYTES];
        n_be.iter_mut().zip(n).for_each(|(d, &s)| *d = s);
        let mut n_limbs = [0u32; MAX_LIMBS + 1];
        be_to_limbs(n, &mut n_limbs);
        let mut key = RsaPublicKey {
            n_be,
            n: n_limbs,
            r2: [0; MAX_LIMBS + 1],
            n0inv: neg_inverse_mod_limb(n_limbs.first().copied().unwrap_or(1)),
            e,
            len,
            bits,
            k: n.len(),
        };
        key.r2 = key.r_squared();
        Ok(key)
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature (RFC 8017 8.2.2) over `msg`, the signing input (hashed here).
    ///
    /// `sig` must be exactly as long as the modulus in bytes and below n. The recovered encoded
    /// message is compared byte for byte with a freshly built `00 01 FF..FF 00 || DigestInfo || H`.
    pub fn verify_pkcs1v15(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        let mut buf = [0u8; MAX_MODULUS_BYTES];
        let Some(em) = self.public_op(sig, &mut buf) else {
            return false;
        };
        match hash {
            HashAlg::Sha256 => {
                pkcs1v15_matches(em, hash.digest_info_prefix(), &Sha256::digest(msg))
            }
            HashAlg::Sha384 => {
                pkcs1v15_matches(em, hash.digest_info_prefix(), &Sha384::digest(msg))
            }
            HashAlg::Sha512 => {
                pkcs1v15_matches(em, hash.digest_info_prefix(), &Sha512::digest(msg))
            }
        }
    }

    /// Verifies an RSASSA-PSS signature (RFC 8017 8.1.2, EMSA-PSS-VERIFY of 9.1.2) over `msg`, the
    /// signing input (hashed here).
    ///
    /// MGF1 uses the same hash and the salt length must equal the hash length, as RFC 7518 requires.
    pub fn verify_pss(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        let mut buf = [0u8; MAX_MODULUS_BYTES];
        let Some(em) = self.public_op(sig, &mut buf) else {
            return false;
        };
        match hash {
            HashAlg::Sha256 => emsa_pss_verify::<Sha256>(em, self.bits, msg),
            HashAlg::Sha384 => emsa_pss_verify::<Sha384>(em, self.bits, msg),
            HashAlg::Sha512 => emsa_pss_verify::<Sha512>(em, self.bits, msg),
        }
    }

    /// RSAVP1 with I2OSP: checks `sig` is k bytes and below n, then writes sig^e mod n as k big-endian bytes.
    fn public_op<'b>(&self, sig: &[u8], buf: &'b mut [u8; MAX_MODULUS_BYTES]) -> Option<&'b [u8]> {
        let n_be = self.n_be.get(..self.k)?;
        if sig.len() != self.k || sig.cmp(n_be) != Ordering::Less {
            return None;
        }
        let mut s = [0u32; MAX_LIMBS + 1];
        be_to_limbs(sig, &mut s);
        let mut s_mont = [0u32; MAX_LIMBS + 1];
        self.mont_mul(&s, &self.r2, &mut s_mont);
        let mut acc = s_mont;
        let mut tmp = [0u32; MAX_LIMBS + 1];
        let top_bit = 31 - self.e.leading_zeros();
        for i in (0..top_bit).rev() {
            self.mont_sqr(&acc, &mut tmp);
            core::mem::swap(&mut acc, &mut tmp);
            if (self.e >> i) & 1 == 1 {
                // e is odd, so the last step multiplies by plain s, which also leaves Montgomery form.
                let factor = if i == 0 { &s } else { &s_mont };
                self.mont_mul(&acc, factor, &mut tmp);
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        self.reduce_once(&mut acc);
        let em = buf.get_mut(..self.k)?;
        limbs_to_be(&acc, em);
        Some(em)
    }

    /// out = a * b / R mod n for a, b < 2n; out < 2n because R > 4n, which makes the usual final
    /// subtraction unnecessary.
    ///
    /// Operand scanning, two rows at a time: row i adds a_i * b + m_i * n at column i, with m_i chosen so
    /// that column i becomes divisible by 2^28. Columns are u64 accumulators whose carries are deferred:
    /// each row adds at most two products below 2^56 to a column, so 64 rows add less than 2^63, and every
    /// 64 rows the columns not yet final are normalised back to limbs (the last one to below 2^37).
    fn mont_mul(&self, a: &Limbs, b: &Limbs, out: &mut Limbs) {
        let l = self.len;
        let bn = pack(b, &self.n);
        let bn = sub64(&bn, 0, l + 1);
        let (b0, b1) = first_two(b);
        let mut t: Columns = [0; COLUMNS];
        let mut carry = 0u64;
        for (i, &[a0, a1]) in (0..l).step_by(2).zip(sub(a, 0, l).as_chunks::<2>().0) {
            let Some(row) = t.get_mut(i..i + l + 1) else {
                break;
            };
            let [m0, m1] =
                self.next_m::<2>(row, [wide(a0, b0), wide(a0, b1) + wide(a1, b0)], carry);
            let (a0, a1) = (u64::from(a0), u64::from(a1));
            let mut prev_b = 0u64;
            let mut prev_n = 0u64;
            for (col, &v) in row.iter_mut().zip(bn) {
                let (bj, nj) = (v & 0xffff_ffff, v >> 32);
                *col += a0 * bj + a1 * prev_b + m0 * nj + m1 * prev_n;
                prev_b = bj;
                prev_n = nj;
            }
            carry = self.finish_rows(&mut t, i, 2, carry);
        }
        self.write_result(&t, carry, out);
    }

    /// out = a^2 / R mod n for a < 2n, out < 2n: [`Self::mont_mul`] with a == b, computing each cross
    /// product a_i * a_j (i < j) once, doubled.
    ///
    /// In the row pair (i, i + 1), relative position j holds column i + j. The square terms of the pair
    /// are a_i^2 at j = i, 2 a_i a_(i+1) at j = i + 1, 2 a_i a_(i+2) + a_(i+1)^2 at j = i + 2 (added first,
    /// as for i = 0 they land in columns 0 and 1), then 2 a_i a_j + 2 a_(i+1) a_(j-1) from j = i + 3 on. A
    /// column gets at most one doubled cross product (below 2^57) and one m * n product from a row, so 64
    /// rows add less than 2^64.
    fn mont_sqr(&self, a: &Limbs, out: &mut Limbs) {
        let l = self.len;
        let an = pack(a, &self.n);
        let an = sub64(&an, 0, l + 1);
        let mut t: Columns = [0; COLUMNS];
        let mut carry = 0u64;
        for (i, &[a0, a1]) in (0..l).step_by(2).zip(sub(a, 0, l).as_chunks::<2>().0) {
            let a2 = a.get(i + 2).copied().unwrap_or(0);
            if let Some([c0, c1, c2, ..]) = t.get_mut(2 * i..) {
                *c0 += wide(a0, a0);
                *c1 += 2 * wide(a0, a1);
                *c2 += 2 * wide(a0, a2) + wide(a1, a1);
            }
            let Some(row) = t.get_mut(i..i + l + 1) else {
                break;
            };
            let [m0, m1] = self.next_m::<2>(row, [0; 2], carry);
            let (low, high) = row.split_at_mut((i + 3).min(row.len()));
            let mut n1 = 0u64;
            for (col, &v) in low.iter_mut().zip(an) {
                let n = v >> 32;
                *col += m0 * n + m1 * n1;
                n1 = n;
            }
            let [d0, d1] = [a0, a1].map(|x| 2 * u64::from(x));
            let mut a1 = u64::from(a2);
            for (col, &v) in high.iter_mut().zip(an.get(i + 3..).unwrap_or(&[])) {
                let (a, n) = (v & 0xffff_ffff, v >> 32);
                *col += d0 * a + d1 * a1 + m0 * n + m1 * n1;
                a1 = a;
                n1 = n;
            }
            carry = self.finish_rows(&mut t, i, 2, carry);
        }
        self.write_result(&t, carry, out);
    }

    /// The Montgomery factors m_k of the next R rows, from the first R columns of those rows, `extra`
    /// (the products of these rows' a-part that are not in the columns yet) and the carry into the first
    /// column: each m_k makes its column, with the m * n products of the block's earlier rows, divisible
    /// by 2^28.
    #[inline(always)]
    fn next_m<const R: usize>(&self, row: &[u64], extra: [u64; R], carry: u64) -> [u64; R] {
        let n = limbs_from::<R>(&self.n, 0);
        let mut m = [0u64; R];
        let mut carry = carry;
        for k in 0..R {
            let (done, rest) = m.split_at_mut(k);
            let col = row.get(k).copied().unwrap_or(0)
                + extra.get(k).copied().unwrap_or(0)
                + carry
                + done
                    .iter()
                    .zip(n.iter().skip(1).take(k).rev())
                    .map(|(&mi, &nj)| mi * u64::from(nj))
                    .sum::<u64>();
            let mk = u64::from((col as u32).wrapping_mul(self.n0inv) & LIMB_MASK);
            if let Some(slot) = rest.first_mut() {
                *slot = mk;
            }
            carry = (col + mk * u64::from(n.first().copied().unwrap_or(0))) >> LIMB_BITS;
        }
        m
    }

    /// Completes columns i..i + rows (each divisible by 2^28 by now) and returns the carry into the next;
    /// every `NORMALIZE_ROWS` rows it also propagates the carries of the columns still accumulating.
    #[inline(always)]
    fn finish_rows(&self, t: &mut Columns, i: usize, rows: usize, carry: u64) -> u64 {
        let next = i + rows;
        let carry = sub64(t, i, next)
            .iter()
            .fold(carry, |c, &col| (col + c) >> LIMB_BITS);
        if next.is_multiple_of(NORMALIZE_ROWS) {
            if let Some((top, cols)) = t
                .get_mut(next..=next + self.len)
                .and_then(|cols| cols.split_last_mut())
            {
                *top += cols.iter_mut().fold(0u64, |c, col| {
                    let v = *col + c;
                    *col = v & u64::from(LIMB_MASK);
                    v >> LIMB_BITS
                });
            }
        }
        carry
    }

    /// Writes the upper half of the columns, carries propagated, as the `len` limbs of the result; the
    /// result is below 2n < R, so no carry is left over.
    #[inline(always)]
    fn write_result(&self, t: &Columns, mut carry: u64, out: &mut Limbs) {
        let l = self.len;
        for (limb, &col) in out.iter_mut().zip(sub64(t, l, 2 * l)) {
            let v = col + carry;
            *limb = v as u32 & LIMB_MASK;
            carry = v >> LIMB_BITS;
        }
    }

    /// Subtracts n once if x >= n (x < 2n on entry).
    fn reduce_once(&self, x: &mut Limbs) {
        if cmp_limbs(x, &self.n, self.len) != Ordering::Less {
            sub_in_place(x, &self.n, self.len);
        }
    }

    /// R^2 mod n: doubles 2^(bits-1) up to 2^j * R mod n, where 28 * len = j * 2^t, then squares t times
    /// in Montgomery form (each squaring doubles the exponent of 2 it represents).
    fn r_squared(&self) -> Limbs {
        let l = self.len;
        let r_bits = LIMB_BITS as usize * l;
        let t = r_bits.trailing_zeros();
        let j = r_bits >> t;
        let mut x = [0u32; MAX_LIMBS + 1];
        let top = self.bits - 1;
        if let Some(limb) = x.get_mut(top / LIMB_BITS as usize) {
            *limb = 1 << (top % LIMB_BITS as usize);
        }
        for _ in top..r_bits + j {
            double_in_place(&mut x, l);
            self.reduce_once(&mut x);
        }
        let mut out = [0u32; MAX_LIMBS + 1];
        for _ in 0..t {
            self.mont_sqr(&x, &mut out);
            core::mem::swap(&mut x, &mut out);
        }
        self.reduce_once(&mut x);
        x
    }
}

/// Limb j of x in the low half and limb j of y in the high half of word j, so the inner loops read both
/// operands with one load.
#[inline(always)]
fn pack(x: &Limbs, y: &Limbs) -> [u64; MAX_LIMBS + 1] {
    let mut out = [0u64; MAX_LIMBS + 1];
    for ((o, &xj), &yj) in out.iter_mut().zip(x).zip(y) {
        *o = u64::from(xj) | (u64::from(yj) << 32);
    }
    out
}

#[inline(always)]
fn wide(x: u32, y: u32) -> u64 {
    u64::from(x) * u64::from(y)
}

#[inline(always)]
fn first_two(x: &Limbs) -> (u32, u32) {
    let [x0, x1, ..] = *x;
    (x0, x1)
}

/// Limbs i..i + K of x, zero past its end.
#[inline(always)]
fn limbs_from<const K: usize>(x: &[u32], i: usize) -> [u32; K] {
    core::array::from_fn(|k| x.get(i + k).copied().unwrap_or(0))
}

#[inline(always)]
fn sub64(x: &[u64], from: usize, to: usize) -> &[u64] {
    x.get(from..to).unwrap_or(&[])
}

#[inline(always)]
fn sub(x: &[u32], from: usize, to: usize) -> &[u32] {
    x.get(from..to).unwrap_or(&[])
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(zeros..).unwrap_or(&[])
}

/// Big-endian bytes to little-endian 28-bit limbs; bits beyond the capacity of `out` are dropped.
fn be_to_limbs(bytes: &[u8], out: &mut Limbs) {
    let mut slots = out.iter_mut();
    let mut acc = 0u64;
    let mut nbits = 0u32;
    for &b in bytes.iter().rev() {
        acc |= u64::from(b) << nbits;
        nbits += 8;
        if nbits >= LIMB_BITS {
            if let Some(slot) = slots.next() {
                *slot = acc as u32 & LIMB_MASK;
            }
            acc >>= LIMB_BITS;
            nbits -= LIMB_BITS;
        }
    }
    if let Some(slot) = slots.next() {
        *slot = acc as u32;
    }
    slots.for_each(|slot| *slot = 0);
}

/// Little-endian 28-bit limbs to big-endian bytes filling `out` (higher bits are dropped).
fn limbs_to_be(limbs: &Limbs, out: &mut [u8]) {
    let mut limbs = limbs.iter();
    let mut acc = 0u64;
    let mut nbits = 0u32;
    for byte in out.iter_mut().rev() {
        if nbits < 8 {
            acc |= u64::from(limbs.next().copied().unwrap_or(0)) << nbits;
            nbits += LIMB_BITS;
        }
        *byte = acc as u8;
        acc >>= 8;
        nbits -= 8;
    }
}

fn cmp_limbs(a: &Limbs, b: &Limbs, len: usize) -> Ordering {
    sub(a, 0, len).iter().rev().cmp(sub(b, 0, len).iter().rev())
}

fn sub_in_place(x: &mut Limbs, y: &Limbs, len: usize) {
    let mut borrow = 0u32;
    for (d, &s) in x.iter_mut().zip(y).take(len) {
        let v = d.wrapping_sub(s).wrapping_sub(borrow);
        borrow = v >> 31;
        *d = v & LIMB_MASK;
    }
}

/// x = 2x; x must be below 2^(28 * len - 1) so the result still fits `len` limbs.
fn double_in_place(x: &mut Limbs, len: usize) {
    let mut carry = 0u32;
    for d in x.iter_mut().take(len) {
        let v = (*d << 1) | carry;
        carry = v >> LIMB_BITS;
        *d = v & LIMB_MASK;
    }
}

/// -n0^-1 mod 2^28 for odd n0, by Newton iteration (each step doubles the number of correct low bits).
fn neg_inverse_mod_limb(n0: u32) -> u32 {
    let mut inv = n0;
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    inv.wrapping_neg() & LIMB_MASK
}

fn pkcs1v15_matches(em: &[u8], prefix: &[u8], digest: &[u8]) -> bool {
    let t_len = prefix.len() + digest.len();
    let Some(ps_len) = em.len().checked_sub(t_len + 3) else {
        return false;
    };
    let expected = [0x00, 0x01]
        .iter()
        .chain(core::iter::repeat_n(&0xff, ps_len))
        .chain(&[0x00])
        .chain(prefix)
        .chain(digest);
    em.iter().eq(expected)
}

/// EMSA-PSS-VERIFY (RFC 8017 9.1.2) with emBits = modBits - 1, MGF1 with the same hash and sLen = hLen.
fn emsa_pss_verify<D: Digest>(em_k: &[u8], mod_bits: usize, msg: &[u8]) -> bool {
    let h_len = <D as Digest>::output_size();
    let s_len = h_len;
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let Some((lead, em)) = em_k.split_at_checked(em_k.len().saturating_sub(em_len)) else {
        return false;
    };
    if lead.iter().any(|&b| b != 0) || em.len() < h_len + s_len + 2 {
        return false;
    }
    let Some((masked_db, rest)) = em.split_at_checked(em.len() - h_len - 1) else {
        return false;
    };
    let Some((h, trailer)) = rest.split_at_checked(h_len) else {
        return false;
    };
    if trailer != [0xbc] {
        return false;
    }
    let allowed_top_bits = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db
        .first()
        .is_none_or(|&b| b & !allowed_top_bits != 0)
    {
        return false;
    }

    let mut db_buf = [0u8; MAX_MODULUS_BYTES];
    let Some(db) = db_buf.get_mut(..masked_db.len()) else {
        return false;
    };
    for (counter, (chunk, masked)) in
        (0u32..).zip(db.chunks_mut(h_len).zip(masked_db.chunks(h_len)))
    {
        let mask = D::new()
            .chain_update(h)
            .chain_update(counter.to_be_bytes())
            .finalize();
        for ((d, &m), &k) in chunk.iter_mut().zip(masked).zip(mask.iter()) {
            *d = m ^ k;
        }
    }
    if let Some(first) = db.first_mut() {
        *first &= allowed_top_bits;
    }
    let ps_len = em.len() - h_len - s_len - 2;
    let Some((ps, rest)) = db.split_at_checked(ps_len) else {
        return false;
    };
    let Some((&separator, salt)) = rest.split_first() else {
        return false;
    };
    if ps.iter().any(|&b| b != 0) || separator != 0x01 {
        return false;
    }
    let m_hash = D::digest(msg);
    let expected = D::new()
        .chain_update([0u8; 8])
        .chain_update(&m_hash)
        .chain_update(salt)
        .finalize();
    expected.as_slice() == h
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::*;

    /// Wycheproof's 2048-bit test key (e = 65537), with its DER leading zero byte.
    const N_2048: &str = "00a2b451a07d0aa5f96e455671513550514a8a5b462ebef717094fa1fee82224e637f9746d3f7cafd31878d80325b6ef5a1700f65903b469429e89d6eac8845097b5ab393189db92512ed8a7711a1253facd20f79c15e8247f3d3e42e46e48c98e254a2fe9765313a03eff8f17e1a029397a1fa26a8dce26f490ed81299615d9814c22da610428e09c7d9658594266f5c021d0fceca08d945a12be82de4d1ece6b4c03145b5d3495d4ed5411eb878daf05fd7afc3e09ada0f1126422f590975a1969816f48698bcbba1b4d9cae79d460d8f9f85e7975005d9bc22c4e5ac0f7c1a45d12569a62807d3b9a02e5a530e773066f453d1f5b4c2e9cf7820283f742b9d5";
    /// Wycheproof rsa_signature_2048_sha256_test.json tcId 3: RS256 over "Test".
    const SIG_RS256: &str = "264491e844c119f14e425c03282139a558dcdaeb82a4628173cd407fd319f9076eaebc0dd87a1c22e4d17839096886d58a9d5b7f7aeb63efec56c45ac7bead4203b6886e1faa90e028ec0ae094d46bf3f97efdd19045cfbc25a1abda2432639f9876405c0d68f8edbf047c12a454f7681d5d5a2b54bd3723d193dbad4338baad753264006e2d08931c4b8bb79aa1c9cad10eb6605f87c5831f6e2b08e002f9c6f21141f5841d92727dd3e1d99c36bc560da3c9067df99fcaf818941f72588be33032bad22caf6704223bb114d575b6d02d9d222b580005d930e8f40cce9f672eebb634a20177d84351627964b83f2053d736a84ab1a005f63bd5ba943de6205c";
    /// Wycheproof rsa_pss_2048_sha256_mgf1_32_test.json tcId 3: PS256 over "Test" with the same key.
    const SIG_PS256: &str = "401eb03cdb47ca88033e3030f6bdecbac8f5c8fc1dd6a13d23d379ed9a2b309891d13d74fea9d21d159b9e6d8f37efa2489962e24555f56dd434ff1d31ce4f9f5abd3f22cbea8b691d6a11e44efb83e2bca155e6a164325e0fde2a8865afd5c9f51161a9d615f62af7ec2e31b3e5ab649c164490d31d88cfae35b84aea7925690f929a144b6d2f48e8fb894a52deecd1b9a6496990c4ecf1588699a42cacd10c53af350514e4291ea9a058e77f101e32c1c0cefa61d945f7bc931f8bd19e7ba3169358a60e5a8b0123bc3199b9fdcafe8e519c41ba675491a27b85e44ef2d77277c10fe107293c8290186913bc9a99b640d8da041b64f31eab1d35920985f4a5";
    const MSG: &[u8] = b"Test";
    const E_65537: &[u8] = &[0x01, 0x00, 0x01];

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn key_2048() -> RsaPublicKey {
        RsaPublicKey::new(&unhex(N_2048), E_65537).unwrap()
    }

    /// An odd modulus of exactly `bits` bits: top and bottom bits set, `fill` in between.
    fn modulus(bits: usize, fill: u8) -> Vec<u8> {
        let mut n = vec![fill; bits.div_ceil(8)];
        let top_bits = bits - 8 * (n.len() - 1);
        n[0] = (fill & ((1u16 << top_bits) - 1) as u8) | (1 << (top_bits - 1));
        *n.last_mut().unwrap() |= 1;
        n
    }

    #[test]
    fn constructor_refusals() {
        let cases: &[(&str, Vec<u8>, &[u8], RsaKeyError)] = &[
            (
                "empty modulus",
                vec![],
                E_65537,
                RsaKeyError::ModulusTooSmall { bits: 0 },
            ),
            (
                "zero modulus",
                vec![0; 300],
                E_65537,
                RsaKeyError::ModulusTooSmall { bits: 0 },
            ),
            (
                "1024 bits",
                modulus(1024, 0x5a),
                E_65537,
                RsaKeyError::ModulusTooSmall { bits: 1024 },
            ),
            (
                "2047 bits",
                modulus(2047, 0xff),
                E_65537,
                RsaKeyError::ModulusTooSmall { bits: 2047 },
            ),
            (
                "2047 bits behind zero bytes",
                [vec![0, 0], modulus(2047, 0xa5)].concat(),
                E_65537,
                RsaKeyError::ModulusTooSmall { bits: 2047 },
            ),
            (
                "4097 bits",
                modulus(4097, 0x33),
                E_65537,
                RsaKeyError::ModulusTooLarge { bits: 4097 },
            ),
            (
                "8192 bits",
                modulus(8192, 0x33),
                E_65537,
                RsaKeyError::ModulusTooLarge { bits: 8192 },
            ),
            (
                "even modulus",
                {
                    let mut n = modulus(2048, 0x77);
                    *n.last_mut().unwrap() &= 0xfe;
                    n
                },
                E_65537,
                RsaKeyError::EvenModulus,
            ),
            (
                "empty exponent",
                modulus(2048, 0x77),
                &[],
                RsaKeyError::BadExponent,
            ),
            (
                "zero exponent",
                modulus(2048, 0x77),
                &[0, 0],
                RsaKeyError::BadExponent,
            ),
            (
                "exponent 1",
                modulus(2048, 0x77),
                &[1],
                RsaKeyError::BadExponent,
            ),
            (
                "exponent 1 with zero bytes",
                modulus(2048, 0x77),
                &[0, 0, 0, 0, 0, 1],
                RsaKeyError::BadExponent,
            ),
            (
                "exponent 2",
                modulus(2048, 0x77),
                &[2],
                RsaKeyError::BadExponent,
            ),
            (
                "even exponent",
                modulus(2048, 0x77),
                &[1, 0, 0],
                RsaKeyError::BadExponent,
            ),
            (
                "5-byte exponent",
                modulus(2048, 0x77),
                &[1, 0, 0, 0, 1],
                RsaKeyError::BadExponent,
            ),
        ];
        for (name, n, e, want) in cases {
            assert_eq!(RsaPublicKey::new(n, e).unwrap_err(), *want, "{name}");
        }
    }

    struct Accepted {
        name: &'static str,
        n: Vec<u8>,
        e: &'static [u8],
        bits: usize,
        e_value: u32,
    }

    #[test]
    fn constructor_accepts() {
        let accepted = |name, n, e, bits, e_value| Accepted {
            name,
            n,
            e,
            bits,
            e_value,
        };
        let cases = [
            accepted("wycheproof key", unhex(N_2048), E_65537, 2048, 65537),
            accepted("2048 bits, e = 3", modulus(2048, 0xff), &[3], 2048, 3),
            accepted("2049 bits", modulus(2049, 0x12), E_65537, 2049, 65537),
            accepted("3000 bits", modulus(3000, 0xc3), E_65537, 3000, 65537),
            accepted("4096 bits", modulus(4096, 0xff), E_65537, 4096, 65537),
            accepted(
                "leading zero bytes",
                [vec![0; 9], modulus(2048, 0x42)].concat(),
                &[0, 0, 0, 0, 1, 0, 1],
                2048,
                65537,
            ),
            accepted(
                "largest exponent",
                modulus(2048, 0x42),
                &[0xff; 4],
                2048,
                u32::MAX,
            ),
        ];
        for case in &cases {
            let name = case.name;
            let key =
                RsaPublicKey::new(&case.n, case.e).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(key.bits(), case.bits, "{name}");
            assert_eq!(key.e, case.e_value, "{name}");
            assert_eq!(key.len % 2, 0, "{name}");
            assert!(LIMB_BITS as usize * key.len >= case.bits + 2, "{name}");
        }
    }

    #[test]
    fn known_good_signatures() {
        let key = key_2048();
        assert!(key.verify_pkcs1v15(HashAlg::Sha256, MSG, &unhex(SIG_RS256)));
        assert!(key.verify_pss(HashAlg::Sha256, MSG, &unhex(SIG_PS256)));
    }

    type Mutation = fn(&[u8]) -> Vec<u8>;

    fn flipped(sig: &[u8], bit: usize) -> Vec<u8> {
        let mut s = sig.to_vec();
        s[bit / 8] ^= 0x80 >> (bit % 8);
        s
    }

    #[test]
    fn rejected_signatures() {
        let key = key_2048();
        let rs = unhex(SIG_RS256);
        let ps = unhex(SIG_PS256);
        let check = |what: &str, hash, msg: &[u8], pkcs1_sig: &[u8], pss_sig: &[u8]| {
            assert!(
                !key.verify_pkcs1v15(hash, msg, pkcs1_sig),
                "PKCS#1 v1.5: {what}"
            );
            assert!(!key.verify_pss(hash, msg, pss_sig), "PSS: {what}");
        };

        let mutations: &[(&str, Mutation)] = &[
            ("empty", |_| vec![]),
            ("first byte dropped", |s| s[1..].to_vec()),
            ("last byte dropped", |s| s[..s.len() - 1].to_vec()),
            ("leading zero added", |s| [&[0], s].concat()),
            ("trailing zero added", |s| [s, &[0]].concat()),
            ("first bit flipped", |s| flipped(s, 0)),
            ("bit 7 flipped", |s| flipped(s, 7)),
            ("middle bit flipped", |s| flipped(s, 1029)),
            ("last bit flipped", |s| flipped(s, 2047)),
        ];
        for (what, mutate) in mutations {
            check(what, HashAlg::Sha256, MSG, &mutate(&rs), &mutate(&ps));
        }
        for bit in (0..2048).step_by(61) {
            let what = format!("bit {bit} flipped");
            check(
                &what,
                HashAlg::Sha256,
                MSG,
                &flipped(&rs, bit),
                &flipped(&ps, bit),
            );
        }

        let n = unhex(N_2048)[1..].to_vec();
        let mut n_plus_one = n.clone();
        *n_plus_one.last_mut().unwrap() += 1;
        let one = [vec![0; 255], vec![1]].concat();
        let values = [
            ("sig = n", n),
            ("sig = n + 1", n_plus_one),
            ("sig = 2^2048 - 1", vec![0xff; 256]),
            ("sig = 0", vec![0; 256]),
            ("sig = 1", one),
        ];
        for (what, sig) in &values {
            check(what, HashAlg::Sha256, MSG, sig, sig);
        }

        let inputs: &[(&str, HashAlg, &[u8])] = &[
            ("other message", HashAlg::Sha256, b"Tesu"),
            ("empty message", HashAlg::Sha256, b""),
            ("SHA-384", HashAlg::Sha384, MSG),
            ("SHA-512", HashAlg::Sha512, MSG),
        ];
        for (what, hash, msg) in inputs {
            check(what, *hash, msg, &rs, &ps);
        }
        check("schemes swapped", HashAlg::Sha256, MSG, &ps, &rs);
    }

    /// Plain little-endian 32-bit word arithmetic, slow and simple, as a reference for the Montgomery code.
    mod reference {
        pub fn words(be: &[u8], len: usize) -> Vec<u32> {
            let mut w = vec![0u32; len];
            for (i, &b) in be.iter().rev().enumerate() {
                w[i / 4] |= u32::from(b) << (8 * (i % 4));
            }
            w
        }

        pub fn bytes(w: &[u32], len: usize) -> Vec<u8> {
            (0..len)
                .rev()
                .map(|i| (w[i / 4] >> (8 * (i % 4))) as u8)
                .collect()
        }

        /// x = x mod n for x < 2n.
        fn reduce(x: &mut [u32], n: &[u32]) {
            if x.iter().rev().cmp(n.iter().rev()) != std::cmp::Ordering::Less {
                let mut borrow = 0u64;
                for (a, &b) in x.iter_mut().zip(n) {
                    let d = u64::from(*a).wrapping_sub(u64::from(b) + borrow);
                    *a = d as u32;
                    borrow = d >> 63;
                }
            }
        }

        /// x = (x + y) mod n for x, y < n; x, y and n have one spare top word.
        fn add_mod(x: &mut [u32], y: &[u32], n: &[u32]) {
            let mut carry = 0u64;
            for (a, &b) in x.iter_mut().zip(y) {
                let s = u64::from(*a) + u64::from(b) + carry;
                *a = s as u32;
                carry = s >> 32;
            }
            reduce(x, n);
        }

        /// x = 2x mod n for x < n.
        fn double_mod(x: &mut [u32], n: &[u32]) {
            let mut carry = 0u32;
            for a in x.iter_mut() {
                let top = *a >> 31;
                *a = (*a << 1) | carry;
                carry = top;
            }
            reduce(x, n);
        }

        fn mul_mod(a: &[u32], b: &[u32], n: &[u32]) -> Vec<u32> {
            let mut r = vec![0u32; n.len()];
            for bit in (0..32 * n.len()).rev() {
                double_mod(&mut r, n);
                if (b[bit / 32] >> (bit % 32)) & 1 == 1 {
                    add_mod(&mut r, a, n);
                }
            }
            r
        }

        pub fn pow_mod(s: &[u32], e: u32, n: &[u32]) -> Vec<u32> {
            let mut r = s.to_vec();
            for bit in (0..31 - e.leading_zeros()).rev() {
                r = mul_mod(&r, &r, n);
                if (e >> bit) & 1 == 1 {
                    r = mul_mod(&r, s, n);
                }
            }
            r
        }
    }

    #[test]
    fn modexp_matches_reference() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut random_bytes = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect()
        };
        let mut checked = 0;
        for bits in [
            2048usize, 2049, 2055, 2070, 2072, 2100, 2101, 3000, 3072, 4095, 4096,
        ] {
            let k = bits.div_ceil(8);
            let random_n = {
                let mut n = random_bytes(k);
                let top_bits = bits - 8 * (k - 1);
                n[0] = (n[0] & ((1u16 << top_bits) - 1) as u8) | (1 << (top_bits - 1));
                n[k - 1] |= 1;
                n
            };
            let all_ones = modulus(bits, 0xff);
            let sparse = {
                let mut n = vec![0u8; k];
                n[0] = 1 << (bits - 8 * (k - 1) - 1);
                n[k - 1] = 1;
                n
            };
            for n in [random_n, all_ones, sparse] {
                let words = k.div_ceil(4) + 1;
                let n_words = reference::words(&n, words);
                let n_minus_one = {
                    let mut s = n.clone();
                    s[k - 1] -= 1;
                    s
                };
                let mut below_n = random_bytes(k);
                below_n[0] = 0;
                let mut sigs = vec![n_minus_one, below_n];
                if bits == 2048 {
                    sigs.extend([vec![0; k], [vec![0; k - 1], vec![2]].concat()]);
                }
                let mut exponents = vec![3u32];
                if matches!(bits, 2048 | 2101 | 4096) {
                    exponents.push(65537);
                }
                if bits == 2048 {
                    exponents.push(0xffff_ffff);
                }
                for e in exponents {
                    let key = RsaPublicKey::new(&n, &e.to_be_bytes()).unwrap();
                    for sig in sigs.iter().take(if e == 3 { 4 } else { 2 }) {
                        let mut buf = [0u8; MAX_MODULUS_BYTES];
                        let got = key.public_op(sig, &mut buf).unwrap().to_vec();
                        let want = reference::pow_mod(&reference::words(sig, words), e, &n_words);
                        assert_eq!(
                            got,
                            reference::bytes(&want, k),
                            "bits {bits} e {e} n {n:02x?} sig {sig:02x?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 80, "{checked}");
    }
}
