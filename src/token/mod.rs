//! Token auth, pure: JWT checks in order, the strict JSON and base64url they read, the claim rules
//! applied after a token verified, the verified-token cache, and the key sets (JWKS parse and merge,
//! their fetch lifecycle, OpenID Connect discovery).

pub mod claims;
pub mod discovery;
pub mod jwks;
pub mod jwks_cache;
pub mod jwt;
pub mod strict_json;
pub mod token_cache;
