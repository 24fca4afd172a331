//! The proxy-wasm adapter: the only module touching the host ABI. Callbacks gather inputs, call
//! the pure modules, and apply their decision.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::config::{self, FilterConfig};
use crate::policy::{self, Verdict};
use crate::status::{self, Denial, LocalReply, ALL_DENIALS};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { state: None }) });
}}

/// Counter ids defined in this VM.
struct Metrics {
    allowed: Option<u32>,
    passed_through: Option<u32>,
    denied: Option<u32>,
    primary_key: Option<u32>,
    secondary_key: Option<u32>,
    denied_by_reason: Vec<(Denial, Option<u32>)>,
}

impl Metrics {
    fn define() -> Self {
        let counter = |name: &str| hostcalls::define_metric(MetricType::Counter, name).ok();
        Metrics {
            allowed: counter("aml_auth.requests_allowed"),
            passed_through: counter("aml_auth.requests_passed_through"),
            denied: counter("aml_auth.requests_denied"),
            primary_key: counter("aml_auth.key_used.primary"),
            secondary_key: counter("aml_auth.key_used.secondary"),
            denied_by_reason: ALL_DENIALS
                .iter()
                .map(|d| (*d, counter(&format!("aml_auth.denied.{}", d.code()))))
                .collect(),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn denied(&self, denial: Denial) {
        Self::bump(self.denied);
        Self::bump(
            self.denied_by_reason
                .iter()
                .find(|(d, _)| *d == denial)
                .and_then(|(_, id)| *id),
        );
    }
}

/// Everything a request needs, built once per configuration.
struct State {
    config: FilterConfig,
    replies: Vec<(Denial, LocalReply)>,
    metrics: Metrics,
}

impl State {
    fn reply(&self, denial: Denial) -> LocalReply {
        self.replies
            .iter()
            .find(|(d, _)| *d == denial)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| status::reply(denial, &self.config.realm))
    }
}

struct Root {
    state: Option<Rc<State>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match config::parse(&bytes, &|name| std::env::var(name).ok()) {
            Ok(config) => {
                let replies = ALL_DENIALS
                    .iter()
                    .map(|d| (*d, status::reply(*d, &config.realm)))
                    .collect();
                self.state = Some(Rc::new(State {
                    config,
                    replies,
                    metrics: Metrics::define(),
                }));
                true
            }
            Err(e) => {
                let _ = hostcalls::log(LogLevel::Critical, &format!("aml-auth-filter: {e}"));
                self.state = None;
                false
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

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = self.state.clone() else {
            self.send_http_response(
                503,
                vec![("content-type", "application/json")],
                Some(br#"{"error":"unavailable","reason":"not_configured"}"#),
            );
            return Action::Pause;
        };
        let headers = self.get_http_request_headers_bytes();
        let verdict = policy::decide(
            &state.config.policy,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
        );
        match verdict {
            Verdict::PassThrough => {
                Metrics::bump(state.metrics.passed_through);
                Action::Continue
            }
            Verdict::Allow(allowed) => {
                if allowed.remove_authorization {
                    self.set_http_request_header("authorization", None);
                }
                Metrics::bump(state.metrics.allowed);
                match allowed.key {
                    Some(crate::keys::KeySlot::Primary) => Metrics::bump(state.metrics.primary_key),
                    Some(crate::keys::KeySlot::Secondary) => {
                        Metrics::bump(state.metrics.secondary_key)
                    }
                    None => {}
                }
                Action::Continue
            }
            Verdict::Deny(denial) => {
                state.metrics.denied(denial);
                let reply = state.reply(denial);
                let headers: Vec<(&str, &str)> = reply
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect();
                self.send_http_response(
                    u32::from(reply.status),
                    headers,
                    Some(reply.body.as_bytes()),
                );
                Action::Pause
            }
        }
    }
}
