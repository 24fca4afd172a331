//! `token check`: how the filter would judge one token, check by check, with the filter's own
//! configuration parser, router, decision ([`policy::decide`]) and verifier ([`jwt::trace`]).
//! Keys come from a JWKS file or the configuration's `local_jwks`; nothing is fetched.

use std::fs;
use std::path::Path;

use aml_auth_filter::config::{
    self, AuthMode, FilterConfig, ServicePolicy, ServiceRoute, TokenService, Unmatched,
};
use aml_auth_filter::request::policy::{self, Keys, TokenInputs, Unavailable, Verdict};
use aml_auth_filter::request::router::{Router, Target as RequestTarget};
use aml_auth_filter::request::status::{self, Denial};
use aml_auth_filter::token::jwks::{parse_jwks, KeySet};
use aml_auth_filter::token::jwt::{self, Check, TokenError};
use base64::Engine as _;
use serde_json::Value;

use crate::token::rfc3339;
use crate::CliError;

/// Which policy judges the token.
pub enum Target<'a> {
    /// The top-level policy.
    Default,
    /// `services[].name`.
    Service(&'a str),
    /// The service the router picks for this request.
    Request {
        /// `:path` (by route: `/` when not given).
        path: Option<&'a str>,
        /// `:authority`, empty when not given.
        host: &'a str,
        /// Envoy's route name, for services selected by `route_names`.
        route: Option<&'a str>,
        /// Envoy's upstream cluster, for services selected by `clusters`.
        cluster: Option<&'a str>,
    },
}

const CMD: &str = "aml-auth token check";

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage {
        message: message.into(),
        command: CMD,
    }
}

/// Where a service applies, as its service line names it.
fn selection(route: &ServiceRoute) -> String {
    if !route.route_names.is_empty() || !route.clusters.is_empty() {
        let mut parts = Vec::new();
        if !route.route_names.is_empty() {
            parts.push(format!("route {}", route.route_names.join(",")));
        }
        if !route.clusters.is_empty() {
            parts.push(format!("cluster {}", route.clusters.join(",")));
        }
        return parts.join(", ");
    }
    if route.hosts.is_empty() {
        format!("path_prefix {}", route.path_prefix)
    } else {
        format!(
            "path_prefix {}, hosts {}",
            route.path_prefix,
            route.hosts.join(",")
        )
    }
}

/// The policy chosen for the request.
enum Chosen {
    /// A service (`None`: the top-level policy), and how it was chosen.
    Policy(Option<usize>, String),
    /// Services select by route and none names this one: refused with `no_service`.
    NoService(String),
}

/// What `token check` was asked to do.
pub struct Request<'a> {
    /// The plugin configuration file.
    pub config: &'a Path,
    /// Which policy.
    pub target: Target<'a>,
    /// A JWKS file, instead of the configuration's `local_jwks`.
    pub jwks: Option<&'a Path>,
    /// When to judge (Unix seconds).
    pub at: i64,
    /// The token.
    pub token: &'a str,
}

/// The report and whether the filter would let the request through.
pub struct Report {
    /// Lines for stdout.
    pub lines: Vec<String>,
    /// Allowed (or passed through unchecked).
    pub allowed: bool,
}

/// Parses `--at`: Unix seconds, or RFC 3339 (`2024-05-01T12:00:00Z`, `...+02:00`, fractions
/// of a second ignored).
pub fn parse_at(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "--at: `{text}` is neither Unix seconds nor an RFC 3339 time (2024-05-01T12:00:00Z)"
        )
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().map_err(|_| bad());
    }
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(bad)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if b.len() < 20 || !sep(4, b"-") || !sep(7, b"-") || !sep(10, b"Tt ") || !sep(13, b":") {
        return Err(bad());
    }
    if !sep(16, b":") {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = text.get(19..).ok_or_else(bad)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = frac.get(digits..).ok_or_else(bad)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let (h, m) = rest
                .get(1..)
                .and_then(|o| o.split_once(':'))
                .filter(|(h, m)| h.len() == 2 && m.len() == 2)
                .ok_or_else(bad)?;
            let (h, m) = (
                h.parse::<i64>().map_err(|_| bad())?,
                m.parse::<i64>().map_err(|_| bad())?,
            );
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * (h * 3_600 + m * 60)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hour * 3_600 + minute * 60 + second.min(59) - offset)
}

/// The service judging the request and how it was chosen.
fn describe_target(cfg: &FilterConfig, target: &Target<'_>) -> Result<Chosen, CliError> {
    let named = |index: Option<usize>| match index.and_then(|i| Some((i, cfg.services.get(i)?))) {
        Some((i, route)) => format!(
            "{} (services[{i}], {})",
            route.policy.name,
            selection(route)
        ),
        None => format!("{} (the top-level policy)", config::DEFAULT_SERVICE),
    };
    match target {
        Target::Default => Ok(Chosen::Policy(None, named(None))),
        Target::Service(name) if *name == config::DEFAULT_SERVICE => {
            Ok(Chosen::Policy(None, named(None)))
        }
        Target::Service(name) => {
            let index = cfg
                .services
                .iter()
                .position(|s| s.policy.name == *name)
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        cfg.services.iter().map(|s| s.policy.name.as_str()).collect();
                    usage(format!(
                        "--service {name}: no such service (services: {}; `default` is the top-level policy)",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ))
                })?;
            Ok(Chosen::Policy(Some(index), named(Some(index))))
        }
        Target::Request {
            path,
            host,
            route,
            cluster,
        } => {
            let router = Router::new(&cfg.services);
            let by_route = route.is_some() || cluster.is_some();
            if cfg.services.is_empty() {
                return Err(usage(
                    "the configuration has no services: every request gets the top-level policy (leave out --path, --route and --cluster)",
                ));
            }
            if router.selects_by_route() && !by_route {
                return Err(usage(
                    "the services select by Envoy route (route_names/clusters), which --path cannot tell: give --route NAME or --cluster NAME (the route or cluster Envoy chooses), or --service NAME",
                ));
            }
            if !router.selects_by_route() && by_route {
                return Err(usage(
                    "the services select by path_prefix: give --path PATH (and --host HOST), or --service NAME",
                ));
            }
            // Without --host: a name no configuration lists (RFC 2606 reserves `.invalid`).
            let authority = if host.is_empty() {
                "unspecified.invalid"
            } else {
                host
            };
            let index = router
                .select(RequestTarget {
                    authority: Some(authority.as_bytes()),
                    path: Some(path.unwrap_or("/").as_bytes()),
                    route_name: *route,
                    cluster: *cluster,
                })
                .map_err(|e| {
                    CliError::fail(format!(
                        "the filter refuses this request with 400 {}: {}",
                        e.code(),
                        e.message()
                    ))
                })?
                .service;
            let mut how = Vec::new();
            if let Some(path) = path {
                how.push(format!("--path {path}"));
            }
            if !host.is_empty() {
                how.push(format!("--host {host}"));
            }
            if let Some(route) = route {
                how.push(format!("--route {route}"));
            }
            if let Some(cluster) = cluster {
                how.push(format!("--cluster {cluster}"));
            }
            let how = how.join(" ");
            if index.is_none() && by_route && cfg.unmatched_routes == Unmatched::Refuse {
                return Ok(Chosen::NoService(format!(
                    "none: no service names {how} (and unmatched_routes is `refuse`)"
                )));
            }
            let verb = if by_route { "chosen by" } else { "routed from" };
            Ok(Chosen::Policy(
                index,
                format!("{} {verb} {how}", named(index)),
            ))
        }
    }
}

/// The keys the filter would hold, as far as this command can know them.
enum Loaded {
    /// The whole key set: `--jwks` (standing for the fetched remote set) with `local_jwks`.
    Ready(KeySet),
    /// Only `local_jwks`: the remote set is not fetched here.
    LocalOnly(KeySet),
    /// No key at all.
    Nothing,
}

fn local_keys(cfg: &FilterConfig) -> Result<Option<KeySet>, CliError> {
    let Some(value) = cfg.token.as_ref().and_then(|t| t.local_jwks.as_ref()) else {
        return Ok(None);
    };
    let bytes = serde_json::to_vec(value).map_err(|e| CliError::fail(e.to_string()))?;
    parse_jwks(&bytes)
        .map(|parsed| Some(parsed.keys))
        .map_err(|e| CliError::fail(format!("token.local_jwks is refused ({e})")))
}

fn load_keys(cfg: &FilterConfig, jwks: Option<&Path>) -> Result<(Loaded, String), CliError> {
    let local = local_keys(cfg)?;
    let has_remote = cfg.token.as_ref().is_some_and(|t| !t.remote.is_empty());
    let local_count = local.as_ref().map_or(0, KeySet::len);
    if let Some(path) = jwks {
        let bytes = fs::read(path)
            .map_err(|e| CliError::fail(format!("cannot read --jwks {}: {e}", path.display())))?;
        let parsed = parse_jwks(&bytes).map_err(|e| {
            CliError::fail(format!(
                "--jwks {}: the filter would refuse this key set ({e})",
                path.display()
            ))
        })?;
        let dropped = if parsed.dropped.is_empty() {
            String::new()
        } else {
            format!(", {} entries dropped", parsed.dropped.len())
        };
        let mut shown = format!(
            "{} usable from --jwks {}{dropped}",
            parsed.keys.len(),
            path.display()
        );
        let keys = match &local {
            Some(local) => {
                shown.push_str(&format!(
                    " (first), then {local_count} from token.local_jwks"
                ));
                KeySet::merged(&parsed.keys, local)
            }
            None => parsed.keys,
        };
        return Ok((Loaded::Ready(keys), shown));
    }
    Ok(match (local, has_remote) {
        (Some(local), false) => (
            Loaded::Ready(local),
            format!("{local_count} usable from token.local_jwks"),
        ),
        (Some(local), true) => (
            Loaded::LocalOnly(local),
            format!(
                "{local_count} usable from token.local_jwks; remote_jwks is not fetched here (give its key set with --jwks): judged as the filter does before its first fetch"
            ),
        ),
        (None, _) => (
            Loaded::Nothing,
            "none: no --jwks and no token.local_jwks (remote_jwks is not fetched here)"
                .to_string(),
        ),
    })
}

fn decoded(part: Option<&str>) -> String {
    let Some(part) = part else {
        return "(absent)".to_string();
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part) else {
        return "(not base64url)".to_string();
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => serde_json::to_string(&value).unwrap_or_default(),
        Err(_) => format!("(not JSON: {})", String::from_utf8_lossy(&bytes)),
    }
}

fn decoded_value(part: Option<&str>) -> Value {
    part.and_then(|p| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .ok()
    })
    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    .unwrap_or(Value::Null)
}

/// What the token showed, for saying what a failed check expected.
struct Seen {
    header: Value,
    claims: Value,
    at: i64,
}

/// A JSON value for a report line; `absent` when missing.
fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "absent".to_string(), Value::to_string)
}

/// Most names listed in one expectation.
const MAX_LISTED: usize = 10;

fn listed(items: &[String]) -> String {
    let mut out: Vec<String> = items.iter().take(MAX_LISTED).cloned().collect();
    if items.len() > MAX_LISTED {
        out.push(format!("and {} more", items.len() - MAX_LISTED));
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join(", ")
    }
}

/// What a failed check expected, as ` (...)`, from the policy, the keys held and the token.
fn expected(e: TokenError, service: &TokenService, keys: &KeySet, seen: &Seen) -> String {
    let policy = &service.policy;
    let time = |name: &str| {
        let t = seen.claims.get(name).and_then(Value::as_i64);
        t.map_or_else(
            || format!("{name} absent"),
            |t| format!("{name} {t} = {}", rfc3339(t)),
        )
    };
    let at = format!("judged at {} = {}", seen.at, rfc3339(seen.at));
    let skew = policy.clock_skew_seconds;
    let text = match e {
        TokenError::UnknownKid => {
            let kids: Vec<String> = keys
                .iter()
                .filter_map(|k| k.kid())
                .map(str::to_string)
                .collect();
            format!(
                "kid {} is not among the {} keys held; kids held: {}",
                shown(seen.header.get("kid")),
                keys.len(),
                listed(&kids)
            )
        }
        TokenError::KeyAlgorithmMismatch => format!(
            "alg {}: the key with kid {} does not admit it",
            shown(seen.header.get("alg")),
            shown(seen.header.get("kid"))
        ),
        TokenError::IssuerMismatch => format!(
            "iss {}; accepted: {}",
            shown(seen.claims.get("iss")),
            listed(&policy.issuers)
        ),
        TokenError::Expired => format!("{}; {at}; clock skew {skew} s", time("exp")),
        TokenError::NotYetValid => format!("{}; {at}; clock skew {skew} s", time("nbf")),
        TokenError::IssuedInFuture => format!("{}; {at}; clock skew {skew} s", time("iat")),
        TokenError::MissingExpiration => {
            "require_expiration is true: the token must carry exp".to_string()
        }
        TokenError::LifetimeTooLong => format!(
            "{} to {}; max_lifetime_seconds {}",
            time("iat"),
            time("exp"),
            policy
                .max_lifetime_seconds
                .map_or_else(|| "unset".to_string(), |m| m.to_string())
        ),
        TokenError::AudienceNotAllowed | TokenError::InvalidAudience => format!(
            "aud {}; allowed: {}",
            shown(seen.claims.get("aud")),
            policy
                .audiences
                .as_deref()
                .map_or_else(|| "any".to_string(), listed)
        ),
        _ => return String::new(),
    };
    format!(" ({text})")
}

/// What a required claim held and what the rule allows, as `; ...`.
fn claim_expected(service: &TokenService, name_id: u32, claims: &Value) -> String {
    match service
        .required_claims
        .iter()
        .find(|r| r.name_id == name_id)
    {
        Some(rule) => format!(
            " (holds {}; required: one of {})",
            shown(claims.get(&rule.claim)),
            listed(&rule.allowed)
        ),
        None => String::new(),
    }
}

fn outcome(result: Option<Result<(), TokenError>>) -> String {
    match result {
        Some(Ok(())) => "pass".to_string(),
        Some(Err(e)) => format!("fail {e}"),
        None => "not run (an earlier check failed)".to_string(),
    }
}

/// Runs `token check`.
pub fn check(req: &Request<'_>) -> Result<Report, CliError> {
    let shown = req.config.display();
    let text = fs::read(req.config)
        .map_err(|e| CliError::fail(format!("cannot read --config {shown}: {e}")))?;
    let env = |name: &str| Some(std::env::var(name).unwrap_or_else(|_| "unset".to_string()));
    let cfg = config::parse(&text, &env)
        .map_err(|e| CliError::fail(format!("--config {shown}: the filter refuses it: {e}")))?;
    let (index, service_line) = match describe_target(&cfg, &req.target)? {
        Chosen::Policy(index, line) => (index, line),
        Chosen::NoService(line) => {
            return Ok(Report {
                lines: vec![
                    format!("service: {line}"),
                    deny_line(Denial::NoService, &cfg.realm),
                ],
                allowed: false,
            })
        }
    };
    let policy: &ServicePolicy = index
        .and_then(|i| cfg.services.get(i))
        .map_or(&cfg.default_policy, |s| &s.policy);
    let (keys, keys_line) = load_keys(&cfg, req.jwks)?;
    let mode = match &policy.mode {
        AuthMode::Token(_) => "token",
        AuthMode::Key(_) => "key",
        AuthMode::PassThrough => "none",
    };
    let mut lines = vec![
        format!("service: {service_line}, mode {mode}"),
        format!("at: {} ({})", req.at, rfc3339(req.at)),
        format!("keys: {keys_line}"),
    ];
    let mut parts = req.token.split('.');
    let (h, p, s) = (parts.next(), parts.next(), parts.next());
    lines.push(format!("token header: {}", decoded(h)));
    lines.push(format!("token claims: {}", decoded(p)));
    let times: Vec<String> = ["iat", "nbf", "exp"]
        .iter()
        .filter_map(|name| {
            let t = decoded_value(p).get(*name)?.as_i64()?;
            Some(format!("{name} {t} ({})", rfc3339(t)))
        })
        .collect();
    if !times.is_empty() {
        lines.push(format!("token times: {}", times.join(", ")));
    }
    lines.push(format!(
        "token signature: {} base64url characters (elided)",
        s.map_or(0, str::len)
    ));
    let authorization = format!("Bearer {}", req.token);
    let (keys_in, traced_keys) = match &keys {
        Loaded::Ready(set) => (Keys::Ready(set), Some(set)),
        Loaded::LocalOnly(set) => (
            Keys::Partial {
                local: set,
                remote: Unavailable::NotYet,
            },
            Some(set),
        ),
        Loaded::Nothing => (Keys::NotYet, None),
    };
    let inputs = TokenInputs {
        now: Some(req.at),
        keys: keys_in,
        cache: None,
    };
    let verdict = policy::decide(
        policy,
        [("authorization", authorization.as_bytes())],
        inputs,
    );
    match (&policy.mode, traced_keys) {
        (AuthMode::Token(service), Some(keys)) => {
            let trace = jwt::trace(req.token, keys, &service.policy, req.at);
            let failed: Vec<TokenError> = trace
                .iter()
                .filter_map(|(_, r)| r.and_then(Result::err))
                .collect();
            let seen = Seen {
                header: decoded_value(h),
                claims: decoded_value(p),
                at: req.at,
            };
            for (check, result) in trace {
                if check == Check::Signature {
                    let mut claims = claims_outcome(&cfg, &verdict, &failed);
                    if let Verdict::Deny(Denial::ClaimNotAllowed(id)) = verdict {
                        if failed.is_empty() {
                            claims.push_str(&claim_expected(service, id, &seen.claims));
                        }
                    }
                    lines.push(format!("check {:<9} {claims}", "claims"));
                }
                let detail = match result {
                    Some(Err(e)) => expected(e, service, keys, &seen),
                    _ => String::new(),
                };
                lines.push(format!(
                    "check {:<9} {}{detail}",
                    check.as_str(),
                    outcome(result)
                ));
            }
        }
        (AuthMode::Token(_), None) => {
            lines.push("check: not run (no keys to judge the token with)".to_string());
        }
        (AuthMode::Key(_), _) => lines.push(
            "check: not run (a key-mode service compares the credential with its keys, not as a token)"
                .to_string(),
        ),
        (AuthMode::PassThrough, _) => {
            lines.push("check: not run (no auth on this service)".to_string());
        }
    }
    let (line, allowed) = match &verdict {
        Verdict::PassThrough => (
            "verdict: pass through (forwarded unchecked: no auth on this service)".to_string(),
            true,
        ),
        Verdict::Allow(allowed) => {
            let mut line = "verdict: allow (forwarded to the upstream".to_string();
            if allowed.remove_authorization {
                line.push_str(", Authorization removed");
            }
            for (name, value) in &allowed.set_headers {
                line.push_str(&format!(", {name}: {value}"));
            }
            line.push(')');
            (line, true)
        }
        Verdict::Deny(denial) => (
            format!(
                "{}{}",
                deny_line(*denial, &cfg.realm),
                claim_named(&cfg, *denial)
            ),
            false,
        ),
    };
    lines.push(line);
    Ok(Report { lines, allowed })
}

/// The claims check: whatever the filter refuses a token for once every traced check passed
/// (the policy's checks after the signature), read from the decision itself.
fn claims_outcome(cfg: &FilterConfig, verdict: &Verdict, trace_failures: &[TokenError]) -> String {
    match verdict {
        Verdict::Allow(_) | Verdict::PassThrough => "pass".to_string(),
        Verdict::Deny(_) if !trace_failures.is_empty() => {
            "not run (judged only on a verified token)".to_string()
        }
        Verdict::Deny(d)
            if status::KEY_DENIALS.contains(d)
                || matches!(
                    d,
                    Denial::KeysUnavailable | Denial::KeysStale | Denial::ClockUnavailable
                ) =>
        {
            format!("not run ({})", d.code())
        }
        Verdict::Deny(d) => format!("fail {}{}", d.code(), claim_named(cfg, *d)),
    }
}

/// ` (claim `NAME`)` for a denial about a required claim, as the filter's body names it.
fn claim_named(cfg: &FilterConfig, denial: Denial) -> String {
    match denial {
        Denial::ClaimNotAllowed(id) => cfg
            .required_claim_name(id)
            .map_or_else(String::new, |name| format!(" (claim `{name}`)")),
        _ => String::new(),
    }
}

fn deny_line(denial: Denial, realm: &str) -> String {
    let reply = status::reply(denial, realm);
    format!(
        "verdict: deny {} {} ({})",
        reply.status,
        denial.code(),
        denial.message()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn at_parses_unix_seconds_and_rfc3339() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("1700000000", 1_700_000_000),
            ("1970-01-01T00:00:00Z", 0),
            ("2023-11-14T22:13:20Z", 1_700_000_000),
            ("2023-11-14T22:13:20.999Z", 1_700_000_000),
            ("2023-11-15T00:13:20+02:00", 1_700_000_000),
            ("2023-11-14t20:13:20-02:00", 1_700_000_000),
            ("2024-02-29T23:59:59Z", 1_709_251_199),
            ("2000-02-29T00:00:00Z", 951_782_400),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
        ];
        for (text, want) in cases {
            assert_eq!(parse_at(text).unwrap(), *want, "{text}");
            if text.ends_with('Z') && !text.contains('.') {
                assert_eq!(rfc3339(*want), *text, "round trip");
            }
        }
        for bad in [
            "",
            "-5",
            "1.5",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20+2:00",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20ZZ",
            "now",
        ] {
            assert!(parse_at(bad).unwrap_err().contains("--at"), "{bad}");
        }
    }
}
