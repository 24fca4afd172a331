//! aml-auth-filter: Azure Machine Learning style key and token authentication as a proxy-wasm HTTP filter.

pub mod jwks;
pub mod jwt;
pub mod rsa;
