//! The proxy-wasm adapter: the only module touching the host ABI. Callbacks gather inputs, call
//! the pure modules, and apply their decision. `root` holds the root context (configure, tick,
//! JWKS and discovery fetches), `response` reads a finished fetch, `request` the HTTP context,
//! `state` what both share per configuration, `metrics` the VM's stats, `abi` the fallible host
//! calls.

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

mod abi;
mod metrics;
mod request;
mod response;
mod root;
mod state;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(root::Root::new(id)) });
}}

/// Milliseconds since the epoch; `None` when the host cannot tell or tells an implausible time
/// (see [`crate::request::policy::plausible_now_ms`]): nothing time-based is decided then.
fn now_ms() -> Option<u64> {
    crate::request::policy::plausible_now_ms(abi::current_time_ns().ok())
}

/// Logs through the host; a refused log line is dropped.
fn log(level: LogLevel, message: &str) {
    let _ = abi::log(level as u32, message);
}

/// 64 random bits from the host.
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
