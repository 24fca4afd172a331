//! aml-auth-filter: Azure Machine Learning style key and token authentication as a proxy-wasm HTTP filter.
//!
//! Every module but `host` is pure and tested natively; `host` is the only place that touches
//! the proxy-wasm ABI and exists only in the wasm build.

pub mod config;
pub mod keys;
pub mod request;
pub mod stats;
pub mod token;

pub use aml_auth_crypto as crypto;

/// The RSA verifier, at its historical path.
pub use crypto::rsa;

#[cfg(not(target_arch = "wasm32"))]
pub mod signing;

#[cfg(target_arch = "wasm32")]
mod host;
