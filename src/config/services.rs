//! Services: their names, how each is selected (path prefix and hosts, or Envoy route names and
//! clusters), and the policy each compiles to from its own fields and what it inherits from the top.

use serde_json::Value;

use super::obj::{kind, Obj};
use super::token::{compile_claims, compile_required, TokenService};
use super::{ConfigError, Workspace, DEFAULT_SERVICE};
use crate::keys::KeyPair;
use crate::token::claims::RequiredClaim;

/// Most services in one configuration.
pub const MAX_SERVICES: usize = 10_000;

/// How a service's requests are judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// Neither key nor token auth: requests pass through untouched.
    PassThrough,
    /// Key auth: the credential must be the primary or the secondary key.
    Key(KeyPair),
    /// Token auth: the credential must be a valid JWT from the workspace.
    Token(TokenService),
}

/// The policy applied to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePolicy {
    /// Service name, used in stats.
    pub name: String,
    /// Key, token, or no auth.
    pub mode: AuthMode,
    /// Whether the Authorization header travels upstream after a successful check.
    pub forward_authorization: bool,
    /// Whether an allowed request carries the caller's identity and the service name as Envoy
    /// filter state (`expose_principal`).
    pub expose_principal: bool,
}

/// A service's policy and where it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRoute {
    /// The policy.
    pub policy: ServicePolicy,
    /// Requests whose canonical path starts with this are the service's (empty when the
    /// service selects by route).
    pub path_prefix: String,
    /// When non-empty, only requests for one of these hosts (canonical `name` or `name:port`,
    /// compared without port unless the entry has one).
    pub hosts: Vec<String>,
    /// Envoy route names (`xds.route_name`) that select this service.
    pub route_names: Vec<String>,
    /// Envoy upstream clusters (`xds.cluster_name`) that select this service.
    pub clusters: Vec<String>,
    /// Whether `;` path parameters are accepted on this service's requests.
    pub allow_path_parameters: bool,
}

const POLICY_FIELDS: [&str; 8] = [
    "auth_enabled",
    "primary_key",
    "secondary_key",
    "token_auth_enabled",
    "forward_authorization",
    "claim_to_headers",
    "required_claims",
    "expose_principal",
];

/// Top-level values that services inherit.
pub(super) struct Inherited<'a> {
    auth_enabled: Option<bool>,
    token_auth_enabled: Option<bool>,
    forward_authorization: Option<bool>,
    expose_principal: Option<bool>,
    primary_key: Option<&'a str>,
    secondary_key: Option<&'a str>,
    pub(super) required_claims: Option<Vec<RequiredClaim>>,
}

impl<'a> Inherited<'a> {
    pub(super) fn from_root(
        root: &Obj<'a>,
        workspace: &Workspace<'_>,
    ) -> Result<Self, ConfigError> {
        Ok(Inherited {
            auth_enabled: root.bool("auth_enabled")?,
            token_auth_enabled: root.bool("token_auth_enabled")?,
            forward_authorization: root.bool("forward_authorization")?,
            expose_principal: root.bool("expose_principal")?,
            primary_key: root.string("primary_key")?,
            secondary_key: root.string("secondary_key")?,
            required_claims: compile_required(root, workspace)?,
        })
    }
}

pub(super) fn compile_services(
    path: &str,
    items: &[Value],
    defaults: &Inherited<'_>,
    workspace: &Workspace<'_>,
) -> Result<(Vec<ServiceRoute>, bool), ConfigError> {
    if items.len() > MAX_SERVICES {
        return Err(ConfigError::new(
            path,
            format!(
                "at most {MAX_SERVICES} services are supported, found {}",
                items.len()
            ),
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut routes = std::collections::HashSet::new();
    let mut route_names = std::collections::HashSet::new();
    let mut selected_by: Option<(bool, String)> = None;
    let mut out = Vec::with_capacity(items.len());
    let mut inherited_rules_used = false;
    for (i, item) in items.iter().enumerate() {
        let obj = Obj::new(&format!("{path}[{i}]"), item)?;
        let mut allowed: Vec<&str> = POLICY_FIELDS.to_vec();
        allowed.extend([
            "name",
            "path_prefix",
            "hosts",
            "route_names",
            "clusters",
            "allow_path_parameters",
            "token",
        ]);
        obj.only(&allowed)?;
        let name = obj
            .string("name")?
            .ok_or_else(|| ConfigError::new(obj.path("name"), "every service needs a name"))?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ConfigError::new(
                obj.path("name"),
                "must be 1 to 64 characters from A-Z a-z 0-9 - _ . (it becomes part of stat names)",
            ));
        }
        if name == DEFAULT_SERVICE || !names.insert(name) {
            return Err(ConfigError::new(
                obj.path("name"),
                format!("service name `{name}` is used twice (or is the reserved name `{DEFAULT_SERVICE}`)"),
            ));
        }
        let selector =
            compile_selector(&obj, name, &mut routes, &mut route_names, &mut selected_by)?;
        let narrowing = match obj.object("token")? {
            None => None,
            Some(t) => Some(compile_narrowing(&t, workspace)?),
        };
        let policy = compile_policy(&obj, name, defaults, workspace, narrowing)?;
        inherited_rules_used |= matches!(policy.mode, AuthMode::Token(_))
            && !obj.map.contains_key("required_claims")
            && defaults.required_claims.is_some();
        out.push(ServiceRoute {
            policy,
            path_prefix: selector.path_prefix,
            hosts: selector.hosts,
            route_names: selector.route_names,
            clusters: selector.clusters,
            allow_path_parameters: obj.bool("allow_path_parameters")?.unwrap_or(false),
        });
    }
    Ok((out, inherited_rules_used))
}

/// A service's `token` object: what it narrows in the workspace's token rules.
#[derive(Default)]
pub(super) struct Narrowing {
    audiences: Option<Vec<String>>,
    issuers: Option<Vec<String>>,
}

fn compile_narrowing(t: &Obj<'_>, workspace: &Workspace<'_>) -> Result<Narrowing, ConfigError> {
    t.only(&["audiences", "issuers"])?;
    let issuers = t.string_list("issuers")?;
    if let Some(list) = &issuers {
        let configured = workspace
            .token
            .as_ref()
            .map(|w| w.policy.issuers.as_slice())
            .unwrap_or_default();
        for (i, issuer) in list.iter().enumerate() {
            if !configured.contains(issuer) {
                return Err(ConfigError::new(
                    format!("{}[{i}]", t.path("issuers")),
                    format!("`{issuer}` is not one of the issuers configured in token.issuer"),
                ));
            }
            if list.get(..i).unwrap_or_default().contains(issuer) {
                return Err(ConfigError::new(
                    format!("{}[{i}]", t.path("issuers")),
                    format!("`{issuer}` is listed twice"),
                ));
            }
        }
    }
    Ok(Narrowing {
        audiences: t.string_list("audiences")?,
        issuers,
    })
}

/// Where a service applies: a path prefix (and hosts), or Envoy route names / clusters.
struct Selector {
    path_prefix: String,
    hosts: Vec<String>,
    route_names: Vec<String>,
    clusters: Vec<String>,
}

/// Reads a service's selector. `routes` holds the (host, lowercase prefix) pairs taken so far,
/// `names` the route and cluster names; `selected_by` whether the first service selects by route, and
/// its name: every service must select the same way.
fn compile_selector(
    obj: &Obj<'_>,
    name: &str,
    routes: &mut std::collections::HashSet<(String, String)>,
    names: &mut std::collections::HashSet<(&'static str, String)>,
    selected_by: &mut Option<(bool, String)>,
) -> Result<Selector, ConfigError> {
    let prefix = obj.string("path_prefix")?;
    let route_names = names_list(obj, "route_names", "route", names)?;
    let clusters = names_list(obj, "clusters", "cluster", names)?;
    let by_route = !route_names.is_empty() || !clusters.is_empty();
    if by_route && (prefix.is_some() || obj.array("hosts")?.is_some()) {
        return Err(ConfigError::new(
            obj.path("path_prefix"),
            format!("service `{name}` selects by route_names/clusters: it can't also have a path_prefix or hosts"),
        ));
    }
    match selected_by {
        None => *selected_by = Some((by_route, name.to_string())),
        Some((first_by_route, first)) if *first_by_route != by_route => {
            let how = |r: bool| {
                if r {
                    "route_names/clusters"
                } else {
                    "path_prefix"
                }
            };
            return Err(ConfigError::new(
                obj.path(if by_route { "route_names" } else { "path_prefix" }),
                format!(
                    "service `{name}` selects by {} but service `{first}` by {}: every service must select the same way",
                    how(by_route),
                    how(*first_by_route)
                ),
            ));
        }
        Some(_) => {}
    }
    if by_route {
        return Ok(Selector {
            path_prefix: String::new(),
            hosts: Vec::new(),
            route_names,
            clusters,
        });
    }
    let prefix = prefix.ok_or_else(|| {
        ConfigError::new(
            obj.path("path_prefix"),
            format!("service `{name}` needs a path_prefix (or route_names/clusters)"),
        )
    })?;
    validate_prefix(&obj.path("path_prefix"), prefix)?;
    let hosts = match obj.array("hosts")? {
        None => Vec::new(),
        Some(list) => compile_hosts(&obj.path("hosts"), list)?,
    };
    let host_keys: Vec<&str> = if hosts.is_empty() {
        vec!["*"]
    } else {
        hosts.iter().map(String::as_str).collect()
    };
    for host in host_keys {
        if !routes.insert((host.to_string(), prefix.to_ascii_lowercase())) {
            return Err(ConfigError::new(
                obj.path("path_prefix"),
                format!("service `{name}`: another service already has path_prefix `{prefix}` (compared ignoring case) for host `{host}`"),
            ));
        }
    }
    Ok(Selector {
        path_prefix: prefix.to_string(),
        hosts,
        route_names: Vec::new(),
        clusters: Vec::new(),
    })
}

/// A list of Envoy route or cluster names, each unique across services.
fn names_list(
    obj: &Obj<'_>,
    key: &str,
    what: &'static str,
    taken: &mut std::collections::HashSet<(&'static str, String)>,
) -> Result<Vec<String>, ConfigError> {
    let Some(list) = obj.string_list(key)? else {
        return Ok(Vec::new());
    };
    for (i, n) in list.iter().enumerate() {
        let field = format!("{}[{i}]", obj.path(key));
        if n.len() > 1024 || n.chars().any(char::is_control) {
            return Err(ConfigError::new(
                field,
                format!(
                    "must be an Envoy {what} name: at most 1024 characters, no control character"
                ),
            ));
        }
        if !taken.insert((what, n.clone())) {
            return Err(ConfigError::new(
                field,
                format!("{what} `{n}` selects more than one service"),
            ));
        }
    }
    Ok(list)
}

/// Refuses a prefix that no request can be read as: the filter matches the canonical path
/// (no `%` escapes of prefix characters, no `\`, `;`, empty or dot segments, ASCII only).
fn validate_prefix(field: &str, prefix: &str) -> Result<(), ConfigError> {
    if !prefix.starts_with('/') {
        return Err(ConfigError::new(
            field,
            format!("must start with `/` (found `{prefix}`): a request path always does, so write `/{prefix}`"),
        ));
    }
    let chars_ok = prefix.starts_with('/')
        && prefix
            .bytes()
            .all(|b| b == b'/' || crate::request::target::is_prefix_byte(b));
    if !chars_ok {
        return Err(ConfigError::new(
            field,
            "must start with `/` and hold only A-Z a-z 0-9 - . _ ~ : @ ! $ & ' ( ) * + , = and `/`: \
             a request path is matched decoded and canonical, so a prefix with `%`, `;`, `\\`, a space, \
             a control, non-ASCII or zero-width character could never match",
        ));
    }
    if prefix.contains("//") {
        return Err(ConfigError::new(
            field,
            "must not hold an empty segment (`//`): such requests are refused, so it could never match",
        ));
    }
    let dot = prefix
        .split('/')
        .enumerate()
        .any(|(i, s)| i > 0 && matches!(s, "." | ".."));
    if dot {
        return Err(ConfigError::new(
            field,
            "must not hold a `.` or `..` segment: such requests are refused, so it could never match",
        ));
    }
    Ok(())
}

fn compile_hosts(path: &str, list: &[Value]) -> Result<Vec<String>, ConfigError> {
    let mut hosts = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Value::String(h) = v else {
            return Err(ConfigError::new(
                field,
                format!("must be a string, found {}", kind(v)),
            ));
        };
        let Ok(host) = crate::request::target::host(h.as_bytes()) else {
            return Err(ConfigError::new(
                field,
                "must be a host name (ASCII: IDNA names as xn--), IPv4 or [IPv6] literal, optionally with :port (1-65535)",
            ));
        };
        hosts.push(match host.port {
            None => host.name.into_owned(),
            Some(port) => format!("{}:{port}", host.name),
        });
    }
    if hosts.is_empty() {
        return Err(ConfigError::new(
            path,
            "must name at least one host when present",
        ));
    }
    Ok(hosts)
}

pub(super) fn compile_policy(
    obj: &Obj<'_>,
    name: &str,
    defaults: &Inherited<'_>,
    workspace: &Workspace<'_>,
    narrowing: Option<Narrowing>,
) -> Result<ServicePolicy, ConfigError> {
    let service = if name == DEFAULT_SERVICE {
        String::new()
    } else {
        format!("service `{name}`: ")
    };
    let own_auth = obj.bool("auth_enabled")?;
    let auth_enabled = own_auth.or(defaults.auth_enabled).unwrap_or(true);
    let auth_source = match (own_auth, defaults.auth_enabled) {
        (Some(_), _) => "",
        (None, Some(_)) => " (inherited from the top level)",
        (None, None) => " (the default)",
    };
    let token_auth_enabled = obj
        .bool("token_auth_enabled")?
        .or(defaults.token_auth_enabled)
        .unwrap_or(false);
    let forward_authorization = obj
        .bool("forward_authorization")?
        .or(defaults.forward_authorization)
        .unwrap_or(false);
    let expose_principal = obj
        .bool("expose_principal")?
        .or(defaults.expose_principal)
        .unwrap_or(false);
    let own_rules = if name == DEFAULT_SERVICE {
        None
    } else {
        compile_required(obj, workspace)?
    };
    let primary = obj.key("primary_key", defaults.primary_key, workspace.env)?;
    let secondary = obj.key("secondary_key", defaults.secondary_key, workspace.env)?;
    let claims = match obj.array("claim_to_headers")? {
        Some(list) => Some(compile_claims(&obj.path("claim_to_headers"), list)?),
        None => None,
    };
    if let Some(c) = &claims {
        workspace.note_claim_headers(c);
    }
    if auth_enabled && token_auth_enabled {
        return Err(ConfigError::new(
            obj.path("token_auth_enabled"),
            format!("{service}token authentication can't be used at the same time as key-based authentication: set auth_enabled to false to use token_auth_enabled"),
        ));
    }
    if !auth_enabled && name != DEFAULT_SERVICE {
        if let Some(field) = ["primary_key", "secondary_key"]
            .into_iter()
            .find(|f| obj.map.contains_key(*f))
        {
            return Err(ConfigError::new(
                obj.path(field),
                format!("{service}sets {field} but auth_enabled is false (set here or inherited from the top level): set auth_enabled to true, or remove the key"),
            ));
        }
    }
    if own_rules.is_some() && (auth_enabled || !token_auth_enabled) {
        return Err(ConfigError::new(
            obj.path("required_claims"),
            format!("{service}required_claims is only checked in token mode (auth_enabled false, token_auth_enabled true)"),
        ));
    }
    let mode = if auth_enabled {
        let pair = KeyPair::new(primary, secondary).ok_or_else(|| {
            ConfigError::new(
                obj.path("primary_key"),
                format!("{service}auth_enabled is true{auth_source} but neither primary_key nor secondary_key is set: key auth needs at least one key (or set auth_enabled to false)"),
            )
        })?;
        AuthMode::Key(pair)
    } else if token_auth_enabled {
        let Some(workspace_token) = &workspace.token else {
            return Err(ConfigError::new(
                obj.path("token_auth_enabled"),
                format!("{service}token authentication needs the top-level `token` settings (issuer and a JWKS source)"),
            ));
        };
        let mut policy = workspace_token.policy.clone();
        let narrowing = narrowing.unwrap_or_default();
        if narrowing.audiences.is_some() {
            policy.audiences = narrowing.audiences;
        }
        if let Some(issuers) = narrowing.issuers {
            policy.issuers = issuers;
        }
        AuthMode::Token(TokenService {
            policy,
            claim_to_headers: claims.unwrap_or_else(|| workspace_token.claims.clone()),
            required_claims: own_rules
                .or_else(|| defaults.required_claims.clone())
                .unwrap_or_default(),
            principal_claim: workspace_token.principal_claim.clone(),
        })
    } else {
        AuthMode::PassThrough
    };
    Ok(ServicePolicy {
        name: name.to_string(),
        mode,
        forward_authorization,
        expose_principal,
    })
}
