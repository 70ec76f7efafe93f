//! Tower layers of mcp-prometheus.
//!
//! One concern per file. Each layer has an `XLayer` (the [`tower::Layer`]),
//! an `X<S>` service and, where it is configurable, an `XConfig` with the
//! serde shape operators write in TOML and one builder,
//! `XConfig::build(&BuildCtx) -> Result<Option<XLayer>, XConfigError>`.
//! This crate knows HTTP, tower and the
//! shared request-extension types; it knows nothing of MCP tools or OAuth.
//!
//! Layers (their order is decided once, in the server's `stack` module):
//! - [`inbound`]: [`inbound::http_metrics`] (requests by route, MCP method,
//!   tool), [`inbound::limits`] (body size, timeout, concurrency),
//!   [`inbound::gate`] (the one service of the three gates below),
//!   [`inbound::authn`] (bearer JWTs → a [`identity::Principal`]),
//!   [`inbound::audience`] (trusted ID-token audiences), [`inbound::tenancy`]
//!   (principal → the tenants it may read).
//! - [`outbound`]: [`outbound::guardrails`] (cost rules on every query
//!   sent, warn or enforce), [`outbound::tenant_header`] (the one writer of
//!   `X-Scope-OrgID`), [`outbound::tenant_label`] (label tenancy: the
//!   tenants as a matcher in every selector, alerts and rules filtered),
//!   [`outbound::upstream_auth`] (credentials towards the
//!   upstream), [`outbound::truncate`] (streaming cut to a budget),
//!   [`outbound::upstream_metrics`], [`outbound::timeout`].
//! - [`trace`]: W3C trace context, in (a span per request) and out
//!   (`traceparent` propagated).
//!
//! Shared types: [`build`] (what builders get besides their table),
//! [`correlation`] (ids tying a caller's error to the log), [`identity`] (principal, tenant set: what flows through
//! the extensions), [`call_scope`] (what one call carries from its inbound
//! request to its upstream requests), [`tenant_id`] (Mimir tenant ID rules),
//! [`body`] (request and response body types), [`endpoint`] (upstream
//! endpoint names), [`fetch`] (a guarded HTTP fetcher for keys and
//! documents), [`tls`], [`duration`], [`secret`] (redacted credentials),
//! [`response`] (JSON error answers), [`refuse`] (the one future type of
//! layers that refuse at once or pass on).

pub mod audit;
pub mod body;
pub mod build;
pub mod call_scope;
pub mod correlation;
pub mod duration;
pub mod endpoint;
pub mod fetch;
pub mod identity;
pub mod inbound;
pub mod outbound;
pub mod promql;
pub mod refuse;
pub mod response;
pub mod secret;
pub mod tenant_id;
pub mod tls;
pub mod trace;

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
