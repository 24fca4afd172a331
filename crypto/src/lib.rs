//! aml-auth-crypto: signature verification written for wasm (32-bit limbs, tables built when a
//! key is parsed): RSA, ECDSA on P-256/P-384/P-521, Ed25519. Verification only; all inputs are
//! public data. The filter re-exports it as `aml_auth_filter::crypto`.

pub(crate) mod mont;
pub(crate) mod weierstrass;

pub mod ed25519;
pub mod p256;
pub mod p384;
pub mod p521;
pub mod rsa;

/// Why an elliptic-curve public key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointError {
    /// A coordinate or encoding has the wrong length.
    Length,
    /// Not a (canonical) point of the curve, or (Ed25519) a point of small order.
    NotOnCurve,
}

#[cfg(test)]
mod digest_tests;
#[cfg(test)]
mod tests;
