//! The root context: configure, tick, and the JWKS and discovery fetches, coordinated across
//! workers through shared data.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use super::request::Request;
use super::state::State;
use super::{abi, log, random_jitter, random_u64};
use crate::config;
use crate::token::jwks_cache::{self, CallHead, FetchFailure, Meta, TickDecision};

/// Tick period of root contexts when a remote JWKS is configured.
const TICK: Duration = Duration::from_millis(500);

pub(super) struct Root {
    state: Option<Rc<State>>,
    me: u64,
    /// The call in flight: its token, the source, and which document it fetches.
    in_flight: Option<(u32, usize, Step)>,
}

impl Root {
    pub(super) fn new() -> Self {
        Root {
            state: None,
            me: random_u64() | 1,
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
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", "aml-auth-filter"),
        ];
        let timeout = Duration::from_millis(remote.timing.timeout_ms);
        match self.dispatch_http_call(cluster, headers, None, vec![], timeout) {
            Ok(token) => self.in_flight = Some((token, source, step)),
            Err(status) => {
                log(
                    LogLevel::Warn,
                    &format!(
                        "aml-auth-filter: JWKS fetch from source {source} (cluster {cluster}) could not start: {status:?}"
                    ),
                );
                if step == Step::Document {
                    state.count_discovery(Err("dispatch_failed"));
                }
                self.finish_fetch(state, source, now, Err(FetchFailure::DispatchFailed));
            }
        }
    }

    /// Records a fetch outcome in shared data: the key set first, then the record.
    fn finish_fetch(
        &self,
        state: &State,
        source: usize,
        now: u64,
        outcome: Result<Vec<u8>, FetchFailure>,
    ) {
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
        let next = match outcome {
            Ok(body) => {
                metrics.count("aml_auth.jwks.fetch_success");
                metrics.count(&format!("aml_auth.jwks.source.{source}.fetch_success"));
                let next =
                    jwks_cache::succeeded(&meta, now, source, &state.timings, random_jitter());
                let stored = jwks_cache::encode_keys(next.version, &body);
                if abi::set_shared_data(&state.keys_key, &stored, None).is_err() {
                    log(
                        LogLevel::Error,
                        "aml-auth-filter: could not store the JWKS in shared data",
                    );
                    return;
                }
                next
            }
            Err(failure) => {
                let reason = failure.code();
                metrics.count("aml_auth.jwks.fetch_failure");
                metrics.count(&format!("aml_auth.jwks.source.{source}.fetch_failure"));
                metrics.count(&format!("aml_auth.jwks.fetch_failure.{reason}"));
                log(
                    LogLevel::Warn,
                    &format!("aml-auth-filter: JWKS fetch from source {source} failed: {reason}; keeping the last good key set"),
                );
                jwks_cache::failed(&meta, now, source, &state.timings, random_jitter())
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
        let Some((token, source, step)) = self.in_flight else {
            return;
        };
        if token != token_id {
            return;
        }
        self.in_flight = None;
        let Some(now) = state.clock() else {
            return;
        };
        let body = read_call_body(body_size);
        match step {
            Step::Keys => self.finish_fetch(&state, source, now, body.and_then(read_key_set)),
            Step::Document => self.document_fetched(&state, source, now, body),
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
        let located = body.map_err(|f| f.code()).and_then(|body| {
            crate::token::discovery::read_document(
                &body,
                &remote.uri,
                &remote.authority,
                &discovery.issuers,
                discovery.jwks_cluster.is_some(),
            )
            .map_err(|e| e.code())
        });
        state.count_discovery(located.as_ref().map(|_| ()).map_err(|r| *r));
        match located {
            Ok(at) => self.dispatch(state, source, now, Step::Keys, &at.authority, &at.path),
            Err(reason) => {
                log(
                    LogLevel::Warn,
                    &format!(
                        "aml-auth-filter: discovery document of source {source} refused: {reason}"
                    ),
                );
                self.finish_fetch(state, source, now, Err(FetchFailure::Discovery));
            }
        }
    }
}

/// Which document a call fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// A source's OpenID Connect discovery document.
    Document,
    /// The key set.
    Keys,
}

/// Reads a finished call's body through fallible host calls only, classifying what went wrong.
fn read_call_body(body_size: usize) -> Result<Vec<u8>, FetchFailure> {
    let status = abi::get_header(abi::HTTP_CALL_RESPONSE_HEADERS, ":status")
        .ok()
        .flatten();
    let host_status = abi::get_status().ok();
    let head = jwks_cache::classify_head(&CallHead {
        status: status.as_deref(),
        host_status: host_status.as_ref().map(|(c, m)| (*c, m.as_slice())),
        body_size,
    });
    if let (Err(failure), Some((code, message))) = (&head, &host_status) {
        log(
            LogLevel::Info,
            &format!(
                "aml-auth-filter: call to the JWKS host ended: {} (host status {code} {:?})",
                failure.code(),
                String::from_utf8_lossy(message)
            ),
        );
    }
    head?;
    abi::get_buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size)
        .ok()
        .flatten()
        .ok_or(FetchFailure::BodyUnreadable)
}

/// Checks a fetched key set (logging each key dropped) and keeps its bytes for shared data.
fn read_key_set(body: Vec<u8>) -> Result<Vec<u8>, FetchFailure> {
    let parsed = jwks_cache::classify_body(Some(&body))?;
    for dropped in &parsed.dropped {
        log(
            LogLevel::Info,
            &format!(
                "aml-auth-filter: JWKS key {} (kid {:?}) dropped: {}",
                dropped.index,
                dropped.kid,
                dropped.reason.as_str()
            ),
        );
    }
    Ok(body)
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
                let _ = abi::set_shared_data(&state.meta_key, &Meta::default().encode(), None);
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
                state.keys.borrow_mut().meta = leased;
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
