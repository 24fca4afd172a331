//! Placeholder RSA signature verifier over the `rsa` crate, to be replaced by the fast wasm-friendly verifier that keeps this exact API.

use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Hash function used by an RSA signature scheme (and by MGF1 for PSS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256 (RS256, PS256).
    Sha256,
    /// SHA-384 (RS384, PS384).
    Sha384,
    /// SHA-512 (RS512, PS512).
    Sha512,
}

/// Why an RSA public key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    /// The modulus is shorter than 2048 bits.
    ModulusTooSmall,
    /// The modulus is longer than 4096 bits.
    ModulusTooLarge,
    /// The modulus is even, so it cannot be a product of two odd primes.
    EvenModulus,
    /// The public exponent is even, below 3, or longer than 4 bytes.
    BadExponent,
}

/// An RSA public key accepted for signature verification (2048 to 4096 bits, odd modulus, small odd exponent).
pub struct RsaPublicKey {
    inner: rsa::RsaPublicKey,
}

const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 4096;

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or(&[])
}

impl RsaPublicKey {
    /// Builds a key from the big-endian modulus and exponent, refusing weak or unusual parameters.
    pub fn new(n_be: &[u8], e_be: &[u8]) -> Result<Self, RsaKeyError> {
        let e_be = strip_leading_zeros(e_be);
        if e_be.is_empty() || e_be.len() > 4 {
            return Err(RsaKeyError::BadExponent);
        }
        let e = e_be.iter().fold(0_u64, |acc, b| (acc << 8) | u64::from(*b));
        if e < 3 || e % 2 == 0 {
            return Err(RsaKeyError::BadExponent);
        }
        let n = BigUint::from_bytes_be(n_be);
        let bits = n.bits();
        if bits < MIN_BITS {
            return Err(RsaKeyError::ModulusTooSmall);
        }
        if bits > MAX_BITS {
            return Err(RsaKeyError::ModulusTooLarge);
        }
        if n_be.last().is_none_or(|b| b & 1 == 0) {
            return Err(RsaKeyError::EvenModulus);
        }
        let inner =
            rsa::RsaPublicKey::new(n, BigUint::from(e)).map_err(|_| RsaKeyError::BadExponent)?;
        Ok(Self { inner })
    }

    /// Length of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.inner.n().bits()
    }

    fn signature_in_range(&self, sig: &[u8]) -> bool {
        sig.len() == self.inner.size() && BigUint::from_bytes_be(sig) < *self.inner.n()
    }

    /// Verifies an RSASSA-PKCS1-v1_5 signature over `msg` (the signing input, hashed here).
    pub fn verify_pkcs1v15(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        if !self.signature_in_range(sig) {
            return false;
        }
        let (scheme, hashed) = match hash {
            HashAlg::Sha256 => (Pkcs1v15Sign::new::<Sha256>(), Sha256::digest(msg).to_vec()),
            HashAlg::Sha384 => (Pkcs1v15Sign::new::<Sha384>(), Sha384::digest(msg).to_vec()),
            HashAlg::Sha512 => (Pkcs1v15Sign::new::<Sha512>(), Sha512::digest(msg).to_vec()),
        };
        self.inner.verify(scheme, &hashed, sig).is_ok()
    }

    /// Verifies an RSASSA-PSS signature over `msg` with MGF1 on the same hash and a salt as long as the hash.
    pub fn verify_pss(&self, hash: HashAlg, msg: &[u8], sig: &[u8]) -> bool {
        if !self.signature_in_range(sig) {
            return false;
        }
        let (scheme, hashed) = match hash {
            HashAlg::Sha256 => (Pss::new::<Sha256>(), Sha256::digest(msg).to_vec()),
            HashAlg::Sha384 => (Pss::new::<Sha384>(), Sha384::digest(msg).to_vec()),
            HashAlg::Sha512 => (Pss::new::<Sha512>(), Sha512::digest(msg).to_vec()),
        };
        self.inner.verify(scheme, &hashed, sig).is_ok()
    }
}
