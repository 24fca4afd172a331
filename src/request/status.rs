//! Why a request is denied, and the one place where a denial becomes an HTTP response.

use crate::request::target::TargetError;
use crate::token::jwt::TokenError;

/// The precise reason a request is refused. Each reason has a stable code used in response
/// bodies and stat names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No Authorization header, or an empty one.
    MissingCredential,
    /// More than one Authorization header.
    MultipleAuthorization,
    /// An Authorization scheme other than `Bearer`.
    WrongScheme,
    /// `Bearer` with nothing after it.
    EmptyCredential,
    /// The credential is not an RFC 6750 token68 (inner whitespace, control bytes, quotes...).
    MalformedCredential,
    /// The credential is longer than the policy reads: `max_token_bytes` in token mode, the
    /// longest possible key in key mode.
    CredentialTooLong,
    /// The credential is neither the primary nor the secondary key.
    InvalidKey,
    /// The token was refused (401; 403 when only its audience is not allowed).
    Token(TokenError),
    /// The token is valid but a required claim (by its index in the configuration's list of
    /// required claim names) is absent or holds no allowed value (403).
    ClaimNotAllowed(u32),
    /// Token auth is on but no key set was ever obtained: the credential cannot be judged (503).
    KeysUnavailable,
    /// The last key set is older than `max_stale_seconds`: token requests fail closed (503).
    KeysStale,
    /// The host's clock could not be read, or read an implausible time (before 2020): no token
    /// is judged at a guessed time (503).
    ClockUnavailable,
    /// The request's Host or path cannot be read one way, or it carries a token in the query
    /// (400, before any credential is looked at).
    Target(TargetError),
    /// Services select by Envoy route or cluster and none names this request's route or
    /// cluster, and `unmatched_routes` is not `top_level_policy` (403, no credential judged).
    NoService,
    /// In the upstream phase, a later pass of a forwarded request (a retry or an internal
    /// redirect) is served by another service than the one its credential was judged for (403).
    RouteChanged,
}

/// Every denial that does not concern a token's content, for tests.
pub const KEY_DENIALS: [Denial; 7] = [
    Denial::MissingCredential,
    Denial::MultipleAuthorization,
    Denial::WrongScheme,
    Denial::EmptyCredential,
    Denial::MalformedCredential,
    Denial::CredentialTooLong,
    Denial::InvalidKey,
];

impl Denial {
    /// Stable snake_case code: the `reason` in the response body and the stat name suffix.
    pub fn code(self) -> &'static str {
        match self {
            Denial::MissingCredential => "missing_credential",
            Denial::MultipleAuthorization => "multiple_authorization",
            Denial::WrongScheme => "wrong_scheme",
            Denial::EmptyCredential => "empty_credential",
            Denial::MalformedCredential => "malformed_credential",
            Denial::CredentialTooLong => "credential_too_long",
            Denial::InvalidKey => "invalid_key",
            Denial::Token(e) => e.as_str(),
            Denial::ClaimNotAllowed(_) => "claim_not_allowed",
            Denial::KeysUnavailable => "jwks_unavailable",
            Denial::KeysStale => "jwks_stale",
            Denial::ClockUnavailable => "clock_unavailable",
            Denial::Target(e) => e.code(),
            Denial::NoService => "no_service",
            Denial::RouteChanged => "route_changed",
        }
    }

    /// A short human sentence for the response body; never contains request data.
    pub fn message(self) -> &'static str {
        match self {
            Denial::MissingCredential => "an Authorization: Bearer credential is required",
            Denial::MultipleAuthorization => "more than one Authorization header was sent",
            Denial::WrongScheme => "the Authorization scheme must be Bearer",
            Denial::EmptyCredential => "the Bearer credential is empty",
            Denial::MalformedCredential => {
                "the Bearer credential has characters a credential cannot have"
            }
            Denial::CredentialTooLong => "the credential is longer than this service accepts",
            Denial::InvalidKey => "the credential is not a valid key for this service",
            Denial::Token(e) => token_message(e),
            Denial::ClaimNotAllowed(_) => "the token lacks a claim value this service requires",
            Denial::KeysUnavailable => {
                "the token signing keys are not available yet; retry shortly"
            }
            Denial::KeysStale => "the token signing keys are too old to be trusted; retry later",
            Denial::ClockUnavailable => {
                "the current time cannot be read, so no token can be judged; retry shortly"
            }
            Denial::Target(e) => e.message(),
            Denial::NoService => "no service of this gateway owns the route this request takes",
            Denial::RouteChanged => {
                "the request is served by another service than the one its credential was judged for"
            }
        }
    }

    /// The HTTP status for this denial: 401, 403 for a valid token whose audience is not
    /// allowed, 503 when the credential could not be judged, 400 when the request target cannot
    /// be read one way.
    pub fn http_status(self) -> u16 {
        match self {
            Denial::Target(_) => 400,
            Denial::NoService | Denial::RouteChanged => 403,
            Denial::Token(e) if e.is_forbidden() => 403,
            Denial::ClaimNotAllowed(_) => 403,
            Denial::KeysUnavailable | Denial::KeysStale | Denial::ClockUnavailable => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 `error` attribute, absent when the request carried no credential at all
    /// or when it could not be judged.
    fn bearer_error(self) -> Option<&'static str> {
        match self {
            Denial::MissingCredential
            | Denial::KeysUnavailable
            | Denial::KeysStale
            | Denial::ClockUnavailable => None,
            Denial::Token(e) if e.is_forbidden() => Some("insufficient_scope"),
            Denial::ClaimNotAllowed(_) => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }
}

/// A complete local reply: status, headers and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names lowercase.
    pub headers: Vec<(&'static str, String)>,
    /// Response body (JSON).
    pub body: String,
}

fn token_message(e: TokenError) -> &'static str {
    match e {
        TokenError::TooLong => "the token is longer than this service accepts",
        TokenError::Malformed => "the token is not a compact JWS of three parts",
        TokenError::BadBase64 => "a token part is not unpadded base64url",
        TokenError::MalformedHeader => "the token header is not a valid JSON object",
        TokenError::MalformedPayload => "the token payload is not a valid JSON object",
        TokenError::DuplicateMember => "the token repeats a member name",
        TokenError::InvalidClaimType => "a registered token claim has the wrong type",
        TokenError::UnsupportedAlgorithm => "the token algorithm is not accepted",
        TokenError::CriticalHeader => "the token has critical header extensions",
        TokenError::NestedToken => "nested tokens are not accepted",
        TokenError::InvalidKid => "the token kid is invalid",
        TokenError::UnknownKid => "no signing key has the token's kid",
        TokenError::KeyAlgorithmMismatch => "the signing key does not admit the token algorithm",
        TokenError::KidRequired => "the token needs a kid",
        TokenError::IssuerMismatch => "the token issuer is not accepted",
        TokenError::InvalidTimeClaim => "a token time claim is invalid",
        TokenError::MissingExpiration => "the token has no expiry",
        TokenError::Expired => "the token has expired",
        TokenError::NotYetValid => "the token is not valid yet",
        TokenError::IssuedInFuture => "the token is issued in the future",
        TokenError::LifetimeTooLong => "the token lives longer than allowed",
        TokenError::InvalidAudience => "the token audience is invalid",
        TokenError::AudienceNotAllowed => "the token audience is not allowed for this service",
        TokenError::InvalidSignature => "the token signature is invalid",
    }
}

/// Seconds a client is asked to wait when keys are unavailable.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// The 503 a request gets while the filter has no valid configuration.
pub fn not_configured() -> LocalReply {
    LocalReply {
        status: 503,
        headers: vec![
            ("retry-after", RETRY_AFTER_SECONDS.to_string()),
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
        ],
        body: r#"{"error":"temporarily_unavailable","reason":"not_configured"}"#.to_string(),
    }
}

/// The 503 a request gets when the host could not read or edit its headers: it is never
/// forwarded.
pub fn host_error() -> LocalReply {
    LocalReply {
        status: 503,
        headers: vec![
            ("retry-after", RETRY_AFTER_SECONDS.to_string()),
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
        ],
        body: r#"{"error":"temporarily_unavailable","reason":"host_error"}"#.to_string(),
    }
}

/// Builds the reply for a denial. `realm` is the configured realm, already validated to be a
/// quoted-string-safe value.
pub fn reply(denial: Denial, realm: &str) -> LocalReply {
    reply_naming(denial, realm, None)
}

/// [`reply`], with the name of the claim a [`Denial::ClaimNotAllowed`] refers to added to the
/// body as `claim` (the claim's value never appears).
pub fn reply_naming(denial: Denial, realm: &str, claim: Option<&str>) -> LocalReply {
    if let Denial::Target(e) = denial {
        return LocalReply {
            status: 400,
            headers: vec![
                ("content-type", "application/json".to_string()),
                ("cache-control", "no-store".to_string()),
            ],
            body: format!(
                "{{\"error\":\"invalid_request\",\"reason\":\"{}\",\"message\":\"{}\"}}",
                e.code(),
                e.message()
            ),
        };
    }
    if matches!(denial, Denial::NoService | Denial::RouteChanged) {
        return LocalReply {
            status: 403,
            headers: vec![
                ("content-type", "application/json".to_string()),
                ("cache-control", "no-store".to_string()),
            ],
            body: format!(
                "{{\"error\":\"access_denied\",\"reason\":\"{}\",\"message\":\"{}\"}}",
                denial.code(),
                denial.message()
            ),
        };
    }
    if denial.http_status() == 503 {
        return LocalReply {
            status: 503,
            headers: vec![
                ("retry-after", RETRY_AFTER_SECONDS.to_string()),
                ("content-type", "application/json".to_string()),
                ("cache-control", "no-store".to_string()),
            ],
            body: format!(
                "{{\"error\":\"temporarily_unavailable\",\"reason\":\"{}\",\"message\":\"{}\"}}",
                denial.code(),
                denial.message()
            ),
        };
    }
    let challenge = match denial.bearer_error() {
        None => format!("Bearer realm=\"{realm}\""),
        Some(error) => format!(
            "Bearer realm=\"{realm}\", error=\"{error}\", error_description=\"{}\"",
            denial.message()
        ),
    };
    let claim = claim
        .and_then(|c| serde_json::to_string(c).ok())
        .map(|quoted| format!(",\"claim\":{quoted}"))
        .unwrap_or_default();
    let body = format!(
        "{{\"error\":\"{}\",\"reason\":\"{}\",\"message\":\"{}\"{claim}}}",
        denial.bearer_error().unwrap_or("unauthorized"),
        denial.code(),
        denial.message()
    );
    LocalReply {
        status: denial.http_status(),
        headers: vec![
            ("www-authenticate", challenge),
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
        ],
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_snake_case() {
        let mut codes: Vec<&str> = KEY_DENIALS.iter().map(|d| d.code()).collect();
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), KEY_DENIALS.len());
    }

    #[test]
    fn unreadable_targets_are_400_with_their_reason() {
        for e in crate::request::target::TARGET_ERRORS {
            let r = reply(Denial::Target(e), "aml");
            assert_eq!(r.status, 400);
            assert!(r.headers.iter().all(|(n, _)| *n != "www-authenticate"));
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], "invalid_request");
            assert_eq!(body["reason"], e.code());
            assert_eq!(body["message"], e.message());
        }
    }

    #[test]
    fn refusals_of_the_route_are_403_without_a_challenge() {
        for denial in [Denial::NoService, Denial::RouteChanged] {
            let r = reply(denial, "aml");
            assert_eq!(r.status, 403);
            assert!(r.headers.iter().all(|(n, _)| *n != "www-authenticate"));
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], "access_denied");
            assert_eq!(body["reason"], denial.code());
        }
        assert_ne!(Denial::NoService.code(), Denial::RouteChanged.code());
    }

    #[test]
    fn missing_credential_challenge_has_no_error() {
        let r = reply(Denial::MissingCredential, "aml");
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers[0],
            ("www-authenticate", "Bearer realm=\"aml\"".to_string())
        );
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["reason"], "missing_credential");
    }

    #[test]
    fn every_other_denial_is_invalid_token_with_json_body() {
        for denial in KEY_DENIALS
            .into_iter()
            .filter(|d| *d != Denial::MissingCredential)
        {
            let r = reply(denial, "svc");
            assert_eq!(r.status, 401);
            assert!(r.headers[0]
                .1
                .starts_with("Bearer realm=\"svc\", error=\"invalid_token\""));
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["error"], "invalid_token");
            assert_eq!(body["reason"], denial.code());
        }
    }

    #[test]
    fn token_denials_map_to_401_403_and_503() {
        let r = reply(Denial::Token(TokenError::Expired), "aml");
        assert_eq!(r.status, 401);
        assert!(r.headers[0].1.contains("error=\"invalid_token\""));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()["reason"],
            "token_expired"
        );
        let r = reply(Denial::Token(TokenError::AudienceNotAllowed), "aml");
        assert_eq!(r.status, 403);
        assert!(r.headers[0].1.contains("error=\"insufficient_scope\""));
        let r = reply_naming(Denial::ClaimNotAllowed(0), "aml", Some("ro\"les"));
        assert_eq!(r.status, 403);
        assert!(r.headers[0].1.contains("error=\"insufficient_scope\""));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["reason"], "claim_not_allowed");
        assert_eq!(body["claim"], "ro\"les");
        for denial in [
            Denial::KeysUnavailable,
            Denial::KeysStale,
            Denial::ClockUnavailable,
        ] {
            let r = reply(denial, "aml");
            assert_eq!(r.status, 503);
            assert_eq!(
                r.headers[0],
                ("retry-after", RETRY_AFTER_SECONDS.to_string())
            );
            assert!(r.headers.iter().all(|(n, _)| *n != "www-authenticate"));
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["reason"], denial.code());
        }
    }
}
