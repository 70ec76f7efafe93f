//! What can go wrong talking to an upstream, worded for the model that
//! reads it: what happened and what to try instead.

use std::time::Duration;

use mcp_prometheus_layers::outbound::guardrails::GuardrailRefusal;
use mcp_prometheus_layers::outbound::tenant_header::TenantError;
use mcp_prometheus_layers::outbound::tenant_label::TenantLabelError;
use mcp_prometheus_layers::outbound::timeout::TimeoutError;
use mcp_prometheus_layers::outbound::truncate::BrokenBody;
use mcp_prometheus_layers::outbound::upstream_auth::NothingToForward;
use mcp_prometheus_layers::{BoxError, error_chain};

/// A failed call to an upstream's HTTP API.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "upstream {upstream:?} is unreachable ({detail}); it may be down or its url misconfigured"
    )]
    Unreachable { upstream: String, detail: String },
    /// The answer started and then broke off (connection closed or reset
    /// mid-body): the upstream is there, the answer is not.
    #[error(
        "upstream {upstream:?} broke off its answer to {endpoint} ({detail}); try again, and narrow the request if it keeps happening"
    )]
    BrokenAnswer {
        upstream: String,
        endpoint: &'static str,
        detail: String,
    },
    #[error(
        "upstream {upstream:?} timed out: no complete answer from {endpoint} within {after:?}; narrow the request (shorter range, larger step, fewer series) or try again"
    )]
    Timeout {
        upstream: String,
        endpoint: &'static str,
        after: Duration,
    },
    #[error("upstream {upstream:?} answered HTTP {status} for {endpoint}: {snippet}")]
    Status {
        upstream: String,
        endpoint: &'static str,
        status: u16,
        snippet: String,
    },
    #[error(
        "upstream {upstream:?} answered {endpoint} with a body that is not valid Prometheus API JSON ({detail}); is the url a Prometheus-compatible API?"
    )]
    InvalidJson {
        upstream: String,
        endpoint: &'static str,
        detail: String,
    },
    #[error(
        "upstream {upstream:?}: the answer of {endpoint} is larger than {limit} bytes; narrow the request (label filters, aggregation, shorter range, limit)"
    )]
    TooLarge {
        upstream: String,
        endpoint: &'static str,
        limit: usize,
    },
    #[error("Prometheus error ({error_type}): {message}")]
    Prometheus {
        error_type: String,
        message: String,
        warnings: Vec<String>,
    },
    #[error("cannot build a request for upstream {upstream:?}: {detail}")]
    BadRequest { upstream: String, detail: String },
    /// An outbound layer refused to send the request (tenant scope,
    /// credentials to forward): nothing reached the upstream.
    #[error("the request to upstream {upstream:?} was not sent: {detail}")]
    Refused { upstream: String, detail: String },
    /// The guardrails (`enforce` mode) judged the query too costly:
    /// nothing was sent. The text names each rule and how to fix the query.
    #[error("the query was not sent to upstream {upstream:?}: {refusal}")]
    Guardrail {
        upstream: String,
        refusal: GuardrailRefusal,
    },
    /// Label tenancy could not filter an answer to the caller's tenants:
    /// nothing of it is passed on.
    #[error("upstream {upstream:?}: {detail}")]
    Unfiltered { upstream: String, detail: String },
}

impl UpstreamError {
    /// Classifies a transport-level failure (connect, TLS, timeout).
    pub(crate) fn from_transport(upstream: &str, endpoint: &'static str, error: &BoxError) -> Self {
        if let Some(timeout) = find_timeout(error.as_ref()) {
            return Self::Timeout {
                upstream: upstream.to_owned(),
                endpoint,
                after: timeout.0,
            };
        }
        if find::<BrokenBody>(error.as_ref()).is_some() {
            return Self::BrokenAnswer {
                upstream: upstream.to_owned(),
                endpoint,
                detail: error_chain(error.as_ref()),
            };
        }
        if let Some(refusal) = error.downcast_ref::<GuardrailRefusal>() {
            return Self::Guardrail {
                upstream: upstream.to_owned(),
                refusal: refusal.clone(),
            };
        }
        if let Some(refusal) = error.downcast_ref::<TenantError>() {
            return Self::Refused {
                upstream: upstream.to_owned(),
                detail: refusal.to_string(),
            };
        }
        if let Some(refusal) = error.downcast_ref::<TenantLabelError>() {
            let (upstream, detail) = (upstream.to_owned(), refusal.to_string());
            return if refusal.callers_request() {
                Self::BadRequest { upstream, detail }
            } else if refusal.before_sending() {
                Self::Refused { upstream, detail }
            } else {
                Self::Unfiltered { upstream, detail }
            };
        }
        if let Some(refusal) = error.downcast_ref::<NothingToForward>() {
            return Self::Refused {
                upstream: upstream.to_owned(),
                detail: refusal.to_string(),
            };
        }
        Self::Unreachable {
            upstream: upstream.to_owned(),
            detail: error_chain(error.as_ref()),
        }
    }
}

/// Finds our timeout anywhere in an error's source chain.
pub(crate) fn find_timeout<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a TimeoutError> {
    find::<TimeoutError>(error)
}

/// Finds an error of type `T` anywhere in an error's source chain.
fn find<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        current = error.source();
    }
    None
}
