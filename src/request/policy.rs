//! A service's policy applied to one request: pure, given the service policy, the request's
//! headers, the time and the token key set.

use std::rc::Rc;

use crate::config::{AuthMode, ServicePolicy, TokenService};
use crate::keys::KeySlot;
use crate::request::credential::{self, Credential, MAX_KEY_CREDENTIAL_LEN};
use crate::request::status::Denial;
use crate::token::claims;
use crate::token::jwks::KeySet;
use crate::token::jwt::{self, TokenError};
use crate::token::token_cache::TokenCache;

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
    /// Headers set from verified claims (incoming copies of every claim header named in the
    /// configuration are removed before the decision, whatever the policy).
    pub set_headers: Vec<(String, String)>,
    /// The caller's identity for Envoy filter state, when the policy has `expose_principal`.
    pub exposed: Option<Exposed>,
    /// The verified token's expiry, in token mode.
    pub token_exp: Option<i64>,
    /// In token mode with a cache: whether the token came from it.
    pub cache_hit: Option<bool>,
}

/// What an allowed request tells Envoy about its caller (`expose_principal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposed {
    /// The policy's service name (`default` for the top-level policy).
    pub service: String,
    /// `primary` or `secondary` in key mode; in token mode the principal claim's value, copied
    /// by the claim-header rule, or `None` when the token has no copyable value for it or the
    /// value is not safe in a text log ([`claims::is_log_safe`]).
    pub principal: Option<String>,
    /// The token's principal was withheld: it is not safe in a text log
    /// (`aml_auth.principal_withheld`).
    pub principal_withheld: bool,
}

/// The token key set as the request sees it.
#[derive(Clone, Copy, Debug)]
pub enum Keys<'a> {
    /// A usable key set.
    Ready(&'a KeySet),
    /// Only the local keys: the remote set is missing (`remote` says how). A token whose key is
    /// not among them cannot be judged: 503 as for the remote state, never 401 `unknown_kid`.
    Partial {
        /// The local keys (`local_jwks`).
        local: &'a KeySet,
        /// Why the remote set is not usable.
        remote: Unavailable,
    },
    /// No key set was ever obtained.
    NotYet,
    /// The last key set is older than `max_stale_seconds`.
    Stale,
}

/// Why the remote key set cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Never fetched (for these sources).
    NotYet,
    /// Older than `max_stale_seconds`.
    Stale,
}

impl Unavailable {
    fn denial(self) -> Denial {
        match self {
            Unavailable::NotYet => Denial::KeysUnavailable,
            Unavailable::Stale => Denial::KeysStale,
        }
    }
}

/// The earliest time the host's clock may plausibly read: 2020-01-01T00:00:00Z, in milliseconds
/// since the Unix epoch. A failed clock host call reads as nothing, an unset clock as about 0.
pub const EARLIEST_PLAUSIBLE_MS: u64 = 1_577_836_800_000;

/// The latest plausible reading: 2100-01-01T00:00:00Z, in milliseconds since the Unix epoch.
pub const LATEST_PLAUSIBLE_MS: u64 = 4_102_444_800_000;

/// The host's clock reading (nanoseconds since the Unix epoch, `None` when the host call failed)
/// as milliseconds, or `None` when it cannot be trusted: unread, or outside
/// [[`EARLIEST_PLAUSIBLE_MS`], [`LATEST_PLAUSIBLE_MS`]). Nothing time-based is decided without it.
pub fn plausible_now_ms(reading_ns: Option<u64>) -> Option<u64> {
    reading_ns
        .map(|ns| ns / 1_000_000)
        .filter(|ms| (EARLIEST_PLAUSIBLE_MS..LATEST_PLAUSIBLE_MS).contains(ms))
}

/// A plausible clock reading in milliseconds as the seconds a token decision uses.
pub fn seconds(now_ms: u64) -> i64 {
    i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX)
}

/// Inputs of a token decision besides the headers.
#[derive(Clone, Copy, Debug)]
pub struct TokenInputs<'a> {
    /// Now, in seconds since the Unix epoch, from the host; `None` when the clock could not be
    /// read (see [`plausible_now_ms`]): every token request is then refused with
    /// [`Denial::ClockUnavailable`], whatever the keys and the cache hold.
    pub now: Option<i64>,
    /// The key set.
    pub keys: Keys<'a>,
    /// Verified tokens of this key set, reused after a policy re-check; `None` verifies every
    /// token in full.
    pub cache: Option<&'a TokenCache>,
}

/// Judges a request under `policy`, reading only the headers given (names lowercase).
pub fn decide<'a, I>(policy: &ServicePolicy, headers: I, token: TokenInputs<'_>) -> Verdict
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let max_len = match &policy.mode {
        AuthMode::PassThrough => return Verdict::PassThrough,
        AuthMode::Key(_) => MAX_KEY_CREDENTIAL_LEN,
        AuthMode::Token(service) => service.policy.max_token_bytes,
    };
    let credential = match credential::extract(headers, max_len) {
        Ok(c) => c,
        Err(denial) => return Verdict::Deny(denial),
    };
    let expose = |principal: Option<String>| {
        let withheld = principal
            .as_deref()
            .is_some_and(|p| !claims::is_log_safe(p));
        policy.expose_principal.then(|| Exposed {
            service: policy.name.clone(),
            principal: principal.filter(|_| !withheld),
            principal_withheld: withheld,
        })
    };
    match &policy.mode {
        AuthMode::PassThrough => Verdict::PassThrough,
        AuthMode::Key(pair) => match pair.check(credential.as_bytes()) {
            Some(slot) => Verdict::Allow(Allowed {
                key: Some(slot),
                remove_authorization: !policy.forward_authorization,
                exposed: expose(Some(slot.as_str().to_string())),
                ..Allowed::default()
            }),
            None => Verdict::Deny(Denial::InvalidKey),
        },
        AuthMode::Token(service) => {
            match judge_token(service, &credential, token, policy.expose_principal) {
                Ok((mut allowed, principal)) => {
                    allowed.remove_authorization = !policy.forward_authorization;
                    allowed.exposed = expose(principal);
                    Verdict::Allow(allowed)
                }
                Err(denial) => Verdict::Deny(denial),
            }
        }
    }
}

/// The token's verdict, and its principal when `want_principal`.
fn judge_token(
    service: &TokenService,
    credential: &Credential<'_>,
    inputs: TokenInputs<'_>,
    want_principal: bool,
) -> Result<(Allowed, Option<String>), Denial> {
    let now = inputs.now.ok_or(Denial::ClockUnavailable)?;
    let (keys, missing) = match inputs.keys {
        Keys::Ready(keys) => (keys, None),
        Keys::Partial { local, remote } => (local, Some(remote.denial())),
        Keys::NotYet => return Err(Denial::KeysUnavailable),
        Keys::Stale => return Err(Denial::KeysStale),
    };
    let refused = |e: TokenError| match (e, missing) {
        (TokenError::UnknownKid | TokenError::KeyAlgorithmMismatch, Some(denial)) => denial,
        (e, _) => Denial::Token(e),
    };
    let token = core::str::from_utf8(credential.as_bytes())
        .map_err(|_| Denial::Token(TokenError::Malformed))?;
    let (verified, cache_hit) = match inputs.cache {
        None => (
            Rc::new(jwt::verify(token, keys, &service.policy, now).map_err(refused)?),
            None,
        ),
        Some(cache) => match cache.get(token, now) {
            Some(hit) => {
                hit.check_policy(&service.policy, now)
                    .map_err(Denial::Token)?;
                (hit, Some(true))
            }
            None => {
                let verified =
                    Rc::new(jwt::verify(token, keys, &service.policy, now).map_err(refused)?);
                cache.insert(token, Rc::clone(&verified));
                (verified, Some(false))
            }
        },
    };
    if let Some(rule) = claims::first_unmet(verified.claims(), &service.required_claims) {
        return Err(Denial::ClaimNotAllowed(rule.name_id));
    }
    let mut allowed = Allowed {
        token_exp: verified.exp(),
        cache_hit,
        ..Allowed::default()
    };
    for mapping in &service.claim_to_headers {
        if let Some(value) = verified.claim_header_value(&mapping.claim) {
            allowed.set_headers.push((mapping.header.clone(), value));
        }
    }
    let principal = if want_principal {
        verified.claim_header_value(&service.principal_claim)
    } else {
        None
    };
    Ok((allowed, principal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::token::token_cache::DEFAULT_MAX_BYTES;

    fn policy(json: &str) -> ServicePolicy {
        config::parse(json.as_bytes(), &|_| None)
            .unwrap()
            .default_policy
    }

    const NO_TOKEN: TokenInputs<'static> = TokenInputs {
        now: Some(1_700_000_000),
        keys: Keys::NotYet,
        cache: None,
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
            now: Some(1_700_000_000),
            keys: Keys::Stale,
            cache: None,
        };
        let headers: [(&str, &[u8]); 1] = [("authorization", b"Bearer a.b.c")];
        assert_eq!(decide(&p, headers, stale), Verdict::Deny(Denial::KeysStale));
    }

    /// Every request judged twice, with a shared cache and without any: the verdicts agree
    /// (hits re-check time and each service's audience, and render each service's headers).
    #[test]
    fn cached_decisions_match_uncached_ones() {
        use crate::token::jwks::testkit::{ec_jwk, ed_jwk, mint, rsa_jwk};
        use crate::token::jwks::KeySet;
        use serde_json::json;

        const ISS: &str = "https://login.example.com/tenant/v2.0";
        const NOW: i64 = 1_700_000_000;
        let jwks = json!({"keys": [rsa_jwk(Some("rsa"), None), ec_jwk(Some("ec"), None), ed_jwk(Some("ed"), None)]});
        let config = config::parse(
            json!({
                "auth_enabled": false,
                "token_auth_enabled": true,
                "token": {"issuer": ISS, "audiences": ["aud-a"], "local_jwks": jwks, "clock_skew_seconds": 0,
                          "claim_to_headers": [{"claim": "sub", "header": "x-sub"}]},
                "services": [
                    {"name": "a", "path_prefix": "/a/"},
                    {"name": "b", "path_prefix": "/b/", "token": {"audiences": ["aud-b"]},
                     "claim_to_headers": [{"claim": "roles", "header": "x-roles"}]}
                ]
            })
            .to_string()
            .as_bytes(),
            &|_| None,
        )
        .unwrap();
        let keys: KeySet = crate::token::jwks::parse_jwks(&serde_json::to_vec(&jwks).unwrap())
            .unwrap()
            .keys;
        let token = |alg: &str, kid: &str, aud: serde_json::Value, exp: i64| {
            mint(
                &json!({"alg": alg, "kid": kid}),
                &json!({"iss": ISS, "aud": aud, "sub": "user-1", "roles": ["r1", "r2"], "iat": NOW - 10, "exp": exp}),
            )
        };
        let both = token("ES256", "ec", json!(["aud-a", "aud-b"]), NOW + 100);
        let only_a = token("EdDSA", "ed", json!("aud-a"), NOW + 100);
        let short = token("RS256", "rsa", json!("aud-b"), NOW + 5);
        let mut tampered = both.clone();
        tampered.pop();
        tampered.push(if both.ends_with('A') { 'B' } else { 'A' });
        let a = &config.services[0].policy;
        let b = &config.services[1].policy;
        // (policy, token, now): repeated so that later rows hit entries made by earlier ones.
        let table: Vec<(&ServicePolicy, &str, i64)> = vec![
            (a, &both, NOW),
            (b, &both, NOW),
            (a, &both, NOW + 1),
            (a, &only_a, NOW),
            (b, &only_a, NOW),
            (a, &only_a, NOW),
            (b, &only_a, NOW + 1),
            (b, &short, NOW),
            (b, &short, NOW + 4),
            (b, &short, NOW + 5),
            (b, &short, NOW + 6),
            (a, &short, NOW),
            (a, &tampered, NOW),
            (b, &tampered, NOW),
            (b, &both, NOW + 99),
            (b, &both, NOW + 100),
            (a, &both, NOW + 50),
        ];
        let cache = TokenCache::new(&[9; 32], DEFAULT_MAX_BYTES, 16);
        cache.use_key_set(1);
        let mut hits = 0;
        for (policy, token, now) in &table {
            let header = format!("Bearer {token}");
            let headers = || [("authorization", header.as_bytes())];
            let judge = |cache| {
                decide(
                    policy,
                    headers(),
                    TokenInputs {
                        now: Some(*now),
                        keys: Keys::Ready(&keys),
                        cache,
                    },
                )
            };
            let uncached = judge(None);
            let mut cached = judge(Some(&cache));
            if let Verdict::Allow(allowed) = &mut cached {
                hits += usize::from(allowed.cache_hit == Some(true));
                allowed.cache_hit = None;
            }
            assert_eq!(cached, uncached, "{} {token} at {now}", policy.name);
        }
        assert_eq!(hits, 5);
        let allowed_b = |now| match decide(
            b,
            [("authorization", format!("Bearer {both}").as_bytes())],
            TokenInputs {
                now: Some(now),
                keys: Keys::Ready(&keys),
                cache: Some(&cache),
            },
        ) {
            Verdict::Allow(allowed) => allowed,
            other => panic!("{other:?}"),
        };
        let hit = allowed_b(NOW + 2);
        assert_eq!(hit.cache_hit, Some(true));
        assert_eq!(
            hit.set_headers,
            [("x-roles".to_string(), r#"["r1","r2"]"#.to_string())]
        );
        cache.use_key_set(2);
        assert_eq!(allowed_b(NOW + 2).cache_hit, Some(false));
    }

    /// With only the local keys usable, a token whose key is not among them cannot be judged:
    /// 503 for the remote state (never fetched, or stale), while a local key still decides.
    #[test]
    fn local_keys_alone_judge_only_their_own_tokens() {
        use crate::token::jwks::testkit::{ed_jwk, mint};
        use serde_json::json;

        const ISS: &str = "https://login.example.com/tenant/v2.0";
        const NOW: i64 = 1_700_000_000;
        let p = policy(
            &json!({"auth_enabled": false, "token_auth_enabled": true,
                    "token": {"issuer": ISS, "local_jwks": {"keys": [ed_jwk(Some("ed"), None)]},
                              "remote_jwks": {"cluster": "c", "uri": "https://h/keys"}}})
            .to_string(),
        );
        let local = crate::token::jwks::parse_jwks(
            &serde_json::to_vec(&json!({"keys": [ed_jwk(Some("ed"), None)]})).unwrap(),
        )
        .unwrap()
        .keys;
        let claims = json!({"iss": ISS, "sub": "s", "iat": NOW, "exp": NOW + 60});
        let good_local = mint(&json!({"alg": "EdDSA", "kid": "ed"}), &claims);
        let remote_kid = mint(&json!({"alg": "RS256", "kid": "rsa"}), &claims);
        let kidless_other_alg = mint(&json!({"alg": "ES256"}), &claims);
        let sig_at = good_local.rfind('.').unwrap() + 10;
        let flipped = if &good_local[sig_at..=sig_at] == "A" {
            "B"
        } else {
            "A"
        };
        let forged_local = format!(
            "{}{flipped}{}",
            &good_local[..sig_at],
            &good_local[sig_at + 1..]
        );
        let wrong_issuer = mint(
            &json!({"alg": "EdDSA", "kid": "ed"}),
            &json!({"iss": "other", "sub": "s", "iat": NOW, "exp": NOW + 60}),
        );
        for (remote, unavailable) in [
            (Unavailable::NotYet, Denial::KeysUnavailable),
            (Unavailable::Stale, Denial::KeysStale),
        ] {
            let judge = |token: &str| {
                let header = format!("Bearer {token}");
                let verdict = decide(
                    &p,
                    [("authorization", header.as_bytes())],
                    TokenInputs {
                        now: Some(NOW),
                        keys: Keys::Partial {
                            local: &local,
                            remote,
                        },
                        cache: None,
                    },
                );
                match verdict {
                    Verdict::Allow(_) => None,
                    Verdict::Deny(d) => Some(d),
                    Verdict::PassThrough => panic!("pass-through in token mode"),
                }
            };
            let table: [(&str, Option<Denial>); 5] = [
                (&good_local, None),
                (&remote_kid, Some(unavailable)),
                (&kidless_other_alg, Some(unavailable)),
                (
                    &forged_local,
                    Some(Denial::Token(TokenError::InvalidSignature)),
                ),
                (
                    &wrong_issuer,
                    Some(Denial::Token(TokenError::IssuerMismatch)),
                ),
            ];
            for (i, (token, want)) in table.iter().enumerate() {
                assert_eq!(judge(token), *want, "{remote:?} row {i}");
            }
        }
    }

    /// Required claims, principals and the credential cap, each judged with a cache (twice, so
    /// the second is a hit) and without one: hits re-check the requesting service's rules.
    #[test]
    fn required_claims_principal_and_size_table() {
        use crate::token::jwks::testkit::{ed_jwk, mint};
        use serde_json::json;

        const ISS: &str = "https://login.example.com/t/v2.0";
        const NOW: i64 = 1_700_000_000;
        let jwks = json!({"keys": [ed_jwk(Some("ed"), None)]});
        let config = config::parse(
            json!({
                "auth_enabled": false, "token_auth_enabled": true, "max_token_bytes": 2048,
                "required_claims": {"roles": ["Model.Score"]},
                "token": {"issuer": [ISS, "https://sts.example/t/"], "local_jwks": jwks,
                          "principal_claim": "oid"},
                "services": [
                    {"name": "open", "path_prefix": "/open/", "required_claims": {}, "expose_principal": true},
                    {"name": "scp", "path_prefix": "/scp/", "expose_principal": true,
                     "required_claims": {"scp": ["model.score"], "tid": ["t1", "t2"]}},
                    {"name": "v1", "path_prefix": "/v1/", "token": {"issuers": ["https://sts.example/t/"]}},
                    {"name": "keyed", "path_prefix": "/k/", "auth_enabled": true, "token_auth_enabled": false,
                     "primary_key": "pk", "expose_principal": true}
                ]
            })
            .to_string()
            .as_bytes(),
            &|_| None,
        )
        .unwrap();
        let keys = crate::token::jwks::parse_jwks(&serde_json::to_vec(&jwks).unwrap())
            .unwrap()
            .keys;
        let token = |extra: serde_json::Value| {
            let mut claims = json!({"iss": ISS, "sub": "s-1", "oid": "oid-1", "exp": NOW + 600});
            for (k, v) in extra.as_object().unwrap() {
                claims[k] = v.clone();
            }
            mint(&json!({"alg": "EdDSA", "kid": "ed"}), &claims)
        };
        let roles = token(json!({"roles": ["Model.Read", "Model.Score"]}));
        let no_roles = token(json!({"roles": "Model.Read"}));
        let scoped = token(json!({"scp": "user.read model.score", "tid": "t2"}));
        let wrong_tenant = token(json!({"scp": "model.score", "tid": "t3"}));
        let v1 = token(json!({"iss": "https://sts.example/t/", "roles": "Model.Score", "oid": 5}));
        let large = token(json!({"roles": "Model.Score", "pad": "p".repeat(1_900)}));
        let svc = |i: usize| &config.services[i].policy;
        let top = &config.default_policy;
        let roles_id = config
            .required_claim_names
            .iter()
            .position(|n| n == "roles")
            .unwrap() as u32;
        let tid_id = config
            .required_claim_names
            .iter()
            .position(|n| n == "tid")
            .unwrap() as u32;
        let scp_id = config
            .required_claim_names
            .iter()
            .position(|n| n == "scp")
            .unwrap() as u32;
        let exposed = |service: &str, principal: Option<&str>| {
            Some(Exposed {
                service: service.to_string(),
                principal: principal.map(str::to_string),
                principal_withheld: false,
            })
        };
        type Want = Result<Option<Exposed>, Denial>;
        let table: Vec<(&ServicePolicy, &str, Want)> = vec![
            (top, &roles, Ok(None)),
            (top, &no_roles, Err(Denial::ClaimNotAllowed(roles_id))),
            (top, &scoped, Err(Denial::ClaimNotAllowed(roles_id))),
            (svc(0), &no_roles, Ok(exposed("open", Some("oid-1")))),
            (svc(1), &roles, Err(Denial::ClaimNotAllowed(scp_id))),
            (svc(1), &scoped, Ok(exposed("scp", Some("oid-1")))),
            (svc(1), &wrong_tenant, Err(Denial::ClaimNotAllowed(tid_id))),
            (
                svc(2),
                &roles,
                Err(Denial::Token(TokenError::IssuerMismatch)),
            ),
            (svc(2), &v1, Ok(None)),
            (svc(0), &v1, Ok(exposed("open", Some("5")))),
            (top, &v1, Ok(None)),
            (top, &large, Err(Denial::CredentialTooLong)),
            (svc(3), &large, Err(Denial::CredentialTooLong)),
            (svc(3), "pk", Ok(exposed("keyed", Some("primary")))),
        ];
        assert!(large.len() > 2048 && large.len() < MAX_KEY_CREDENTIAL_LEN * 3);
        let cache = TokenCache::new(&[3; 32], DEFAULT_MAX_BYTES, 16);
        cache.use_key_set(1);
        for pass in 0..2 {
            for (policy, credential, want) in &table {
                let header = format!("Bearer {credential}");
                for cache in [None, Some(&cache)] {
                    let got = decide(
                        policy,
                        [("authorization", header.as_bytes())],
                        TokenInputs {
                            now: Some(NOW),
                            keys: Keys::Ready(&keys),
                            cache,
                        },
                    );
                    let got = match got {
                        Verdict::Allow(a) => Ok(a.exposed),
                        Verdict::Deny(d) => Err(d),
                        Verdict::PassThrough => panic!("pass-through"),
                    };
                    assert_eq!(&got, want, "pass {pass} {} {credential:.20}", policy.name);
                }
            }
        }
    }

    /// Without a plausible clock a token request is refused with its own 503 reason before the
    /// keys or the cache are looked at. The host's reading goes through [`plausible_now_ms`]:
    /// a failed call, 0 (which a failed clock used to read as, where a token that expired a year
    /// ago passed, also from the cache) and readings outside 2020..2100 are no clock. Key mode
    /// needs no clock.
    #[test]
    fn without_a_plausible_clock_token_requests_are_503_clock_unavailable() {
        use crate::token::jwks::testkit::{mint, standard_keyset};
        use serde_json::json;

        const ISS: &str = "https://login.example.com/tenant/v2.0";
        const NOW: i64 = 1_700_000_000;
        let p = policy(
            &json!({"auth_enabled": false, "token_auth_enabled": true,
                    "token": {"issuer": ISS, "remote_jwks": {"cluster": "c", "uri": "https://h/keys"}}})
            .to_string(),
        );
        let keys = standard_keyset();
        let header = json!({"alg": "EdDSA", "kid": "ed"});
        let good = mint(
            &header,
            &json!({"iss": ISS, "sub": "s", "iat": NOW - 10, "exp": NOW + 600}),
        );
        let expired_a_year_ago = mint(
            &header,
            &json!({"iss": ISS, "sub": "s", "exp": NOW - 365 * 86_400}),
        );
        let cache = TokenCache::new(&[5; 32], DEFAULT_MAX_BYTES, 16);
        cache.use_key_set(1);
        let at = |reading_ns: Option<u64>| plausible_now_ms(reading_ns).map(seconds);
        let judge = |token: &str, now: Option<i64>, cache: Option<&TokenCache>| {
            let header = format!("Bearer {token}");
            decide(
                &p,
                [("authorization", header.as_bytes())],
                TokenInputs {
                    now,
                    keys: Keys::Ready(&keys),
                    cache,
                },
            )
        };
        let now_ns = NOW as u64 * 1_000_000_000;
        assert!(matches!(
            judge(&good, at(Some(now_ns)), Some(&cache)),
            Verdict::Allow(_)
        ));
        assert_eq!(
            judge(&expired_a_year_ago, at(Some(now_ns)), Some(&cache)),
            Verdict::Deny(Denial::Token(TokenError::Expired))
        );
        assert_eq!(cache.len(), 1);
        let ms_to_ns = |ms: u64| ms * 1_000_000;
        for reading in [
            None,
            Some(0),
            Some(1),
            Some(1_000_000_000),
            Some(ms_to_ns(EARLIEST_PLAUSIBLE_MS) - 1),
            Some(ms_to_ns(LATEST_PLAUSIBLE_MS)),
            Some(u64::MAX),
        ] {
            assert_eq!(at(reading), None, "{reading:?}");
            for token in [&good, &expired_a_year_ago] {
                for cache in [None, Some(&cache)] {
                    assert_eq!(
                        judge(token, at(reading), cache),
                        Verdict::Deny(Denial::ClockUnavailable),
                        "{reading:?} cached: {}",
                        cache.is_some()
                    );
                }
            }
            assert_eq!(
                judge("", at(reading), None),
                Verdict::Deny(Denial::EmptyCredential)
            );
        }
        assert_eq!(
            at(Some(ms_to_ns(EARLIEST_PLAUSIBLE_MS))),
            Some(1_577_836_800)
        );
        assert_eq!(Denial::ClockUnavailable.http_status(), 503);
        assert_eq!(Denial::ClockUnavailable.code(), "clock_unavailable");
        let keyed = policy(r#"{"primary_key":"pk-1","secondary_key":"sk-2"}"#);
        assert!(matches!(
            decide(
                &keyed,
                [("authorization", &b"Bearer pk-1"[..])],
                TokenInputs {
                    now: at(Some(0)),
                    keys: Keys::NotYet,
                    cache: None,
                },
            ),
            Verdict::Allow(_)
        ));
    }
}
