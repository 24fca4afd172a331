//! JWT verification: turns an untrusted compact JWS token into a [`VerifiedToken`] under a [`TokenPolicy`], or says exactly why not.
//!
//! Checks run cheapest first, so a forged token costs as little as possible:
//! 1. structure: at most [`TokenPolicy::max_token_bytes`] bytes, three non-empty strict base64url
//!    parts, header and payload UTF-8 JSON objects with no repeated member names (at any depth)
//!    and at most 64 levels of nesting;
//! 2. header: `alg` names a supported algorithm exactly; `crit` and `cty: JWT` (any case) are
//!    refused, and a `cty` that is not a string is a malformed header; `kid`, when present and
//!    not empty, is a string of at most [`MAX_KID_LEN`] bytes looked up as an exact map key
//!    (`"kid": ""` counts as no kid, as in jwt_authn); `jku`, `x5u`, `jwk` and `x5c` are ignored
//!    (never fetched, never trusted): keys only come from the [`KeySet`];
//! 3. registered claim types: `iss`, `sub`, `jti` strings, `aud` a string or an array of
//!    strings, `exp`, `nbf`, `iat` numbers, else [`TokenError::InvalidClaimType`];
//! 4. issuer, equal to one of the policy's issuers; 5. time claims; 6. audience, compared
//!    exactly (no scheme or trailing slash is stripped, unlike jwt_verify_lib);
//! 7. signature, against the kid's key or, without kid, every key admitting `alg` (at most
//!    [`MAX_KIDLESS_CANDIDATES`]).
//!
//! An audience mismatch is only reported once the signature has verified: a forged token never
//! earns the 403 answer.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use base64::Engine;
use serde_json::{Map, Value};

use crate::rsa::{HashAlg, RsaPublicKey};
use crate::token::claims;
use crate::token::jwks::{Alg, Jwk, KeyMaterial, KeySet, MAX_KID_LEN};
use crate::token::strict_json::{self, B64URL};

/// Longest token any policy may accept, in bytes (`max_token_bytes` at most): Envoy's default
/// limit on request headers is 60 KiB.
pub const MAX_TOKEN_LEN: usize = 61_440;

/// Shortest configurable `max_token_bytes`.
pub const MIN_TOKEN_LEN: usize = 1_024;

/// `max_token_bytes` when the configuration does not say: room for Entra ID tokens carrying
/// 200 group ids (about 20 KiB).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 32_768;

/// Largest accepted value of `exp`, `nbf` and `iat`: 9999-12-31T23:59:59Z.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// A token without `kid` is tried against at most this many keys; past that it is refused with [`TokenError::KidRequired`].
pub const MAX_KIDLESS_CANDIDATES: usize = 8;

/// What a token must satisfy besides a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Accepted `iss` values: the claim must equal one exactly (case-sensitive).
    pub issuers: Vec<String>,
    /// When set, `aud` must name at least one of these.
    pub audiences: Option<Vec<String>>,
    /// Tolerance applied to `exp`, `nbf` and `iat`.
    pub clock_skew_seconds: u64,
    /// When set, `exp - iat` (or `exp - now` without `iat`) may not exceed this; a token without `exp` is then refused.
    pub max_lifetime_seconds: Option<u64>,
    /// Whether `exp` must be present.
    pub require_expiration: bool,
    /// Longest token accepted, in bytes; checked before anything else.
    pub max_token_bytes: usize,
}

impl TokenPolicy {
    /// The defaults of a `token` configuration for these issuers: no audience restriction,
    /// 60 s of clock skew, no maximum lifetime, `exp` required, [`DEFAULT_MAX_TOKEN_LEN`].
    pub fn new(issuers: Vec<String>) -> Self {
        TokenPolicy {
            issuers,
            audiences: None,
            clock_skew_seconds: 60,
            max_lifetime_seconds: None,
            require_expiration: true,
            max_token_bytes: DEFAULT_MAX_TOKEN_LEN,
        }
    }
}

/// Why a token was refused. Every variant maps to HTTP 401 except [`TokenError::AudienceNotAllowed`] (403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// The token is longer than the policy's `max_token_bytes`.
    TooLong,
    /// Not three non-empty dot-separated parts (this includes the JWS JSON serialization).
    Malformed,
    /// A part is not strict unpadded base64url (padding, `+`, `/`, whitespace, non-canonical trailing bits).
    BadBase64,
    /// The header is not a UTF-8 JSON object, or its `alg` is missing or not a string, or `cty` is not a string.
    MalformedHeader,
    /// The payload is not a UTF-8 JSON object.
    MalformedPayload,
    /// The header or the payload repeats a member name.
    DuplicateMember,
    /// A registered claim (`iss`, `sub`, `jti`, `aud` or one of its items, `exp`, `nbf`, `iat`)
    /// has the wrong JSON type.
    InvalidClaimType,
    /// `alg` is not one of the supported algorithms (this includes `none`, HS* and other spellings).
    UnsupportedAlgorithm,
    /// The header has `crit`: no extension is understood, so none may be critical.
    CriticalHeader,
    /// The header has `cty: JWT`: nested tokens are refused.
    NestedToken,
    /// `kid` is not a string or is longer than [`MAX_KID_LEN`] bytes.
    InvalidKid,
    /// No key has this `kid`; the caller may refetch the JWKS early.
    UnknownKid,
    /// The selected key does not admit `alg`, or without `kid` no key admits it.
    KeyAlgorithmMismatch,
    /// No `kid`, and more than [`MAX_KIDLESS_CANDIDATES`] keys admit `alg`.
    KidRequired,
    /// `iss` is missing or not exactly one of the policy's issuers.
    IssuerMismatch,
    /// `exp`, `nbf` or `iat` is a number outside `0..=MAX_TIMESTAMP`.
    InvalidTimeClaim,
    /// `exp` is missing while the policy requires it.
    MissingExpiration,
    /// Now is at or after `exp + skew`.
    Expired,
    /// Now is before `nbf - skew`.
    NotYetValid,
    /// `iat` is after `now + skew`.
    IssuedInFuture,
    /// The token lives longer than the policy's maximum lifetime (or has no `exp` while a maximum is set).
    LifetimeTooLong,
    /// `aud` is missing or an empty array while audiences are required (401).
    InvalidAudience,
    /// The token is valid but none of its audiences is allowed (403).
    AudienceNotAllowed,
    /// No candidate key verifies the signature (wrong length or encoding included).
    InvalidSignature,
}

impl TokenError {
    /// Stable snake_case reason code for response bodies and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::TooLong => "token_too_long",
            TokenError::Malformed => "malformed_token",
            TokenError::BadBase64 => "bad_base64",
            TokenError::MalformedHeader => "malformed_header",
            TokenError::MalformedPayload => "malformed_payload",
            TokenError::DuplicateMember => "duplicate_member",
            TokenError::InvalidClaimType => "invalid_claim_type",
            TokenError::UnsupportedAlgorithm => "unsupported_alg",
            TokenError::CriticalHeader => "crit_not_supported",
            TokenError::NestedToken => "nested_token",
            TokenError::InvalidKid => "invalid_kid",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::KeyAlgorithmMismatch => "key_alg_mismatch",
            TokenError::KidRequired => "kid_required",
            TokenError::IssuerMismatch => "issuer_mismatch",
            TokenError::InvalidTimeClaim => "invalid_time_claim",
            TokenError::MissingExpiration => "missing_exp",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "iat_in_future",
            TokenError::LifetimeTooLong => "lifetime_too_long",
            TokenError::InvalidAudience => "invalid_audience",
            TokenError::AudienceNotAllowed => "audience_not_allowed",
            TokenError::InvalidSignature => "invalid_signature",
        }
    }

    /// True only for [`TokenError::AudienceNotAllowed`], answered with HTTP 403; everything else is 401.
    pub fn is_forbidden(self) -> bool {
        self == TokenError::AudienceNotAllowed
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for TokenError {}

/// A token whose signature, issuer, time and audience all passed; only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    alg: Alg,
    kid: Option<String>,
    exp: Option<i64>,
    claims: Map<String, Value>,
    /// The payload text, kept only when a number in it is not an exact 64-bit integer.
    raw_payload: Option<Box<[u8]>>,
}

impl VerifiedToken {
    /// `exp` in Unix seconds (truncated toward zero), if present.
    pub fn exp(&self) -> Option<i64> {
        self.exp
    }

    /// The header's `kid`, if present.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm that verified the signature.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// Re-runs the policy-dependent checks (issuer, time claims, audience) on this already
    /// verified token at `now_unix_seconds`: what a token cache must do before reusing it, perhaps
    /// under another service's policy.
    pub fn check_policy(
        &self,
        policy: &TokenPolicy,
        now_unix_seconds: i64,
    ) -> Result<(), TokenError> {
        check_issuer(&self.claims, policy)?;
        check_time(&self.claims, policy, now_unix_seconds)?;
        check_audience(&self.claims, policy)
    }

    /// The verified claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Heap bytes this verification holds, estimated from its contents (claim names and
    /// values, containers at two thirds full, the `kid` and any kept payload text) plus the
    /// value itself: what a cache of verified tokens accounts for.
    pub fn heap_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            .saturating_add(map_heap_bytes(&self.claims))
            .saturating_add(self.kid.as_ref().map_or(0, String::capacity))
            .saturating_add(self.raw_payload.as_ref().map_or(0, |p| p.len()))
    }

    /// A top-level claim as copied into a request header, or `None` when it is not copied:
    /// the lossless rule of [`crate::token::claims`].
    pub fn claim_header_value(&self, claim: &str) -> Option<String> {
        claims::header_value(&self.claims, self.raw_payload.as_deref(), claim)
    }
}

/// Heap bytes of a JSON object's members (see [`VerifiedToken::heap_bytes`]).
fn map_heap_bytes(map: &Map<String, Value>) -> usize {
    let member = core::mem::size_of::<(String, Value)>().saturating_mul(3) / 2;
    map.iter().fold(0usize, |sum, (name, value)| {
        sum.saturating_add(member)
            .saturating_add(name.capacity())
            .saturating_add(value_heap_bytes(value))
    })
}

/// Heap bytes a JSON value owns beyond its own size.
fn value_heap_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity(),
        Value::Array(items) => items.iter().fold(
            items
                .capacity()
                .saturating_mul(core::mem::size_of::<Value>()),
            |sum, item| sum.saturating_add(value_heap_bytes(item)),
        ),
        Value::Object(map) => map_heap_bytes(map),
    }
}

struct Parts<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenError> {
    B64URL.decode(part).map_err(|_| TokenError::BadBase64)
}

/// A JSON object, and whether one of its numbers is only approximated by the parsed value.
fn json_object(
    bytes: &[u8],
    malformed: TokenError,
) -> Result<(Map<String, Value>, bool), TokenError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(malformed);
    }
    let checked = strict_json::parse(bytes).map_err(|_| malformed)?;
    if checked.duplicate.is_some() {
        return Err(TokenError::DuplicateMember);
    }
    match checked.value {
        Value::Object(map) => Ok((map, checked.inexact_number)),
        _ => Err(malformed),
    }
}

fn split_token(
    token: &str,
    max_len: usize,
    payload_may_be_empty: bool,
) -> Result<Parts<'_>, TokenError> {
    if token.len() > max_len.min(MAX_TOKEN_LEN) {
        return Err(TokenError::TooLong);
    }
    if token.starts_with('{') {
        return Err(TokenError::Malformed);
    }
    let mut pieces = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(TokenError::Malformed);
    };
    if h.is_empty() || (p.is_empty() && !payload_may_be_empty) || s.is_empty() {
        return Err(TokenError::Malformed);
    }
    let header_bytes = decode_part(h)?;
    let payload = decode_part(p)?;
    let signature = decode_part(s)?;
    let signing_input = token
        .get(..h.len().saturating_add(1).saturating_add(p.len()))
        .ok_or(TokenError::Malformed)?;
    let (header, _) = json_object(&header_bytes, TokenError::MalformedHeader)?;
    Ok(Parts {
        signing_input,
        header,
        payload,
        signature,
    })
}

struct Header {
    alg: Alg,
    kid: Option<String>,
}

fn check_header(header: &Map<String, Value>) -> Result<Header, TokenError> {
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            Alg::from_name(name).ok_or(TokenError::UnsupportedAlgorithm)?
        }
        _ => return Err(TokenError::MalformedHeader),
    };
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    match header.get("cty") {
        None => {}
        Some(Value::String(cty)) if cty.eq_ignore_ascii_case("JWT") => {
            return Err(TokenError::NestedToken)
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(TokenError::MalformedHeader),
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid.is_empty() => None,
        Some(Value::String(kid)) if kid.len() <= MAX_KID_LEN => Some(kid.clone()),
        Some(_) => return Err(TokenError::InvalidKid),
    };
    Ok(Header { alg, kid })
}

fn candidate_keys<'k>(header: &Header, keys: &'k KeySet) -> Result<Vec<&'k Jwk>, TokenError> {
    match &header.kid {
        Some(kid) => {
            let key = keys.get(kid).ok_or(TokenError::UnknownKid)?;
            if key.admits(header.alg) {
                Ok(vec![key])
            } else {
                Err(TokenError::KeyAlgorithmMismatch)
            }
        }
        None => {
            let candidates: Vec<&Jwk> = keys
                .iter()
                .filter(|key| key.admits(header.alg))
                .take(MAX_KIDLESS_CANDIDATES + 1)
                .collect();
            if candidates.is_empty() {
                Err(TokenError::KeyAlgorithmMismatch)
            } else if candidates.len() > MAX_KIDLESS_CANDIDATES {
                Err(TokenError::KidRequired)
            } else {
                Ok(candidates)
            }
        }
    }
}

fn check_claim_types(claims: &Map<String, Value>) -> Result<(), TokenError> {
    let strings = ["iss", "sub", "jti"]
        .iter()
        .all(|name| matches!(claims.get(*name), None | Some(Value::String(_))));
    let numbers = ["exp", "nbf", "iat"]
        .iter()
        .all(|name| matches!(claims.get(*name), None | Some(Value::Number(_))));
    let aud = match claims.get("aud") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if strings && numbers && aud {
        Ok(())
    } else {
        Err(TokenError::InvalidClaimType)
    }
}

fn check_issuer(claims: &Map<String, Value>, policy: &TokenPolicy) -> Result<(), TokenError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if policy.issuers.iter().any(|i| i == iss) => Ok(()),
        _ => Err(TokenError::IssuerMismatch),
    }
}

fn timestamp(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    let number = match claims.get(name) {
        None => return Ok(None),
        Some(Value::Number(n)) => n,
        Some(_) => return Err(TokenError::InvalidClaimType),
    };
    if let Some(i) = number.as_i64() {
        return if (0..=MAX_TIMESTAMP).contains(&i) {
            Ok(Some(i))
        } else {
            Err(TokenError::InvalidTimeClaim)
        };
    }
    if number.is_u64() {
        return Err(TokenError::InvalidTimeClaim);
    }
    match number.as_f64() {
        Some(f) if f >= 0.0 && f < (MAX_TIMESTAMP + 1) as f64 => Ok(Some(f.trunc() as i64)),
        _ => Err(TokenError::InvalidTimeClaim),
    }
}

fn check_time(
    claims: &Map<String, Value>,
    policy: &TokenPolicy,
    now: i64,
) -> Result<Option<i64>, TokenError> {
    let exp = timestamp(claims, "exp")?;
    let nbf = timestamp(claims, "nbf")?;
    let iat = timestamp(claims, "iat")?;
    let now = i128::from(now);
    let skew = i128::from(policy.clock_skew_seconds);
    match exp {
        None if policy.require_expiration => return Err(TokenError::MissingExpiration),
        Some(exp) if now >= i128::from(exp).saturating_add(skew) => {
            return Err(TokenError::Expired)
        }
        _ => {}
    }
    if let Some(nbf) = nbf {
        if i128::from(nbf) > now.saturating_add(skew) {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(iat) = iat {
        if i128::from(iat) > now.saturating_add(skew) {
            return Err(TokenError::IssuedInFuture);
        }
    }
    if let Some(max) = policy.max_lifetime_seconds {
        let exp = exp.ok_or(TokenError::LifetimeTooLong)?;
        let start = iat.map_or(now, i128::from);
        if i128::from(exp).saturating_sub(start) > i128::from(max) {
            return Err(TokenError::LifetimeTooLong);
        }
    }
    Ok(exp)
}

fn check_audience(claims: &Map<String, Value>, policy: &TokenPolicy) -> Result<(), TokenError> {
    let Some(allowed) = &policy.audiences else {
        return Ok(());
    };
    let present: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<&str>>>()
            .ok_or(TokenError::InvalidAudience)?,
        _ => return Err(TokenError::InvalidAudience),
    };
    if present.iter().any(|aud| allowed.iter().any(|a| a == aud)) {
        Ok(())
    } else {
        Err(TokenError::AudienceNotAllowed)
    }
}

fn rsa_hash(alg: Alg) -> Option<(HashAlg, bool)> {
    match alg {
        Alg::Rs256 => Some((HashAlg::Sha256, false)),
        Alg::Rs384 => Some((HashAlg::Sha384, false)),
        Alg::Rs512 => Some((HashAlg::Sha512, false)),
        Alg::Ps256 => Some((HashAlg::Sha256, true)),
        Alg::Ps384 => Some((HashAlg::Sha384, true)),
        Alg::Ps512 => Some((HashAlg::Sha512, true)),
        Alg::Es256 | Alg::Es384 | Alg::Es512 | Alg::EdDsa => None,
    }
}

fn verify_rsa(key: &RsaPublicKey, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    match rsa_hash(alg) {
        Some((hash, false)) => key.verify_pkcs1v15(hash, msg, sig),
        Some((hash, true)) => key.verify_pss(hash, msg, sig),
        None => false,
    }
}

/// Verifies `signature` over `signing_input` with `key` under `alg`; false whenever `key` does not admit `alg`.
///
/// This is the single signature path used by [`verify`]; it says nothing about the payload.
pub fn verify_signature(key: &Jwk, alg: Alg, signing_input: &[u8], signature: &[u8]) -> bool {
    if !key.admits(alg) {
        return false;
    }
    match (key.material(), alg) {
        (KeyMaterial::Rsa(k), _) => verify_rsa(k, alg, signing_input, signature),
        (KeyMaterial::P256(k), Alg::Es256) => k.verify(signing_input, signature),
        (KeyMaterial::P384(k), Alg::Es384) => k.verify(signing_input, signature),
        (KeyMaterial::P521(k), Alg::Es512) => k.verify(signing_input, signature),
        (KeyMaterial::Ed25519(k), Alg::EdDsa) => k.verify(signing_input, signature),
        _ => false,
    }
}

fn any_key_verifies(candidates: &[&Jwk], alg: Alg, parts: &Parts<'_>) -> Option<usize> {
    candidates.iter().position(|key| {
        verify_signature(key, alg, parts.signing_input.as_bytes(), &parts.signature)
    })
}

/// Verifies a compact JWS at the JOSE layer only (structure, header, key choice, signature), treating the payload as opaque bytes.
///
/// Grants no trust to any claim; meant for conformance vectors whose payloads are not JWT claim sets.
/// Unlike [`verify`], an empty payload is allowed here, as RFC 7515 allows it.
/// Returns the algorithm that verified.
pub fn verify_jws(token: &str, keys: &KeySet) -> Result<Alg, TokenError> {
    let parts = split_token(token, MAX_TOKEN_LEN, true)?;
    let header = check_header(&parts.header)?;
    let candidates = candidate_keys(&header, keys)?;
    any_key_verifies(&candidates, header.alg, &parts)
        .map(|_| header.alg)
        .ok_or(TokenError::InvalidSignature)
}

/// Verifies a JWT against `keys` and `policy` at `now_unix_seconds`, running the checks in the module's documented order.
pub fn verify(
    token: &str,
    keys: &KeySet,
    policy: &TokenPolicy,
    now_unix_seconds: i64,
) -> Result<VerifiedToken, TokenError> {
    let parts = split_token(token, policy.max_token_bytes, false)?;
    let (claims, inexact_number) = json_object(&parts.payload, TokenError::MalformedPayload)?;
    let header = check_header(&parts.header)?;
    let candidates = candidate_keys(&header, keys)?;
    check_claim_types(&claims)?;
    check_issuer(&claims, policy)?;
    let exp = check_time(&claims, policy, now_unix_seconds)?;
    let audience = check_audience(&claims, policy);
    if let Err(TokenError::InvalidAudience) = audience {
        return Err(TokenError::InvalidAudience);
    }
    if any_key_verifies(&candidates, header.alg, &parts).is_none() {
        return Err(TokenError::InvalidSignature);
    }
    audience?;
    Ok(VerifiedToken {
        alg: header.alg,
        kid: header.kid,
        exp,
        claims,
        raw_payload: inexact_number.then(|| parts.payload.into_boxed_slice()),
    })
}

/// One check [`verify`] makes, in the order [`trace`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Length, three strict base64url parts, header and payload JSON objects.
    Structure,
    /// `alg`, `crit`, `cty`, `kid`, and a key in the set for them.
    Header,
    /// `iss`.
    Issuer,
    /// `exp`, `nbf`, `iat` and the lifetime.
    Time,
    /// `aud`.
    Audience,
    /// The signature, against the header's candidate keys.
    Signature,
}

impl Check {
    /// Lowercase name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Structure => "structure",
            Check::Header => "header",
            Check::Issuer => "issuer",
            Check::Time => "time",
            Check::Audience => "audience",
            Check::Signature => "signature",
        }
    }
}

/// Runs each check of [`verify`] on its own, with the same code, for a check-by-check report
/// (`aml-auth token check`). A check is `None` when one it depends on failed: nothing runs after a
/// broken structure, and the signature needs the header's keys. Grants nothing: the verdict is
/// [`verify`]'s, which stops at the first failure (an audience that is not allowed only after
/// the signature).
pub fn trace(
    token: &str,
    keys: &KeySet,
    policy: &TokenPolicy,
    now_unix_seconds: i64,
) -> Vec<(Check, Option<Result<(), TokenError>>)> {
    let parsed = split_token(token, policy.max_token_bytes, false).and_then(|parts| {
        let (claims, _) = json_object(&parts.payload, TokenError::MalformedPayload)?;
        check_claim_types(&claims)?;
        Ok((parts, claims))
    });
    let (parts, claims) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let mut out = vec![(Check::Structure, Some(Err(e)))];
            out.extend(
                [
                    Check::Header,
                    Check::Issuer,
                    Check::Time,
                    Check::Audience,
                    Check::Signature,
                ]
                .map(|c| (c, None)),
            );
            return out;
        }
    };
    let candidates =
        check_header(&parts.header).and_then(|h| candidate_keys(&h, keys).map(|c| (h.alg, c)));
    let signature = candidates.as_ref().ok().map(|(alg, keys)| {
        any_key_verifies(keys, *alg, &parts)
            .map(|_| ())
            .ok_or(TokenError::InvalidSignature)
    });
    vec![
        (Check::Structure, Some(Ok(()))),
        (Check::Header, Some(candidates.map(|_| ()))),
        (Check::Issuer, Some(check_issuer(&claims, policy))),
        (
            Check::Time,
            Some(check_time(&claims, policy, now_unix_seconds).map(|_| ())),
        ),
        (Check::Audience, Some(check_audience(&claims, policy))),
        (Check::Signature, signature),
    ]
}

#[cfg(test)]
mod tests;
