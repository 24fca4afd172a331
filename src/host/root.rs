//! The root context: configure, tick, and the JWKS and discovery fetches, coordinated across
//! workers through shared data.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::request::Request;
use super::response::{read_call, read_key_set, with_held, Response, Step};
use super::state::State;
use super::{abi, log, random_u64};
use crate::config;
use crate::stats;
use crate::token::jwks_cache::{self, FetchFailure, Meta, Rng, TickDecision, Validators};

/// Tick period of root contexts when a remote JWKS is configured.
const TICK: Duration = Duration::from_millis(500);

pub(super) struct Root {
    state: Option<Rc<State>>,
    me: u64,
    /// Jitter source, seeded per root context.
    rng: Rng,
    /// The call in flight.
    in_flight: Option<InFlight>,
}

/// A call in flight: its token, the source, which document it fetches and, for a key set, the
/// location whose validators it sent.
struct InFlight {
    token: u32,
    source: usize,
    step: Step,
    /// `Some(location)` for a key set call; `conditional` when it carried validators.
    location: Option<String>,
    conditional: bool,
}

/// What one fetch brought back, before it is recorded.
enum Outcome {
    /// A 200 with a body: new or the same as the stored set (decided against the record).
    Body {
        body: Vec<u8>,
        validators: Validators,
    },
    /// A 304 to a conditional request.
    NotModified { validators: Validators },
    /// A failure.
    Failed(FetchFailure),
}

impl Root {
    pub(super) fn new(context_id: u32) -> Self {
        let mut rng = Rng::seeded(&[
            random_u64(),
            abi::current_time_ns().unwrap_or(0),
            u64::from(context_id),
        ]);
        Root {
            state: None,
            me: rng.next_u64() | 1,
            rng,
            in_flight: None,
        }
    }

    /// Starts a fetch of `source`: its discovery document first when it has one.
    fn start_fetch(&mut self, state: &State, source: usize, now: u64) {
        let Some(remote) = state.token_settings().and_then(|t| t.remote.get(source)) else {
            return;
        };
        let step = if remote.discovery.is_some() {
            Step::Document
        } else {
            Step::Keys
        };
        self.dispatch(state, source, now, step, &remote.authority, &remote.path);
    }

    fn dispatch(
        &mut self,
        state: &State,
        source: usize,
        now: u64,
        step: Step,
        authority: &str,
        path: &str,
    ) {
        let Some(remote) = state.token_settings().and_then(|t| t.remote.get(source)) else {
            return;
        };
        let cluster = match (step, &remote.discovery) {
            (Step::Keys, Some(d)) => d.jwks_cluster.as_deref().unwrap_or(&remote.cluster),
            _ => remote.cluster.as_str(),
        };
        let mut headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", "aml-auth-filter"),
        ];
        let location =
            (step == Step::Keys).then(|| Validators::location_of(source, authority, path));
        let validators = state.keys.borrow().meta.validators.clone();
        let conditional = match &location {
            Some(location) if state.keys.borrow().meta.version > 0 => {
                let extra = validators.headers_for(location);
                let any = !extra.is_empty();
                headers.extend(extra);
                any
            }
            _ => false,
        };
        let timeout = Duration::from_millis(remote.timing.timeout_ms);
        match self.dispatch_http_call(cluster, headers, None, vec![], timeout) {
            Ok(token) => {
                self.in_flight = Some(InFlight {
                    token,
                    source,
                    step,
                    location,
                    conditional,
                })
            }
            Err(status) => {
                let failure = FetchFailure::of_dispatch(status as u32);
                let what = if failure == FetchFailure::UnknownCluster {
                    format!("unknown cluster {cluster:?}")
                } else {
                    format!("the host refused the call to cluster {cluster:?} ({status:?})")
                };
                log(
                    LogLevel::Warn,
                    &format!("aml-auth-filter: JWKS source {source}: {what}"),
                );
                if step == Step::Document {
                    state.count_discovery(Err(failure.code()));
                }
                let failure = if step == Step::Document {
                    FetchFailure::Discovery { content: false }
                } else {
                    failure
                };
                self.finish_fetch(state, source, now, Outcome::Failed(failure));
            }
        }
    }

    /// Records a fetch outcome in shared data: the key set first, then the record.
    fn finish_fetch(&mut self, state: &State, source: usize, now: u64, outcome: Outcome) {
        let (meta, cas) = match abi::get_shared_data(&state.meta_key) {
            Ok((Some(bytes), cas)) => (Meta::decode(&bytes).unwrap_or_default(), cas),
            _ => (Meta::default(), None),
        };
        if meta.lease_owner != self.me {
            log(
                LogLevel::Warn,
                "aml-auth-filter: JWKS fetch finished after its lease lapsed; result discarded",
            );
            return;
        }
        let metrics = &state.metrics;
        let outcome = match outcome {
            Outcome::Body { body, validators } => {
                let digest = jwks_cache::digest(&body);
                if meta.version > 0 && digest == meta.digest {
                    metrics.count(stats::JWKS_FETCH_UNCHANGED);
                    Ok((None, digest, validators))
                } else {
                    read_key_set(&body).map(|()| (Some(body), digest, validators))
                }
            }
            Outcome::NotModified { validators } => {
                metrics.count(stats::JWKS_FETCH_NOT_MODIFIED);
                Ok((None, meta.digest.clone(), validators))
            }
            Outcome::Failed(failure) => Err(failure),
        };
        let u = self.rng.unit();
        let next = match outcome {
            Ok((body, digest, validators)) => {
                metrics.count(stats::JWKS_FETCH_SUCCESS);
                metrics.count(&stats::jwks_source(source, "fetch_success"));
                let fetched = jwks_cache::Fetched {
                    changed: body.is_some(),
                    digest,
                    validators,
                };
                let next = jwks_cache::succeeded(&meta, now, source, &state.timings, u, fetched);
                if let Some(body) = body {
                    let stored = jwks_cache::encode_keys(next.version, &body);
                    if abi::set_shared_data(&state.keys_key, &stored, None).is_err() {
                        log(
                            LogLevel::Error,
                            "aml-auth-filter: could not store the JWKS in shared data",
                        );
                        return;
                    }
                }
                next
            }
            Err(failure) => {
                let reason = failure.code();
                metrics.count(stats::JWKS_FETCH_FAILURE);
                metrics.count(&stats::jwks_source(source, "fetch_failure"));
                metrics.count(&stats::jwks_fetch_failure(reason));
                let next = jwks_cache::failed(&meta, now, source, &state.timings, u, &failure);
                let kept = if meta.version > 0 {
                    "keeping the last good key set"
                } else {
                    "no key set obtained yet"
                };
                let throttle = match (&failure, next.throttled_until_ms.get(source)) {
                    (FetchFailure::Throttled { .. }, Some(until)) => format!(
                        " (its Retry-After: no call to it for {} s)",
                        until.saturating_sub(now).div_ceil(1_000)
                    ),
                    _ => String::new(),
                };
                log(
                    LogLevel::Warn,
                    &format!(
                        "aml-auth-filter: JWKS fetch from source {source} failed: {reason}{throttle}; \
                         {kept}; next attempt in {} s",
                        next.next_attempt_ms.saturating_sub(now).div_ceil(1_000)
                    ),
                );
                next
            }
        };
        let _ = abi::set_shared_data(&state.meta_key, &next.encode(), cas);
        state.sync_from_shared();
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(state) = self.state.clone() else {
            return;
        };
        if self.in_flight.as_ref().map(|f| f.token) != Some(token_id) {
            return;
        }
        let Some(call) = self.in_flight.take() else {
            return;
        };
        let Some(now) = state.clock() else {
            return;
        };
        let response = read_call(body_size, call.conditional, now);
        match call.step {
            Step::Keys => {
                let location = call.location.unwrap_or_default();
                let outcome = match response {
                    Ok(Response::Body(body, v)) => Outcome::Body {
                        body,
                        validators: v.at(location),
                    },
                    Ok(Response::NotModified(v)) => {
                        let held = state.keys.borrow().meta.validators.clone();
                        Outcome::NotModified {
                            validators: with_held(v.at(location), held),
                        }
                    }
                    Err(failure) => Outcome::Failed(failure),
                };
                self.finish_fetch(&state, call.source, now, outcome);
            }
            Step::Document => {
                let body = match response {
                    Ok(Response::Body(body, _)) => Ok(body),
                    Ok(Response::NotModified(_)) => Err(FetchFailure::BadStatus),
                    Err(failure) => Err(failure),
                };
                self.document_fetched(&state, call.source, now, body);
            }
        }
    }
}

impl Root {
    /// Reads a fetched discovery document and, when it is good, fetches the key set it names.
    fn document_fetched(
        &mut self,
        state: &State,
        source: usize,
        now: u64,
        body: Result<Vec<u8>, FetchFailure>,
    ) {
        let Some(remote) = state.token_settings().and_then(|t| t.remote.get(source)) else {
            return;
        };
        let Some(discovery) = &remote.discovery else {
            return;
        };
        let located = body
            .map_err(|f| {
                let failure = match f {
                    FetchFailure::Throttled { .. } => f.clone(),
                    _ => FetchFailure::Discovery { content: false },
                };
                (f.code(), failure)
            })
            .and_then(|body| {
                crate::token::discovery::read_document(
                    &body,
                    &remote.uri,
                    &remote.authority,
                    &discovery.issuers,
                    discovery.jwks_cluster.is_some(),
                )
                .map_err(|e| (e.code(), FetchFailure::Discovery { content: true }))
            });
        state.count_discovery(located.as_ref().map(|_| ()).map_err(|(r, _)| *r));
        match located {
            Ok(at) => self.dispatch(state, source, now, Step::Keys, &at.authority, &at.path),
            Err((reason, failure)) => {
                log(
                    LogLevel::Warn,
                    &format!(
                        "aml-auth-filter: discovery document of source {source} refused: {reason}"
                    ),
                );
                self.finish_fetch(state, source, now, Outcome::Failed(failure));
            }
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = abi::get_buffer(abi::PLUGIN_CONFIGURATION, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let config = match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(config) => config,
            Err(e) => {
                log(LogLevel::Critical, &format!("aml-auth-filter: {e}"));
                self.state = None;
                return false;
            }
        };
        if config.phase == config::Phase::Upstream {
            super::request::declare_judged_state();
        }
        let state = Rc::new(State::new(config));
        if state.has_remote() {
            if let Ok((None, _)) = abi::get_shared_data(&state.meta_key) {
                let first = match state.clock() {
                    Some(now) => Meta::first(now, self.rng.unit()),
                    None => Meta::default(),
                };
                let _ = abi::set_shared_data(&state.meta_key, &first.encode(), None);
            }
            state.sync_from_shared();
            let tick = u32::try_from(TICK.as_millis()).unwrap_or(u32::MAX);
            if abi::set_tick_period_ms(tick).is_err() {
                log(
                    LogLevel::Critical,
                    "aml-auth-filter: the host refused a tick period; no JWKS can be fetched",
                );
            }
        }
        self.in_flight = None;
        self.state = Some(state);
        true
    }

    fn on_tick(&mut self) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let Some(now) = state.clock() else {
            return;
        };
        let (meta, cas) = state.sync_from_shared();
        state.record_key_gauges(now);
        state.mark_sources_in_use(now);
        if self.in_flight.is_some() {
            return;
        }
        let early = state.early_refetch_wanted.replace(false);
        if let TickDecision::Fetch {
            source,
            meta: leased,
        } = jwks_cache::tick(&meta, now, self.me, early, &state.timings)
        {
            if abi::set_shared_data(&state.meta_key, &leased.encode(), cas).is_ok() {
                state.keys.borrow_mut().meta = *leased;
                self.start_fetch(&state, source, now);
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            state: self.state.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
