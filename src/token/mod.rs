//! Token building blocks shared by the JWT and JWKS parsers: strict JSON and base64url, and the
//! claim rules applied after a token has verified.

pub mod claims;
pub mod strict_json;
