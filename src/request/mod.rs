//! The decision for one request, pure: the request target read once, the service it selects,
//! and the outcome with the scope it is counted in.

pub mod decision;
pub mod router;
pub mod target;
