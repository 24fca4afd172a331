//! The HTTP context: gather the request's inputs, call the pure decision, apply its edits.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use super::state::State;
use super::{abi, log, now_ms};
use crate::config::Phase;
use crate::request::decision::{self, Scope};
use crate::request::headers::HeaderMap;
use crate::request::policy::{self, Allowed, Exposed, Keys, TokenInputs, Verdict};
use crate::request::status::{self, Denial, LocalReply};
use crate::stats;
use crate::token::claims;
use crate::token::jwt::TokenError;

pub(super) struct Request {
    pub(super) state: Option<Rc<State>>,
}

impl Context for Request {}

/// Filter state names (Envoy prefixes them with `wasm.`).
const PRINCIPAL_STATE: &str = "aml_auth_principal";
const SERVICE_STATE: &str = "aml_auth_service";
/// In the upstream phase, the service (or `default`) a forwarded request was judged for, so
/// that a retry of the same request (its headers already edited) or its internal redirect is
/// not judged again, and is refused when another service serves it. (Not kept in the
/// downstream phase: writing it costs every forwarded request 1-2 us of Envoy CPU, measured,
/// for routes with `internal_redirect_policy` only; see docs/routing.md.)
const JUDGED_STATE: &str = "aml_auth_judged";

/// Declares `wasm.aml_auth_judged` as filter state living as long as the downstream request,
/// so that it survives an internal redirect (Envoy's `declare_property` foreign function: a
/// `DeclarePropertyArguments` message with name, type `String` and span `DownstreamRequest`).
/// Declared once per root context; Envoy refuses a second declaration of the same name, which
/// changes nothing.
pub(super) fn declare_judged_state() {
    let name = JUDGED_STATE.as_bytes();
    let mut message = Vec::with_capacity(name.len().saturating_add(6));
    message.push(0x0a);
    message.push(u8::try_from(name.len()).unwrap_or(0));
    message.extend_from_slice(name);
    message.extend_from_slice(&[0x18, 0x01, 0x28, 0x01]);
    if let Err(status) = abi::call_foreign_function("declare_property", &message) {
        log(
            LogLevel::Info,
            &format!("aml-auth-filter: declare_property {JUDGED_STATE}: {status:?} (already declared, or the host lacks it: an internally redirected request is then judged again)"),
        );
    }
}

/// Removes from a header map (request headers or trailers), given its `pairs` as read, every
/// header spelling a configured claim header (see [`claims::is_claim_header_spelling`]): no host
/// call when none matches. Returns the pairs left; `Err` when the host refused a removal.
fn strip_claim_headers(
    state: &State,
    map: u32,
    mut pairs: HeaderMap,
) -> Result<HeaderMap, abi::HostStatus> {
    let claim_headers = &state.config.claim_headers;
    let mut removed: Vec<String> = Vec::new();
    for (name, _) in pairs.utf8_pairs() {
        if claims::is_claim_header_spelling(claim_headers, name)
            && !removed.iter().any(|r| r == name)
        {
            abi::remove_header(map, name)?;
            removed.push(name.to_string());
        }
    }
    if !removed.is_empty() {
        pairs.retain(|name| !removed.iter().any(|r| r.as_bytes() == name));
    }
    Ok(pairs)
}

/// Records the caller's identity and service as filter state (`wasm.aml_auth_principal`,
/// `wasm.aml_auth_service`), for access logs and later filters.
fn expose(exposed: &Exposed) {
    for (name, value) in [
        (PRINCIPAL_STATE, exposed.principal.as_deref()),
        (SERVICE_STATE, Some(exposed.service.as_str())),
    ] {
        if let Some(value) = value {
            if let Err(status) = abi::set_property(name, value.as_bytes()) {
                log(
                    LogLevel::Warn,
                    &format!("aml-auth-filter: could not set filter state {name}: {status:?}"),
                );
            }
        }
    }
}

/// Sends a local reply. Should the host refuse it, the request stays paused (never forwarded)
/// until Envoy's own timeout ends it.
fn send_reply(status: u32, headers: &[(&str, &str)], body: &[u8]) {
    if let Err(e) = abi::send_local_response(status, headers, body) {
        log(
            LogLevel::Error,
            &format!(
                "aml-auth-filter: the host refused a local reply ({e:?}); the request stays paused"
            ),
        );
    }
}

/// 503 for a request whose headers the host could not read or edit: it is never forwarded.
fn host_error_reply() -> Action {
    send_local_reply(&status::host_error())
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = self.state.clone() else {
            return send_local_reply(&status::not_configured());
        };
        let keeps_judgement = state.config.phase == Phase::Upstream;
        let mut host = RequestHost {
            state: &state,
            headers: None,
        };
        if !state.config.passes_everything() || !state.config.claim_headers.is_empty() {
            match abi::get_header_pairs(abi::HTTP_REQUEST_HEADERS) {
                Ok(pairs) => host.headers = Some(pairs),
                Err(_) => return host_error_reply(),
            }
        }
        if let Some(judged) = keeps_judgement.then(|| property(&[JUDGED_STATE])).flatten() {
            if decision::serves_judged(&state.config, &state.router, &mut host, &judged) {
                return Action::Continue;
            }
            let denial = Denial::RouteChanged;
            for event in stats::events(&Verdict::Deny(denial)) {
                state.metrics.record(&state.config, Scope::Global, event);
            }
            return send_local_reply(&state.reply(denial));
        }
        if let Some(pairs) = host.headers.take() {
            match strip_claim_headers(&state, abi::HTTP_REQUEST_HEADERS, pairs) {
                Ok(pairs) => host.headers = Some(pairs),
                Err(_) => {
                    log(
                        LogLevel::Error,
                        "aml-auth-filter: could not remove incoming claim headers; request refused",
                    );
                    return host_error_reply();
                }
            }
        }
        let Ok(outcome) = decision::decide(&state.config, &state.router, &mut host) else {
            return host_error_reply();
        };
        if let Verdict::Allow(allowed) = &outcome.verdict {
            if !apply_header_edits(allowed) {
                return host_error_reply();
            }
            if let Some(exposed) = &allowed.exposed {
                expose(exposed);
            }
        }
        if keeps_judgement && !matches!(outcome.verdict, Verdict::Deny(_)) {
            let judged = stats::scope_name(&state.config, outcome.scope).unwrap_or_default();
            if let Err(status) = abi::set_property(JUDGED_STATE, judged.as_bytes()) {
                log(
                    LogLevel::Warn,
                    &format!("aml-auth-filter: could not set filter state {JUDGED_STATE}: {status:?} (a retry or redirect is judged again)"),
                );
            }
        }
        for event in stats::events(&outcome.verdict) {
            state.metrics.record(&state.config, outcome.scope, event);
        }
        match outcome.verdict {
            Verdict::Deny(denial) => {
                if denial == Denial::Token(TokenError::UnknownKid) {
                    state.early_refetch_wanted.set(true);
                }
                send_local_reply(&state.reply(denial))
            }
            Verdict::PassThrough | Verdict::Allow(_) => Action::Continue,
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let Some(state) = self.state.as_ref() else {
            return Action::Continue;
        };
        let map = abi::HTTP_REQUEST_TRAILERS;
        if state.config.claim_headers.is_empty()
            || abi::get_header_pairs(map)
                .and_then(|pairs| strip_claim_headers(state, map, pairs))
                .is_ok()
        {
            return Action::Continue;
        }
        log(
            LogLevel::Error,
            "aml-auth-filter: could not remove claim-named request trailers; request refused",
        );
        host_error_reply()
    }
}

/// What the request decision may ask of the host.
struct RequestHost<'a> {
    state: &'a State,
    /// The request headers when already read (and stripped of claim headers).
    headers: Option<HeaderMap>,
}

impl decision::Host for RequestHost<'_> {
    fn headers(&mut self) -> Option<HeaderMap> {
        match self.headers.take() {
            Some(pairs) => Some(pairs),
            None => abi::get_header_pairs(abi::HTTP_REQUEST_HEADERS).ok(),
        }
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        property(path)
    }

    fn with_token_inputs(&mut self, judge: &mut dyn FnMut(TokenInputs<'_>) -> Verdict) -> Verdict {
        let state = self.state;
        let Some(now) = now_ms() else {
            return judge(TokenInputs {
                now: None,
                keys: Keys::NotYet,
                cache: None,
            });
        };
        state.with_keys(now, |keys| {
            judge(TokenInputs {
                now: Some(policy::seconds(now)),
                keys,
                cache: Some(&state.token_cache),
            })
        })
    }
}

/// Removes and sets the request headers an accepted credential implies; false when the host
/// refused one (the request is then not forwarded).
fn apply_header_edits(allowed: &Allowed) -> bool {
    let map = abi::HTTP_REQUEST_HEADERS;
    (!allowed.remove_authorization || abi::remove_header(map, "authorization").is_ok())
        && allowed
            .set_headers
            .iter()
            .all(|(name, value)| abi::replace_header(map, name, value).is_ok())
}

/// A string property of the stream (`xds.route_name`...), `None` when absent or unreadable.
fn property(path: &[&str]) -> Option<String> {
    let bytes = abi::get_property(path).ok().flatten()?;
    String::from_utf8(bytes).ok()
}

/// Sends a local reply built in `status.rs` and stops the filter chain.
fn send_local_reply(reply: &LocalReply) -> Action {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    send_reply(u32::from(reply.status), &headers, reply.body.as_bytes());
    Action::Pause
}
