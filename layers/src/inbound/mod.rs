//! Layers on the way in, outermost first: what a caller's request passes
//! before it reaches the MCP service (the order is decided in the server's
//! `stack` module, not here).

pub mod audience;
pub mod authn;
pub mod gate;
pub mod http_metrics;
pub mod limits;
pub mod policy;
pub mod ratelimit;
pub mod selector;
pub mod tenancy;
