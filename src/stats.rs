//! Every per-request stat named once: the events one request outcome counts, and each event's
//! name per scope (global `aml_auth.<event>`, per service `aml_auth.service.<name>.<event>`, the
//! top-level policy as service `default`); and the JWKS lifecycle's stats.

use crate::config::{FilterConfig, DEFAULT_SERVICE};
use crate::keys::KeySlot;
use crate::request::decision::Scope;
use crate::request::policy::Verdict;
use crate::request::status::Denial;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::policy::{Allowed, Exposed};

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
