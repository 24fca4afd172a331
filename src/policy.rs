//! The decision for one request: pure, given the service policy, the request's headers, the
//! time and the token key set.

use crate::config::{AuthMode, ServicePolicy, TokenService};
use crate::credential::{self, Credential};
use crate::jwks::KeySet;
use crate::jwt::{self, TokenError};
use crate::keys::KeySlot;
use crate::status::Denial;

/// What the filter does with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No auth configured for this request: forward it untouched.
    PassThrough,
    /// The credential is good: forward the request after these header edits.
    Allow(Allowed),
    /// Refuse the request with a local reply; it never reaches the upstream.
    Deny(Denial),
}

/// A successful check and the header edits it implies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// The key that matched, in key mode.
    pub key: Option<KeySlot>,
    /// Whether the Authorization header must be removed before forwarding.
    pub remove_authorization: bool,
    /// Headers removed before forwarding (incoming copies of claim headers).
    pub remove_headers: Vec<String>,
    /// Headers set from verified claims.
    pub set_headers: Vec<(String, String)>,
    /// The verified token's expiry, in token mode.
    pub token_exp: Option<i64>,
}

/// The token key set as the request sees it.
#[derive(Clone, Copy, Debug)]
pub enum Keys<'a> {
    /// A usable key set.
    Ready(&'a KeySet),
    /// No key set was ever obtained.
    NotYet,
    /// The last key set is older than `max_stale_seconds`.
    Stale,
}

/// Inputs of a token decision besides the headers.
#[derive(Clone, Copy, Debug)]
pub struct TokenInputs<'a> {
    /// Now, in seconds since the Unix epoch, from the host.
    pub now: i64,
    /// The key set.
    pub keys: Keys<'a>,
}

/// Judges a request under `policy`, reading only the headers given (names lowercase).
pub fn decide<'a, I>(policy: &ServicePolicy, headers: I, token: TokenInputs<'_>) -> Verdict
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let credential = match &policy.mode {
        AuthMode::PassThrough => return Verdict::PassThrough,
        _ => match credential::extract(headers) {
            Ok(c) => c,
            Err(denial) => return Verdict::Deny(denial),
        },
    };
    match &policy.mode {
        AuthMode::PassThrough => Verdict::PassThrough,
        AuthMode::Key(pair) => match pair.check(credential.as_bytes()) {
            Some(slot) => Verdict::Allow(Allowed {
                key: Some(slot),
                remove_authorization: !policy.forward_authorization,
                ..Allowed::default()
            }),
            None => Verdict::Deny(Denial::InvalidKey),
        },
        AuthMode::Token(service) => match judge_token(service, &credential, token) {
            Ok(mut allowed) => {
                allowed.remove_authorization = !policy.forward_authorization;
                Verdict::Allow(allowed)
            }
            Err(denial) => Verdict::Deny(denial),
        },
    }
}

fn judge_token(
    service: &TokenService,
    credential: &Credential<'_>,
    inputs: TokenInputs<'_>,
) -> Result<Allowed, Denial> {
    let keys = match inputs.keys {
        Keys::Ready(keys) => keys,
        Keys::NotYet => return Err(Denial::KeysUnavailable),
        Keys::Stale => return Err(Denial::KeysStale),
    };
    let token = core::str::from_utf8(credential.as_bytes())
        .map_err(|_| Denial::Token(TokenError::Malformed))?;
    let verified = jwt::verify(token, keys, &service.policy, inputs.now).map_err(Denial::Token)?;
    let mut allowed = Allowed {
        token_exp: verified.exp(),
        ..Allowed::default()
    };
    for mapping in &service.claim_to_headers {
        allowed.remove_headers.push(mapping.header.clone());
        if let Some(value) = verified.claim_header_value(&mapping.claim) {
            allowed.set_headers.push((mapping.header.clone(), value));
        }
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn policy(json: &str) -> ServicePolicy {
        config::parse(json.as_bytes(), &|_| None)
            .unwrap()
            .default_policy
    }

    const NO_TOKEN: TokenInputs<'static> = TokenInputs {
        now: 0,
        keys: Keys::NotYet,
    };

    fn run(policy: &ServicePolicy, headers: &[(&str, &str)]) -> Verdict {
        decide(
            policy,
            headers.iter().map(|(n, v)| (*n, v.as_bytes())),
            NO_TOKEN,
        )
    }

    #[test]
    fn key_mode_table() {
        let p = policy(r#"{"primary_key":"pk-1","secondary_key":"sk-2"}"#);
        let allow = |slot| {
            Verdict::Allow(Allowed {
                key: Some(slot),
                remove_authorization: true,
                ..Allowed::default()
            })
        };
        let cases: &[(&[(&str, &str)], Verdict)] = &[
            (&[("authorization", "Bearer pk-1")], allow(KeySlot::Primary)),
            (
                &[("authorization", "bearer   sk-2")],
                allow(KeySlot::Secondary),
            ),
            (&[], Verdict::Deny(Denial::MissingCredential)),
            (
                &[("authorization", "Bearer pk-2")],
                Verdict::Deny(Denial::InvalidKey),
            ),
            (
                &[("authorization", "Bearer pk-")],
                Verdict::Deny(Denial::InvalidKey),
            ),
            (
                &[("authorization", "Bearer pk-11")],
                Verdict::Deny(Denial::InvalidKey),
            ),
            (
                &[("authorization", "Basic pk-1")],
                Verdict::Deny(Denial::WrongScheme),
            ),
            (
                &[("authorization", "Bearer ")],
                Verdict::Deny(Denial::EmptyCredential),
            ),
            (
                &[
                    ("authorization", "Bearer pk-1"),
                    ("authorization", "Bearer pk-1"),
                ],
                Verdict::Deny(Denial::MultipleAuthorization),
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(&run(&p, headers), want, "{headers:?}");
        }
    }

    #[test]
    fn forward_authorization_keeps_the_header() {
        let p = policy(r#"{"primary_key":"pk","forward_authorization":true}"#);
        assert_eq!(
            run(&p, &[("authorization", "Bearer pk")]),
            Verdict::Allow(Allowed {
                key: Some(KeySlot::Primary),
                ..Allowed::default()
            })
        );
    }

    #[test]
    fn pass_through_ignores_everything() {
        let p = policy(r#"{"auth_enabled":false}"#);
        assert_eq!(run(&p, &[]), Verdict::PassThrough);
        assert_eq!(
            run(&p, &[("authorization", "Basic x")]),
            Verdict::PassThrough
        );
    }

    #[test]
    fn token_mode_without_keys_is_503_but_missing_credential_is_still_401() {
        let p = policy(
            r#"{"auth_enabled":false,"token_auth_enabled":true,
                "token":{"issuer":"https://iss","remote_jwks":{"cluster":"c","uri":"https://h/keys"}}}"#,
        );
        assert_eq!(run(&p, &[]), Verdict::Deny(Denial::MissingCredential));
        assert_eq!(
            run(&p, &[("authorization", "Bearer a.b.c")]),
            Verdict::Deny(Denial::KeysUnavailable)
        );
        let stale = TokenInputs {
            now: 0,
            keys: Keys::Stale,
        };
        let headers: [(&str, &[u8]); 1] = [("authorization", b"Bearer a.b.c")];
        assert_eq!(decide(&p, headers, stale), Verdict::Deny(Denial::KeysStale));
    }
}
