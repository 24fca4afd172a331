//! Service routing: the service with the longest matching path prefix (host-restricted when the
//! service names hosts), found by walking a byte trie, so the cost depends on the path's length,
//! never on the number of services.
// Untrusted lengths and numbers flow through this module: every arithmetic operation is
// checked, saturating or provably in range (clippy::arithmetic_side_effects is denied here).
#![deny(clippy::arithmetic_side_effects)]

use std::collections::HashMap;

use crate::config::ServiceRoute;

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

/// Maps a request's host and path to a service index.
#[derive(Clone, Debug, Default)]
pub struct Router {
    any_host: Trie,
    by_host: HashMap<String, Trie>,
}

impl Router {
    /// Builds the router; service `i` of `services` is returned as `i`.
    pub fn new(services: &[ServiceRoute]) -> Self {
        let mut router = Router::default();
        for (i, svc) in services.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            if svc.hosts.is_empty() {
                router.any_host.insert(svc.path_prefix.as_bytes(), index);
            } else {
                for host in &svc.hosts {
                    router
                        .by_host
                        .entry(host.clone())
                        .or_default()
                        .insert(svc.path_prefix.as_bytes(), index);
                }
            }
        }
        router
    }

    /// The service for a request: `authority` is `:authority` (any case, port optional), `path`
    /// is `:path` (the query is ignored). A host-restricted service wins a tie in length.
    pub fn route(&self, authority: &str, path: &str) -> Option<usize> {
        let path = path.split(['?', '#']).next().unwrap_or_default().as_bytes();
        let mut best = self.any_host.longest(path);
        if !self.by_host.is_empty() {
            let host = authority.to_ascii_lowercase();
            let without_port = strip_port(&host);
            let candidates = [
                Some(host.as_str()),
                (without_port != host).then_some(without_port),
            ];
            for trie in candidates
                .into_iter()
                .flatten()
                .filter_map(|h| self.by_host.get(h))
            {
                if let Some(found) = trie.longest(path) {
                    if best.is_none_or(|(len, _)| found.0 >= len) {
                        best = Some(found);
                    }
                }
            }
        }
        best.map(|(_, s)| s as usize)
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').and_then(|i| host.get(..=i)).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
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
        }
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
            router
                .route(host, path)
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
            ("x", "", None),
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
                "internal.example.com",
                "/api/v1/service/demo/score",
                Some("demo-score"),
            ),
            ("ported.example.com:8443", "/p/1", Some("ported")),
            ("ported.example.com", "/p/1", None),
            ("root.example.com", "/anything", Some("root")),
            ("root.example.com", "/api/x", Some("api")),
            ("[::1]:80", "/api/x", Some("api")),
        ];
        for (host, path, want) in table {
            assert_eq!(name(host, path), *want, "{host} {path}");
        }
    }

    #[test]
    fn empty_router_matches_nothing() {
        assert_eq!(Router::new(&[]).route("h", "/"), None);
    }

    #[test]
    fn many_services() {
        let services: Vec<ServiceRoute> = (0..500)
            .map(|i| svc(&format!("s{i}"), &format!("/api/v1/service/s{i}/"), &[]))
            .collect();
        let router = Router::new(&services);
        for i in [0, 1, 10, 99, 250, 499] {
            assert_eq!(
                router.route("h", &format!("/api/v1/service/s{i}/score")),
                Some(i)
            );
        }
        assert_eq!(router.route("h", "/api/v1/service/s500/score"), None);
    }
}
