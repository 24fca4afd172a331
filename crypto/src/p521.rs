//! P-521 (ES512: ECDSA with SHA-512), verification only, on the generic comb code of [`super::weierstrass`].

use std::sync::OnceLock;

use sha2::{Digest, Sha512};

use super::mont::{hex, Modulus};
use super::weierstrass::{Curve, Table};
use super::PointError;

static CURVE: Curve<17> = Curve {
    p: Modulus::new(hex("1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
    n: Modulus::new(hex("01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409")),
    b: hex("0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"),
    gx: hex("00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66"),
    gy: hex("011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
    bytes: 66,
    bits: 521,
};

/// The generator's comb table, built on first use.
static GENERATOR: OnceLock<Option<Table<17>>> = OnceLock::new();

/// A P-521 public key with its comb table (built once, when the key is parsed).
pub struct PublicKey {
    table: Table<17>,
}

impl PublicKey {
    /// The key of the affine point (x, y), big-endian coordinates of at most 66 bytes each (a
    /// shorter one is left-padded with zeros); refused unless the point is on the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, PointError> {
        CURVE.public_key(x, y).map(|table| PublicKey { table })
    }

    /// Whether `signature` (r || s, 66 big-endian bytes each, r and s in 1..n-1) is this
    /// key's ES512 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some(g) = GENERATOR.get_or_init(|| CURVE.generator_table()) else {
            return false;
        };
        CURVE.verify(g, &self.table, &Sha512::digest(message), signature)
    }
}

#[cfg(test)]
impl PublicKey {
    /// [`PublicKey::verify`] of a chosen digest (the differential tests reach e = 0 mod n, a sum
    /// at infinity and x(R) >= n through it).
    pub(crate) fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> bool {
        GENERATOR
            .get_or_init(|| CURVE.generator_table())
            .as_ref()
            .is_some_and(|g| CURVE.verify(g, &self.table, digest, signature))
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("P-521 public key")
    }
}
