//! The proxy-wasm adapter: the only module touching the host ABI. Callbacks gather inputs, call
//! the pure modules, and apply their decision.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::config::{self, FilterConfig, TokenSettings};
use crate::jwks::KeySet;
use crate::jwks_cache::{
    self, CallHead, FetchFailure, Freshness, Meta, SourceTiming, TickDecision,
};
use crate::jwt::TokenError;
use crate::policy::{Allowed, Exposed, Keys, TokenInputs, Unavailable, Verdict};
use crate::request::decision::{self, Scope};
use crate::request::router::Router;
use crate::stats::{self, Event};
use crate::status::{self, Denial, LocalReply};
use crate::token_cache::{self, TokenCache};

mod abi;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::new()) });
}}

/// Tick period of root contexts when a remote JWKS is configured.
const TICK: Duration = Duration::from_millis(500);

fn now_ms() -> u64 {
    abi::current_time_ns().map_or(0, |ns| ns / 1_000_000)
}

fn log(level: LogLevel, message: &str) {
    let _ = abi::log(level as u32, message);
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// 32 random bytes: the token cache's SipHash key.
fn random_secret() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let _ = getrandom::getrandom(&mut bytes);
    bytes
}

/// Token cache generation of the local key set (fetched sets have versions from 1).
const LOCAL_KEY_SET: u64 = 0;

/// A uniform value in [-1, 1] for jitter.
fn random_jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Stats of this VM, defined on first use and cached: by name, and request events by (scope,
/// event), so a request formats no stat name once its outcome has been seen.
#[derive(Default)]
struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    events: RefCell<HashMap<EventKey, u32>>,
}

/// A request event's stat: its scope (`None`: the global name) and the event's name parts.
type EventKey = (Option<Scope>, &'static str, &'static str);

impl Metrics {
    fn id(&self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(name) {
            return Some(*id);
        }
        let id = abi::define_metric(kind as u32, name).ok()?;
        self.ids.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }

    fn count(&self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = abi::increment_metric(id, 1);
        }
    }

    fn gauge(&self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name) {
            let _ = abi::record_metric(id, value);
        }
    }

    /// Counts a request event globally and, when the event is scoped, in its scope.
    fn record(&self, config: &FilterConfig, scope: Scope, event: Event) {
        self.increment(config, None, event);
        if scope != Scope::Global && event.scoped() {
            self.increment(config, Some(scope), event);
        }
    }

    fn increment(&self, config: &FilterConfig, scope: Option<Scope>, event: Event) {
        let (prefix, suffix) = event.parts();
        let cached = self.events.borrow().get(&(scope, prefix, suffix)).copied();
        let id = cached.or_else(|| {
            let name = event.name(scope.and_then(|s| stats::scope_name(config, s)));
            let id = abi::define_metric(MetricType::Counter as u32, &name).ok()?;
            self.events.borrow_mut().insert((scope, prefix, suffix), id);
            Some(id)
        });
        if let Some(id) = id {
            let _ = abi::increment_metric(id, 1);
        }
    }
}

/// The token key set as this VM sees it.
#[derive(Default)]
struct KeyView {
    /// Last record read from shared data.
    meta: Meta,
    /// Version of `merged`.
    version: u64,
    /// The remote keys, then the local keys whose `kid` the remote set lacks.
    merged: Option<Rc<KeySet>>,
    /// Local keys alone, parsed once per configuration (used when the remote set is missing or
    /// stale).
    local: Option<Rc<KeySet>>,
}

/// Everything requests need, built once per configuration.
struct State {
    config: FilterConfig,
    router: Router,
    metrics: Metrics,
    keys: RefCell<KeyView>,
    timings: Vec<SourceTiming>,
    early_refetch_wanted: Cell<bool>,
    fingerprint: String,
    meta_key: String,
    keys_key: String,
    token_cache: TokenCache,
    /// Local replies built so far, one per denial seen.
    replies: RefCell<Vec<(Denial, Rc<LocalReply>)>>,
}

impl State {
    fn new(config: FilterConfig) -> Self {
        let router = Router::new(&config.services);
        let (timings, fingerprint) = match &config.token {
            Some(t) => (
                t.remote.iter().map(|r| r.timing).collect(),
                t.fingerprint.clone(),
            ),
            None => (Vec::new(), String::new()),
        };
        let local = config
            .token
            .as_ref()
            .and_then(|t| t.local_jwks.as_ref())
            .and_then(|v| crate::jwks::parse_jwks(&serde_json::to_vec(v).unwrap_or_default()).ok())
            .map(|p| Rc::new(p.keys));
        State {
            router,
            metrics: Metrics::default(),
            keys: RefCell::new(KeyView {
                local,
                ..KeyView::default()
            }),
            timings,
            early_refetch_wanted: Cell::new(false),
            meta_key: jwks_cache::meta_key(&fingerprint),
            keys_key: jwks_cache::keys_key(&fingerprint),
            fingerprint,
            token_cache: TokenCache::new(&random_secret(), token_cache::DEFAULT_CAPACITY),
            replies: RefCell::new(Vec::new()),
            config,
        }
    }

    /// The local reply for a denial, built on its first use.
    fn reply(&self, denial: Denial) -> Rc<LocalReply> {
        if let Some((_, reply)) = self.replies.borrow().iter().find(|(d, _)| *d == denial) {
            return Rc::clone(reply);
        }
        let claim = match denial {
            Denial::ClaimNotAllowed(id) => self.config.required_claim_name(id),
            _ => None,
        };
        let reply = Rc::new(status::reply_naming(denial, &self.config.realm, claim));
        self.replies.borrow_mut().push((denial, Rc::clone(&reply)));
        reply
    }

    fn token_settings(&self) -> Option<&TokenSettings> {
        self.config.token.as_ref()
    }

    fn has_remote(&self) -> bool {
        !self.timings.is_empty()
    }

    fn remote_usable(&self, now_ms: u64) -> bool {
        let view = self.keys.borrow();
        view.merged.is_some()
            && jwks_cache::freshness(&view.meta, now_ms, &self.timings) == Freshness::Fresh
    }

    /// The key set a request may use now. Without a fresh set of its own, the VM first looks in
    /// shared data, so a set fetched by another worker is used at once rather than at the next tick.
    fn with_keys<R>(&self, now_ms: u64, f: impl FnOnce(Keys<'_>) -> R) -> R {
        if self.has_remote() && !self.remote_usable(now_ms) {
            self.sync_from_shared();
        }
        let view = self.keys.borrow();
        let freshness = if self.has_remote() {
            jwks_cache::freshness(&view.meta, now_ms, &self.timings)
        } else {
            Freshness::Never
        };
        let remote = match freshness {
            Freshness::Stale => Unavailable::Stale,
            _ => Unavailable::NotYet,
        };
        match (freshness, &view.merged, &view.local) {
            (Freshness::Fresh, Some(merged), _) => {
                self.token_cache.use_key_set(view.version);
                f(Keys::Ready(merged))
            }
            (_, _, Some(local)) if !self.has_remote() => {
                self.token_cache.use_key_set(LOCAL_KEY_SET);
                f(Keys::Ready(local))
            }
            (_, _, Some(local)) => {
                self.token_cache.use_key_set(LOCAL_KEY_SET);
                f(Keys::Partial { local, remote })
            }
            (Freshness::Stale, _, None) => f(Keys::Stale),
            _ => f(Keys::NotYet),
        }
    }

    /// Reads the shared record and, when a newer key set was stored, parses it.
    fn sync_from_shared(&self) -> (Meta, Option<u32>) {
        let (bytes, cas) = abi::get_shared_data(&self.meta_key).unwrap_or((None, None));
        let meta = bytes.as_deref().and_then(Meta::decode).unwrap_or_default();
        let mut view = self.keys.borrow_mut();
        view.meta = meta.clone();
        if meta.version != 0 && meta.version != view.version {
            if let Some(set) = self.load_keys(meta.version, view.local.as_deref()) {
                view.merged = Some(Rc::new(set));
                view.version = meta.version;
            }
        }
        (meta, cas)
    }

    /// The stored remote set of `version`, parsed on its own and combined with the local keys
    /// key by key.
    fn load_keys(&self, version: u64, local: Option<&KeySet>) -> Option<KeySet> {
        let (bytes, _) = abi::get_shared_data(&self.keys_key).ok()?;
        let bytes = bytes?;
        let body = jwks_cache::decode_keys(&bytes, version)?;
        let remote = crate::jwks::parse_jwks(body).ok()?.keys;
        Some(match local {
            Some(local) => KeySet::merged(&remote, local),
            None => remote,
        })
    }

    /// Marks this configuration's sources as in use, and empties the shared entries of sources
    /// no configuration marked for [`jwks_cache::REGISTRY_EVICT_MS`] (superseded by a reload).
    fn mark_sources_in_use(&self, now_ms: u64) {
        let Ok((bytes, cas)) = abi::get_shared_data(jwks_cache::REGISTRY_KEY) else {
            return;
        };
        let registry = bytes
            .as_deref()
            .map(jwks_cache::Registry::decode)
            .unwrap_or_default();
        let Some(update) = jwks_cache::touch_registry(&registry, &self.fingerprint, now_ms) else {
            return;
        };
        if abi::set_shared_data(jwks_cache::REGISTRY_KEY, &update.registry.encode(), cas).is_err() {
            return;
        }
        self.metrics.gauge(
            "aml_auth.jwks.sources_tracked",
            u64::try_from(update.registry.seen.len()).unwrap_or(u64::MAX),
        );
        for fingerprint in &update.evicted {
            let _ = abi::set_shared_data(&jwks_cache::meta_key(fingerprint), b"", None);
            let _ = abi::set_shared_data(&jwks_cache::keys_key(fingerprint), b"", None);
            self.metrics.count("aml_auth.jwks.superseded_dropped");
            log(
                LogLevel::Info,
                &format!("aml-auth-filter: dropped the shared JWKS entries of superseded sources {fingerprint}"),
            );
        }
    }

    /// Counts a discovery document fetch, with the reason of a failure.
    fn count_discovery(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => self.metrics.count("aml_auth.jwks.discovery.fetch_success"),
            Err(reason) => {
                self.metrics.count("aml_auth.jwks.discovery.fetch_failure");
                self.metrics
                    .count(&format!("aml_auth.jwks.discovery.fetch_failure.{reason}"));
            }
        }
    }

    fn record_key_gauges(&self, now_ms: u64) {
        let view = self.keys.borrow();
        if view.meta.version == 0 {
            return;
        }
        let age = now_ms.saturating_sub(view.meta.fetched_at_ms) / 1_000;
        self.metrics.gauge("aml_auth.jwks.age_seconds", age);
        self.metrics
            .gauge("aml_auth.jwks.version", view.meta.version);
        let count = view.merged.as_ref().map_or(0, |k| k.len());
        self.metrics
            .gauge("aml_auth.jwks.keys", u64::try_from(count).unwrap_or(0));
    }
}

struct Root {
    state: Option<Rc<State>>,
    me: u64,
    /// The call in flight: its token, the source, and which document it fetches.
    in_flight: Option<(u32, usize, Step)>,
}

impl Root {
    fn new() -> Self {
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
        let now = now_ms();
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
            crate::discovery::read_document(
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
        let now = now_ms();
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

struct Request {
    state: Option<Rc<State>>,
}

impl Context for Request {}

/// Filter state names (Envoy prefixes them with `wasm.`).
const PRINCIPAL_STATE: &str = "aml_auth_principal";
const SERVICE_STATE: &str = "aml_auth_service";

/// Removes every configured claim header from the request; false when the host refused.
fn strip_claim_headers(state: &State) -> bool {
    state
        .config
        .claim_headers
        .iter()
        .all(|name| abi::remove_header(abi::HTTP_REQUEST_HEADERS, name).is_ok())
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
        if !strip_claim_headers(&state) {
            log(
                LogLevel::Error,
                "aml-auth-filter: could not remove incoming claim headers; request refused",
            );
            return host_error_reply();
        }
        let Ok(outcome) = decision::decide(&state.config, &state.router, &mut RequestHost(&state))
        else {
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
}

/// What the request decision may ask of the host.
struct RequestHost<'a>(&'a State);

impl decision::Host for RequestHost<'_> {
    fn headers(&mut self) -> Option<Vec<(String, Vec<u8>)>> {
        abi::get_header_pairs(abi::HTTP_REQUEST_HEADERS).ok()
    }

    fn property(&mut self, path: &[&str]) -> Option<String> {
        property(path)
    }

    fn with_token_inputs(&mut self, judge: &mut dyn FnMut(TokenInputs<'_>) -> Verdict) -> Verdict {
        let state = self.0;
        let now = now_ms();
        state.with_keys(now, |keys| {
            judge(TokenInputs {
                now: i64::try_from(now / 1_000).unwrap_or(i64::MAX),
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
