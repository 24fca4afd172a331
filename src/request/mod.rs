//! The decision for one request, pure: the request target read once, then the service it selects.

pub mod router;
pub mod target;
