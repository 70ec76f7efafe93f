//! Tower layers of mcp-prometheus.
//!
//! One concern per file. Each layer has an `XLayer` (the [`tower::Layer`]),
//! an `X<S>` service and, where it is configurable, an `XConfig` with the
//! serde shape operators write in TOML. This crate knows HTTP, tower and the
//! shared request-extension types; it knows nothing of MCP tools or OAuth.

pub mod audience;
pub mod authn;
pub mod body;
pub mod call_scope;
pub mod duration;
pub mod endpoint;
pub mod fetch;
pub mod http_metrics;
pub mod identity;
pub mod limits;
pub mod response;
pub mod secret;
pub mod tenancy;
pub mod tenant;
pub mod tenant_id;
pub mod timeout;
pub mod tls;
pub mod trace;
pub mod truncate;
pub mod upstream_auth;
pub mod upstream_metrics;

/// The error type every outbound layer speaks: the pooled client's errors,
/// our own timeouts and credential failures all travel boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its sources as one line ("outer: inner: root"), skipping a
/// source whose message the previous one already includes: what clients and
/// logs are told when a connection fails.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}
