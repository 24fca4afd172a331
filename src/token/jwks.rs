//! JWKS parsing: turns an issuer's JSON Web Key Set into a shareable, precomputed set of verification keys.
//!
//! Rules applied to every key (a key that breaks one is dropped and reported, the rest are kept):
//! - only public signature keys are kept: `kty` RSA (2048 to 4096 bits), EC on P-256 (ES256
//!   only), P-384 (ES384 only) and P-521 (ES512 only), and OKP on Ed25519 (EdDSA only); `oct` keys
//!   and other key types are never used; an EC or Ed25519 key gets its verification table here;
//! - an RSA modulus with the ROCA fingerprint (CVE-2017-15361) is dropped;
//! - a key with `use` other than `sig`, with `key_ops` lacking `verify`, or carrying private
//!   members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) is dropped;
//! - a key's `alg`, when present, restricts it to that one algorithm and must suit its type and
//!   curve; an RSA key without `alg` admits RS256/384/512 and PS256/384/512;
//! - duplicate `kid`: the first usable key with a given kid wins, later usable keys with the
//!   same kid are dropped (a dropped key never claims a kid);
//! - at most [`MAX_KEYS`] entries of `keys` are examined; the rest are skipped without being
//!   decoded into values and reported as one [`DropReason::TooManyKeys`] entry.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::crypto::{ed25519, p256, p384, p521, PointError};
use crate::rsa::RsaPublicKey;
pub(crate) use crate::token::strict_json::B64URL;
use crate::token::strict_json::{Checked, SkipSeed, ValueSeed};

/// Maximum number of entries of a JWKS `keys` array that are examined.
pub const MAX_KEYS: usize = 256;

/// Maximum length in bytes of a `kid`, in a JWK as in a token header.
pub const MAX_KID_LEN: usize = 256;

/// A JWS signature algorithm this crate can verify. Names are matched exactly (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    Ps256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt.
    Ps384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt.
    Ps512,
    /// ECDSA on P-256 with SHA-256, 64-byte `r || s` signature.
    Es256,
    /// ECDSA on P-384 with SHA-384, 96-byte `r || s` signature.
    Es384,
    /// ECDSA on P-521 with SHA-512, 132-byte `r || s` signature.
    Es512,
    /// Ed25519 signature.
    EdDsa,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 10] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
    ];

    /// Parses a JOSE `alg` name exactly; `none`, HS*, lowercase spellings and others give `None`.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// The JOSE name of the algorithm.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }

    fn bit(self) -> u16 {
        match self {
            Alg::Rs256 => 1,
            Alg::Rs384 => 1 << 1,
            Alg::Rs512 => 1 << 2,
            Alg::Ps256 => 1 << 3,
            Alg::Ps384 => 1 << 4,
            Alg::Ps512 => 1 << 5,
            Alg::Es256 => 1 << 6,
            Alg::EdDsa => 1 << 7,
            Alg::Es384 => 1 << 8,
            Alg::Es512 => 1 << 9,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const RSA_ALGS: u16 = 0b0011_1111;

/// Public key material of a usable JWK, decoded and checked once at parse time.
pub(crate) enum KeyMaterial {
    Rsa(Box<RsaPublicKey>),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    P521(p521::PublicKey),
    Ed25519(ed25519::PublicKey),
}

/// One usable verification key from a JWKS.
pub struct Jwk {
    kid: Option<String>,
    admitted: u16,
    material: KeyMaterial,
}

impl Jwk {
    /// The key's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether the key may verify signatures made with `alg`.
    pub fn admits(&self, alg: Alg) -> bool {
        self.admitted & alg.bit() != 0
    }

    /// The algorithms the key admits, in [`Alg::ALL`] order.
    pub fn admitted_algs(&self) -> Vec<Alg> {
        Alg::ALL.into_iter().filter(|a| self.admits(*a)).collect()
    }

    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.material
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kty = match &self.material {
            KeyMaterial::Rsa(k) => format!("RSA-{}", k.bits()),
            KeyMaterial::P256(_) => "EC P-256".to_owned(),
            KeyMaterial::P384(_) => "EC P-384".to_owned(),
            KeyMaterial::P521(_) => "EC P-521".to_owned(),
            KeyMaterial::Ed25519(_) => "OKP Ed25519".to_owned(),
        };
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("kty", &kty)
            .field("algs", &self.admitted_algs())
            .finish()
    }
}

struct KeySetInner {
    keys: Vec<Jwk>,
    by_kid: HashMap<String, usize>,
    without_kid: Vec<usize>,
}

/// The usable keys of one JWKS document, or of several combined key by key with
/// [`KeySet::merged`]. Cloning shares the keys (reference counted).
#[derive(Clone)]
pub struct KeySet {
    /// The documents' keys, first layer first; a `kid` resolves to its first layer.
    layers: Arc<[Arc<KeySetInner>]>,
}

impl KeySet {
    fn single(inner: KeySetInner) -> KeySet {
        KeySet {
            layers: Arc::from(vec![Arc::new(inner)]),
        }
    }

    /// Combines two key sets key by key, without re-reading either document: `first`'s keys,
    /// then those of `then` whose `kid` `first` does not have (a `kid` in both resolves to
    /// `first`'s key; keys without `kid` are all kept). Each set keeps its own
    /// [`MAX_KEYS`] cap and its own dropped keys.
    pub fn merged(first: &KeySet, then: &KeySet) -> KeySet {
        let layers: Vec<Arc<KeySetInner>> = first
            .layers
            .iter()
            .chain(then.layers.iter())
            .cloned()
            .collect();
        KeySet {
            layers: Arc::from(layers),
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the set holds no key (never true for a set returned by [`parse_jwks`]).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The key whose `kid` is exactly `kid` (byte-for-byte), if any.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.layers
            .iter()
            .find_map(|layer| layer.by_kid.get(kid).and_then(|i| layer.keys.get(*i)))
    }

    /// Keys that have no `kid`, in document order.
    pub fn without_kid(&self) -> impl Iterator<Item = &Jwk> {
        self.layers
            .iter()
            .flat_map(|layer| layer.without_kid.iter().filter_map(|i| layer.keys.get(*i)))
    }

    /// All usable keys, in document order (a key whose `kid` an earlier layer holds is left out).
    pub fn iter(&self) -> impl Iterator<Item = &Jwk> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(move |(depth, layer)| {
                let earlier = self.layers.get(..depth).unwrap_or_default();
                layer
                    .keys
                    .iter()
                    .filter(move |key| match key.kid.as_deref() {
                        Some(kid) => !earlier.iter().any(|l| l.by_kid.contains_key(kid)),
                        None => true,
                    })
            })
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Why one entry of `keys` was not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The entry is not a JSON object.
    NotAnObject,
    /// The entry repeats a member name.
    DuplicateMember,
    /// A member the key type needs (named here) is absent.
    MissingMember(&'static str),
    /// A member (named here) has the wrong JSON type, is not strict base64url, or is empty.
    MalformedMember(&'static str),
    /// `kty` is `oct`: symmetric keys are never used.
    SymmetricKey,
    /// `kty` is neither RSA, EC nor OKP.
    UnsupportedKeyType,
    /// The entry holds private key members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth` or `k`).
    PrivateKeyMaterial,
    /// `use` is present and is not `sig`.
    NotForSignatures,
    /// `key_ops` is present and does not contain `verify`.
    KeyOpsWithoutVerify,
    /// `alg` names an algorithm this crate does not verify (including `none` and HS*).
    UnsupportedAlgorithm,
    /// `alg` is a supported algorithm that does not fit the key's type or curve.
    AlgorithmKeyMismatch,
    /// `crv` names a curve other than P-256, P-384, P-521 (EC) or Ed25519 (OKP).
    UnsupportedCurve,
    /// An EC coordinate is longer than 32 (P-256), 48 (P-384) or 66 (P-521) bytes (a shorter one is
    /// read left-padded with zeros, as BoringSSL does), or an Ed25519 key is not 32.
    BadKeyLength,
    /// The EC point is not on its curve, or the Ed25519 key is not a canonical point of large order.
    InvalidPoint,
    /// The RSA key was refused (modulus under 2048 or over 4096 bits, even modulus, bad exponent).
    RsaKeyRejected,
    /// The RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be recovered.
    RocaVulnerable,
    /// The `kid` is longer than [`MAX_KID_LEN`] bytes, so no token could select it.
    KidTooLong,
    /// An earlier usable key already has this `kid`.
    DuplicateKid,
    /// The entry is beyond the first [`MAX_KEYS`]; `ignored` entries were skipped unexamined.
    TooManyKeys {
        /// Number of skipped entries.
        ignored: usize,
    },
}

impl DropReason {
    /// Short stable code for logs and stats.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::NotAnObject => "not_an_object",
            DropReason::DuplicateMember => "duplicate_member",
            DropReason::MissingMember(_) => "missing_member",
            DropReason::MalformedMember(_) => "malformed_member",
            DropReason::SymmetricKey => "symmetric_key",
            DropReason::UnsupportedKeyType => "unsupported_kty",
            DropReason::PrivateKeyMaterial => "private_key_material",
            DropReason::NotForSignatures => "use_not_sig",
            DropReason::KeyOpsWithoutVerify => "key_ops_without_verify",
            DropReason::UnsupportedAlgorithm => "unsupported_alg",
            DropReason::AlgorithmKeyMismatch => "alg_key_mismatch",
            DropReason::UnsupportedCurve => "unsupported_curve",
            DropReason::BadKeyLength => "bad_key_length",
            DropReason::InvalidPoint => "invalid_point",
            DropReason::RsaKeyRejected => "rsa_key_rejected",
            DropReason::RocaVulnerable => "roca_vulnerable",
            DropReason::KidTooLong => "kid_too_long",
            DropReason::DuplicateKid => "duplicate_kid",
            DropReason::TooManyKeys { .. } => "too_many_keys",
        }
    }
}

/// A JWKS entry that was not kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedKey {
    /// Position of the entry in the `keys` array.
    pub index: usize,
    /// The entry's `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Why it was dropped.
    pub reason: DropReason,
}

/// Result of parsing a JWKS document that has at least one usable key.
#[derive(Debug, Clone)]
pub struct ParsedJwks {
    /// The usable keys.
    pub keys: KeySet,
    /// The entries that were not kept.
    pub dropped: Vec<DroppedKey>,
}

/// Why a whole JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// The body is not valid JSON (syntax error, bad UTF-8, trailing data, or nesting deeper than 64 levels).
    NotJson,
    /// The document is JSON but not an object.
    NotAnObject,
    /// The object has no `keys` member.
    MissingKeys,
    /// The object has more than one `keys` member.
    DuplicateKeys,
    /// `keys` is not an array.
    KeysNotArray,
    /// No entry of `keys` is usable; `dropped` says why each was refused.
    NoUsableKeys {
        /// The refused entries.
        dropped: Vec<DroppedKey>,
    },
}

impl JwksError {
    /// Short stable code for logs and stats.
    pub fn as_str(&self) -> &'static str {
        match self {
            JwksError::NotJson => "not_json",
            JwksError::NotAnObject => "not_an_object",
            JwksError::MissingKeys => "missing_keys",
            JwksError::DuplicateKeys => "duplicate_keys",
            JwksError::KeysNotArray => "keys_not_array",
            JwksError::NoUsableKeys { .. } => "no_usable_keys",
        }
    }
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for JwksError {}

/// Parses a JWKS body into its usable keys; runs in time linear in the body size.
pub fn parse_jwks(body: &[u8]) -> Result<ParsedJwks, JwksError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let document = de
        .deserialize_any(DocumentVisitor)
        .map_err(|_| JwksError::NotJson)?;
    de.end().map_err(|_| JwksError::NotJson)?;
    let (entries, ignored) = match document {
        Document::NotAnObject => return Err(JwksError::NotAnObject),
        Document::MissingKeys => return Err(JwksError::MissingKeys),
        Document::DuplicateKeys => return Err(JwksError::DuplicateKeys),
        Document::KeysNotArray => return Err(JwksError::KeysNotArray),
        Document::Keys { entries, ignored } => (entries, ignored),
    };

    let mut keys = Vec::new();
    let mut by_kid = HashMap::new();
    let mut without_kid = Vec::new();
    let mut dropped = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let kid = entry
            .value
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let key = if entry.duplicate.is_some() {
            Err(DropReason::DuplicateMember)
        } else {
            parse_jwk(&entry.value)
        };
        match key {
            Ok(jwk) => match &jwk.kid {
                Some(k) if by_kid.contains_key(k) => dropped.push(DroppedKey {
                    index,
                    kid,
                    reason: DropReason::DuplicateKid,
                }),
                Some(k) => {
                    by_kid.insert(k.clone(), keys.len());
                    keys.push(jwk);
                }
                None => {
                    without_kid.push(keys.len());
                    keys.push(jwk);
                }
            },
            Err(reason) => dropped.push(DroppedKey { index, kid, reason }),
        }
    }
    if ignored > 0 {
        dropped.push(DroppedKey {
            index: MAX_KEYS,
            kid: None,
            reason: DropReason::TooManyKeys { ignored },
        });
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys { dropped });
    }
    Ok(ParsedJwks {
        keys: KeySet::single(KeySetInner {
            keys,
            by_kid,
            without_kid,
        }),
        dropped,
    })
}

const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn parse_jwk(value: &Value) -> Result<Jwk, DropReason> {
    let obj = value.as_object().ok_or(DropReason::NotAnObject)?;
    let kty = match obj.get("kty") {
        None => return Err(DropReason::MissingMember("kty")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(DropReason::MalformedMember("kty")),
    };
    if kty == "oct" {
        return Err(DropReason::SymmetricKey);
    }
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(DropReason::PrivateKeyMaterial);
    }
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(s)) if s.len() > MAX_KID_LEN => return Err(DropReason::KidTooLong),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(DropReason::MalformedMember("kid")),
    };
    match obj.get("use") {
        None => {}
        Some(Value::String(s)) if s == "sig" => {}
        Some(Value::String(_)) => return Err(DropReason::NotForSignatures),
        Some(_) => return Err(DropReason::MalformedMember("use")),
    }
    match obj.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) => {
            if ops.iter().any(|op| !op.is_string()) {
                return Err(DropReason::MalformedMember("key_ops"));
            }
            if !ops.iter().any(|op| op.as_str() == Some("verify")) {
                return Err(DropReason::KeyOpsWithoutVerify);
            }
        }
        Some(_) => return Err(DropReason::MalformedMember("key_ops")),
    }
    let alg = match obj.get("alg") {
        None => None,
        Some(Value::String(s)) => Some(Alg::from_name(s).ok_or(DropReason::UnsupportedAlgorithm)?),
        Some(_) => return Err(DropReason::MalformedMember("alg")),
    };

    let (material, family) = match kty {
        "RSA" => (rsa_material(obj)?, RSA_ALGS),
        "EC" => ec_material(obj)?,
        "OKP" => (okp_material(obj)?, Alg::EdDsa.bit()),
        _ => return Err(DropReason::UnsupportedKeyType),
    };
    let admitted = match alg {
        None => family,
        Some(a) if family & a.bit() != 0 => a.bit(),
        Some(_) => return Err(DropReason::AlgorithmKeyMismatch),
    };
    Ok(Jwk {
        kid,
        admitted,
        material,
    })
}

fn b64_member(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, DropReason> {
    match obj.get(name) {
        None => Err(DropReason::MissingMember(name)),
        Some(Value::String(s)) => match B64URL.decode(s) {
            Ok(bytes) if !bytes.is_empty() => Ok(bytes),
            _ => Err(DropReason::MalformedMember(name)),
        },
        Some(_) => Err(DropReason::MalformedMember(name)),
    }
}

fn curve(obj: &Map<String, Value>) -> Result<&str, DropReason> {
    match obj.get("crv") {
        None => Err(DropReason::MissingMember("crv")),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(DropReason::MalformedMember("crv")),
    }
}

fn rsa_material(obj: &Map<String, Value>) -> Result<KeyMaterial, DropReason> {
    let n = b64_member(obj, "n")?;
    let e = b64_member(obj, "e")?;
    if has_roca_fingerprint(&n) {
        return Err(DropReason::RocaVulnerable);
    }
    RsaPublicKey::new(&n, &e)
        .map(|k| KeyMaterial::Rsa(Box::new(k)))
        .map_err(|_| DropReason::RsaKeyRejected)
}

/// Small primes of the ROCA test (Nemec et al., CCS 2017): moduli from the vulnerable
/// Infineon generator are, modulo each of them, powers of 65537.
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// Whether the big-endian modulus carries the ROCA fingerprint (its factors are recoverable).
fn has_roca_fingerprint(n_be: &[u8]) -> bool {
    ROCA_PRIMES.iter().all(|&p| {
        let residue = n_be.iter().fold(0_u32, |acc, b| {
            (acc.wrapping_shl(8) | u32::from(*b))
                .checked_rem(p)
                .unwrap_or(0)
        });
        let generator = 65_537_u32.checked_rem(p).unwrap_or(0);
        let mut power = 1_u32;
        for _ in 0..p {
            if power == residue {
                return true;
            }
            power = power.wrapping_mul(generator).checked_rem(p).unwrap_or(0);
        }
        false
    })
}

fn ec_material(obj: &Map<String, Value>) -> Result<(KeyMaterial, u16), DropReason> {
    let crv = curve(obj)?;
    if !matches!(crv, "P-256" | "P-384" | "P-521") {
        return Err(DropReason::UnsupportedCurve);
    }
    let x = b64_member(obj, "x")?;
    let y = b64_member(obj, "y")?;
    let key = match crv {
        "P-256" => {
            p256::PublicKey::from_coordinates(&x, &y).map(|k| (KeyMaterial::P256(k), Alg::Es256))
        }
        "P-384" => {
            p384::PublicKey::from_coordinates(&x, &y).map(|k| (KeyMaterial::P384(k), Alg::Es384))
        }
        _ => p521::PublicKey::from_coordinates(&x, &y).map(|k| (KeyMaterial::P521(k), Alg::Es512)),
    };
    key.map(|(material, alg)| (material, alg.bit()))
        .map_err(point_error)
}

fn point_error(e: PointError) -> DropReason {
    match e {
        PointError::Length => DropReason::BadKeyLength,
        PointError::NotOnCurve => DropReason::InvalidPoint,
    }
}

fn okp_material(obj: &Map<String, Value>) -> Result<KeyMaterial, DropReason> {
    if curve(obj)? != "Ed25519" {
        return Err(DropReason::UnsupportedCurve);
    }
    let x = b64_member(obj, "x")?;
    ed25519::PublicKey::from_bytes(&x)
        .map(KeyMaterial::Ed25519)
        .map_err(point_error)
}

enum Document {
    NotAnObject,
    MissingKeys,
    DuplicateKeys,
    KeysNotArray,
    Keys {
        entries: Vec<Checked>,
        ignored: usize,
    },
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWKS object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut keys = None;
        let mut duplicate = false;
        while let Some(name) = map.next_key::<String>()? {
            if name == "keys" {
                if keys.is_some() {
                    duplicate = true;
                    map.next_value_seed(SkipSeed { depth: 2 })?;
                } else {
                    keys = Some(map.next_value_seed(KeysSeed)?);
                }
            } else {
                map.next_value_seed(SkipSeed { depth: 2 })?;
            }
        }
        Ok(match keys {
            _ if duplicate => Document::DuplicateKeys,
            None => Document::MissingKeys,
            Some(None) => Document::KeysNotArray,
            Some(Some((entries, ignored))) => Document::Keys { entries, ignored },
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Document, A::Error> {
        SkipSeed { depth: 1 }.visit_seq(seq)?;
        Ok(Document::NotAnObject)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Document, E> {
        Ok(Document::NotAnObject)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Document, E> {
        Ok(Document::NotAnObject)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Document, E> {
        Ok(Document::NotAnObject)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Document, E> {
        Ok(Document::NotAnObject)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Document, E> {
        Ok(Document::NotAnObject)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document::NotAnObject)
    }
}

/// Reads the `keys` value: `None` when it is not an array, otherwise the first [`MAX_KEYS`] entries and the count of skipped ones.
struct KeysSeed;

type KeysField = Option<(Vec<Checked>, usize)>;

impl<'de> DeserializeSeed<'de> for KeysSeed {
    type Value = KeysField;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KeysField, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeysSeed {
    type Value = KeysField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeysField, A::Error> {
        let mut entries = Vec::new();
        while entries.len() < MAX_KEYS {
            match seq.next_element_seed(ValueSeed { depth: 3 })? {
                Some(v) => entries.push(v),
                None => return Ok(Some((entries, 0))),
            }
        }
        let mut ignored = 0_usize;
        while seq.next_element_seed(SkipSeed { depth: 3 })?.is_some() {
            ignored = ignored.saturating_add(1);
        }
        Ok(Some((entries, ignored)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<KeysField, A::Error> {
        SkipSeed { depth: 2 }.visit_map(map)?;
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeysField, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeysField, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeysField, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeysField, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<KeysField, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeysField, E> {
        Ok(None)
    }
}

#[cfg(test)]
pub(crate) mod testkit;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod merge_tests;
