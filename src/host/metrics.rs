//! The VM's stats: every stat the configuration can emit defined when it is applied (so each
//! exists at 0 from the start), their ids cached, counted through fallible host calls.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::types::MetricType;

use super::abi;
use crate::config::FilterConfig;
use crate::request::decision::Scope;
use crate::stats::{self, Event};

/// Stats of this VM, defined on first use and cached: by name, and request events by (scope,
/// event), so a request formats no stat name once its outcome has been seen.
#[derive(Default)]
pub(super) struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    events: RefCell<HashMap<EventKey, u32>>,
}

/// A request event's stat: its scope (`None`: the global name) and the event's name parts.
type EventKey = (Option<Scope>, &'static str, &'static str);

impl Metrics {
    /// The stats of a configuration, every one it can emit defined now, at 0: request events
    /// per scope and the JWKS lifecycle. A definition the host refuses is retried on first use.
    pub(super) fn defined(config: &FilterConfig) -> Self {
        let metrics = Metrics::default();
        for (scope, event) in stats::configured_events(config) {
            let (prefix, suffix) = event.parts();
            let name = event.name(scope.and_then(|s| stats::scope_name(config, s)));
            if let Ok(id) = abi::define_metric(MetricType::Counter as u32, &name) {
                metrics
                    .events
                    .borrow_mut()
                    .insert((scope, prefix, suffix), id);
            }
        }
        for (name, gauge) in stats::configured_lifecycle(config) {
            let kind = if gauge {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            let _ = metrics.id(kind, &name);
        }
        metrics
    }

    fn id(&self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.ids.borrow().get(name) {
            return Some(*id);
        }
        let id = abi::define_metric(kind as u32, name).ok()?;
        self.ids.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }

    pub(super) fn count(&self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            let _ = abi::increment_metric(id, 1);
        }
    }

    pub(super) fn gauge(&self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Gauge, name) {
            let _ = abi::record_metric(id, value);
        }
    }

    /// Counts a request event globally and, when the event is scoped, in its scope.
    pub(super) fn record(&self, config: &FilterConfig, scope: Scope, event: Event) {
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
