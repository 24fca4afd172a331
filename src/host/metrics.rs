//! The VM's stats: every stat the configuration can emit defined when it is applied (so each
//! exists at 0 from the start), their ids cached, counted through fallible host calls.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::types::MetricType;

use super::abi;
use crate::config::FilterConfig;
use crate::request::decision::Scope;
use crate::stats::{self, Event};

/// Stats of this VM, defined on first use and cached: lifecycle stats by name, request events
/// by position (a slot per scope, then the event's place in it), so that counting a request's
/// outcome neither formats nor hashes a stat name.
#[derive(Default)]
pub(super) struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
    events: RefCell<Vec<ScopeIds>>,
}

/// The stat ids of one scope's request events.
#[derive(Default)]
struct ScopeIds {
    /// By [`Event::slot`].
    fixed: [Option<u32>; stats::EVENTS.len()],
    /// `denied.<reason>`, by reason code.
    denied: Vec<(&'static str, u32)>,
}

impl ScopeIds {
    fn get(&self, event: Event) -> Option<u32> {
        match event {
            Event::DeniedBecause(d) => {
                let code = d.code();
                self.denied
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, id)| *id)
            }
            other => self.fixed.get(other.slot()).copied().flatten(),
        }
    }

    fn set(&mut self, event: Event, id: u32) {
        match event {
            Event::DeniedBecause(d) => self.denied.push((d.code(), id)),
            other => {
                if let Some(slot) = self.fixed.get_mut(other.slot()) {
                    *slot = Some(id);
                }
            }
        }
    }
}

/// Where a scope's ids are kept: 0 global, 1 the top-level policy, 2 + i `services[i]`.
fn scope_slot(scope: Option<Scope>) -> usize {
    match scope {
        None | Some(Scope::Global) => 0,
        Some(Scope::Default) => 1,
        Some(Scope::Service(i)) => i.saturating_add(2),
    }
}

impl Metrics {
    /// The stats of a configuration, every one it can emit defined now, at 0: request events
    /// per scope and the JWKS lifecycle. A definition the host refuses is retried on first use.
    pub(super) fn defined(config: &FilterConfig) -> Self {
        let metrics = Metrics::default();
        metrics
            .events
            .borrow_mut()
            .resize_with(config.services.len().saturating_add(2), ScopeIds::default);
        for (scope, event) in stats::configured_events(config) {
            let name = event.name(scope.and_then(|s| stats::scope_name(config, s)));
            if let Ok(id) = abi::define_metric(MetricType::Counter as u32, &name) {
                metrics.store(scope, event, id);
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

    fn store(&self, scope: Option<Scope>, event: Event, id: u32) {
        if let Some(ids) = self.events.borrow_mut().get_mut(scope_slot(scope)) {
            ids.set(event, id);
        }
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
        let cached = self
            .events
            .borrow()
            .get(scope_slot(scope))
            .and_then(|ids| ids.get(event));
        let id = cached.or_else(|| {
            let name = event.name(scope.and_then(|s| stats::scope_name(config, s)));
            let id = abi::define_metric(MetricType::Counter as u32, &name).ok()?;
            self.store(scope, event, id);
            Some(id)
        });
        if let Some(id) = id {
            let _ = abi::increment_metric(id, 1);
        }
    }
}
