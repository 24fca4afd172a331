//! Token signing for the workspace stand-in (the `aml-auth` CLI, the demo and tests): RS256,
//! PS256, ES256, ES384, ES512 and EdDSA keys from PKCS#8 PEM, their public JWKs, and compact JWS output.
//! Native only; never part of the wasm module.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

/// A private signing key.
pub enum SigningKey {
    /// RSA (RS256 or PS256 by [`SigningKey::sign`]'s `alg`).
    Rsa(Box<rsa::RsaPrivateKey>),
    /// P-256 (ES256).
    P256(p256::ecdsa::SigningKey),
    /// P-384 (ES384).
    P384(p384::ecdsa::SigningKey),
    /// P-521 (ES512).
    P521(p521::ecdsa::SigningKey),
    /// Ed25519 (EdDSA).
    Ed25519(ed25519_compact::KeyPair),
}

/// Why a key or a signature could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningError {
    /// The PEM is not a PKCS#8 RSA, P-256, P-384, P-521 or Ed25519 private key.
    UnsupportedKey,
    /// The algorithm does not fit the key (e.g. ES256 with an RSA key).
    AlgorithmMismatch(String),
    /// The random generator or the signer failed.
    Signer(String),
}

impl core::fmt::Display for SigningError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SigningError::UnsupportedKey => f.write_str(
                "not a PKCS#8 PEM private key of type RSA, EC P-256/P-384/P-521 or Ed25519",
            ),
            SigningError::AlgorithmMismatch(alg) => {
                write!(f, "algorithm {alg} does not fit this key")
            }
            SigningError::Signer(e) => write!(f, "signing failed: {e}"),
        }
    }
}

impl std::error::Error for SigningError {}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (as `openssl genpkey` writes).
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P256(k));
        }
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(SigningKey::P384(k));
        }
        if let Ok(k) = p521::SecretKey::from_pkcs8_pem(pem) {
            let bytes = k.to_bytes();
            if let Ok(k) = p521::ecdsa::SigningKey::from_bytes(&bytes) {
                return Ok(SigningKey::P521(k));
            }
        }
        if let Ok(k) = ed25519_compact::KeyPair::from_pem(pem) {
            return Ok(SigningKey::Ed25519(k));
        }
        Err(SigningError::UnsupportedKey)
    }

    /// The algorithm used when none is asked for.
    pub fn default_alg(&self) -> &'static str {
        match self {
            SigningKey::Rsa(_) => "RS256",
            SigningKey::P256(_) => "ES256",
            SigningKey::P384(_) => "ES384",
            SigningKey::P521(_) => "ES512",
            SigningKey::Ed25519(_) => "EdDSA",
        }
    }

    /// A stable key id: the RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> String {
        use sha2::Digest as _;
        let canonical = match self.public_members() {
            Value::Object(m) => {
                let pick = |names: &[&str]| {
                    let parts: Vec<String> = names
                        .iter()
                        .map(|n| format!("\"{n}\":{}", m.get(*n).cloned().unwrap_or(Value::Null)))
                        .collect();
                    format!("{{{}}}", parts.join(","))
                };
                match self {
                    SigningKey::Rsa(_) => pick(&["e", "kty", "n"]),
                    SigningKey::P256(_) | SigningKey::P384(_) | SigningKey::P521(_) => {
                        pick(&["crv", "kty", "x", "y"])
                    }
                    SigningKey::Ed25519(_) => pick(&["crv", "kty", "x"]),
                }
            }
            _ => String::new(),
        };
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }

    fn public_members(&self) -> Value {
        match self {
            SigningKey::Rsa(k) => json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(k.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(k.e().to_bytes_be()),
            }),
            SigningKey::P256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(point.x().map(|x| x.to_vec()).unwrap_or_default()),
                    "y": URL_SAFE_NO_PAD.encode(point.y().map(|y| y.to_vec()).unwrap_or_default()),
                })
            }
            SigningKey::P384(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                ec_members(
                    "P-384",
                    point.x().map(|x| x.to_vec()),
                    point.y().map(|y| y.to_vec()),
                )
            }
            SigningKey::P521(k) => {
                let point = p521::ecdsa::VerifyingKey::from(k).to_encoded_point(false);
                ec_members(
                    "P-521",
                    point.x().map(|x| x.to_vec()),
                    point.y().map(|y| y.to_vec()),
                )
            }
            SigningKey::Ed25519(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(k.pk.as_ref()),
            }),
        }
    }

    /// The public JWK with `kid`, `use: sig` and, when given, `alg`.
    pub fn public_jwk(&self, kid: &str, alg: Option<&str>) -> Value {
        let mut jwk = self.public_members();
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), json!(kid));
            m.insert("use".into(), json!("sig"));
            if let Some(alg) = alg {
                m.insert("alg".into(), json!(alg));
            }
        }
        jwk
    }

    /// Signs `header_b64.payload_b64` raw bytes with `alg`, returning the signature bytes.
    pub fn sign_bytes(&self, alg: &str, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mismatch = || SigningError::AlgorithmMismatch(alg.to_string());
        match (self, alg) {
            (SigningKey::Rsa(k), "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512") => {
                let key = (**k).clone();
                let mut rng = rand_core::OsRng;
                let sig = match alg {
                    "RS256" => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key)
                        .sign(message)
                        .to_vec(),
                    "RS384" => rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(key)
                        .sign(message)
                        .to_vec(),
                    "RS512" => rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(key)
                        .sign(message)
                        .to_vec(),
                    "PS256" => rsa::pss::SigningKey::<sha2::Sha256>::new(key)
                        .sign_with_rng(&mut rng, message)
                        .to_vec(),
                    "PS384" => rsa::pss::SigningKey::<sha2::Sha384>::new(key)
                        .sign_with_rng(&mut rng, message)
                        .to_vec(),
                    _ => rsa::pss::SigningKey::<sha2::Sha512>::new(key)
                        .sign_with_rng(&mut rng, message)
                        .to_vec(),
                };
                Ok(sig)
            }
            (SigningKey::P256(k), "ES256") => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                Ok(sig.to_bytes().to_vec())
            }
            (SigningKey::P384(k), "ES384") => {
                let sig: p384::ecdsa::Signature = k.sign(message);
                Ok(sig.to_bytes().to_vec())
            }
            (SigningKey::P521(k), "ES512") => {
                let sig: p521::ecdsa::Signature = k.sign(message);
                Ok(sig.to_bytes().to_vec())
            }
            (SigningKey::Ed25519(k), "EdDSA") => Ok(k.sk.sign(message, None).to_vec()),
            _ => Err(mismatch()),
        }
    }

    /// A compact JWS of `claims` with header `{"alg","typ":"JWT","kid"}`.
    pub fn sign(
        &self,
        alg: &str,
        kid: Option<&str>,
        claims: &Value,
    ) -> Result<String, SigningError> {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let (Some(kid), Value::Object(m)) = (kid, &mut header) {
            m.insert("kid".into(), json!(kid));
        }
        self.sign_raw(alg, &header.to_string(), &claims.to_string())
    }

    /// A compact JWS of exactly these header and payload texts (hostile inputs for tests).
    pub fn sign_raw(&self, alg: &str, header: &str, payload: &str) -> Result<String, SigningError> {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = self.sign_bytes(alg, input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn ec_members(crv: &str, x: Option<Vec<u8>>, y: Option<Vec<u8>>) -> Value {
    json!({
        "kty": "EC",
        "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(x.unwrap_or_default()),
        "y": URL_SAFE_NO_PAD.encode(y.unwrap_or_default()),
    })
}

/// A JWKS document holding these public JWKs.
pub fn jwks(keys: Vec<Value>) -> Value {
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> SigningKey {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        SigningKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn reads_all_test_keys() {
        assert_eq!(key("rsa-a.pem").default_alg(), "RS256");
        assert_eq!(key("p256-a.pem").default_alg(), "ES256");
        assert_eq!(key("ed25519-a.pem").default_alg(), "EdDSA");
        assert_eq!(
            SigningKey::from_pem("nonsense").err(),
            Some(SigningError::UnsupportedKey)
        );
    }

    #[test]
    fn tokens_have_three_parts_and_algorithms_must_fit() {
        let k = key("p256-a.pem");
        let t = k.sign("ES256", Some("k1"), &json!({"iss": "x"})).unwrap();
        assert_eq!(t.split('.').count(), 3);
        assert!(matches!(
            k.sign("RS256", None, &json!({})),
            Err(SigningError::AlgorithmMismatch(_))
        ));
        let jwk = k.public_jwk("k1", Some("ES256"));
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["crv"], "P-256");
    }

    #[test]
    fn thumbprint_is_stable_and_distinct() {
        assert_eq!(key("rsa-a.pem").thumbprint(), key("rsa-a.pem").thumbprint());
        assert_ne!(key("rsa-a.pem").thumbprint(), key("rsa-b.pem").thumbprint());
        assert_eq!(key("ed25519-a.pem").thumbprint().len(), 43);
    }
}
