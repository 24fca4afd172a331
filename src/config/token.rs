//! Token settings: issuers, key sources (inline, remote, OpenID Connect discovery), time and size
//! limits, the claims copied to headers and the claims a token must hold.

use serde_json::Value;

use super::obj::{kind, Obj};
use super::{ConfigError, Workspace};
use crate::keys::KeyDigest;
use crate::token::claims::{RequiredClaim, SPACE_SEPARATED_CLAIM};
use crate::token::jwks::{parse_jwks, JwksError};
use crate::token::jwks_cache::SourceTiming;
use crate::token::jwt::TokenPolicy;
use crate::token::token_cache::DEFAULT_MAX_BYTES;

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
    /// Byte budget of each VM's verified-token cache (`cache_max_bytes`; 0 turns it off).
    pub cache_max_bytes: usize,
}

/// Largest `token.cache_max_bytes` accepted (per VM, so per Envoy worker).
pub const MAX_CACHE_BYTES: u64 = 1 << 30;

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

/// The workspace-wide token rules every token-mode policy starts from.
pub(super) struct WorkspaceToken {
    pub(super) policy: TokenPolicy,
    pub(super) claims: Vec<ClaimHeader>,
    pub(super) principal_claim: String,
}

pub(super) fn compile_token(
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
        "cache_max_bytes",
    ])?;
    let issuers = compile_issuers(t)?;
    let cache_max_bytes = t
        .u64("cache_max_bytes", 0, MAX_CACHE_BYTES)?
        .map_or(DEFAULT_MAX_BYTES, |n| {
            usize::try_from(n).unwrap_or(DEFAULT_MAX_BYTES)
        });
    let audiences = t.string_list("audiences")?;
    let policy = TokenPolicy {
        issuers: issuers.clone(),
        audiences,
        clock_skew_seconds: t.u64("clock_skew_seconds", 0, 3_600)?.unwrap_or(60),
        max_lifetime_seconds: t.u64("max_lifetime_seconds", 1, 400 * 86_400)?,
        require_expiration: t.bool("require_expiration")?.unwrap_or(true),
        max_token_bytes,
    };
    let principal_claim = compile_principal(t)?;
    let local_jwks = compile_local_jwks(t)?;
    let remote = compile_remote_list(t, &issuers)?;
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
    let fingerprint = sources_fingerprint(&remote);
    Ok((
        TokenSettings {
            issuers,
            local_jwks,
            remote,
            fingerprint,
            cache_max_bytes,
        },
        WorkspaceToken {
            policy,
            claims,
            principal_claim,
        },
    ))
}

/// `token.principal_claim`: the claim whose value is the caller's identity (default `sub`).
fn compile_principal(t: &Obj<'_>) -> Result<String, ConfigError> {
    match t.string("principal_claim")? {
        None => Ok("sub".to_string()),
        Some("") => Err(ConfigError::new(
            t.path("principal_claim"),
            "must name a claim (default `sub`)",
        )),
        Some(name) => Ok(name.to_string()),
    }
}

/// `token.local_jwks`: an inline key set, refused unless it holds a usable key.
fn compile_local_jwks(t: &Obj<'_>) -> Result<Option<Value>, ConfigError> {
    let Some(v) = t.map.get("local_jwks") else {
        return Ok(None);
    };
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
    Ok(Some(v.clone()))
}

/// `token.remote_jwks`: one source, or a non-empty array of sources tried in order.
fn compile_remote_list(t: &Obj<'_>, issuers: &[String]) -> Result<Vec<RemoteJwks>, ConfigError> {
    match t.map.get("remote_jwks") {
        None => Ok(Vec::new()),
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
                    issuers,
                )?);
            }
            Ok(out)
        }
        Some(v @ Value::Object(_)) => Ok(vec![compile_remote(
            &Obj::new(&t.path("remote_jwks"), v)?,
            issuers,
        )?]),
        Some(other) => Err(t.wrong_type("remote_jwks", "an object or an array of objects", other)),
    }
}

/// [`TokenSettings::fingerprint`]: a digest of the remote sources' clusters, URIs and discovery.
fn sources_fingerprint(remote: &[RemoteJwks]) -> String {
    let mut fingerprint_input = String::new();
    for r in remote {
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
    fingerprint.get(7..23).unwrap_or_default().to_string()
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
    let refresh_ms = seconds("refresh_interval_seconds", 1, 7 * 86_400, 600)?;
    let max_stale_ms = seconds("max_stale_seconds", 1, 365 * 86_400, 86_400)?;
    if max_stale_ms < refresh_ms {
        let given = |key: &str| match obj.u64(key, 0, u64::MAX) {
            Ok(Some(_)) => "",
            _ => ", its default",
        };
        return Err(ConfigError::new(
            obj.path("max_stale_seconds"),
            format!(
                "is {} s{}, below `refresh_interval_seconds` ({} s{}): the key set would go \
                 stale before its next refresh; `max_stale_seconds` must be at least \
                 `refresh_interval_seconds`",
                max_stale_ms / 1_000,
                given("max_stale_seconds"),
                refresh_ms / 1_000,
                given("refresh_interval_seconds"),
            ),
        ));
    }
    Ok(RemoteJwks {
        cluster: cluster.to_string(),
        uri: uri.to_string(),
        authority,
        path,
        timing: SourceTiming {
            timeout_ms: seconds("timeout_seconds", 1, 60, 5)?,
            refresh_ms,
            max_stale_ms,
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

/// The `required_claims` object of `obj`, when present.
pub(super) fn compile_required(
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

pub(super) fn compile_claims(path: &str, list: &[Value]) -> Result<Vec<ClaimHeader>, ConfigError> {
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
        let spelling = crate::token::claims::canonical_spelling(&header);
        if !valid || RESERVED_HEADERS.contains(&spelling.as_str()) {
            return Err(ConfigError::new(
                obj.path("header"),
                "must be a header name of letters, digits, `-_.`, and not a pseudo-header, authorization, host or a framing header (in any spelling: `_` and `.` read as `-`)",
            ));
        }
        if out
            .iter()
            .any(|c| crate::token::claims::canonical_spelling(&c.header) == spelling)
        {
            return Err(ConfigError::new(
                obj.path("header"),
                format!("header `{header}` is set by two claims (`_` and `.` read as `-`)"),
            ));
        }
        out.push(ClaimHeader {
            claim: claim.to_string(),
            header,
        });
    }
    Ok(out)
}
