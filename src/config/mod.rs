//! Plugin configuration: the JSON object is parsed, then compiled into a validated [`FilterConfig`];
//! every refusal is a [`ConfigError`] naming the field. This file holds the top level; services,
//! token settings and the strict object walker live beside it.

mod obj;
mod services;
#[cfg(test)]
mod tests;
mod token;

use std::cell::RefCell;

use serde_json::Value;

use crate::token::jwt::{DEFAULT_MAX_TOKEN_LEN, MAX_TOKEN_LEN, MIN_TOKEN_LEN};
use crate::token::strict_json::{self, StrictError};

use obj::Obj;
use services::{compile_policy, compile_services, Inherited};
pub use services::{AuthMode, ServicePolicy, ServiceRoute, MAX_SERVICES};
pub(crate) use token::split_uri;
use token::{compile_token, WorkspaceToken};
pub use token::{
    ClaimHeader, Discovery, RemoteJwks, TokenService, TokenSettings, MAX_ALLOWED_VALUES,
    MAX_REQUIRED_CLAIMS,
};

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
    /// Names of the required claims, indexed by [`RequiredClaim::name_id`](crate::token::claims::RequiredClaim::name_id).
    pub required_claim_names: Vec<String>,
    /// Where this instance runs in Envoy's filter chains (`phase`).
    pub phase: Phase,
    /// What a request gets whose Envoy route and cluster no service names (`unmatched_routes`),
    /// when services select by route names or clusters.
    pub unmatched_routes: Unmatched,
}

/// Where the filter judges a request (`phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `downstream` (the default): in the listener's HTTP filter chain, before the router
    /// matches its final route. A request-header edit (the filter's own or an earlier filter's)
    /// can make the router choose another route after the filter judged.
    Downstream,
    /// `upstream`: in the router's upstream HTTP filter chain, where the route and cluster are
    /// final, so the policy judged is the policy of the route served. Needs services selected by
    /// `route_names` or `clusters`.
    Upstream,
}

/// The policy for a request whose route and cluster no service names (`unmatched_routes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// `refuse` (the default): refused with `no_service` (403), and counted.
    Refuse,
    /// `top_level_policy`: judged by the top-level policy (stats under `default`).
    TopLevelPolicy,
}

impl FilterConfig {
    /// Whether every request is passed through: no services, and no auth at the top level.
    pub fn passes_everything(&self) -> bool {
        self.services.is_empty() && self.default_policy.mode == AuthMode::PassThrough
    }

    /// The name of the required claim a denial refers to.
    pub fn required_claim_name(&self, name_id: u32) -> Option<&str> {
        usize::try_from(name_id)
            .ok()
            .and_then(|i| self.required_claim_names.get(i))
            .map(String::as_str)
    }
}

/// Looks up an environment variable of the VM (for `env:NAME` key values).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

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
        "phase",
        "unmatched_routes",
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
    unused_top_level_keys(&root, &default_policy, &services)?;
    let by_route = services
        .iter()
        .any(|s| !s.route_names.is_empty() || !s.clusters.is_empty());
    let phase = match root.string("phase")? {
        None | Some("downstream") => Phase::Downstream,
        Some("upstream") if by_route => Phase::Upstream,
        Some("upstream") => {
            return Err(ConfigError::new(
                root.path("phase"),
                "`upstream` needs services selected by route_names or clusters (the router may rewrite the path and host an upstream filter sees, so path_prefix services are judged downstream)",
            ))
        }
        Some(other) => {
            return Err(ConfigError::new(
                root.path("phase"),
                format!("must be `downstream` or `upstream`, found `{other}`"),
            ))
        }
    };
    let unmatched_routes = match root.string("unmatched_routes")? {
        None | Some("refuse") => Unmatched::Refuse,
        Some("top_level_policy") if by_route => Unmatched::TopLevelPolicy,
        Some("top_level_policy") => {
            return Err(ConfigError::new(
                root.path("unmatched_routes"),
                "applies only when services select by route_names or clusters (by path_prefix, a request no service matches is always judged by the top-level policy)",
            ))
        }
        Some(other) => {
            return Err(ConfigError::new(
                root.path("unmatched_routes"),
                format!("must be `refuse` or `top_level_policy`, found `{other}`"),
            ))
        }
    };
    let mut claim_headers = workspace.claim_headers.take();
    claim_headers.sort_unstable();
    claim_headers.dedup();
    Ok(FilterConfig {
        phase,
        unmatched_routes,
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
        return Err(ConfigError::new(
            "",
            "the configuration is empty: it must be a JSON object; key auth is on by default and needs primary_key or secondary_key (or set auth_enabled false and token_auth_enabled true with `token` settings)",
        ));
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

/// Refuses a top-level `primary_key`/`secondary_key` that no key-mode policy uses: the top level
/// is not in key mode and every key-mode service has its own key in that slot (or there is none).
fn unused_top_level_keys(
    root: &Obj<'_>,
    default_policy: &ServicePolicy,
    services: &[ServiceRoute],
) -> Result<(), ConfigError> {
    if matches!(default_policy.mode, AuthMode::Key(_)) {
        return Ok(());
    }
    let raw: &[Value] = root
        .map
        .get("services")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    for field in ["primary_key", "secondary_key"] {
        if !root.map.contains_key(field) {
            continue;
        }
        let inherited = services.iter().zip(raw).any(|(service, item)| {
            matches!(service.policy.mode, AuthMode::Key(_)) && item.get(field).is_none()
        });
        if !inherited {
            return Err(ConfigError::new(
                root.path(field),
                "is set but no policy uses it: the top level is not in key mode (auth_enabled is false) and no key-mode service inherits it, so the key would never apply: remove it, or set it on the key-mode service that should use it",
            ));
        }
    }
    Ok(())
}
