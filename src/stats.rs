//! Every per-request stat named once: the events one request outcome counts, and each event's
//! name per scope (global `aml_auth.<event>`, per service `aml_auth.service.<name>.<event>`, the
//! top-level policy as service `default`); and the JWKS lifecycle's stats.

use crate::config::{AuthMode, FilterConfig, Phase, ServicePolicy, Unmatched, DEFAULT_SERVICE};
use crate::keys::KeySlot;
use crate::request::decision::Scope;
use crate::request::policy::Verdict;
use crate::request::status::{Denial, KEY_DENIALS};
use crate::request::target::{TargetError, TARGET_ERRORS};
use crate::token::jwt::TokenError;

/// Something a request outcome counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `requests_passed_through`: a request under no auth.
    PassedThrough,
    /// `requests_allowed`: a request with a good credential.
    Allowed,
    /// `requests_denied`: a refused request.
    Denied,
    /// `denied.<reason>`: a refusal by its reason code.
    DeniedBecause(Denial),
    /// `key_used.primary`.
    PrimaryKey,
    /// `key_used.secondary`.
    SecondaryKey,
    /// `token_accepted`: a valid token.
    TokenAccepted,
    /// `token_cache.hit` (counted globally only).
    TokenCacheHit,
    /// `token_cache.miss` (counted globally only).
    TokenCacheMiss,
    /// `principal_withheld`: an allowed request whose principal was not exposed, as it is not
    /// safe in a text log.
    PrincipalWithheld,
}

/// Every event but the per-reason ones, for the docs/stats.md check and stat tables.
pub const EVENTS: [Event; 9] = [
    Event::PassedThrough,
    Event::Allowed,
    Event::Denied,
    Event::PrimaryKey,
    Event::SecondaryKey,
    Event::TokenAccepted,
    Event::TokenCacheHit,
    Event::TokenCacheMiss,
    Event::PrincipalWithheld,
];

impl Event {
    /// The name after `aml_auth.` (or `aml_auth.service.<name>.`), as a prefix and a suffix
    /// (`denied.` and the reason), so that no name is formatted on the request path.
    pub fn parts(self) -> (&'static str, &'static str) {
        match self {
            Event::PassedThrough => ("", "requests_passed_through"),
            Event::Allowed => ("", "requests_allowed"),
            Event::Denied => ("", "requests_denied"),
            Event::DeniedBecause(d) => ("denied.", d.code()),
            Event::PrimaryKey => ("", "key_used.primary"),
            Event::SecondaryKey => ("", "key_used.secondary"),
            Event::TokenAccepted => ("", "token_accepted"),
            Event::TokenCacheHit => ("", "token_cache.hit"),
            Event::TokenCacheMiss => ("", "token_cache.miss"),
            Event::PrincipalWithheld => ("", "principal_withheld"),
        }
    }

    /// The event's place in [`EVENTS`]; a per-reason event has none (`EVENTS.len()`).
    pub fn slot(self) -> usize {
        match self {
            Event::PassedThrough => 0,
            Event::Allowed => 1,
            Event::Denied => 2,
            Event::PrimaryKey => 3,
            Event::SecondaryKey => 4,
            Event::TokenAccepted => 5,
            Event::TokenCacheHit => 6,
            Event::TokenCacheMiss => 7,
            Event::PrincipalWithheld => 8,
            Event::DeniedBecause(_) => EVENTS.len(),
        }
    }

    /// Whether the event is also counted in its scope (the cache is shared by every service).
    pub fn scoped(self) -> bool {
        !matches!(self, Event::TokenCacheHit | Event::TokenCacheMiss)
    }

    /// The full stat name: global when `scope` is `None`, else the named scope's.
    pub fn name(self, scope: Option<&str>) -> String {
        let (prefix, suffix) = self.parts();
        match scope {
            None => format!("aml_auth.{prefix}{suffix}"),
            Some(name) => format!("aml_auth.service.{name}.{prefix}{suffix}"),
        }
    }
}

/// A JWKS fetch that brought a usable key set (new, or the same as the stored one).
pub const JWKS_FETCH_SUCCESS: &str = "aml_auth.jwks.fetch_success";
/// A JWKS fetch that failed (also counted under its reason, [`jwks_fetch_failure`]).
pub const JWKS_FETCH_FAILURE: &str = "aml_auth.jwks.fetch_failure";
/// A conditional JWKS fetch answered 304: the stored set is current (no download, no parse).
pub const JWKS_FETCH_NOT_MODIFIED: &str = "aml_auth.jwks.fetch_not_modified";
/// A JWKS fetch whose 200 body is byte for byte the stored set: its age is reset and nothing is
/// parsed again (the verified-token cache is kept).
pub const JWKS_FETCH_UNCHANGED: &str = "aml_auth.jwks.fetch_unchanged";

/// `aml_auth.jwks.fetch_failure.<reason>`.
pub fn jwks_fetch_failure(reason: &str) -> String {
    format!("{JWKS_FETCH_FAILURE}.{reason}")
}

/// `aml_auth.jwks.source.<i>.<event>` (`fetch_success` or `fetch_failure`).
pub fn jwks_source(source: usize, event: &str) -> String {
    format!("aml_auth.jwks.source.{source}.{event}")
}

/// The name a scope has in stats: `None` for global only.
pub fn scope_name(config: &FilterConfig, scope: Scope) -> Option<&str> {
    match scope {
        Scope::Global => None,
        Scope::Default => Some(DEFAULT_SERVICE),
        Scope::Service(i) => config.services.get(i).map(|s| s.policy.name.as_str()),
    }
}

/// The events a verdict counts, in order.
pub fn events(verdict: &Verdict) -> impl Iterator<Item = Event> {
    let list: [Option<Event>; 4] = match verdict {
        Verdict::PassThrough => [Some(Event::PassedThrough), None, None, None],
        Verdict::Deny(d) => [
            Some(Event::Denied),
            Some(Event::DeniedBecause(*d)),
            None,
            None,
        ],
        Verdict::Allow(a) => [
            Some(Event::Allowed),
            Some(match a.key {
                Some(KeySlot::Primary) => Event::PrimaryKey,
                Some(KeySlot::Secondary) => Event::SecondaryKey,
                None => Event::TokenAccepted,
            }),
            a.cache_hit.map(|hit| {
                if hit {
                    Event::TokenCacheHit
                } else {
                    Event::TokenCacheMiss
                }
            }),
            a.exposed
                .as_ref()
                .filter(|e| e.principal_withheld)
                .map(|_| Event::PrincipalWithheld),
        ],
    };
    list.into_iter().flatten()
}

/// Every [`TokenError`], in the order of the checks.
pub const TOKEN_ERRORS: [TokenError; 24] = [
    TokenError::TooLong,
    TokenError::Malformed,
    TokenError::BadBase64,
    TokenError::MalformedHeader,
    TokenError::MalformedPayload,
    TokenError::DuplicateMember,
    TokenError::InvalidClaimType,
    TokenError::UnsupportedAlgorithm,
    TokenError::CriticalHeader,
    TokenError::NestedToken,
    TokenError::InvalidKid,
    TokenError::UnknownKid,
    TokenError::KeyAlgorithmMismatch,
    TokenError::KidRequired,
    TokenError::IssuerMismatch,
    TokenError::InvalidTimeClaim,
    TokenError::MissingExpiration,
    TokenError::Expired,
    TokenError::NotYetValid,
    TokenError::IssuedInFuture,
    TokenError::LifetimeTooLong,
    TokenError::InvalidAudience,
    TokenError::AudienceNotAllowed,
    TokenError::InvalidSignature,
];

/// Every refusal reason a request can get (one [`Denial::ClaimNotAllowed`] stands for all
/// claims: they share a code), for stat definitions and the reason tables of the docs.
pub fn all_denials() -> Vec<Denial> {
    let mut all: Vec<Denial> = KEY_DENIALS.to_vec();
    all.extend(TOKEN_ERRORS.map(Denial::Token));
    all.extend([
        Denial::ClaimNotAllowed(0),
        Denial::KeysUnavailable,
        Denial::KeysStale,
        Denial::ClockUnavailable,
        Denial::NoService,
        Denial::RouteChanged,
    ]);
    all.extend(TARGET_ERRORS.map(Denial::Target));
    all
}

/// The refusals one policy's own judgement can count in its scope.
fn policy_denials(policy: &ServicePolicy) -> Vec<Denial> {
    let mut out = Vec::new();
    match &policy.mode {
        AuthMode::PassThrough => return out,
        AuthMode::Key(_) => out.extend(KEY_DENIALS),
        AuthMode::Token(t) => {
            out.extend(KEY_DENIALS.into_iter().filter(|d| *d != Denial::InvalidKey));
            out.extend(TOKEN_ERRORS.map(Denial::Token));
            if !t.required_claims.is_empty() {
                out.push(Denial::ClaimNotAllowed(0));
            }
            out.extend([
                Denial::KeysUnavailable,
                Denial::KeysStale,
                Denial::ClockUnavailable,
            ]);
        }
    }
    out.push(Denial::Target(TargetError::AccessTokenInQuery));
    out
}

/// The request events one policy can count (in its scope, and globally).
fn policy_events(policy: &ServicePolicy, scoped: bool) -> Vec<Event> {
    let mut out = vec![Event::Allowed, Event::Denied];
    match &policy.mode {
        AuthMode::PassThrough => out = vec![Event::PassedThrough],
        AuthMode::Key(_) => out.extend([Event::PrimaryKey, Event::SecondaryKey]),
        AuthMode::Token(_) => {
            out.push(Event::TokenAccepted);
            if !scoped {
                out.extend([Event::TokenCacheHit, Event::TokenCacheMiss]);
            }
        }
    }
    out.extend(policy_denials(policy).into_iter().map(Event::DeniedBecause));
    out
}

/// Every request event this configuration can count, with where (`None`: the global name):
/// defined when the configuration is applied, so that each stat exists at 0 from the start
/// (dashboards and "watch it fall to zero" alerts see it before its first count).
pub fn configured_events(config: &FilterConfig) -> Vec<(Option<Scope>, Event)> {
    let by_route = config
        .services
        .iter()
        .any(|s| !s.route_names.is_empty() || !s.clusters.is_empty());
    let default_judges = !by_route || config.unmatched_routes == Unmatched::TopLevelPolicy;
    let mut scopes: Vec<(Scope, &ServicePolicy)> = Vec::new();
    if config.services.is_empty() || default_judges {
        scopes.push((Scope::Default, &config.default_policy));
    }
    scopes.extend(
        config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (Scope::Service(i), &s.policy)),
    );
    let mut global: Vec<Event> = vec![Event::Allowed, Event::Denied];
    let mut out = Vec::new();
    for (scope, policy) in &scopes {
        for event in policy_events(policy, false) {
            if !global.contains(&event) {
                global.push(event);
            }
        }
        if !config.services.is_empty() {
            out.extend(
                policy_events(policy, true)
                    .into_iter()
                    .filter(|e| e.scoped())
                    .map(|e| (Some(*scope), e)),
            );
        }
    }
    let mut unscoped: Vec<Denial> = Vec::new();
    if !config.services.is_empty() {
        unscoped.extend(TARGET_ERRORS.map(Denial::Target));
    }
    if by_route && config.unmatched_routes == Unmatched::Refuse {
        unscoped.push(Denial::NoService);
    }
    if config.phase == Phase::Upstream {
        unscoped.push(Denial::RouteChanged);
    }
    for d in unscoped {
        let event = Event::DeniedBecause(d);
        if !global.contains(&event) {
            global.push(event);
        }
    }
    let mut all: Vec<(Option<Scope>, Event)> = global.into_iter().map(|e| (None, e)).collect();
    all.extend(out);
    all
}

/// The JWKS fetch failure reasons (`aml_auth.jwks.fetch_failure.<reason>`).
pub const FETCH_FAILURES: [&str; 14] = [
    "dispatch_failed",
    "reset",
    "no_response",
    "timeout",
    "bad_status",
    "too_large",
    "body_unreadable",
    "not_json",
    "not_an_object",
    "missing_keys",
    "duplicate_keys",
    "keys_not_array",
    "no_usable_keys",
    "discovery_failed",
];

/// The discovery document failure reasons (`aml_auth.jwks.discovery.fetch_failure.<reason>`):
/// the fetch's own, then the document's.
pub const DISCOVERY_FAILURES: [&str; 12] = [
    "dispatch_failed",
    "reset",
    "no_response",
    "timeout",
    "bad_status",
    "too_large",
    "body_unreadable",
    "not_json",
    "issuer_mismatch",
    "missing_jwks_uri",
    "bad_jwks_uri",
    "authority_mismatch",
];

/// Every JWKS lifecycle and clock stat this configuration can emit, with whether it is a gauge;
/// none without token settings.
pub fn configured_lifecycle(config: &FilterConfig) -> Vec<(String, bool)> {
    let Some(token) = &config.token else {
        return Vec::new();
    };
    let mut out = vec![("aml_auth.clock_unavailable".to_string(), false)];
    if token.remote.is_empty() {
        return out;
    }
    for name in ["fetch_success", "fetch_failure", "superseded_dropped"] {
        out.push((format!("aml_auth.jwks.{name}"), false));
    }
    for reason in FETCH_FAILURES {
        out.push((format!("aml_auth.jwks.fetch_failure.{reason}"), false));
    }
    for i in 0..token.remote.len() {
        out.push((format!("aml_auth.jwks.source.{i}.fetch_success"), false));
        out.push((format!("aml_auth.jwks.source.{i}.fetch_failure"), false));
    }
    if token.remote.iter().any(|r| r.discovery.is_some()) {
        out.push(("aml_auth.jwks.discovery.fetch_success".to_string(), false));
        out.push(("aml_auth.jwks.discovery.fetch_failure".to_string(), false));
        for reason in DISCOVERY_FAILURES {
            out.push((
                format!("aml_auth.jwks.discovery.fetch_failure.{reason}"),
                false,
            ));
        }
    }
    for gauge in ["sources_tracked", "age_seconds", "version", "keys"] {
        out.push((format!("aml_auth.jwks.{gauge}"), true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::policy::{Allowed, Exposed};

    #[test]
    fn each_event_slot_is_its_place_in_the_list() {
        for (i, event) in EVENTS.iter().enumerate() {
            assert_eq!(event.slot(), i, "{event:?}");
        }
        assert_eq!(
            Event::DeniedBecause(Denial::InvalidKey).slot(),
            EVENTS.len()
        );
    }

    /// Exhaustive: a new variant of any refusal enum fails to compile here until it is listed.
    fn listed(d: Denial) -> bool {
        let all = all_denials();
        let present = |x: Denial| all.iter().any(|a| a.code() == x.code());
        match d {
            Denial::MissingCredential
            | Denial::MultipleAuthorization
            | Denial::WrongScheme
            | Denial::EmptyCredential
            | Denial::MalformedCredential
            | Denial::CredentialTooLong
            | Denial::InvalidKey
            | Denial::ClaimNotAllowed(_)
            | Denial::KeysUnavailable
            | Denial::KeysStale
            | Denial::ClockUnavailable
            | Denial::NoService
            | Denial::RouteChanged => present(d),
            Denial::Token(e) => match e {
                TokenError::TooLong
                | TokenError::Malformed
                | TokenError::BadBase64
                | TokenError::MalformedHeader
                | TokenError::MalformedPayload
                | TokenError::DuplicateMember
                | TokenError::InvalidClaimType
                | TokenError::UnsupportedAlgorithm
                | TokenError::CriticalHeader
                | TokenError::NestedToken
                | TokenError::InvalidKid
                | TokenError::UnknownKid
                | TokenError::KeyAlgorithmMismatch
                | TokenError::KidRequired
                | TokenError::IssuerMismatch
                | TokenError::InvalidTimeClaim
                | TokenError::MissingExpiration
                | TokenError::Expired
                | TokenError::NotYetValid
                | TokenError::IssuedInFuture
                | TokenError::LifetimeTooLong
                | TokenError::InvalidAudience
                | TokenError::AudienceNotAllowed
                | TokenError::InvalidSignature => present(d),
            },
            Denial::Target(_) => present(d),
        }
    }

    /// docs/troubleshooting.md gives the cause and the fix of every refusal reason and every
    /// JWKS fetch failure reason.
    #[test]
    fn troubleshooting_lists_every_reason() {
        let doc = include_str!("../docs/troubleshooting.md");
        let mut missing: Vec<String> = all_denials()
            .iter()
            .map(|d| format!("| `{}` |", d.code()))
            .filter(|row| !doc.contains(row.as_str()))
            .collect();
        missing.extend(
            FETCH_FAILURES
                .iter()
                .chain(DISCOVERY_FAILURES.iter())
                .filter(|r| !doc.contains(&format!("`{r}`")) && !doc.contains(&format!(".{r}`")))
                .map(|r| r.to_string()),
        );
        for reply in ["not_configured", "host_error"] {
            if !doc.contains(&format!("`{reply}`")) {
                missing.push(reply.to_string());
            }
        }
        assert!(
            missing.is_empty(),
            "not in docs/troubleshooting.md: {missing:?}"
        );
    }

    #[test]
    fn every_denial_is_listed_once() {
        let all = all_denials();
        assert!(all.iter().all(|d| listed(*d)));
        for t in TOKEN_ERRORS {
            assert!(listed(Denial::Token(t)));
        }
        let mut codes: Vec<&str> = all.iter().map(|d| d.code()).collect();
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "a code is listed twice");
        assert_eq!(n, 7 + 24 + 6 + 13);
    }

    #[test]
    fn configured_stats_follow_the_modes_and_the_selection() {
        let cfg = |json: &str| crate::config::parse(json.as_bytes(), &|_| None).unwrap();
        let names = |c: &FilterConfig| -> Vec<String> {
            configured_events(c)
                .into_iter()
                .map(|(scope, e)| e.name(scope.and_then(|s| scope_name(c, s))))
                .chain(configured_lifecycle(c).into_iter().map(|(n, _)| n))
                .collect()
        };
        let key_only = names(&cfg(r#"{"primary_key":"k"}"#));
        for want in [
            "aml_auth.requests_allowed",
            "aml_auth.requests_denied",
            "aml_auth.key_used.primary",
            "aml_auth.denied.invalid_key",
        ] {
            assert!(key_only.contains(&want.to_string()), "{want}: {key_only:?}");
        }
        assert!(
            !key_only.iter().any(|n| n.starts_with("aml_auth.token")
                || n.contains("jwks")
                || n.contains(".service.")),
            "{key_only:?}"
        );

        let mixed = cfg(r#"{"auth_enabled":false,"token_auth_enabled":true,
                "token":{"issuer":"https://i","remote_jwks":[{"cluster":"a","uri":"http://a/k"},{"cluster":"b","discovery_uri":"http://b/.well-known/openid-configuration"}]},
                "services":[{"name":"fraud","route_names":["fraud"]},
                            {"name":"churn","route_names":["churn"],"auth_enabled":true,"token_auth_enabled":false,"primary_key":"k"}]}"#);
        let all = names(&mixed);
        for want in [
            "aml_auth.token_cache.hit",
            "aml_auth.token_cache.miss",
            "aml_auth.token_accepted",
            "aml_auth.denied.no_service",
            "aml_auth.denied.unknown_kid",
            "aml_auth.service.fraud.requests_allowed",
            "aml_auth.service.fraud.denied.audience_not_allowed",
            "aml_auth.service.churn.key_used.secondary",
            "aml_auth.service.churn.denied.invalid_key",
            "aml_auth.jwks.fetch_success",
            "aml_auth.jwks.fetch_failure.dispatch_failed",
            "aml_auth.jwks.source.1.fetch_failure",
            "aml_auth.jwks.discovery.fetch_failure.issuer_mismatch",
            "aml_auth.jwks.keys",
            "aml_auth.clock_unavailable",
        ] {
            assert!(all.contains(&want.to_string()), "{want}: {all:?}");
        }
        for absent in [
            "aml_auth.service.churn.token_accepted",
            "aml_auth.service.fraud.key_used.primary",
            "aml_auth.service.fraud.token_cache.hit",
            "aml_auth.service.default.requests_allowed",
            "aml_auth.service.fraud.denied.claim_not_allowed",
        ] {
            assert!(!all.contains(&absent.to_string()), "{absent}");
        }
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "a stat is defined twice");
    }

    /// The `aml_auth.` names of the stats table in `docs/stats.md`, outside the JWKS rows.
    fn documented_request_stats() -> Vec<String> {
        include_str!("../docs/stats.md")
            .lines()
            .filter(|l| l.starts_with("| `aml_auth.") && !l.starts_with("| `aml_auth.jwks."))
            .filter_map(|l| l.split(" | ").next())
            .flat_map(|cell| {
                cell.trim_start_matches("| ")
                    .split(", ")
                    .map(|n| n.trim_matches('`').to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn documented_stats_table_matches_the_events() {
        let listed = documented_request_stats();
        let mut expected: Vec<String> = EVENTS.iter().map(|e| e.name(None)).collect();
        expected.push("aml_auth.denied.<reason>".into());
        expected.push("aml_auth.service.<name>.<any of the above>".into());
        let mut sorted = listed.clone();
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "docs/stats.md stats table: {listed:?}");
        assert_eq!(
            Event::DeniedBecause(Denial::InvalidKey).name(Some("fraud")),
            "aml_auth.service.fraud.denied.invalid_key"
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = EVENTS.iter().map(|e| e.name(None)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EVENTS.len());
    }

    #[test]
    fn each_verdict_counts_its_events() {
        let allowed = |key, cache_hit| {
            Verdict::Allow(Allowed {
                key,
                cache_hit,
                ..Allowed::default()
            })
        };
        let mut table: Vec<(Verdict, Vec<Event>)> = vec![
            (Verdict::PassThrough, vec![Event::PassedThrough]),
            (
                Verdict::Deny(Denial::MissingCredential),
                vec![
                    Event::Denied,
                    Event::DeniedBecause(Denial::MissingCredential),
                ],
            ),
            (
                allowed(Some(KeySlot::Primary), None),
                vec![Event::Allowed, Event::PrimaryKey],
            ),
            (
                allowed(Some(KeySlot::Secondary), None),
                vec![Event::Allowed, Event::SecondaryKey],
            ),
            (
                allowed(None, Some(true)),
                vec![Event::Allowed, Event::TokenAccepted, Event::TokenCacheHit],
            ),
            (
                allowed(None, Some(false)),
                vec![Event::Allowed, Event::TokenAccepted, Event::TokenCacheMiss],
            ),
        ];
        let withheld = Verdict::Allow(Allowed {
            cache_hit: Some(false),
            exposed: Some(Exposed {
                service: "fraud".into(),
                principal: None,
                principal_withheld: true,
            }),
            ..Allowed::default()
        });
        table.push((
            withheld,
            vec![
                Event::Allowed,
                Event::TokenAccepted,
                Event::TokenCacheMiss,
                Event::PrincipalWithheld,
            ],
        ));
        for (verdict, want) in table {
            assert_eq!(events(&verdict).collect::<Vec<_>>(), want, "{verdict:?}");
        }
        assert!(!Event::TokenCacheHit.scoped() && Event::Denied.scoped());
    }

    #[test]
    fn every_jwks_failure_reason_and_stat_is_documented() {
        let stats_md = include_str!("../docs/stats.md");
        let lifecycle = include_str!("../docs/token-auth.md");
        for code in crate::token::jwks_cache::FAILURE_CODES {
            let quoted = format!("`{code}`");
            assert!(stats_md.contains(&quoted), "docs/stats.md lacks {quoted}");
            assert!(
                lifecycle.contains(&quoted),
                "docs/token-auth.md lacks {quoted}"
            );
        }
        for name in [
            JWKS_FETCH_SUCCESS,
            JWKS_FETCH_FAILURE,
            JWKS_FETCH_NOT_MODIFIED,
            JWKS_FETCH_UNCHANGED,
        ] {
            assert!(
                stats_md.contains(&format!("`{name}`")),
                "docs/stats.md lacks {name}"
            );
        }
        assert_eq!(
            jwks_fetch_failure("throttled"),
            "aml_auth.jwks.fetch_failure.throttled"
        );
        assert_eq!(
            jwks_source(1, "fetch_success"),
            "aml_auth.jwks.source.1.fetch_success"
        );
    }
}
