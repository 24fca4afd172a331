//! The decision for one request, top-down: the shortcut when nothing is protected, the request
//! target read once and the service it selects, the `access_token` rule, then the service's
//! policy. Pure: the host is asked, through [`Host`], only for what the decision needs.

use crate::config::{AuthMode, FilterConfig, ServicePolicy, Unmatched, DEFAULT_SERVICE};
use crate::request::headers::HeaderMap;
use crate::request::policy::{self, Keys, TokenInputs, Verdict};
use crate::request::router::{Router, Target};
use crate::request::status::Denial;
use crate::request::target::{self, TargetError};

/// Where an outcome is counted besides the global stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Globally only: no `services` are configured, or the request was refused before any
    /// service was selected.
    Global,
    /// The top-level policy of a configuration with services (stats under `default`).
    Default,
    /// `services[i]`.
    Service(usize),
}

/// The outcome of one request: the verdict and where it is counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Where the outcome is counted besides globally.
    pub scope: Scope,
    /// Forward, forward after header edits, or refuse.
    pub verdict: Verdict,
}

/// The host could not give the request's headers: the request must not be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadersUnreadable;

/// What the decision may ask the host, each only when it needs it.
pub trait Host {
    /// The request headers (names lowercase, values as bytes); `None` when the host refused.
    fn headers(&mut self) -> Option<HeaderMap>;
    /// A string stream property (`["xds", "route_name"]`); `None` when absent.
    fn property(&mut self, path: &[&str]) -> Option<String>;
    /// Runs `judge` with the clock, key set and token cache of this moment (token mode only).
    fn with_token_inputs(&mut self, judge: &mut dyn FnMut(TokenInputs<'_>) -> Verdict) -> Verdict;
}

/// Decides one request under `config`, services selected by `router`.
pub fn decide(
    config: &FilterConfig,
    router: &Router,
    host: &mut impl Host,
) -> Result<Outcome, HeadersUnreadable> {
    if config.passes_everything() {
        return Ok(Outcome {
            scope: Scope::Global,
            verdict: Verdict::PassThrough,
        });
    }
    let headers = host.headers().ok_or(HeadersUnreadable)?;
    let find = |name: &str| headers.get(name);
    let (policy, scope, query): (&ServicePolicy, Scope, &[u8]) = if config.services.is_empty() {
        let query = find(":path").map_or(&[][..], target::raw_query);
        (&config.default_policy, Scope::Global, query)
    } else {
        let by_route = router.selects_by_route();
        let route_name = by_route
            .then(|| host.property(&["xds", "route_name"]))
            .flatten();
        let cluster = (by_route && router.reads_cluster())
            .then(|| host.property(&["xds", "cluster_name"]))
            .flatten();
        let selected = router.select(Target {
            authority: find(":authority"),
            path: find(":path"),
            route_name: route_name.as_deref(),
            cluster: cluster.as_deref(),
        });
        let selected = match selected {
            Ok(selected) => selected,
            Err(e) => return Ok(deny(Scope::Global, Denial::Target(e))),
        };
        match selected
            .service
            .and_then(|i| config.services.get(i).map(|s| (i, s)))
        {
            Some((i, s)) => (&s.policy, Scope::Service(i), selected.query.as_bytes()),
            None if by_route && config.unmatched_routes == Unmatched::Refuse => {
                return Ok(deny(Scope::Global, Denial::NoService));
            }
            None => (
                &config.default_policy,
                Scope::Default,
                selected.query.as_bytes(),
            ),
        }
    };
    if policy.mode != AuthMode::PassThrough && target::query_has_access_token(query) {
        return Ok(deny(scope, Denial::Target(TargetError::AccessTokenInQuery)));
    }
    let pairs = || headers.utf8_pairs();
    let verdict = if matches!(policy.mode, AuthMode::Token(_)) {
        host.with_token_inputs(&mut |inputs| policy::decide(policy, pairs(), inputs))
    } else {
        policy::decide(
            policy,
            pairs(),
            TokenInputs {
                now: None,
                keys: Keys::NotYet,
                cache: None,
            },
        )
    };
    Ok(Outcome { scope, verdict })
}

/// In the upstream phase (services selected by route or cluster), for a later pass of a request
/// already judged and forwarded (a retry, the same edited headers sent again, or an internal
/// redirect, replayed with the filter's edits made): whether the route served now belongs to
/// `judged`, the name of the service (or `default`) its credential was judged for.
pub fn serves_judged(
    config: &FilterConfig,
    router: &Router,
    host: &mut impl Host,
    judged: &str,
) -> bool {
    let Some(headers) = host.headers() else {
        return false;
    };
    let find = |name: &str| headers.get(name);
    let route_name = host.property(&["xds", "route_name"]);
    let cluster = router
        .reads_cluster()
        .then(|| host.property(&["xds", "cluster_name"]))
        .flatten();
    let Ok(selected) = router.select(Target {
        authority: find(":authority"),
        path: find(":path"),
        route_name: route_name.as_deref(),
        cluster: cluster.as_deref(),
    }) else {
        return false;
    };
    match selected.service.and_then(|i| config.services.get(i)) {
        Some(service) => service.policy.name == judged,
        None => config.unmatched_routes == Unmatched::TopLevelPolicy && judged == DEFAULT_SERVICE,
    }
}

fn deny(scope: Scope, denial: Denial) -> Outcome {
    Outcome {
        scope,
        verdict: Verdict::Deny(denial),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::keys::KeySlot;

    /// A host holding fixed headers and properties, counting what it is asked.
    struct Fake {
        headers: Option<Vec<(String, Vec<u8>)>>,
        route_name: Option<&'static str>,
        asked_headers: usize,
        asked_properties: Vec<String>,
        asked_keys: usize,
    }

    impl Fake {
        fn new(host: &str, path: &[u8], auth: Option<&str>) -> Self {
            let mut headers = vec![
                (":authority".to_string(), host.as_bytes().to_vec()),
                (":path".to_string(), path.to_vec()),
            ];
            if let Some(a) = auth {
                headers.push((
                    "authorization".to_string(),
                    format!("Bearer {a}").into_bytes(),
                ));
            }
            Fake {
                headers: Some(headers),
                route_name: None,
                asked_headers: 0,
                asked_properties: Vec::new(),
                asked_keys: 0,
            }
        }
    }

    impl Host for Fake {
        fn headers(&mut self) -> Option<HeaderMap> {
            self.asked_headers += 1;
            let pairs: Vec<(&str, &[u8])> = self
                .headers
                .as_ref()?
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            Some(HeaderMap::of(&pairs))
        }
        fn property(&mut self, path: &[&str]) -> Option<String> {
            self.asked_properties.push(path.join("."));
            match path {
                ["xds", "route_name"] => self.route_name.map(str::to_string),
                _ => None,
            }
        }
        fn with_token_inputs(
            &mut self,
            judge: &mut dyn FnMut(TokenInputs<'_>) -> Verdict,
        ) -> Verdict {
            self.asked_keys += 1;
            judge(TokenInputs {
                now: Some(1_700_000_000),
                keys: Keys::NotYet,
                cache: None,
            })
        }
    }

    fn cfg(json: &str) -> FilterConfig {
        config::parse(json.as_bytes(), &|_| None).unwrap()
    }

    fn run(config: &FilterConfig, host: &mut Fake) -> Result<Outcome, HeadersUnreadable> {
        decide(config, &Router::new(&config.services), host)
    }

    fn verdict_name(v: &Verdict) -> String {
        match v {
            Verdict::PassThrough => "pass".into(),
            Verdict::Allow(a) => match a.key {
                Some(KeySlot::Primary) => "allow:primary".into(),
                Some(KeySlot::Secondary) => "allow:secondary".into(),
                None => "allow:token".into(),
            },
            Verdict::Deny(d) => format!("deny:{}", d.code()),
        }
    }

    #[test]
    fn nothing_protected_reads_nothing() {
        let config = cfg(r#"{"auth_enabled":false}"#);
        let mut host = Fake::new("h", b"/x", None);
        let outcome = run(&config, &mut host).unwrap();
        assert_eq!(
            outcome,
            Outcome {
                scope: Scope::Global,
                verdict: Verdict::PassThrough
            }
        );
        assert_eq!((host.asked_headers, host.asked_keys), (0, 0));
        assert!(host.asked_properties.is_empty());
    }

    #[test]
    fn outcomes_and_scopes() {
        let config = cfg(
            r#"{"primary_key":"top-key-0123456789","token":{"issuer":"https://i","audiences":["a"],
                "remote_jwks":{"cluster":"c","uri":"https://i/keys"}},
                "services":[
                {"name":"fraud","path_prefix":"/fraud/","primary_key":"fraud-key-0123456789"},
                {"name":"open","path_prefix":"/open/","auth_enabled":false},
                {"name":"tok","path_prefix":"/tok/","auth_enabled":false,"token_auth_enabled":true}]}"#,
        );
        let table: &[(&str, &[u8], Option<&str>, Scope, &str)] = &[
            (
                "h",
                b"/fraud/x",
                Some("fraud-key-0123456789"),
                Scope::Service(0),
                "allow:primary",
            ),
            (
                "h",
                b"/fraud/x",
                Some("top-key-0123456789"),
                Scope::Service(0),
                "deny:invalid_key",
            ),
            (
                "h",
                b"/fraud/x",
                None,
                Scope::Service(0),
                "deny:missing_credential",
            ),
            (
                "h",
                b"/fraud/x?access_token=t",
                Some("fraud-key-0123456789"),
                Scope::Service(0),
                "deny:access_token_in_query",
            ),
            (
                "h",
                b"/open/x?access_token=t",
                None,
                Scope::Service(1),
                "pass",
            ),
            (
                "h",
                b"/other",
                Some("top-key-0123456789"),
                Scope::Default,
                "allow:primary",
            ),
            (
                "h",
                b"/tok/x",
                Some("a.b.c"),
                Scope::Service(2),
                "deny:jwks_unavailable",
            ),
            (
                "h.",
                b"/fraud/x",
                None,
                Scope::Service(0),
                "deny:missing_credential",
            ),
            (
                "h:",
                b"/fraud/x",
                Some("fraud-key-0123456789"),
                Scope::Global,
                "deny:invalid_host",
            ),
            (
                "h",
                b"/open/../fraud/x",
                None,
                Scope::Global,
                "deny:dot_segment",
            ),
            (
                "h",
                b"/fraud/x?\xff",
                None,
                Scope::Global,
                "deny:non_utf8_path",
            ),
        ];
        for (h, path, auth, scope, want) in table {
            let mut host = Fake::new(h, path, *auth);
            let outcome = run(&config, &mut host).unwrap();
            assert_eq!(
                (outcome.scope, verdict_name(&outcome.verdict).as_str()),
                (*scope, *want),
                "{h} {}",
                String::from_utf8_lossy(path)
            );
            assert_eq!(host.asked_headers, 1);
            assert!(
                host.asked_properties.is_empty(),
                "prefix mode reads no property"
            );
            let token_mode = *scope == Scope::Service(2);
            assert_eq!(host.asked_keys, usize::from(token_mode));
        }
    }

    #[test]
    fn without_services_everything_counts_globally() {
        let config = cfg(r#"{"primary_key":"top-key-0123456789"}"#);
        for (path, auth, want) in [
            (
                &b"/any/thing"[..],
                Some("top-key-0123456789"),
                "allow:primary",
            ),
            (
                b"/any/../thing?\xff",
                Some("top-key-0123456789"),
                "allow:primary",
            ),
            (
                b"/x?access_token=1",
                Some("top-key-0123456789"),
                "deny:access_token_in_query",
            ),
            (b"/x", None, "deny:missing_credential"),
        ] {
            let mut host = Fake::new("", path, auth);
            let outcome = run(&config, &mut host).unwrap();
            assert_eq!(outcome.scope, Scope::Global);
            assert_eq!(verdict_name(&outcome.verdict), want);
        }
    }

    #[test]
    fn by_route_reads_the_route_name_only() {
        let config = cfg(r#"{"primary_key":"top-key-0123456789","services":[
                {"name":"fraud","route_names":["fraud"],"primary_key":"fraud-key-0123456789"}]}"#);
        let mut host = Fake::new("h", b"/whatever/x", Some("fraud-key-0123456789"));
        host.route_name = Some("fraud");
        let outcome = run(&config, &mut host).unwrap();
        assert_eq!(
            (outcome.scope, verdict_name(&outcome.verdict).as_str()),
            (Scope::Service(0), "allow:primary")
        );
        assert_eq!(host.asked_properties, ["xds.route_name"]);
        let mut host = Fake::new("h", b"/whatever/x", Some("fraud-key-0123456789"));
        host.route_name = Some("other");
        let outcome = run(&config, &mut host).unwrap();
        assert_eq!(
            (outcome.scope, verdict_name(&outcome.verdict).as_str()),
            (Scope::Global, "deny:no_service"),
            "a route no service names is refused unless the configuration says otherwise"
        );
        let config = cfg(
            r#"{"primary_key":"top-key-0123456789","unmatched_routes":"top_level_policy",
                "services":[{"name":"fraud","route_names":["fraud"],"primary_key":"fraud-key-0123456789"}]}"#,
        );
        for (route, key, want) in [
            (
                "other",
                "fraud-key-0123456789",
                (Scope::Default, "deny:invalid_key"),
            ),
            (
                "other",
                "top-key-0123456789",
                (Scope::Default, "allow:primary"),
            ),
            (
                "fraud",
                "fraud-key-0123456789",
                (Scope::Service(0), "allow:primary"),
            ),
        ] {
            let mut host = Fake::new("h", b"/whatever/x", Some(key));
            host.route_name = Some(route);
            let outcome = run(&config, &mut host).unwrap();
            assert_eq!(
                (outcome.scope, verdict_name(&outcome.verdict).as_str()),
                want,
                "{route}"
            );
        }
    }

    #[test]
    fn a_later_attempt_is_served_only_by_the_judged_service() {
        let config = cfg(r#"{"primary_key":"top-key-0123456789","services":[
                {"name":"fraud","route_names":["fraud"],"primary_key":"fraud-key-0123456789"},
                {"name":"open","route_names":["open"],"auth_enabled":false}]}"#);
        let router = Router::new(&config.services);
        let table: &[(Option<&'static str>, &str, bool)] = &[
            (Some("fraud"), "fraud", true),
            (Some("fraud"), "open", false),
            (Some("open"), "fraud", false),
            (Some("other"), "default", false),
            (None, "fraud", false),
        ];
        for (route, judged, want) in table {
            let mut host = Fake::new("h", b"/x", None);
            host.route_name = *route;
            assert_eq!(
                serves_judged(&config, &router, &mut host, judged),
                *want,
                "{route:?} {judged}"
            );
        }
        let config = cfg(
            r#"{"primary_key":"top-key-0123456789","unmatched_routes":"top_level_policy",
                "services":[{"name":"fraud","route_names":["fraud"],"primary_key":"fraud-key-0123456789"}]}"#,
        );
        let router = Router::new(&config.services);
        let mut host = Fake::new("h", b"/x", None);
        host.route_name = Some("other");
        assert!(serves_judged(&config, &router, &mut host, "default"));
        let mut host = Fake::new("h", b"/a/../x", None);
        host.route_name = Some("fraud");
        assert!(
            !serves_judged(&config, &router, &mut host, "fraud"),
            "an unreadable target is refused"
        );
        let mut host = Fake::new("h", b"/x", None);
        host.headers = None;
        host.route_name = Some("fraud");
        assert!(!serves_judged(&config, &router, &mut host, "fraud"));
    }

    #[test]
    fn unreadable_headers_are_never_forwarded() {
        let config = cfg(r#"{"primary_key":"top-key-0123456789"}"#);
        let mut host = Fake::new("h", b"/", None);
        host.headers = None;
        assert_eq!(run(&config, &mut host), Err(HeadersUnreadable));
    }
}
