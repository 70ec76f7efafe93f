//! The MCP tools: one per Prometheus HTTP API read, grouped by family.
//!
//! A tool is a typed arguments struct (closed: unknown arguments are
//! refused) and an async function from those arguments to a [`ToolOutput`].
//! [`registry`] lists them for `tools/list` and dispatches `tools/call`.

mod alerting;
pub mod args;
mod discovery;
mod output;
mod query;
pub mod registry;
mod render;
mod status;

use std::sync::Arc;

use crate::config::ToolsConfig;
use crate::upstream::{UnknownUpstream, Upstream, UpstreamError, Upstreams};

pub use output::{Family, ToolOutput};

/// What every tool call can reach: the upstreams and the limits.
#[derive(Clone)]
pub struct ToolContext {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    upstreams: Upstreams,
    limits: ToolsConfig,
}

impl ToolContext {
    /// A context over the configured upstreams.
    pub fn new(upstreams: Upstreams, limits: ToolsConfig) -> Self {
        Self {
            inner: Arc::new(ContextInner { upstreams, limits }),
        }
    }

    /// The upstream named by a tool's `upstream` argument, or the default.
    pub fn upstream(&self, name: Option<&str>) -> Result<&Arc<Upstream>, ToolError> {
        Ok(self.inner.upstreams.get(name)?)
    }

    /// How many items to return: the caller's `limit` (checked against the
    /// configured maximum) or the default.
    pub fn limit(&self, requested: Option<u64>) -> Result<usize, ToolError> {
        let limits = &self.inner.limits;
        match requested {
            None => Ok(limits.default_limit),
            Some(0) => Err(ToolError::InvalidArguments(
                "limit: must be at least 1".into(),
            )),
            Some(n) if n > limits.max_limit as u64 => Err(ToolError::InvalidArguments(format!(
                "limit: {n} is above this server's maximum of {}; ask for fewer and narrow the request instead",
                limits.max_limit
            ))),
            Some(n) => Ok(n as usize),
        }
    }

    /// The configured ceiling for a query's `timeout` argument.
    pub fn max_query_timeout(&self) -> std::time::Duration {
        self.inner.limits.max_query_timeout.0
    }
}

/// Why a tool call failed; becomes a tool result with `isError: true`.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error(transparent)]
    UnknownUpstream(#[from] UnknownUpstream),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ToolError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidArguments(_) | Self::UnknownUpstream(_) => "invalid_arguments",
            Self::Upstream(UpstreamError::Prometheus { .. }) => "prometheus_error",
            Self::Upstream(UpstreamError::Timeout { .. }) => "timeout",
            Self::Upstream(_) => "upstream_error",
        }
    }
}
