//! Plugin configuration: the JSON object is parsed, then compiled into a validated [`FilterConfig`];
//! every refusal is a [`ConfigError`] naming the field.

use std::cell::RefCell;

use serde_json::{Map, Value};

use crate::jwks::{parse_jwks, JwksError};
use crate::jwks_cache::SourceTiming;
use crate::jwt::{TokenPolicy, DEFAULT_MAX_TOKEN_LEN, MAX_TOKEN_LEN, MIN_TOKEN_LEN};
use crate::keys::{KeyDigest, KeyPair};
use crate::token::claims::{RequiredClaim, SPACE_SEPARATED_CLAIM};
use crate::token::strict_json::{self, StrictError};

/// A refused configuration: the path of the offending field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the field, e.g. `primary_key` or `services[2].token.audiences`; empty for the document.
    pub field: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid plugin configuration: {}", self.message)
        } else {
            write!(
                f,
                "invalid plugin configuration: field `{}`: {}",
                self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Default realm in `WWW-Authenticate` challenges.
pub const DEFAULT_REALM: &str = "aml";

/// Name of the policy applied to requests that match no service.
pub const DEFAULT_SERVICE: &str = "default";

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

/// Token auth settings of one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenService {
    /// Issuers, audiences, time rules, size limit.
    pub policy: TokenPolicy,
    /// Verified claims copied to request headers.
    pub claim_to_headers: Vec<ClaimHeader>,
    /// Claims the token must hold, checked after the signature (every rule must be met).
    pub required_claims: Vec<RequiredClaim>,
    /// The claim whose value is the caller's identity (`token.principal_claim`, default `sub`).
    pub principal_claim: String,
}

/// Most rules in one `required_claims` object.
pub const MAX_REQUIRED_CLAIMS: usize = 32;

/// Most allowed values of one required claim.
pub const MAX_ALLOWED_VALUES: usize = 256;

/// One claim copied into one request header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimHeader {
    /// Top-level claim name.
    pub claim: String,
    /// Request header name (lowercase).
    pub header: String,
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

/// Where the workspace's JWKS comes from; shared by every service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSettings {
    /// Every configured issuer (`token.issuer`, a string or an array), in configuration order.
    pub issuers: Vec<String>,
    /// Keys given inline (`local_jwks`), always usable.
    pub local_jwks: Option<Value>,
    /// Remote sources tried in order (`remote_jwks`).
    pub remote: Vec<RemoteJwks>,
    /// Identifies the remote sources, so that a reload with other sources never reuses keys
    /// fetched from the old ones.
    pub fingerprint: String,
}

/// One remote JWKS source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteJwks {
    /// Envoy cluster the fetch goes through (with discovery: the discovery document's fetch).
    pub cluster: String,
    /// The URI as configured (`uri`, or `discovery_uri`; for logs).
    pub uri: String,
    /// `:authority` sent.
    pub authority: String,
    /// `:path` sent.
    pub path: String,
    /// Set when `uri` is an OpenID Connect discovery document that names the JWKS location.
    pub discovery: Option<Discovery>,
    /// Timeout, refresh period and staleness limit.
    pub timing: SourceTiming,
}

/// How a discovery source finds its key set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The document's `issuer` must be one of these (the configured issuers).
    pub issuers: Vec<String>,
    /// Cluster for `jwks_uri` (`jwks_cluster`); without it `jwks_uri` must have the discovery
    /// document's authority and goes through the same cluster.
    pub jwks_cluster: Option<String>,
}

/// A validated plugin configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterConfig {
    /// Realm named in `WWW-Authenticate` challenges.
    pub realm: String,
    /// The policy for requests that match no service (the top-level fields).
    pub default_policy: ServicePolicy,
    /// Per-service policies, routed by host and longest path prefix.
    pub services: Vec<ServiceRoute>,
    /// Workspace-wide token settings, when a `token` object is configured.
    pub token: Option<TokenSettings>,
    /// Every header named by a `claim_to_headers` entry anywhere in the configuration (sorted,
    /// once each): removed from every request before anything else, whatever its policy.
    pub claim_headers: Vec<String>,
    /// Names of the required claims, indexed by [`RequiredClaim::name_id`].
    pub required_claim_names: Vec<String>,
}

impl FilterConfig {
    /// The name of the required claim a denial refers to.
    pub fn required_claim_name(&self, name_id: u32) -> Option<&str> {
        usize::try_from(name_id)
            .ok()
            .and_then(|i| self.required_claim_names.get(i))
            .map(String::as_str)
    }
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

/// Looks up an environment variable of the VM (for `env:NAME` key values).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

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

/// Parses and validates a plugin configuration. An empty document means all defaults, which
/// is refused because key auth is on by default and needs a key.
pub fn parse(json: &[u8], env: EnvLookup<'_>) -> Result<FilterConfig, ConfigError> {
    let value = read_strict(json)?;
    let root = Obj::new("", &value)?;
    root.only(&[
        "auth_enabled",
        "primary_key",
        "secondary_key",
        "token_auth_enabled",
        "forward_authorization",
        "realm",
        "token",
        "services",
        "max_token_bytes",
        "required_claims",
        "expose_principal",
    ])?;
    let realm = match root.string("realm")? {
        None => DEFAULT_REALM.to_string(),
        Some(r) => validate_realm(&root.path("realm"), r)?,
    };
    let max_token_bytes = root
        .u64(
            "max_token_bytes",
            MIN_TOKEN_LEN as u64,
            MAX_TOKEN_LEN as u64,
        )?
        .map_or(DEFAULT_MAX_TOKEN_LEN, |n| {
            usize::try_from(n).unwrap_or(DEFAULT_MAX_TOKEN_LEN)
        });
    let token_obj = root.object("token")?;
    let (token, workspace_token) = match &token_obj {
        None => (None, None),
        Some(t) => {
            let (settings, workspace_token) = compile_token(t, max_token_bytes)?;
            (Some(settings), Some(workspace_token))
        }
    };
    let workspace = Workspace {
        token: workspace_token,
        env,
        required_names: RefCell::new(Vec::new()),
        claim_headers: RefCell::new(Vec::new()),
    };
    if let Some(t) = &workspace.token {
        workspace.note_claim_headers(&t.claims);
    }
    let defaults = Inherited::from_root(&root, &workspace)?;
    let default_policy = compile_policy(&root, DEFAULT_SERVICE, &defaults, &workspace, None)?;
    let mut inherited_rules_used =
        matches!(default_policy.mode, AuthMode::Token(_)) && defaults.required_claims.is_some();
    let services = match root.array("services")? {
        None => Vec::new(),
        Some(items) => {
            let (services, used) =
                compile_services(&root.path("services"), items, &defaults, &workspace)?;
            inherited_rules_used |= used;
            services
        }
    };
    if defaults.required_claims.is_some() && !inherited_rules_used {
        return Err(ConfigError::new(
            root.path("required_claims"),
            "no token-mode policy inherits these rules (only token auth checks required_claims): set them on the token-mode services, or remove them",
        ));
    }
    let mut claim_headers = workspace.claim_headers.take();
    claim_headers.sort_unstable();
    claim_headers.dedup();
    Ok(FilterConfig {
        realm,
        default_policy,
        services,
        token,
        claim_headers,
        required_claim_names: workspace.required_names.take(),
    })
}

/// The document as one strict JSON value: repeated members (at any depth, escaped spellings
/// included) and nesting past 64 levels are refused. Blank input is the empty object.
fn read_strict(json: &[u8]) -> Result<Value, ConfigError> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let checked = strict_json::parse(json).map_err(|e| match e {
        StrictError::TooDeep => {
            ConfigError::new("", "objects and arrays nest deeper than 64 levels")
        }
        StrictError::Syntax(message) => ConfigError::new("", format!("not valid JSON: {message}")),
    })?;
    match checked.duplicate {
        None => Ok(checked.value),
        Some(path) => Err(ConfigError::new(
            path.to_string(),
            "appears twice in its object (duplicate members are refused, escaped spellings of a name included: which one a reader sees depends on the reader)",
        )),
    }
}

/// The workspace-wide token rules every token-mode policy starts from.
struct WorkspaceToken {
    policy: TokenPolicy,
    claims: Vec<ClaimHeader>,
    principal_claim: String,
}

/// Workspace-wide inputs every policy may need, and what compiling collects across policies.
struct Workspace<'a> {
    token: Option<WorkspaceToken>,
    env: EnvLookup<'a>,
    required_names: RefCell<Vec<String>>,
    claim_headers: RefCell<Vec<String>>,
}

impl Workspace<'_> {
    fn name_id(&self, claim: &str) -> u32 {
        let mut names = self.required_names.borrow_mut();
        let index = match names.iter().position(|n| n == claim) {
            Some(i) => i,
            None => {
                names.push(claim.to_string());
                names.len().saturating_sub(1)
            }
        };
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    fn note_claim_headers(&self, claims: &[ClaimHeader]) {
        self.claim_headers
            .borrow_mut()
            .extend(claims.iter().map(|c| c.header.clone()));
    }
}

/// Top-level values that services inherit.
struct Inherited<'a> {
    auth_enabled: Option<bool>,
    token_auth_enabled: Option<bool>,
    forward_authorization: Option<bool>,
    expose_principal: Option<bool>,
    primary_key: Option<&'a str>,
    secondary_key: Option<&'a str>,
    required_claims: Option<Vec<RequiredClaim>>,
}

impl<'a> Inherited<'a> {
    fn from_root(root: &Obj<'a>, workspace: &Workspace<'_>) -> Result<Self, ConfigError> {
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

/// The `required_claims` object of `obj`, when present.
fn compile_required(
    obj: &Obj<'_>,
    workspace: &Workspace<'_>,
) -> Result<Option<Vec<RequiredClaim>>, ConfigError> {
    let Some(rules) = obj.object("required_claims")? else {
        return Ok(None);
    };
    if rules.map.len() > MAX_REQUIRED_CLAIMS {
        return Err(ConfigError::new(
            &rules.path,
            format!("at most {MAX_REQUIRED_CLAIMS} claims may be required"),
        ));
    }
    let mut out = Vec::with_capacity(rules.map.len());
    for claim in rules.map.keys() {
        let field = rules.path(claim);
        if claim.is_empty() {
            return Err(ConfigError::new(field, "a claim name must not be empty"));
        }
        let allowed = rules.string_list(claim)?.ok_or_else(|| {
            ConfigError::new(&field, "must be a non-empty array of allowed strings")
        })?;
        if allowed.len() > MAX_ALLOWED_VALUES {
            return Err(ConfigError::new(
                field,
                format!("at most {MAX_ALLOWED_VALUES} allowed values per claim"),
            ));
        }
        if claim == SPACE_SEPARATED_CLAIM {
            if let Some(i) = allowed.iter().position(|v| v.contains(' ')) {
                return Err(ConfigError::new(
                    format!("{field}[{i}]"),
                    "scp is matched word by word (space-separated): a value with a space never matches",
                ));
            }
        }
        out.push(RequiredClaim {
            claim: claim.clone(),
            allowed,
            name_id: workspace.name_id(claim),
        });
    }
    Ok(Some(out))
}

fn compile_services(
    path: &str,
    items: &[Value],
    defaults: &Inherited<'_>,
    workspace: &Workspace<'_>,
) -> Result<(Vec<ServiceRoute>, bool), ConfigError> {
    if items.len() > MAX_SERVICES {
        return Err(ConfigError::new(
            path,
            format!("at most {MAX_SERVICES} services are supported"),
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
struct Narrowing {
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

fn compile_policy(
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
    let auth_enabled = obj
        .bool("auth_enabled")?
        .or(defaults.auth_enabled)
        .unwrap_or(true);
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
                format!("{service}auth_enabled is true (the default) but neither primary_key nor secondary_key is set"),
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

fn compile_token(
    t: &Obj<'_>,
    max_token_bytes: usize,
) -> Result<(TokenSettings, WorkspaceToken), ConfigError> {
    t.only(&[
        "issuer",
        "principal_claim",
        "audiences",
        "local_jwks",
        "remote_jwks",
        "clock_skew_seconds",
        "max_lifetime_seconds",
        "require_expiration",
        "claim_to_headers",
    ])?;
    let issuers = compile_issuers(t)?;
    let audiences = t.string_list("audiences")?;
    let policy = TokenPolicy {
        issuers: issuers.clone(),
        audiences,
        clock_skew_seconds: t.u64("clock_skew_seconds", 0, 3_600)?.unwrap_or(60),
        max_lifetime_seconds: t.u64("max_lifetime_seconds", 1, 400 * 86_400)?,
        require_expiration: t.bool("require_expiration")?.unwrap_or(true),
        max_token_bytes,
    };
    let principal_claim = match t.string("principal_claim")? {
        None => "sub".to_string(),
        Some("") => {
            return Err(ConfigError::new(
                t.path("principal_claim"),
                "must name a claim (default `sub`)",
            ))
        }
        Some(name) => name.to_string(),
    };
    let local_jwks = match t.map.get("local_jwks") {
        None => None,
        Some(v) => {
            let field = t.path("local_jwks");
            if !v.is_object() {
                return Err(ConfigError::new(
                    field,
                    format!("must be a JWKS object, found {}", kind(v)),
                ));
            }
            let bytes = serde_json::to_vec(v).unwrap_or_default();
            if let Err(e) = parse_jwks(&bytes) {
                return Err(ConfigError::new(
                    field,
                    format!("is not a usable JWKS: {}", describe_jwks_error(&e)),
                ));
            }
            Some(v.clone())
        }
    };
    let issuer_list = issuers.clone();
    let remote = match t.map.get("remote_jwks") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(ConfigError::new(
                    t.path("remote_jwks"),
                    "must hold at least one source",
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(compile_remote(
                    &Obj::new(&format!("{}[{i}]", t.path("remote_jwks")), item)?,
                    &issuer_list,
                )?);
            }
            out
        }
        Some(v @ Value::Object(_)) => vec![compile_remote(
            &Obj::new(&t.path("remote_jwks"), v)?,
            &issuer_list,
        )?],
        Some(other) => {
            return Err(t.wrong_type("remote_jwks", "an object or an array of objects", other))
        }
    };
    if local_jwks.is_none() && remote.is_empty() {
        return Err(ConfigError::new(
            t.path("remote_jwks"),
            "token settings need a key source: local_jwks, remote_jwks, or both",
        ));
    }
    let claims = match t.array("claim_to_headers")? {
        Some(list) => compile_claims(&t.path("claim_to_headers"), list)?,
        None => Vec::new(),
    };
    let mut fingerprint_input = String::new();
    for r in &remote {
        fingerprint_input.push_str(&r.cluster);
        fingerprint_input.push('\n');
        fingerprint_input.push_str(&r.uri);
        fingerprint_input.push('\n');
        if let Some(d) = &r.discovery {
            fingerprint_input.push_str("discovery\n");
            fingerprint_input.push_str(d.jwks_cluster.as_deref().unwrap_or_default());
            fingerprint_input.push('\n');
        }
    }
    let fingerprint = KeyDigest::of(fingerprint_input.as_bytes()).to_configured();
    let fingerprint = fingerprint.get(7..23).unwrap_or_default().to_string();
    Ok((
        TokenSettings {
            issuers,
            local_jwks,
            remote,
            fingerprint,
        },
        WorkspaceToken {
            policy,
            claims,
            principal_claim,
        },
    ))
}

/// `token.issuer`: one issuer, or a non-empty array of distinct ones.
fn compile_issuers(t: &Obj<'_>) -> Result<Vec<String>, ConfigError> {
    let field = t.path("issuer");
    let required =
        "is required: the exact `iss` of the workspace's tokens (a string, or an array of strings)";
    let issuers = match t.map.get("issuer") {
        None => return Err(ConfigError::new(field, required)),
        Some(Value::String(s)) if s.is_empty() => return Err(ConfigError::new(field, required)),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(_)) => t.string_list("issuer")?.unwrap_or_default(),
        Some(other) => {
            return Err(t.wrong_type("issuer", "a string or an array of strings", other))
        }
    };
    for (i, issuer) in issuers.iter().enumerate() {
        if issuers.get(..i).unwrap_or_default().contains(issuer) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{issuer}` is listed twice"),
            ));
        }
    }
    Ok(issuers)
}

fn describe_jwks_error(e: &JwksError) -> String {
    match e {
        JwksError::NoUsableKeys { dropped } => {
            let reasons: Vec<String> = dropped
                .iter()
                .take(5)
                .map(|d| format!("keys[{}]: {}", d.index, d.reason.as_str()))
                .collect();
            format!("no usable key ({})", reasons.join(", "))
        }
        other => other.as_str().replace('_', " "),
    }
}

fn compile_remote(obj: &Obj<'_>, issuers: &[String]) -> Result<RemoteJwks, ConfigError> {
    obj.only(&[
        "cluster",
        "uri",
        "discovery_uri",
        "jwks_cluster",
        "timeout_seconds",
        "refresh_interval_seconds",
        "max_stale_seconds",
    ])?;
    let non_empty = |key: &str, what: &str| -> Result<Option<&str>, ConfigError> {
        match obj.string(key)? {
            Some("") => Err(ConfigError::new(
                obj.path(key),
                format!("must not be empty: {what}"),
            )),
            other => Ok(other),
        }
    };
    let cluster = non_empty("cluster", "the Envoy cluster that reaches the JWKS host")?
        .ok_or_else(|| {
            ConfigError::new(
                obj.path("cluster"),
                "is required: the Envoy cluster that reaches the JWKS host",
            )
        })?;
    let jwks_cluster = non_empty("jwks_cluster", "the Envoy cluster that reaches `jwks_uri`")?;
    let (key, uri) = match (obj.string("uri")?, obj.string("discovery_uri")?) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                obj.path("discovery_uri"),
                "can't be set together with `uri`: give the JWKS URL or the discovery document's",
            ))
        }
        (Some(uri), None) => ("uri", uri),
        (None, Some(uri)) => ("discovery_uri", uri),
        (None, None) => {
            return Err(ConfigError::new(
                obj.path("uri"),
                "is required: the absolute JWKS URL (or `discovery_uri`: the OpenID Connect discovery document's)",
            ))
        }
    };
    if key == "uri" && jwks_cluster.is_some() {
        return Err(ConfigError::new(
            obj.path("jwks_cluster"),
            "applies only with `discovery_uri` (the cluster for the `jwks_uri` it names)",
        ));
    }
    let (authority, path) = split_uri(uri).ok_or_else(|| {
        ConfigError::new(
            obj.path(key),
            "must be an absolute http:// or https:// URL with a host and no user info, fragment or whitespace",
        )
    })?;
    let discovery = (key == "discovery_uri").then(|| Discovery {
        issuers: issuers.to_vec(),
        jwks_cluster: jwks_cluster.map(str::to_string),
    });
    let seconds = |key: &str, min: u64, max: u64, default: u64| -> Result<u64, ConfigError> {
        Ok(obj
            .u64(key, min, max)?
            .unwrap_or(default)
            .saturating_mul(1_000))
    };
    Ok(RemoteJwks {
        cluster: cluster.to_string(),
        uri: uri.to_string(),
        authority,
        path,
        timing: SourceTiming {
            timeout_ms: seconds("timeout_seconds", 1, 60, 5)?,
            refresh_ms: seconds("refresh_interval_seconds", 1, 7 * 86_400, 600)?,
            max_stale_ms: seconds("max_stale_seconds", 1, 365 * 86_400, 86_400)?,
            calls: if discovery.is_some() { 2 } else { 1 },
        },
        discovery,
    })
}

/// Splits an absolute http(s) URL into authority and path (with query).
pub(crate) fn split_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))?;
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f) || uri.contains('#') {
        return None;
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Some((authority.to_string(), path))
}

const RESERVED_HEADERS: [&str; 9] = [
    "authorization",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "cookie",
];

fn compile_claims(path: &str, list: &[Value]) -> Result<Vec<ClaimHeader>, ConfigError> {
    let mut out: Vec<ClaimHeader> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let obj = Obj::new(&format!("{path}[{i}]"), item)?;
        obj.only(&["claim", "header"])?;
        let claim = obj
            .string("claim")?
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                ConfigError::new(obj.path("claim"), "is required: a top-level claim name")
            })?;
        let header = obj
            .string("header")?
            .ok_or_else(|| {
                ConfigError::new(obj.path("header"), "is required: a request header name")
            })?
            .to_ascii_lowercase();
        let valid = !header.is_empty()
            && header.len() <= 128
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid || RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(ConfigError::new(
                obj.path("header"),
                "must be a header name of letters, digits, `-_.`, and not a pseudo-header, authorization, host or a framing header",
            ));
        }
        if out.iter().any(|c| c.header == header) {
            return Err(ConfigError::new(
                obj.path("header"),
                format!("header `{header}` is set by two claims"),
            ));
        }
        out.push(ClaimHeader {
            claim: claim.to_string(),
            header,
        });
    }
    Ok(out)
}

fn validate_realm(field: &str, realm: &str) -> Result<String, ConfigError> {
    let ok = !realm.is_empty()
        && realm.len() <= 128
        && realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if ok {
        Ok(realm.to_string())
    } else {
        Err(ConfigError::new(
            field,
            "must be 1 to 128 printable ASCII characters without `\"` or `\\`",
        ))
    }
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A JSON object being compiled, with its path for error messages.
struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    fn new(path: &str, value: &'a Value) -> Result<Self, ConfigError> {
        match value {
            Value::Object(map) => Ok(Obj {
                path: path.to_string(),
                map,
            }),
            other => Err(ConfigError::new(
                path,
                format!("must be a JSON object, found {}", kind(other)),
            )),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn only(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::new(
                self.path(unknown),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            )),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => Obj::new(&self.path(key), v).map(Some),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a [Value]>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.as_slice())),
            Some(other) => Err(self.wrong_type(key, "an array", other)),
        }
    }

    fn u64(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match whole_number(n) {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(ConfigError::new(
                    self.path(key),
                    format!("must be a whole number from {min} to {max}, found {n}"),
                )),
            },
            Some(other) => Err(self.wrong_type(key, "a whole number", other)),
        }
    }

    /// A non-empty array of non-empty strings.
    fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        if items.is_empty() {
            return Err(ConfigError::new(
                self.path(key),
                "must hold at least one value when present",
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                other => Err(ConfigError::new(
                    format!("{}[{i}]", self.path(key)),
                    format!("must be a non-empty string, found {}", kind(other)),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A key field: plaintext, `sha256:<hex>`, or `env:NAME` naming a VM environment variable
    /// that holds either of those. `inherited` is the top-level value a service falls back to.
    fn key(
        &self,
        key: &str,
        inherited: Option<&str>,
        env: EnvLookup<'_>,
    ) -> Result<Option<KeyDigest>, ConfigError> {
        let Some(raw) = self.string(key)?.or(inherited) else {
            return Ok(None);
        };
        let field = self.path(key);
        let (value, origin) = match raw.strip_prefix("env:") {
            None => (raw.to_string(), String::new()),
            Some(name) => {
                if !is_env_name(name) {
                    return Err(ConfigError::new(
                        field,
                        format!("`env:{name}` does not name a valid environment variable"),
                    ));
                }
                let value = env(name).ok_or_else(|| {
                    ConfigError::new(
                        &field,
                        format!("environment variable {name} is not set in the Wasm VM (vm_config.environment_variables / vmConfig.env)"),
                    )
                })?;
                (value, format!(" (from environment variable {name})"))
            }
        };
        KeyDigest::parse_configured(&value)
            .map(Some)
            .map_err(|e| ConfigError::new(field, format!("{e}{origin}")))
    }

    fn wrong_type(&self, key: &str, want: &str, found: &Value) -> ConfigError {
        ConfigError::new(
            self.path(key),
            format!("must be {want}, found {}", kind(found)),
        )
    }
}

/// A non-negative whole number; `5.0` counts as 5 because Istio hands `pluginConfig` over as a
/// protobuf Struct, where every number is a double.
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && (0.0..=9.0e15).contains(&f)).then_some(f as u64)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_str(json: &str) -> Result<FilterConfig, ConfigError> {
        parse(json.as_bytes(), &no_env)
    }

    #[test]
    fn key_mode_defaults() {
        let cfg = parse_str(r#"{"primary_key":"p-key","secondary_key":"s-key"}"#).unwrap();
        assert_eq!(cfg.realm, DEFAULT_REALM);
        assert!(!cfg.default_policy.forward_authorization);
        let AuthMode::Key(pair) = &cfg.default_policy.mode else {
            panic!("expected key mode")
        };
        assert!(pair.check(b"p-key").is_some());
        assert!(pair.check(b"s-key").is_some());
    }

    #[test]
    fn digest_keys_and_env_keys() {
        let digest = KeyDigest::of(b"hashed-key").to_configured();
        let env = |name: &str| (name == "AML_PRIMARY").then(|| "from-env".to_string());
        let json = format!(r#"{{"primary_key":"env:AML_PRIMARY","secondary_key":"{digest}"}}"#);
        let cfg = parse(json.as_bytes(), &env).unwrap();
        let AuthMode::Key(pair) = &cfg.default_policy.mode else {
            panic!("expected key mode")
        };
        assert!(pair.check(b"from-env").is_some());
        assert!(pair.check(b"hashed-key").is_some());
        assert!(pair.check(digest.as_bytes()).is_none());
    }

    #[test]
    fn pass_through_when_both_modes_off() {
        let cfg = parse_str(r#"{"auth_enabled":false}"#).unwrap();
        assert_eq!(cfg.default_policy.mode, AuthMode::PassThrough);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("{", "", "not valid JSON"),
            ("[]", "", "must be a JSON object"),
            ("", "primary_key", "neither primary_key nor secondary_key"),
            ("{}", "primary_key", "neither primary_key nor secondary_key"),
            (
                r#"{"primary_key":"k","colour":"red"}"#,
                "colour",
                "unknown field",
            ),
            (
                r#"{"primary_key":"k","auth_enabled":"yes"}"#,
                "auth_enabled",
                "true or false",
            ),
            (r#"{"primary_key":7}"#, "primary_key", "must be a string"),
            (
                r#"{"primary_key":"sha256:abcd"}"#,
                "primary_key",
                "64 lowercase",
            ),
            (
                r#"{"primary_key":"k","secondary_key":""}"#,
                "secondary_key",
                "empty",
            ),
            (r#"{"primary_key":"k y"}"#, "primary_key", "token68"),
            (
                r#"{"primary_key":"env:NOPE"}"#,
                "primary_key",
                "NOPE is not set",
            ),
            (
                r#"{"primary_key":"env:1x"}"#,
                "primary_key",
                "valid environment variable",
            ),
            (
                r#"{"primary_key":"k","token_auth_enabled":true}"#,
                "token_auth_enabled",
                "can't be used at the same time",
            ),
            (
                r#"{"auth_enabled":false,"token_auth_enabled":true}"#,
                "token_auth_enabled",
                "needs the top-level `token` settings",
            ),
            (
                r#"{"primary_key":"k","realm":"a\"b"}"#,
                "realm",
                "printable ASCII",
            ),
            (
                r#"{"primary_key":"k","forward_authorization":null}"#,
                "forward_authorization",
                "found null",
            ),
        ];
        for (json, field, fragment) in cases {
            let err = parse_str(json).unwrap_err();
            assert_eq!(err.field, *field, "{json}: {err}");
            assert!(err.message.contains(fragment), "{json}: {err}");
            assert!(err.to_string().contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn env_value_is_never_echoed() {
        let env = |_: &str| Some("bad value with spaces".to_string());
        let err = parse(br#"{"primary_key":"env:K"}"#, &env).unwrap_err();
        assert!(!err.to_string().contains("bad value"));
        assert!(err.to_string().contains("environment variable K"));
    }

    const TOKEN: &str = r#""token":{"issuer":"https://iss","audiences":["aud-1"],
        "remote_jwks":[{"cluster":"region","uri":"https://region.example/keys?x=1"},
                       {"cluster":"paired","uri":"http://paired.example","timeout_seconds":2.0}],
        "claim_to_headers":[{"claim":"sub","header":"X-Caller"}]}"#;

    #[test]
    fn token_settings_and_services_compile() {
        let json = format!(
            r#"{{"primary_key":"top","auth_enabled":true,{TOKEN},"services":[
                {{"name":"k","path_prefix":"/k/"}},
                {{"name":"t","path_prefix":"/t/","hosts":["A.example"],"auth_enabled":false,
                  "token_auth_enabled":true,"token":{{"audiences":["aud-2"]}}}}]}}"#
        );
        let cfg = parse_str(&json).unwrap();
        let token = cfg.token.as_ref().unwrap();
        assert_eq!(token.remote.len(), 2);
        assert_eq!(token.remote[0].authority, "region.example");
        assert_eq!(token.remote[0].path, "/keys?x=1");
        assert_eq!(token.remote[1].path, "/");
        assert_eq!(token.remote[1].timing.timeout_ms, 2_000);
        assert_eq!(token.remote[0].timing.refresh_ms, 600_000);
        assert_eq!(token.remote[0].timing.max_stale_ms, 86_400_000);
        assert_eq!(token.fingerprint.len(), 16);
        assert!(matches!(cfg.services[0].policy.mode, AuthMode::Key(_)));
        assert_eq!(cfg.services[1].hosts, vec!["a.example".to_string()]);
        let AuthMode::Token(svc) = &cfg.services[1].policy.mode else {
            panic!("expected token mode")
        };
        assert_eq!(svc.policy.audiences, Some(vec!["aud-2".to_string()]));
        assert_eq!(svc.policy.clock_skew_seconds, 60);
        assert!(svc.policy.require_expiration);
        assert_eq!(svc.claim_to_headers[0].header, "x-caller");
    }

    #[test]
    fn fingerprint_follows_the_sources() {
        let a = parse_str(&format!(r#"{{"auth_enabled":false,{TOKEN}}}"#)).unwrap();
        let other = TOKEN.replace("region.example", "elsewhere.example");
        let b = parse_str(&format!(r#"{{"auth_enabled":false,{other}}}"#)).unwrap();
        assert_ne!(a.token.unwrap().fingerprint, b.token.unwrap().fingerprint);
    }

    #[test]
    fn token_and_service_refusals_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"auth_enabled":false,"token":{"issuer":""}}"#,
                "token.issuer",
                "required",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","audiences":[]}}"#,
                "token.audiences",
                "at least one",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","audiences":[""]}}"#,
                "token.audiences[0]",
                "non-empty",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":[]}}"#,
                "token.remote_jwks",
                "at least one",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":"x"}}"#,
                "token.remote_jwks",
                "an object or an array",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"uri":"https://h/"}}}"#,
                "token.remote_jwks.cluster",
                "required",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://u@h/"}}}"#,
                "token.remote_jwks.uri",
                "absolute",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/","timeout_seconds":0}}}"#,
                "token.remote_jwks.timeout_seconds",
                "from 1 to 60",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/","refresh_interval_seconds":1.5}}}"#,
                "token.remote_jwks.refresh_interval_seconds",
                "whole number",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":[{"cluster":"c","uri":"https://h/","nope":1}]}}"#,
                "token.remote_jwks[0].nope",
                "unknown field",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":[]}}"#,
                "token.local_jwks",
                "JWKS object",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":{"keys":[]}}}"#,
                "token.local_jwks",
                "no usable key",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":{"keys":[]},"claim_to_headers":[{"claim":"sub","header":"Authorization"}]}}"#,
                "token.local_jwks",
                "no usable key",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"sub","header":"Authorization"}]}}"#,
                "token.claim_to_headers[0].header",
                "pseudo-header",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"},"claim_to_headers":[{"claim":"a","header":"x"},{"claim":"b","header":"X"}]}}"#,
                "token.claim_to_headers[1].header",
                "two claims",
            ),
            (
                r#"{"primary_key":"k","services":{}}"#,
                "services",
                "an array",
            ),
            (
                r#"{"primary_key":"k","services":[{"path_prefix":"/"}]}"#,
                "services[0].name",
                "needs a name",
            ),
            (
                r#"{"primary_key":"k","services":[{"name":"default","path_prefix":"/"}]}"#,
                "services[0].name",
                "reserved",
            ),
            (
                r#"{"primary_key":"k","services":[{"name":"a"}]}"#,
                "services[0].path_prefix",
                "needs a path_prefix",
            ),
            (
                r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a?b"}]}"#,
                "services[0].path_prefix",
                "could never match",
            ),
            (
                r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a","hosts":[]}]}"#,
                "services[0].hosts",
                "at least one host",
            ),
            (
                r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a","hosts":["a b"]}]}"#,
                "services[0].hosts[0]",
                "host name",
            ),
            (
                r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a","token":{"issuer":"x"}}]}"#,
                "services[0].token.issuer",
                "unknown field",
            ),
        ];
        for (json, field, fragment) in cases {
            let err = parse_str(json).unwrap_err();
            assert_eq!(err.field, *field, "{json}: {err}");
            assert!(err.message.contains(fragment), "{json}: {err}");
        }
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth_with_their_path() {
        let token = r#""token":{"issuer":"i","remote_jwks":{"cluster":"c","uri":"https://h/"}}"#;
        let cases: Vec<(String, &str)> = vec![
            (
                r#"{"auth_enabled":true,"primary_key":"K","auth_enabled":false}"#.into(),
                "auth_enabled",
            ),
            (
                r#"{"primary_key":"K","services":[{"name":"a","path_prefix":"/a/"}],"services":[]}"#
                    .into(),
                "services",
            ),
            (r#"{"primary_key":"K","primary\u005fkey":"L"}"#.into(), "primary_key"),
            (
                r#"{"primary_key":"K","services":[{"name":"a","path_prefix":"/a/"},{"name":"b","path_prefix":"/b/","name":"c"}]}"#
                    .into(),
                "services[1].name",
            ),
            (
                format!(
                    r#"{{"auth_enabled":false,{}}}"#,
                    token.replace(r#""cluster":"c""#, r#""cluster":"c","clu\u0073ter":"d""#)
                ),
                "token.remote_jwks.cluster",
            ),
            (
                r#"{"auth_enabled":false,"token":{"issuer":"i","local_jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","use":"enc","use":"sig","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}}}"#
                    .into(),
                "token.local_jwks.keys[0].use",
            ),
            (
                r#"{"primary_key":"K","realm":"a","x":{"y":1,"y":2}}"#.into(),
                "x.y",
            ),
        ];
        for (json, field) in &cases {
            let err = parse_str(json).unwrap_err();
            assert_eq!(err.field, *field, "{json}: {err}");
            assert!(err.message.contains("appears twice"), "{json}: {err}");
        }
    }

    #[test]
    fn nesting_past_64_levels_is_refused() {
        let nested = |levels: usize| {
            format!(
                r#"{{"primary_key":"K","realm":{}"a"{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let err = parse_str(&nested(64)).unwrap_err();
        assert_eq!(err.field, "");
        assert!(err.message.contains("deeper than 64"), "{err}");
        // 63 levels inside the document is within the cap: the realm type is what is refused.
        assert_eq!(parse_str(&nested(63)).unwrap_err().field, "realm");
    }

    const TOKEN_MODE: &str = r#""auth_enabled":false,"token_auth_enabled":true"#;
    const LOCAL: &str = r#""local_jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn token_config(top: &str, token: &str, services: &str) -> String {
        format!(r#"{{{TOKEN_MODE}{top},"token":{{{LOCAL}{token}}},"services":[{services}]}}"#)
    }

    fn token_service(cfg: &FilterConfig, i: usize) -> &TokenService {
        let policy = cfg
            .services
            .get(i)
            .map_or(&cfg.default_policy, |s| &s.policy);
        match &policy.mode {
            AuthMode::Token(t) => t,
            other => panic!("{}: {other:?}", policy.name),
        }
    }

    #[test]
    fn issuers_max_token_bytes_principal_and_rules_compile() {
        let json = token_config(
            r#","max_token_bytes":20480,"expose_principal":true,"required_claims":{"roles":["Model.Score"],"tid":["t1","t2"]}"#,
            r#","issuer":["https://sts.windows.net/t/","https://login.microsoftonline.com/t/v2.0"],"principal_claim":"oid","claim_to_headers":[{"claim":"oid","header":"x-oid"}]"#,
            r#"{"name":"v1","path_prefix":"/v1/","token":{"issuers":["https://sts.windows.net/t/"]},"expose_principal":false},
               {"name":"open","path_prefix":"/open/","required_claims":{},"claim_to_headers":[{"claim":"sub","header":"x-sub"}]},
               {"name":"scoped","path_prefix":"/s/","required_claims":{"scp":["model.score"]}},
               {"name":"keyed","path_prefix":"/k/","auth_enabled":true,"token_auth_enabled":false,"primary_key":"K","claim_to_headers":[{"claim":"a","header":"x-keyed"}]}"#,
        );
        let cfg = parse_str(&json).unwrap();
        let token = cfg.token.as_ref().unwrap();
        assert_eq!(
            token.issuers,
            [
                "https://sts.windows.net/t/",
                "https://login.microsoftonline.com/t/v2.0"
            ]
        );
        let top = token_service(&cfg, usize::MAX);
        assert_eq!(top.policy.issuers, token.issuers);
        assert_eq!(top.policy.max_token_bytes, 20_480);
        assert_eq!(top.principal_claim, "oid");
        assert!(cfg.default_policy.expose_principal);
        let names: Vec<(&str, Vec<&str>)> = top
            .required_claims
            .iter()
            .map(|r| {
                (
                    cfg.required_claim_name(r.name_id).unwrap(),
                    r.allowed.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [("roles", vec!["Model.Score"]), ("tid", vec!["t1", "t2"])]
        );
        let v1 = token_service(&cfg, 0);
        assert_eq!(v1.policy.issuers, ["https://sts.windows.net/t/"]);
        assert_eq!(v1.required_claims, top.required_claims);
        assert!(!cfg.services[0].policy.expose_principal);
        assert!(token_service(&cfg, 1).required_claims.is_empty());
        let scoped = &token_service(&cfg, 2).required_claims;
        assert_eq!(cfg.required_claim_name(scoped[0].name_id), Some("scp"));
        assert!(cfg.services[3].policy.expose_principal);
        assert_eq!(cfg.claim_headers, ["x-keyed", "x-oid", "x-sub"]);

        let plain = parse_str(&token_config("", r#","issuer":"https://one""#, "")).unwrap();
        let policy = &token_service(&plain, usize::MAX).policy;
        assert_eq!(policy.issuers, ["https://one"]);
        assert_eq!(policy.max_token_bytes, 32_768);
        assert_eq!(token_service(&plain, usize::MAX).principal_claim, "sub");
        assert!(!plain.default_policy.expose_principal);
        assert!(plain.claim_headers.is_empty());
    }

    #[test]
    fn new_field_refusals_name_the_field() {
        let iss = r#","issuer":"https://a""#;
        let svc = |extra: &str| format!(r#"{{"name":"s","path_prefix":"/s/"{extra}}}"#);
        let cases: Vec<(String, &str, &str)> = vec![
            (
                token_config(r#","max_token_bytes":1023"#, iss, ""),
                "max_token_bytes",
                "from 1024 to 61440",
            ),
            (
                token_config(r#","max_token_bytes":61441"#, iss, ""),
                "max_token_bytes",
                "from 1024 to 61440",
            ),
            (
                token_config(r#","max_token_bytes":"4096""#, iss, ""),
                "max_token_bytes",
                "whole number",
            ),
            (
                token_config("", r#","issuer":[]"#, ""),
                "token.issuer",
                "at least one",
            ),
            (
                token_config("", r#","issuer":["a",""]"#, ""),
                "token.issuer[1]",
                "non-empty",
            ),
            (
                token_config("", r#","issuer":["a","a"]"#, ""),
                "token.issuer[1]",
                "twice",
            ),
            (
                token_config("", r#","issuer":7"#, ""),
                "token.issuer",
                "a string or an array",
            ),
            (token_config("", "", ""), "token.issuer", "required"),
            (
                token_config("", &format!(r#"{iss},"principal_claim":"""#), ""),
                "token.principal_claim",
                "must name",
            ),
            (
                token_config("", iss, &svc(r#","token":{"issuers":["https://b"]}"#)),
                "services[0].token.issuers[0]",
                "not one of the issuers",
            ),
            (
                token_config("", iss, &svc(r#","token":{"issuers":[]}"#)),
                "services[0].token.issuers",
                "at least one",
            ),
            (
                token_config(r#","required_claims":{"roles":[]}"#, iss, ""),
                "required_claims.roles",
                "at least one",
            ),
            (
                token_config(r#","required_claims":{"roles":"Model.Score"}"#, iss, ""),
                "required_claims.roles",
                "an array",
            ),
            (
                token_config(r#","required_claims":{"roles":[1]}"#, iss, ""),
                "required_claims.roles[0]",
                "non-empty string",
            ),
            (
                token_config(r#","required_claims":{"":["x"]}"#, iss, ""),
                "required_claims.",
                "must not be empty",
            ),
            (
                token_config(r#","required_claims":["roles"]"#, iss, ""),
                "required_claims",
                "JSON object",
            ),
            (
                token_config("", iss, &svc(r#","required_claims":{"scp":["a b"]}"#)),
                "services[0].required_claims.scp[0]",
                "word by word",
            ),
            (
                token_config(
                    "",
                    iss,
                    &svc(
                        r#","auth_enabled":true,"token_auth_enabled":false,"primary_key":"K","required_claims":{"roles":["r"]}"#,
                    ),
                ),
                "services[0].required_claims",
                "only checked in token mode",
            ),
            (
                token_config(
                    "",
                    iss,
                    &svc(r#","token_auth_enabled":false,"required_claims":{"roles":["r"]}"#),
                ),
                "services[0].required_claims",
                "only checked in token mode",
            ),
            (
                r#"{"primary_key":"K","required_claims":{"roles":["r"]}}"#.to_string(),
                "required_claims",
                "no token-mode policy inherits",
            ),
            (
                token_config("", iss, &svc(r#","expose_principal":"yes""#)),
                "services[0].expose_principal",
                "true or false",
            ),
        ];
        for (json, field, fragment) in &cases {
            let err = parse_str(json).unwrap_err();
            assert_eq!(err.field, *field, "{json}: {err}");
            assert!(err.message.contains(fragment), "{json}: {err}");
        }
    }

    #[test]
    fn prefixes_that_can_never_match_are_refused() {
        for prefix in [
            "/api/v1/service/mod\\u00e8le/",
            "/my%2dmodel/",
            "/a//b/",
            "//",
            "/a/./b/",
            "/a/../b/",
            "/a/.",
            "/a/..",
            "/a\\\\b/",
            "/a;b/",
            "/a b/",
            "/a\\tb/",
            "/a\\u200bb/",
            "/a\\ufeff/",
            "/a?b",
            "/a#b",
            "a/",
            "",
        ] {
            let json = format!(
                r#"{{"primary_key":"k","services":[{{"name":"a","path_prefix":"{prefix}"}}]}}"#
            );
            let err = parse_str(&json).unwrap_err();
            assert_eq!(err.field, "services[0].path_prefix", "{prefix}: {err}");
        }
        for prefix in [
            "/",
            "/api/v1/service/fraud/",
            "/v1/models/m:predict",
            "/a.b/..c/~x/",
        ] {
            let json = format!(
                r#"{{"primary_key":"k","services":[{{"name":"a","path_prefix":"{prefix}"}}]}}"#
            );
            assert_eq!(parse_str(&json).unwrap().services[0].path_prefix, prefix);
        }
    }

    #[test]
    fn hosts_are_canonical_or_refused() {
        let parsed = parse_str(
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/a/",
                "hosts":["Models.Contoso.com.","models.contoso.com.:0443","[0::1]:80","XN--MODLE-6RA.example"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            parsed.services[0].hosts,
            [
                "models.contoso.com",
                "models.contoso.com:443",
                "[::1]:80",
                "xn--modle-6ra.example"
            ]
        );
        for host in [
            "models.contoso.com:",
            "models.contoso.com:443:443",
            "models.contoso.com:abc",
            "models.contoso.com..",
            "mod\\u00e8le.example",
            "a\\u200b.example",
            "*.example",
            "user@h",
            "",
        ] {
            let json = format!(
                r#"{{"primary_key":"k","services":[{{"name":"a","path_prefix":"/a/","hosts":["{host}"]}}]}}"#
            );
            let err = parse_str(&json).unwrap_err();
            assert_eq!(err.field, "services[0].hosts[0]", "{host}: {err}");
        }
        let err = parse_str(
            r#"{"primary_key":"k","services":[{"name":"a","path_prefix":"/A/","hosts":["h"]},
                {"name":"b","path_prefix":"/a/","hosts":["H."]}]}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "services[1].path_prefix", "{err}");
    }

    #[test]
    fn route_selection_is_all_or_nothing() {
        let parsed = parse_str(
            r#"{"primary_key":"k","services":[
                {"name":"a","route_names":["fraud","fraud-v2"]},
                {"name":"b","clusters":["outbound|80||b.svc"],"allow_path_parameters":true}]}"#,
        )
        .unwrap();
        assert_eq!(parsed.services[0].route_names, ["fraud", "fraud-v2"]);
        assert!(parsed.services[0].path_prefix.is_empty());
        assert_eq!(parsed.services[1].clusters, ["outbound|80||b.svc"]);
        assert!(parsed.services[1].allow_path_parameters);
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"[{"name":"a","route_names":["r"],"path_prefix":"/a/"}]"#,
                "services[0].path_prefix",
                "can't also have",
            ),
            (
                r#"[{"name":"a","clusters":["c"],"hosts":["h"]}]"#,
                "services[0].path_prefix",
                "can't also have",
            ),
            (
                r#"[{"name":"a","route_names":["r"]},{"name":"b","path_prefix":"/b/"}]"#,
                "services[1].path_prefix",
                "every service must select the same way",
            ),
            (
                r#"[{"name":"a","path_prefix":"/a/"},{"name":"b","route_names":["r"]}]"#,
                "services[1].route_names",
                "every service must select the same way",
            ),
            (
                r#"[{"name":"a","route_names":["r"]},{"name":"b","route_names":["r"]}]"#,
                "services[1].route_names[0]",
                "more than one service",
            ),
            (
                r#"[{"name":"a","clusters":["c","c"]}]"#,
                "services[0].clusters[1]",
                "more than one service",
            ),
            (
                r#"[{"name":"a","route_names":[]}]"#,
                "services[0].route_names",
                "at least one",
            ),
            (
                r#"[{"name":"a","route_names":["a\nb"]}]"#,
                "services[0].route_names[0]",
                "control",
            ),
            (
                r#"[{"name":"a","path_prefix":"/a/","allow_path_parameters":"yes"}]"#,
                "services[0].allow_path_parameters",
                "",
            ),
        ];
        for (services, field, fragment) in cases {
            let json = format!(r#"{{"primary_key":"k","services":{services}}}"#);
            let err = parse_str(&json).unwrap_err();
            assert_eq!(err.field, *field, "{json}: {err}");
            assert!(err.message.contains(fragment), "{json}: {err}");
        }
    }
}
