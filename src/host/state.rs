//! What the root and HTTP contexts share per configuration: the compiled configuration and router,
//! the VM's view of the token key set (read from shared data), the token cache and built replies.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::abi;
use super::metrics::Metrics;
use super::{log, now_ms, random_secret};
use crate::config::{FilterConfig, TokenSettings};
use crate::request::policy::{Keys, Unavailable};
use crate::request::router::Router;
use crate::request::status::{self, Denial, LocalReply};
use crate::token::jwks::KeySet;
use crate::token::jwks_cache::{self, Freshness, Meta, SourceTiming};
use crate::token::token_cache::{self, TokenCache};
use proxy_wasm::types::LogLevel;

/// Token cache generation of the local key set (fetched sets have versions from 1).
const LOCAL_KEY_SET: u64 = 0;

/// The token key set as this VM sees it.
#[derive(Default)]
pub(super) struct KeyView {
    /// Last record read from shared data.
    pub(super) meta: Meta,
    /// Version of `merged`.
    pub(super) version: u64,
    /// The remote keys, then the local keys whose `kid` the remote set lacks.
    pub(super) merged: Option<Rc<KeySet>>,
    /// Local keys alone, parsed once per configuration (used when the remote set is missing or
    /// stale).
    pub(super) local: Option<Rc<KeySet>>,
}

/// Everything requests need, built once per configuration.
pub(super) struct State {
    pub(super) config: FilterConfig,
    pub(super) router: Router,
    pub(super) metrics: Metrics,
    pub(super) keys: RefCell<KeyView>,
    pub(super) timings: Vec<SourceTiming>,
    pub(super) early_refetch_wanted: Cell<bool>,
    /// Whether the root context last found the clock unreadable (logged once per loss).
    pub(super) clock_lost: Cell<bool>,
    pub(super) fingerprint: String,
    pub(super) meta_key: String,
    pub(super) keys_key: String,
    pub(super) token_cache: TokenCache,
    /// Local replies built so far, one per denial seen.
    pub(super) replies: RefCell<Vec<(Denial, Rc<LocalReply>)>>,
}

impl State {
    pub(super) fn new(config: FilterConfig) -> Self {
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
            .and_then(|v| {
                crate::token::jwks::parse_jwks(&serde_json::to_vec(v).unwrap_or_default()).ok()
            })
            .map(|p| Rc::new(p.keys));
        State {
            router,
            metrics: Metrics::defined(&config),
            keys: RefCell::new(KeyView {
                local,
                ..KeyView::default()
            }),
            timings,
            early_refetch_wanted: Cell::new(false),
            clock_lost: Cell::new(false),
            meta_key: jwks_cache::meta_key(&fingerprint),
            keys_key: jwks_cache::keys_key(&fingerprint),
            fingerprint,
            token_cache: TokenCache::new(
                &random_secret(),
                config
                    .token
                    .as_ref()
                    .map_or(token_cache::DEFAULT_MAX_BYTES, |t| t.cache_max_bytes),
                token_cache::MAX_ENTRIES,
            ),
            replies: RefCell::new(Vec::new()),
            config,
        }
    }

    /// The local reply for a denial, built on its first use.
    pub(super) fn reply(&self, denial: Denial) -> Rc<LocalReply> {
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

    /// Now for the root context, in milliseconds; `None` without a plausible clock, when the
    /// caller must do nothing time-based (no lease, no fetch decision, no key set dated).
    /// Counts `aml_auth.clock_unavailable` each time, and logs the loss and the recovery once.
    pub(super) fn clock(&self) -> Option<u64> {
        let now = now_ms();
        match (now, self.clock_lost.get()) {
            (None, lost) => {
                self.metrics.count("aml_auth.clock_unavailable");
                if !lost {
                    self.clock_lost.set(true);
                    log(
                        LogLevel::Error,
                        "aml-auth-filter: the host clock cannot be read (or reads before 2020); \
                         token requests get 503 clock_unavailable and no key set is fetched \
                         until it can",
                    );
                }
            }
            (Some(_), true) => {
                self.clock_lost.set(false);
                log(
                    LogLevel::Info,
                    "aml-auth-filter: the host clock reads again",
                );
            }
            (Some(_), false) => {}
        }
        now
    }

    pub(super) fn token_settings(&self) -> Option<&TokenSettings> {
        self.config.token.as_ref()
    }

    pub(super) fn has_remote(&self) -> bool {
        !self.timings.is_empty()
    }

    pub(super) fn remote_usable(&self, now_ms: u64) -> bool {
        let view = self.keys.borrow();
        view.merged.is_some()
            && jwks_cache::freshness(&view.meta, now_ms, &self.timings) == Freshness::Fresh
    }

    /// The key set a request may use now. Without a fresh set of its own, the VM first looks in
    /// shared data, so a set fetched by another worker is used at once rather than at the next tick.
    pub(super) fn with_keys<R>(&self, now_ms: u64, f: impl FnOnce(Keys<'_>) -> R) -> R {
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
            Freshness::Stale => {
                self.early_refetch_wanted.set(true);
                Unavailable::Stale
            }
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
    pub(super) fn sync_from_shared(&self) -> (Meta, Option<u32>) {
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
    pub(super) fn load_keys(&self, version: u64, local: Option<&KeySet>) -> Option<KeySet> {
        let (bytes, _) = abi::get_shared_data(&self.keys_key).ok()?;
        let bytes = bytes?;
        let body = jwks_cache::decode_keys(&bytes, version)?;
        let remote = crate::token::jwks::parse_jwks(body).ok()?.keys;
        Some(match local {
            Some(local) => KeySet::merged(&remote, local),
            None => remote,
        })
    }

    /// Marks this configuration's sources as in use, and empties the shared entries of sources
    /// no configuration marked for [`jwks_cache::REGISTRY_EVICT_MS`] (superseded by a reload).
    pub(super) fn mark_sources_in_use(&self, now_ms: u64) {
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
    pub(super) fn count_discovery(&self, outcome: Result<(), &str>) {
        match outcome {
            Ok(()) => self.metrics.count("aml_auth.jwks.discovery.fetch_success"),
            Err(reason) => {
                self.metrics.count("aml_auth.jwks.discovery.fetch_failure");
                self.metrics
                    .count(&format!("aml_auth.jwks.discovery.fetch_failure.{reason}"));
            }
        }
    }

    pub(super) fn record_key_gauges(&self, now_ms: u64) {
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
