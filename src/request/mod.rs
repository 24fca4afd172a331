//! The decision for one request, pure: the request target read once, the service it selects, the
//! credential it carries, the policy that judges it, and every local reply it can get.

pub mod credential;
pub mod decision;
pub mod headers;
pub mod policy;
pub mod router;
pub mod status;
pub mod target;
