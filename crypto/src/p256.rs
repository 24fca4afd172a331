//! P-256 (ES256: ECDSA with SHA-256), verification only, on the generic comb code of [`super::weierstrass`].

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::mont::{hex, Modulus};
use super::weierstrass::{Curve, Table};
use super::PointError;

static CURVE: Curve<8> = Curve {
    p: Modulus::new(hex(
        "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    )),
    n: Modulus::new(hex(
        "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    )),
    b: hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
    gx: hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
    gy: hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    bytes: 32,
    bits: 256,
};

/// The generator's comb table, built on first use.
static GENERATOR: OnceLock<Option<Table<8>>> = OnceLock::new();

/// A P-256 public key with its comb table (built once, when the key is parsed).
pub struct PublicKey {
    table: Table<8>,
}

impl PublicKey {
    /// The key of the affine point (x, y), big-endian coordinates of at most 32 bytes each (a
    /// shorter one is left-padded with zeros); refused unless the point is on the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, PointError> {
        CURVE.public_key(x, y).map(|table| PublicKey { table })
    }

    /// Whether `signature` (r || s, 32 big-endian bytes each, r and s in 1..n-1) is this
    /// key's ES256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some(g) = GENERATOR.get_or_init(|| CURVE.generator_table()) else {
            return false;
        };
        CURVE.verify(g, &self.table, &Sha256::digest(message), signature)
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
        f.write_str("P-256 public key")
    }
}
