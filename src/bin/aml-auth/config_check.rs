//! `config check`: a plugin configuration judged offline by the filter's own parser, then a
//! one-screen summary of what it does, warnings about what it cannot refuse (weak or repeated
//! keys, unset `env:` variables) and, given the Envoy configuration, about routes that make
//! Envoy and the filter choose different services.

use std::cell::RefCell;
use std::fmt::Write as _;

use aml_auth_filter::config::{self, AuthMode, FilterConfig, Phase, ServiceRoute, Unmatched};
use aml_auth_filter::keys::KeyDigest;
use serde_json::Value;

use crate::ecds::WASM_TYPE;

/// Most service lines in the summary, so it stays one screen.
const MAX_SERVICE_LINES: usize = 20;

/// Plaintext keys shorter than this are called weak (a generated key has 43 characters).
const WEAK_KEY_CHARS: usize = 16;

/// A plugin configuration and where it came from, as the summary names it.
pub struct Source {
    /// The name shown (a path, `stdin`, or `ENVOY: filter NAME`).
    pub shown: String,
    /// The plugin configuration text.
    pub text: Vec<u8>,
}

/// What was found: the lines to print and whether the filter accepts the configuration.
pub struct Checked {
    /// Lines for stdout.
    pub lines: Vec<String>,
    /// The filter accepts it.
    pub valid: bool,
}

/// When `bytes` are an Envoy ECDS file (a discovery response), the plugin configurations of its
/// Wasm resources with their names; `None` when it is not one.
pub fn ecds_configs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    let resources = doc.get("resources")?.as_array()?;
    if doc.get("primary_key").is_some() || doc.get("services").is_some() {
        return None;
    }
    Some(
        resources
            .iter()
            .filter_map(|r| {
                let typed = r.get("typed_config")?;
                (typed.get("@type")?.as_str()? == WASM_TYPE).then_some(())?;
                let value = typed.get("config")?.get("configuration")?.get("value")?;
                let name = r.get("name").and_then(Value::as_str).unwrap_or("?");
                Some((name.to_string(), value.as_str()?.to_string()))
            })
            .collect(),
    )
}

/// The plugin configuration of every Wasm HTTP filter in an Envoy configuration (JSON), named
/// by the filter's `name`.
pub fn envoy_configs(envoy: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    walk(envoy, &mut |node| {
        let Some(filters) = node.get("http_filters").and_then(Value::as_array) else {
            return;
        };
        for f in filters {
            let typed = f.get("typed_config");
            if typed.and_then(|t| t.get("@type")).and_then(Value::as_str) != Some(WASM_TYPE) {
                continue;
            }
            let value = typed
                .and_then(|t| t.get("config"))
                .and_then(|c| c.get("configuration"))
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str);
            if let Some(text) = value {
                let name = f.get("name").and_then(Value::as_str).unwrap_or("?");
                found.push((name.to_string(), text.to_string()));
            }
        }
    });
    found
}

fn walk(node: &Value, visit: &mut dyn FnMut(&Value)) {
    match node {
        Value::Object(map) => {
            visit(node);
            map.values().for_each(|v| walk(v, visit));
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, visit)),
        _ => {}
    }
}

/// Judges one plugin configuration; `envoy` is the Envoy configuration (JSON) it runs in, for
/// the route and cluster cross-checks.
pub fn check(source: &Source, envoy: Option<&Value>) -> Checked {
    let shown = &source.shown;
    let unset = RefCell::new(Vec::<String>::new());
    let env = |name: &str| match std::env::var(name) {
        Ok(v) => Some(v),
        Err(_) => {
            let mut list = unset.borrow_mut();
            if !list.iter().any(|n| n == name) {
                list.push(name.to_string());
            }
            Some(KeyDigest::of(name.as_bytes()).to_configured())
        }
    };
    let cfg = match config::parse(&source.text, &env) {
        Ok(cfg) => cfg,
        Err(e) => {
            let mut lines = vec![format!("{shown}: refused by the filter: {e}")];
            if e.field.is_empty() && source.text.iter().all(u8::is_ascii_whitespace) {
                lines = vec![format!(
                    "{shown}: refused by the filter: the file is empty ({})",
                    e.message
                )];
            }
            if e.message.contains("is not set") {
                lines.push("(env: keys are read from the environment `aml-auth config check` runs in: export the variable here to check it)".to_string());
            }
            return Checked {
                lines,
                valid: false,
            };
        }
    };
    let raw: Value = serde_json::from_slice(&source.text).unwrap_or(Value::Null);
    let mut lines = vec![format!(
        "{shown}: valid (the filter's own parser accepts it)"
    )];
    lines.extend(summary(&cfg, &raw));
    let mut warnings = Vec::new();
    for name in unset.borrow().iter() {
        warnings.push(format!(
            "env:{name} is not set in this environment: checked as if it held a valid key; the proxy's Wasm VM must have it (vm_config.environment_variables.host_env_keys in Envoy, vmConfig.env under Istio)"
        ));
    }
    warnings.extend(key_warnings(&raw, &unset.borrow()));
    if let Some(envoy) = envoy {
        warnings.extend(envoy_warnings(&cfg, envoy));
    }
    lines.extend(warnings.into_iter().map(|w| format!("warning: {w}")));
    Checked { lines, valid: true }
}

fn mode_text(route_policy: &config::ServicePolicy) -> String {
    match &route_policy.mode {
        AuthMode::PassThrough => "none (no auth: requests pass unchecked)".to_string(),
        AuthMode::Key(_) => "key".to_string(),
        AuthMode::Token(t) => {
            let mut s = "token".to_string();
            match &t.policy.audiences {
                Some(a) => {
                    let _ = write!(s, ", audiences {}", a.join(" "));
                }
                None => s.push_str(", any audience"),
            }
            if !t.required_claims.is_empty() {
                let rules: Vec<String> = t
                    .required_claims
                    .iter()
                    .map(|r| format!("{} in [{}]", r.claim, r.allowed.join(" ")))
                    .collect();
                let _ = write!(s, ", requires {}", rules.join(", "));
            }
            s
        }
    }
}

/// How a key slot is stored: `plaintext`, `hashed`, `env:NAME`, `inherited`, `absent`.
fn storage(own: Option<&Value>, top: Option<&Value>, is_service: bool) -> String {
    match (own.and_then(Value::as_str), top) {
        (Some(s), _) => match s.strip_prefix("env:") {
            Some(var) => format!("env:{var}"),
            None if KeyDigest::is_digest_form(s) => "hashed".to_string(),
            None => "plaintext".to_string(),
        },
        (None, Some(_)) if is_service => "inherited".to_string(),
        _ => "absent".to_string(),
    }
}

fn keys_text(policy: &config::ServicePolicy, own: &Value, raw: &Value, service: bool) -> String {
    if !matches!(policy.mode, AuthMode::Key(_)) {
        return String::new();
    }
    format!(
        " primary={} secondary={}",
        storage(own.get("primary_key"), raw.get("primary_key"), service),
        storage(own.get("secondary_key"), raw.get("secondary_key"), service)
    )
}

fn selection_text(route: &ServiceRoute) -> String {
    if !route.route_names.is_empty() || !route.clusters.is_empty() {
        let mut parts = Vec::new();
        if !route.route_names.is_empty() {
            parts.push(format!("route {}", route.route_names.join(",")));
        }
        if !route.clusters.is_empty() {
            parts.push(format!("cluster {}", route.clusters.join(",")));
        }
        return parts.join(" ");
    }
    let mut s = format!("path {}", route.path_prefix);
    if !route.hosts.is_empty() {
        let _ = write!(s, " host {}", route.hosts.join(","));
    }
    s
}

/// The one-screen summary: the top-level policy, how services are selected, each service, the
/// token sources.
fn summary(cfg: &FilterConfig, raw: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let top = &cfg.default_policy;
    lines.push(format!(
        "top level (`default`): {}{}",
        mode_text(top),
        keys_text(top, raw, raw, false)
    ));
    let by_route = cfg
        .services
        .iter()
        .any(|s| !s.route_names.is_empty() || !s.clusters.is_empty());
    let selection = if cfg.services.is_empty() {
        "no services: every request is judged by the top-level policy".to_string()
    } else if by_route {
        let unmatched = match cfg.unmatched_routes {
            Unmatched::Refuse => "refused 403 no_service",
            Unmatched::TopLevelPolicy => "judged by the top-level policy",
        };
        format!("by Envoy route name / cluster; a request on a route no service names: {unmatched}")
    } else {
        "by longest path prefix (and hosts); a request no service matches: judged by the top-level policy".to_string()
    };
    lines.push(format!("selection: {selection}"));
    lines.push(format!(
        "phase: {}",
        match cfg.phase {
            Phase::Downstream => "downstream (the listener's filter chain)",
            Phase::Upstream => "upstream (the router's upstream filter chain)",
        }
    ));
    let empty = Vec::new();
    let raw_services = raw
        .get("services")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if !cfg.services.is_empty() {
        lines.push(format!("services ({}):", cfg.services.len()));
        let rows: Vec<[String; 3]> = cfg
            .services
            .iter()
            .take(MAX_SERVICE_LINES)
            .map(|route| {
                let own = raw_services
                    .iter()
                    .find(|s| {
                        s.get("name").and_then(Value::as_str) == Some(route.policy.name.as_str())
                    })
                    .unwrap_or(&Value::Null);
                [
                    route.policy.name.clone(),
                    selection_text(route),
                    format!(
                        "{}{}",
                        mode_text(&route.policy),
                        keys_text(&route.policy, own, raw, true)
                    ),
                ]
            })
            .collect();
        let w0 = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
        for [name, how, mode] in &rows {
            lines.push(format!("  {name:<w0$}  {how:<w1$}  {mode}"));
        }
        if cfg.services.len() > MAX_SERVICE_LINES {
            lines.push(format!(
                "  ... and {} more",
                cfg.services.len() - MAX_SERVICE_LINES
            ));
        }
    }
    if let Some(token) = &cfg.token {
        lines.push(format!("token issuers: {}", token.issuers.join(" ")));
        let mut sources = Vec::new();
        if let Some(local) = &token.local_jwks {
            let n = local
                .get("keys")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            sources.push(format!("local_jwks ({n} keys)"));
        }
        for (i, r) in token.remote.iter().enumerate() {
            sources.push(format!(
                "remote_jwks[{i}] {} via cluster `{}` (refresh {} s, refused after {} s stale)",
                r.uri,
                r.cluster,
                r.timing.refresh_ms / 1000,
                r.timing.max_stale_ms / 1000
            ));
        }
        lines.push(format!("token keys: {}", sources.join("; ")));
    }
    if !cfg.claim_headers.is_empty() {
        lines.push(format!(
            "claim headers (stripped from every request, set from verified tokens): {}",
            cfg.claim_headers.join(" ")
        ));
    }
    lines
}

/// Weak (short plaintext) keys, and the same key in both slots of one policy.
fn key_warnings(raw: &Value, unset: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let value_of = |v: Option<&Value>| -> Option<(String, String)> {
        let s = v?.as_str()?;
        match s.strip_prefix("env:") {
            Some(name) if unset.iter().any(|n| n == name) => None,
            Some(name) => Some((std::env::var(name).ok()?, format!("env:{name}"))),
            None => Some((s.to_string(), "the file".to_string())),
        }
    };
    let mut policies: Vec<(String, &Value)> = vec![("the top level".to_string(), raw)];
    if let Some(services) = raw.get("services").and_then(Value::as_array) {
        for s in services {
            let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
            policies.push((format!("service `{name}`"), s));
        }
    }
    for (who, obj) in &policies {
        let mut digests = Vec::new();
        for field in ["primary_key", "secondary_key"] {
            let Some((value, from)) = value_of(obj.get(field)) else {
                continue;
            };
            if !KeyDigest::is_digest_form(&value) && value.chars().count() < WEAK_KEY_CHARS {
                out.push(format!(
                    "{who}: {field} (from {from}) is a plaintext key of {} characters: short keys can be guessed; use `aml-auth keys generate` (32 random bytes)",
                    value.chars().count()
                ));
            }
            if let Ok(d) = KeyDigest::parse_configured(&value) {
                digests.push(d.to_configured());
            }
        }
        if let [a, b] = digests.as_slice() {
            if a == b {
                out.push(format!(
                    "{who}: primary_key and secondary_key are the same key: a rotation (`keys regen`) then leaves clients no second key to move to; give each slot its own key"
                ));
            }
        }
    }
    out
}

/// A Wasm HTTP filter, inline or taken from ECDS.
fn is_wasm_filter(f: &Value) -> bool {
    f.get("config_discovery").is_some()
        || f.get("typed_config")
            .and_then(|t| t.get("@type"))
            .and_then(Value::as_str)
            == Some(WASM_TYPE)
}

/// One Envoy route: where it sits, its name and its prefix.
struct EnvoyRoute {
    vhost: String,
    index: usize,
    name: String,
    prefix: Option<String>,
}

/// Route and cluster cross-checks against the Envoy configuration the filter runs in.
fn envoy_warnings(cfg: &FilterConfig, envoy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut vhosts: Vec<Vec<EnvoyRoute>> = Vec::new();
    let mut clusters: Vec<String> = Vec::new();
    walk(envoy, &mut |node| {
        let filtered = node
            .get("http_filters")
            .and_then(Value::as_array)
            .is_some_and(|filters| filters.iter().any(is_wasm_filter));
        let vhosts_here = node
            .get("route_config")
            .filter(|_| filtered)
            .and_then(|rc| rc.get("virtual_hosts"))
            .and_then(Value::as_array);
        if let Some(list) = vhosts_here {
            for vh in list {
                let vname = vh.get("name").and_then(Value::as_str).unwrap_or("?");
                let routes = vh
                    .get("routes")
                    .and_then(Value::as_array)
                    .map_or(&[][..], Vec::as_slice);
                vhosts.push(
                    routes
                        .iter()
                        .enumerate()
                        .map(|(i, r)| EnvoyRoute {
                            vhost: vname.to_string(),
                            index: i,
                            name: r
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            prefix: r
                                .get("match")
                                .and_then(|m| m.get("prefix"))
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        })
                        .collect(),
                );
            }
        }
        if node.get("static_resources").is_some() {
            if let Some(list) = node
                .get("static_resources")
                .and_then(|s| s.get("clusters"))
                .and_then(Value::as_array)
            {
                clusters.extend(
                    list.iter()
                        .filter_map(|c| c.get("name").and_then(Value::as_str))
                        .map(str::to_string),
                );
            }
        }
    });
    let shown_route = |r: &EnvoyRoute| {
        let name = if r.name.is_empty() {
            String::new()
        } else {
            format!(" `{}`", r.name)
        };
        format!(
            "route{name} (virtual host `{}`, routes[{}], prefix `{}`)",
            r.vhost,
            r.index,
            r.prefix.as_deref().unwrap_or("")
        )
    };
    for service in &cfg.services {
        let p = service.path_prefix.as_str();
        if p.is_empty() {
            continue;
        }
        for routes in &vhosts {
            let claimed_by_longer = |rp: &str| {
                cfg.services.iter().any(|q| {
                    let q = q.path_prefix.as_str();
                    q.len() > p.len() && q.starts_with(p) && rp.starts_with(q)
                })
            };
            let serving = |r: &EnvoyRoute| {
                r.prefix.as_deref().is_some_and(|rp| {
                    p.starts_with(rp) || (rp.starts_with(p) && !claimed_by_longer(rp))
                })
            };
            let Some(own) = routes
                .iter()
                .filter(|r| serving(r))
                .max_by_key(|r| r.prefix.as_deref().map_or(0, str::len))
            else {
                continue;
            };
            let own_len = own.prefix.as_deref().map_or(0, str::len);
            let shadow = routes.iter().take(own.index).find(|r| {
                r.prefix
                    .as_deref()
                    .is_some_and(|rp| p.starts_with(rp) && rp.len() < own_len)
            });
            if let Some(shadow) = shadow {
                out.push(format!(
                    "service `{}` (path_prefix `{p}`): Envoy's {} is listed before its {}: Envoy takes the first route that matches, the filter the longest path_prefix, so requests under `{p}` are served by the shorter route's upstream under `{}`'s policy. List the longer prefix first, or select services by route_names (route mode, the safe default: docs/routing.md)",
                    service.policy.name,
                    shown_route(shadow),
                    shown_route(own),
                    service.policy.name
                ));
            }
        }
    }
    let route_names: Vec<&str> = vhosts
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .filter(|n| !n.is_empty())
        .collect();
    for service in &cfg.services {
        for name in &service.route_names {
            if !vhosts.is_empty() && !route_names.contains(&name.as_str()) {
                out.push(format!(
                    "service `{}`: route_names `{name}` names no route of the Envoy configuration: no request selects this service",
                    service.policy.name
                ));
            }
        }
        for name in &service.clusters {
            if !clusters.is_empty() && !clusters.iter().any(|c| c == name) {
                out.push(format!(
                    "service `{}`: clusters `{name}` names no cluster of the Envoy configuration's static_resources",
                    service.policy.name
                ));
            }
        }
    }
    if let Some(token) = &cfg.token {
        for (i, r) in token.remote.iter().enumerate() {
            if !clusters.is_empty() && !clusters.contains(&r.cluster) {
                out.push(format!(
                    "token.remote_jwks[{i}].cluster `{}` is no cluster of the Envoy configuration: every fetch fails (jwks.fetch_failure.unknown_cluster) and token requests get 503 jwks_unavailable",
                    r.cluster
                ));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envoy_with(routes: Value) -> Value {
        json!({"static_resources": {
            "clusters": [{"name": "model"}, {"name": "workspace"}],
            "listeners": [
                {"filter_chains": [{"filters": [{"typed_config": {
                    "http_filters": [{"name": "aml_auth", "typed_config": {"@type": WASM_TYPE}}],
                    "route_config": {"virtual_hosts": [
                        {"name": "all", "domains": ["*"], "routes": routes}]}}}]}]},
                {"filter_chains": [{"filters": [{"typed_config": {
                    "http_filters": [{"name": "router"}],
                    "route_config": {"virtual_hosts": [{"name": "unfiltered", "routes": [
                        {"match": {"prefix": "/"}},
                        {"name": "x", "match": {"prefix": "/api/v1/service/demo-token"}}]}]}}}]}]}
            ]
        }})
    }

    fn warnings(plugin: &str, envoy: &Value) -> Vec<String> {
        let cfg = config::parse(plugin.as_bytes(), &|_| None).unwrap();
        envoy_warnings(&cfg, envoy)
    }

    const BY_PATH: &str = r#"{"primary_key":"pppppppppppppppppp","services":[
        {"name":"demo","path_prefix":"/api/v1/service/demo"},
        {"name":"demo-token","path_prefix":"/api/v1/service/demo-token"}]}"#;

    #[test]
    fn a_shorter_prefix_listed_first_is_a_warning() {
        let shadowed = envoy_with(json!([
            {"name": "demo", "match": {"prefix": "/api/v1/service/demo"}},
            {"name": "demo-token", "match": {"prefix": "/api/v1/service/demo-token"}},
        ]));
        let w = warnings(BY_PATH, &shadowed);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("service `demo-token`"), "{w:?}");
        assert!(
            w[0].contains("route `demo` (virtual host `all`, routes[0]"),
            "{w:?}"
        );
        assert!(w[0].contains("Envoy takes the first route"), "{w:?}");

        let ordered = envoy_with(json!([
            {"name": "demo-token", "match": {"prefix": "/api/v1/service/demo-token"}},
            {"name": "demo", "match": {"prefix": "/api/v1/service/demo"}},
            {"name": "rest", "match": {"prefix": "/"}},
        ]));
        assert!(warnings(BY_PATH, &ordered).is_empty());

        let catch_all_first = envoy_with(json!([
            {"match": {"prefix": "/"}},
            {"name": "demo-token", "match": {"prefix": "/api/v1/service/demo-token"}},
        ]));
        let w = warnings(BY_PATH, &catch_all_first);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("service `demo-token`"), "{w:?}");
        assert!(w[0].contains("prefix `/`)"), "{w:?}");

        let longer_route = envoy_with(json!([
            {"name": "demo", "match": {"prefix": "/api/v1/service/demo"}},
            {"name": "demo-token", "match": {"prefix": "/api/v1/service/demo-token/score"}},
        ]));
        let w = warnings(BY_PATH, &longer_route);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("service `demo-token`"), "{w:?}");
    }

    #[test]
    fn names_envoy_does_not_have_are_warnings() {
        let envoy = envoy_with(json!([{"name": "demo", "match": {"prefix": "/"}}]));
        let plugin = r#"{"auth_enabled":false,"token_auth_enabled":true,
            "token":{"issuer":"https://i","remote_jwks":{"cluster":"workspaec","uri":"http://w/keys"}},
            "services":[{"name":"a","route_names":["demo"]},{"name":"b","route_names":["demo-tokn"]},
                        {"name":"c","clusters":["nope"]}]}"#;
        let w = warnings(plugin, &envoy);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("`demo-tokn` names no route"), "{w:?}");
        assert!(w[1].contains("`nope` names no cluster"), "{w:?}");
        assert!(w[2].contains("`workspaec` is no cluster"), "{w:?}");
        assert!(w[2].contains("jwks_unavailable"), "{w:?}");
    }

    #[test]
    fn weak_and_repeated_keys_are_warnings() {
        let w = key_warnings(&json!({"primary_key": "a"}), &[]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("plaintext key of 1 characters"), "{w:?}");
        let same = KeyDigest::of(b"a-long-enough-random-key-0123456789").to_configured();
        let w = key_warnings(
            &json!({"primary_key": "a-long-enough-random-key-0123456789", "services": [
                {"name": "s", "primary_key": same, "secondary_key": "a-long-enough-random-key-0123456789"}]}),
            &[],
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("service `s`: primary_key and secondary_key are the same key"),
            "{w:?}"
        );
        let fine = key_warnings(
            &json!({"primary_key": same, "secondary_key": "another-long-random-key-000000"}),
            &[],
        );
        assert!(fine.is_empty(), "{fine:?}");
    }
}
