//! Why a request is denied, and the one place where a denial becomes an HTTP response.

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
    /// The Authorization header is longer than the 8 KiB cap.
    CredentialTooLong,
    /// The credential is neither the primary nor the secondary key.
    InvalidKey,
}

/// Every denial, for defining stats up front and for tests.
pub const ALL_DENIALS: [Denial; 7] = [
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
            Denial::CredentialTooLong => "the Authorization header is longer than 8192 bytes",
            Denial::InvalidKey => "the credential is not a valid key for this service",
        }
    }

    /// The HTTP status for this denial.
    pub fn http_status(self) -> u16 {
        401
    }

    /// The RFC 6750 `error` attribute, absent when the request carried no credential at all.
    fn bearer_error(self) -> Option<&'static str> {
        match self {
            Denial::MissingCredential => None,
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

/// Builds the reply for a denial. `realm` is the configured realm, already validated to be a
/// quoted-string-safe value.
pub fn reply(denial: Denial, realm: &str) -> LocalReply {
    let challenge = match denial.bearer_error() {
        None => format!("Bearer realm=\"{realm}\""),
        Some(error) => format!(
            "Bearer realm=\"{realm}\", error=\"{error}\", error_description=\"{}\"",
            denial.message()
        ),
    };
    let body = format!(
        "{{\"error\":\"{}\",\"reason\":\"{}\",\"message\":\"{}\"}}",
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
        let mut codes: Vec<&str> = ALL_DENIALS.iter().map(|d| d.code()).collect();
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ALL_DENIALS.len());
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
        for denial in ALL_DENIALS
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
}
