//! P-384 (ES384: ECDSA with SHA-384), verification only, on the generic comb code of [`super::weierstrass`].

use std::sync::OnceLock;

use sha2::{Digest, Sha384};

use super::mont::{hex, Modulus};
use super::weierstrass::{Curve, Table};
use super::PointError;

static CURVE: Curve<12> = Curve {
    p: Modulus::new(hex("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff")),
    n: Modulus::new(hex("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973")),
    b: hex("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"),
    gx: hex("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"),
    gy: hex("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
    bytes: 48,
    bits: 384,
};

/// The generator's comb table, built on first use.
static GENERATOR: OnceLock<Option<Table<12>>> = OnceLock::new();

/// A P-384 public key with its comb table (built once, when the key is parsed).
pub struct PublicKey {
    table: Table<12>,
}

impl PublicKey {
    /// The key of the affine point (x, y), big-endian coordinates of at most 48 bytes each (a
    /// shorter one is left-padded with zeros); refused unless the point is on the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, PointError> {
        CURVE.public_key(x, y).map(|table| PublicKey { table })
    }

    /// Whether `signature` (r || s, 48 big-endian bytes each, r and s in 1..n-1) is this
    /// key's ES384 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some(g) = GENERATOR.get_or_init(|| CURVE.generator_table()) else {
            return false;
        };
        CURVE.verify(g, &self.table, &Sha384::digest(message), signature)
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
        f.write_str("P-384 public key")
    }
}
