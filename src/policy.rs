//! The decision for one request: pure, given the service policy and the request's headers.

use crate::config::{AuthMode, ServicePolicy};
use crate::credential;
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The key that matched, in key mode.
    pub key: Option<KeySlot>,
    /// Whether the Authorization header must be removed before forwarding.
    pub remove_authorization: bool,
}

/// Judges a request under `policy`, reading only the headers given (names lowercase).
pub fn decide<'a, I>(policy: &ServicePolicy, headers: I) -> Verdict
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    match &policy.mode {
        AuthMode::PassThrough => Verdict::PassThrough,
        AuthMode::Key(pair) => {
            let credential = match credential::extract(headers) {
                Ok(c) => c,
                Err(denial) => return Verdict::Deny(denial),
            };
            match pair.check(credential.as_bytes()) {
                Some(slot) => Verdict::Allow(Allowed {
                    key: Some(slot),
                    remove_authorization: !policy.forward_authorization,
                }),
                None => Verdict::Deny(Denial::InvalidKey),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn policy(json: &str) -> ServicePolicy {
        config::parse(json.as_bytes(), &|_| None).unwrap().policy
    }

    fn run(policy: &ServicePolicy, headers: &[(&str, &str)]) -> Verdict {
        decide(policy, headers.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn key_mode_table() {
        let p = policy(r#"{"primary_key":"pk-1","secondary_key":"sk-2"}"#);
        let allow = |slot| {
            Verdict::Allow(Allowed {
                key: Some(slot),
                remove_authorization: true,
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
                remove_authorization: false
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
}
