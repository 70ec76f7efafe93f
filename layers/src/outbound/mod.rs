//! Layers on the way out, outermost first: what every request to an
//! upstream passes (the order is decided in the server's `stack` module).

pub mod guardrails;
pub mod tenant_header;
pub mod tenant_label;
pub mod timeout;
pub mod truncate;
pub mod upstream_auth;
pub mod upstream_metrics;
