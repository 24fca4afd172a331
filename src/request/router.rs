//! Service selection. Either by Envoy's own routing decision (the route name or upstream cluster
//! Envoy chose, so the filter's choice and Envoy's are the same by construction), or by the
//! longest matching path prefix (host-restricted when the service names hosts) on the request
//! target read once ([`crate::request::target`]). Prefix matching walks a byte trie, so its cost
//! depends on the path's length, never on the number of services; a path that selects another
//! service when read case-insensitively or without its `;` parameters is refused.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use std::collections::HashMap;

use crate::config::ServiceRoute;
use crate::request::target::{self, Host, Path, TargetError};

/// A byte trie of path prefixes, each terminal node naming a service index.
#[derive(Clone, Debug, Default)]
struct Trie {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, Default)]
struct Node {
    /// Children sorted by byte, for binary search.
    children: Vec<(u8, u32)>,
    service: Option<u32>,
}

impl Trie {
    fn insert(&mut self, prefix: &[u8], service: u32) {
        if self.nodes.is_empty() {
            self.nodes.push(Node::default());
        }
        let mut at = 0usize;
        for &b in prefix {
            let next_index = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
            let Some(node) = self.nodes.get_mut(at) else {
                return;
            };
            let child = match node.children.binary_search_by_key(&b, |(c, _)| *c) {
                Ok(pos) => node.children.get(pos).map_or(0, |(_, i)| *i),
                Err(pos) => {
                    node.children.insert(pos, (b, next_index));
                    self.nodes.push(Node::default());
                    next_index
                }
            };
            at = child as usize;
        }
        if let Some(node) = self.nodes.get_mut(at) {
            node.service.get_or_insert(service);
        }
    }

    /// The deepest service on the path's walk, with the matched prefix length.
    fn longest(&self, path: &[u8]) -> Option<(usize, u32)> {
        let mut at = self.nodes.first()?;
        let mut best = at.service.map(|s| (0, s));
        for (depth, &b) in path.iter().enumerate() {
            let Ok(pos) = at.children.binary_search_by_key(&b, |(c, _)| *c) else {
                break;
            };
            let Some(next) = at
                .children
                .get(pos)
                .and_then(|(_, i)| self.nodes.get(*i as usize))
            else {
                break;
            };
            at = next;
            if let Some(s) = at.service {
                best = Some((depth.saturating_add(1), s));
            }
        }
        best
    }
}

/// Longer wins; on a tie in length, `specific` wins.
fn better(general: Option<(usize, u32)>, specific: Option<(usize, u32)>) -> Option<(usize, u32)> {
    match (general, specific) {
        (Some(g), Some(s)) if g.0 > s.0 => Some(g),
        (g, None) => g,
        (_, s) => s,
    }
}

/// The tries of one host name: entries without a port, and entries per port.
#[derive(Clone, Debug, Default)]
struct HostTries {
    any_port: Trie,
    ports: Vec<(u16, Trie)>,
}

/// The prefixes of every service, as given or ASCII-lowercased.
#[derive(Clone, Debug, Default)]
struct Prefixes {
    any_host: Trie,
    by_host: HashMap<String, HostTries>,
}

impl Prefixes {
    fn insert(&mut self, host: Option<&Host<'_>>, prefix: &[u8], index: u32) {
        let Some(host) = host else {
            self.any_host.insert(prefix, index);
            return;
        };
        let tries = self.by_host.entry(host.name.to_string()).or_default();
        match host.port {
            None => tries.any_port.insert(prefix, index),
            Some(port) => match tries.ports.iter_mut().find(|(p, _)| *p == port) {
                Some((_, trie)) => trie.insert(prefix, index),
                None => {
                    let mut trie = Trie::default();
                    trie.insert(prefix, index);
                    tries.ports.push((port, trie));
                }
            },
        }
    }

    /// Longest prefix; a host-restricted entry wins a tie, a port-restricted one wins over it.
    fn longest(&self, host: &Host<'_>, path: &str) -> Option<u32> {
        let path = path.as_bytes();
        let mut best = self.any_host.longest(path);
        if let Some(tries) = self.by_host.get(host.name.as_ref()) {
            best = better(best, tries.any_port.longest(path));
            if let Some(port) = host.port {
                if let Some((_, trie)) = tries.ports.iter().find(|(p, _)| *p == port) {
                    best = better(best, trie.longest(path));
                }
            }
        }
        best.map(|(_, s)| s)
    }
}

/// What the host knows of a request that selection reads: raw header bytes, and Envoy's own
/// routing decision when the configuration selects by route.
#[derive(Clone, Copy, Debug, Default)]
pub struct Target<'a, 'r> {
    /// `:authority` bytes, as received.
    pub authority: Option<&'a [u8]>,
    /// `:path` bytes, as received.
    pub path: Option<&'a [u8]>,
    /// Envoy's route name (`xds.route_name`).
    pub route_name: Option<&'r str>,
    /// Envoy's upstream cluster (`xds.cluster_name`).
    pub cluster: Option<&'r str>,
}

/// A selected service (`None`: the default policy) and the request's query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected<'a> {
    /// Index into the configuration's services.
    pub service: Option<usize>,
    /// The query after `?` (empty when none), for the `access_token` check.
    pub query: &'a str,
}

/// Maps a request to a service index.
#[derive(Clone, Debug, Default)]
pub struct Router {
    exact: Prefixes,
    folded: Prefixes,
    allow_parameters: Vec<bool>,
    by_route: HashMap<String, u32>,
    by_cluster: HashMap<String, u32>,
    route_mode: bool,
}

impl Router {
    /// Builds the router; service `i` of `services` is returned as `i`. The configuration
    /// guarantees that services select all by prefix or all by route, and that hosts are canonical.
    pub fn new(services: &[ServiceRoute]) -> Self {
        let mut router = Router::default();
        for (i, svc) in services.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            router.allow_parameters.push(svc.allow_path_parameters);
            if !svc.route_names.is_empty() || !svc.clusters.is_empty() {
                router.route_mode = true;
                for name in &svc.route_names {
                    router.by_route.entry(name.clone()).or_insert(index);
                }
                for name in &svc.clusters {
                    router.by_cluster.entry(name.clone()).or_insert(index);
                }
                continue;
            }
            let exact = svc.path_prefix.as_bytes();
            let folded = svc.path_prefix.to_ascii_lowercase();
            if svc.hosts.is_empty() {
                router.exact.insert(None, exact, index);
                router.folded.insert(None, folded.as_bytes(), index);
            }
            for host in &svc.hosts {
                let Ok(host) = target::host(host.as_bytes()) else {
                    continue;
                };
                router.exact.insert(Some(&host), exact, index);
                router.folded.insert(Some(&host), folded.as_bytes(), index);
            }
        }
        router
    }

    /// Whether services are selected by Envoy's route name or cluster.
    pub fn selects_by_route(&self) -> bool {
        self.route_mode
    }

    /// Whether some service names an upstream cluster (the host then reads `xds.cluster_name`).
    pub fn reads_cluster(&self) -> bool {
        !self.by_cluster.is_empty()
    }

    /// The service for a request, or why its target cannot be read one way. Host and path are
    /// canonicalised and checked in both modes; by route, the route name decides, then the
    /// cluster (and a path whose canonical form differs from its spelling is refused, as Envoy
    /// matched the spelling); by prefix, the longest prefix of the canonical path for the
    /// canonical host.
    pub fn select<'a>(&self, request: Target<'a, '_>) -> Result<Selected<'a>, TargetError> {
        let host = target::host(request.authority.unwrap_or_default())?;
        let path = target::path(request.path.unwrap_or_default())?;
        let service = if self.route_mode {
            let service = request
                .route_name
                .and_then(|r| self.by_route.get(r))
                .or_else(|| request.cluster.and_then(|c| self.cluster_service(c)))
                .map(|i| *i as usize);
            if path.decoded {
                return Err(TargetError::EncodedCharacter);
            }
            if path.has_parameters && !service.is_some_and(|i| self.allows_parameters(i)) {
                return Err(TargetError::PathParameter);
            }
            service
        } else {
            self.by_prefix(&host, &path)?
        };
        Ok(Selected {
            service,
            query: path.query,
        })
    }

    /// The service naming this cluster, or naming the Istio cluster whose subset it is.
    fn cluster_service(&self, cluster: &str) -> Option<&u32> {
        self.by_cluster.get(cluster).or_else(|| {
            istio_subset_parent(cluster).and_then(|parent| self.by_cluster.get(&parent))
        })
    }

    fn allows_parameters(&self, index: usize) -> bool {
        self.allow_parameters.get(index).copied().unwrap_or(false)
    }

    fn by_prefix(&self, host: &Host<'_>, path: &Path<'_>) -> Result<Option<usize>, TargetError> {
        let matching = path.matching.as_ref();
        let exact = self.exact.longest(host, matching);
        if path.has_parameters {
            let stripped = target::without_parameters(matching);
            if self.exact.longest(host, &stripped) != exact {
                return Err(TargetError::PathParameter);
            }
            self.same_folded(host, &stripped, exact)?;
        }
        self.same_folded(host, matching, exact)?;
        let exact = exact.map(|i| i as usize);
        if path.has_parameters && !exact.is_some_and(|i| self.allows_parameters(i)) {
            return Err(TargetError::PathParameter);
        }
        Ok(exact)
    }

    fn same_folded(
        &self,
        host: &Host<'_>,
        path: &str,
        exact: Option<u32>,
    ) -> Result<(), TargetError> {
        if path.bytes().any(|b| b.is_ascii_uppercase())
            && self.folded.longest(host, &path.to_ascii_lowercase()) != exact
        {
            return Err(TargetError::AmbiguousCase);
        }
        Ok(())
    }
}

/// The Istio cluster a subset cluster belongs to: `outbound|PORT|SUBSET|FQDN` (a
/// DestinationRule subset, SUBSET not empty) belongs to `outbound|PORT||FQDN`. `None` for any
/// other name.
pub fn istio_subset_parent(cluster: &str) -> Option<String> {
    let mut parts = cluster.split('|');
    let (Some("outbound"), Some(port), Some(subset), Some(fqdn), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let port_ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    if !port_ok || subset.is_empty() || fqdn.is_empty() {
        return None;
    }
    Some(format!("outbound|{port}||{fqdn}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMode, ServicePolicy};

    fn svc(name: &str, prefix: &str, hosts: &[&str]) -> ServiceRoute {
        ServiceRoute {
            policy: ServicePolicy {
                name: name.to_string(),
                mode: AuthMode::PassThrough,
                forward_authorization: false,
                expose_principal: false,
            },
            path_prefix: prefix.to_string(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            route_names: Vec::new(),
            clusters: Vec::new(),
            allow_path_parameters: false,
        }
    }

    fn routed(router: &Router, host: &str, path: &str) -> Result<Option<usize>, TargetError> {
        router
            .select(Target {
                authority: Some(host.as_bytes()),
                path: Some(path.as_bytes()),
                ..Target::default()
            })
            .map(|s| s.service)
    }

    #[test]
    fn longest_prefix_with_hosts() {
        let services = vec![
            svc("api", "/api/", &[]),
            svc("demo", "/api/v1/service/demo", &[]),
            svc("demo-score", "/api/v1/service/demo/score", &[]),
            svc(
                "internal",
                "/api/v1/service/demo",
                &["internal.example.com"],
            ),
            svc("ported", "/p", &["ported.example.com:8443"]),
            svc("root", "/", &["root.example.com"]),
        ];
        let router = Router::new(&services);
        let name = |host: &str, path: &str| {
            routed(&router, host, path)
                .unwrap()
                .map(|i| services[i].policy.name.as_str())
        };
        let table: &[(&str, &str, Option<&str>)] = &[
            ("x", "/api/v1/service/demo/score", Some("demo-score")),
            ("x", "/api/v1/service/demo/score?x=1", Some("demo-score")),
            ("x", "/api/v1/service/demo/scor", Some("demo")),
            ("x", "/api/v1/service/demo2/score", Some("demo")),
            ("x", "/api/v2", Some("api")),
            ("x", "/api", None),
            ("x", "/other", None),
            (
                "internal.example.com",
                "/api/v1/service/demo/x",
                Some("internal"),
            ),
            (
                "INTERNAL.example.com:443",
                "/api/v1/service/demo/x",
                Some("internal"),
            ),
            (
                "internal.example.com.",
                "/api/v1/service/demo/x",
                Some("internal"),
            ),
            (
                "internal.example.com.:8080",
                "/api/v1/service/demo/x",
                Some("internal"),
            ),
            (
                "internal.example.com",
                "/api/v1/service/demo/score",
                Some("demo-score"),
            ),
            ("ported.example.com:8443", "/p/1", Some("ported")),
            ("ported.example.com.:8443", "/p/1", Some("ported")),
            ("ported.example.com:08443", "/p/1", Some("ported")),
            ("ported.example.com", "/p/1", None),
            ("ported.example.com:443", "/p/1", None),
            ("root.example.com", "/anything", Some("root")),
            ("root.example.com", "/api/x", Some("api")),
            ("[::1]:80", "/api/x", Some("api")),
        ];
        for (host, path, want) in table {
            assert_eq!(name(host, path), *want, "{host} {path}");
        }
    }

    #[test]
    fn spellings_that_would_fall_through_are_refused() {
        let services = vec![
            svc("churn", "/api/v1/service/churn/", &["models.contoso.com"]),
            svc("fraud", "/api/v1/service/fraud/", &[]),
            svc("public", "/public/", &[]),
        ];
        let router = Router::new(&services);
        use TargetError::*;
        let table: &[(&str, &str, Result<Option<usize>, TargetError>)] = &[
            (
                "models.contoso.com",
                "/api/v1/service/churn/score",
                Ok(Some(0)),
            ),
            (
                "models.contoso.com.",
                "/api/v1/service/churn/score",
                Ok(Some(0)),
            ),
            (
                "models.contoso.com.:443",
                "/api/v1/service/churn/score",
                Ok(Some(0)),
            ),
            (
                "models.contoso.com:",
                "/api/v1/service/churn/score",
                Err(InvalidHost),
            ),
            (
                "models.contoso.com:443:443",
                "/api/v1/service/churn/score",
                Err(InvalidHost),
            ),
            (
                "models.contoso.com:abc",
                "/api/v1/service/churn/score",
                Err(InvalidHost),
            ),
            (
                "models.contoso.com:443.",
                "/api/v1/service/churn/score",
                Err(InvalidHost),
            ),
            ("", "/api/v1/service/churn/score", Err(MissingHost)),
            ("h", "/api/v1/service/fraud%2Fscore", Err(EncodedSlash)),
            ("h", "/api/v1/service%2ffraud%2fscore", Err(EncodedSlash)),
            ("h", "/public/..%2fprivate/score", Err(EncodedSlash)),
            (
                "h",
                "/public/../api/v1/service/fraud/score",
                Err(DotSegment),
            ),
            (
                "h",
                "/public/%2e%2e/api/v1/service/fraud/score",
                Err(DotSegment),
            ),
            ("h", "/public/./x", Err(DotSegment)),
            ("h", "//api/v1/service/fraud/score", Err(EmptySegment)),
            ("h", "/api/v1/service/%66raud/score", Ok(Some(1))),
            ("h", "/api/v1/service/fraud/Score", Ok(Some(1))),
            ("h", "/API/v1/service/fraud/score", Err(AmbiguousCase)),
            ("h", "/Api/v1/other", Ok(None)),
            ("h", "/api;x=1/v1/service/fraud/score", Err(PathParameter)),
            (
                "h",
                "/api/v1/service/fraud/score;jsessionid=1",
                Err(PathParameter),
            ),
            ("h", "/public\\..\\api", Err(Backslash)),
        ];
        for (host, path, want) in table {
            assert_eq!(&routed(&router, host, path), want, "{host} {path}");
        }
        assert_eq!(
            router.select(Target {
                authority: Some(b"h"),
                path: Some(b"/api/v1/service/fraud/score?x=\xff"),
                ..Target::default()
            }),
            Err(NonUtf8Path)
        );
        assert_eq!(
            router.select(Target {
                authority: Some(b"h\xff"),
                path: Some(b"/"),
                ..Target::default()
            }),
            Err(NonUtf8Host)
        );
        assert_eq!(router.select(Target::default()), Err(MissingHost));
    }

    #[test]
    fn parameters_where_a_service_allows_them() {
        let mut tomcat = svc("tomcat", "/app/", &[]);
        tomcat.allow_path_parameters = true;
        let services = vec![tomcat, svc("admin", "/app/admin/", &[])];
        let router = Router::new(&services);
        use TargetError::*;
        assert_eq!(routed(&router, "h", "/app/x;jsessionid=1"), Ok(Some(0)));
        assert_eq!(routed(&router, "h", "/app/x;jsessionid=1/y"), Ok(Some(0)));
        assert_eq!(routed(&router, "h", "/app/admin;x/y"), Err(PathParameter));
        assert_eq!(routed(&router, "h", "/app/admin/y;x"), Err(PathParameter));
        assert_eq!(routed(&router, "h", "/other;x"), Err(PathParameter));
        assert_eq!(routed(&router, "h", "/app/..;x/admin"), Err(DotSegment));
    }

    #[test]
    fn by_route_then_cluster() {
        let mut a = svc("a", "", &[]);
        a.route_names = vec!["route-a".into()];
        let mut b = svc("b", "", &[]);
        b.clusters = vec!["outbound|8080||b.models.svc.cluster.local".into()];
        b.allow_path_parameters = true;
        let router = Router::new(&[a, b]);
        assert!(router.selects_by_route() && router.reads_cluster());
        let sel = |route: Option<&str>, cluster: Option<&str>, path: &str| {
            router
                .select(Target {
                    authority: Some(b"models.contoso.com"),
                    path: Some(path.as_bytes()),
                    route_name: route,
                    cluster,
                })
                .map(|s| s.service)
        };
        let b_cluster = Some("outbound|8080||b.models.svc.cluster.local");
        assert_eq!(sel(Some("route-a"), b_cluster, "/x"), Ok(Some(0)));
        assert_eq!(sel(Some("other"), b_cluster, "/x"), Ok(Some(1)));
        assert_eq!(sel(None, None, "/x"), Ok(None));
        assert_eq!(sel(Some("route-a"), None, "/anything/Else"), Ok(Some(0)));
        assert_eq!(
            sel(Some("route-a"), None, "/x;p"),
            Err(TargetError::PathParameter)
        );
        assert_eq!(sel(None, b_cluster, "/x;p"), Ok(Some(1)));
        assert_eq!(
            sel(Some("route-a"), None, "/a/../x"),
            Err(TargetError::DotSegment)
        );
        assert_eq!(
            router.select(Target {
                authority: Some(b"h:"),
                path: Some(b"/x"),
                route_name: Some("route-a"),
                cluster: None,
            }),
            Err(TargetError::InvalidHost)
        );
    }

    #[test]
    fn istio_subsets_belong_to_their_cluster() {
        let table: &[(&str, Option<&str>)] = &[
            (
                "outbound|80|v2|churn.models.svc.cluster.local",
                Some("outbound|80||churn.models.svc.cluster.local"),
            ),
            (
                "outbound|8080|canary-1|a.b.svc.cluster.local",
                Some("outbound|8080||a.b.svc.cluster.local"),
            ),
            ("outbound|80||churn.models.svc.cluster.local", None),
            ("inbound|80|v2|churn.models.svc.cluster.local", None),
            ("outbound|x|v2|churn.models.svc.cluster.local", None),
            ("outbound||v2|churn.models.svc.cluster.local", None),
            ("outbound|80|v2|", None),
            ("outbound|80|v2|a|b", None),
            ("outbound|123456|v2|a", None),
            ("churn", None),
            ("", None),
        ];
        for (name, want) in table {
            assert_eq!(istio_subset_parent(name).as_deref(), *want, "{name}");
        }
        let mut churn = svc("churn", "", &[]);
        churn.clusters = vec!["outbound|80||churn.models.svc.cluster.local".into()];
        let mut v3 = svc("churn-v3", "", &[]);
        v3.clusters = vec!["outbound|80|v3|churn.models.svc.cluster.local".into()];
        let router = Router::new(&[churn, v3]);
        let sel = |cluster: &str| {
            router
                .select(Target {
                    authority: Some(b"h"),
                    path: Some(b"/score"),
                    route_name: None,
                    cluster: Some(cluster),
                })
                .map(|s| s.service)
        };
        assert_eq!(
            sel("outbound|80||churn.models.svc.cluster.local"),
            Ok(Some(0))
        );
        assert_eq!(
            sel("outbound|80|v2|churn.models.svc.cluster.local"),
            Ok(Some(0))
        );
        assert_eq!(
            sel("outbound|80|v3|churn.models.svc.cluster.local"),
            Ok(Some(1))
        );
        assert_eq!(
            sel("outbound|81|v2|churn.models.svc.cluster.local"),
            Ok(None)
        );
        assert_eq!(
            sel("outbound|80|v2|fraud.models.svc.cluster.local"),
            Ok(None)
        );
    }

    #[test]
    fn query_is_kept_apart() {
        let router = Router::new(&[svc("a", "/a/", &[])]);
        let s = router
            .select(Target {
                authority: Some(b"h"),
                path: Some(b"/a/x?access_token=t&y=%2F"),
                ..Target::default()
            })
            .unwrap();
        assert_eq!(
            s,
            Selected {
                service: Some(0),
                query: "access_token=t&y=%2F"
            }
        );
    }

    #[test]
    fn empty_router_matches_nothing() {
        assert_eq!(routed(&Router::new(&[]), "h", "/"), Ok(None));
    }

    #[test]
    fn many_services() {
        let services: Vec<ServiceRoute> = (0..500)
            .map(|i| svc(&format!("s{i}"), &format!("/api/v1/service/s{i}/"), &[]))
            .collect();
        let router = Router::new(&services);
        for i in [0, 1, 10, 99, 250, 499] {
            assert_eq!(
                routed(&router, "h", &format!("/api/v1/service/s{i}/score")),
                Ok(Some(i))
            );
        }
        assert_eq!(routed(&router, "h", "/api/v1/service/s500/score"), Ok(None));
    }
}
