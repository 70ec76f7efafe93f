//! The MCP tools: one per Prometheus HTTP API read, grouped by family.
//!
//! A tool is a typed arguments struct (closed: unknown arguments are
//! refused) and an async function from those arguments to a [`ToolOutput`].
//! [`registry`] lists them for `tools/list` and dispatches `tools/call`.

mod alerting;
pub mod args;
mod chart;
mod discovery;
pub mod exemplars;
pub mod hints;
#[cfg(test)]
mod hostile_args;
pub mod json_text;
mod output;
pub mod promql;
mod query;
pub mod registry;
mod render;
mod schemas;
mod status;
pub mod summary;
pub mod validate;

use std::sync::Arc;

use mcp_prometheus_layers::outbound::truncate::TruncateBudget;
use serde::de::DeserializeOwned;

use crate::config::ToolsConfig;
use crate::upstream::{
    ApiCall, ApiSuccess, Readiness, StreamDecoder, UnknownUpstream, Upstream, UpstreamError,
    Upstreams,
};

use mcp_prometheus_layers::call_scope::{CallScope, NarrowError};
pub use output::{Family, ToolOutput};

/// What a tool call can reach: the upstreams, the limits, and the call's
/// own scope (tenants, trace, forwarded headers).
#[derive(Clone)]
pub struct ToolContext {
    inner: Arc<ContextInner>,
    scope: CallScope,
}

struct ContextInner {
    upstreams: Upstreams,
    limits: ToolsConfig,
    allow_unlimited: bool,
    /// `layers.tenancy.max_tenants_per_request`, also the most tenants a
    /// per-tenant fan-out may ask.
    max_tenants: usize,
    /// Metric names for the hints of empty answers.
    names: hints::NameCache,
}

/// An upstream bound to one call's scope: what tools send requests through.
#[derive(Clone)]
pub struct Target {
    upstream: Arc<Upstream>,
    scope: CallScope,
}

impl Target {
    /// The key a cache of this upstream's answers may share them under
    /// (`a|b`; empty without tenancy), or `None` when the answers depend on
    /// the caller's own forwarded credential and must not be shared.
    pub fn sharing_key(&self) -> Option<String> {
        self.scope.inbound.is_none().then(|| self.tenants_key())
    }

    /// The call's tenants as one key (`a|b`; empty without tenancy).
    pub fn tenants_key(&self) -> String {
        self.scope
            .tenants
            .as_ref()
            .map(|t| t.header_value())
            .unwrap_or_default()
    }

    /// The operator's name for the upstream.
    pub fn name(&self) -> &str {
        self.upstream.name()
    }

    /// A link that opens `expr` over `time` in the UI the operator named
    /// (`external_url`), with that UI's name.
    pub fn link(
        &self,
        expr: &str,
        time: crate::upstream::LinkTime,
    ) -> Option<(&'static str, String)> {
        let link = self.upstream.link()?;
        Some((link.ui_name(), link.query(expr, time)))
    }

    /// Calls a Prometheus API endpoint in this call's scope.
    pub async fn api<T: DeserializeOwned>(
        &self,
        call: ApiCall,
    ) -> Result<ApiSuccess<T>, UpstreamError> {
        self.upstream.api(call, &self.scope).await
    }

    /// Calls the upstream and decodes the answer while it arrives.
    pub async fn api_streamed<D: StreamDecoder>(
        &self,
        call: ApiCall,
        decoder: D,
    ) -> Result<ApiSuccess<D::Output>, UpstreamError> {
        self.upstream.api_streamed(call, &self.scope, decoder).await
    }

    /// Asks the upstream whether it is ready.
    pub async fn readiness(&self) -> Readiness {
        self.upstream.readiness().await
    }

    /// One target per tenant (for endpoints that take a single tenant), at
    /// most `max` of them.
    pub fn per_tenant(&self, max: usize) -> Result<Vec<(Option<String>, Target)>, NarrowError> {
        Ok(self
            .scope
            .per_tenant(max)?
            .into_iter()
            .map(|(tenant, scope)| {
                (
                    tenant,
                    Target {
                        upstream: self.upstream.clone(),
                        scope,
                    },
                )
            })
            .collect())
    }

    /// Lets the answer's bytes run to the hard ceiling, keeping the item
    /// bound: for a summary, which reads the answer while it arrives and
    /// holds one series at a time, so its size is set by the series it
    /// keeps, not by what their samples weigh.
    pub fn summarized(mut self) -> Self {
        let budget = self
            .scope
            .budget
            .get_or_insert_with(TruncateBudget::default);
        budget.max_bytes = Some(usize::MAX);
        self
    }

    /// Streams at most `items` items of the answer (the truncate layer
    /// counts the rest), or the hard ceiling when `unlimited`.
    pub fn with_budget(mut self, items: usize, unlimited: bool) -> Self {
        self.scope.budget = Some(TruncateBudget {
            max_bytes: None,
            max_items: Some(items),
            unlimited,
        });
        self
    }
}

impl ToolContext {
    /// A context over the configured upstreams, with an empty scope.
    pub fn new(
        upstreams: Upstreams,
        limits: ToolsConfig,
        allow_unlimited: bool,
        max_tenants: usize,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                upstreams,
                limits,
                allow_unlimited,
                max_tenants,
                names: hints::NameCache::default(),
            }),
            scope: CallScope::default(),
        }
    }

    /// This context for one call.
    pub fn with_scope(&self, scope: CallScope) -> Self {
        Self {
            inner: self.inner.clone(),
            scope,
        }
    }

    /// The upstream named by a tool's `upstream` argument (or the default),
    /// in this call's scope narrowed to `org_id`.
    pub fn upstream(&self, name: Option<&str>, org_id: Option<&str>) -> Result<Target, ToolError> {
        let upstream = self.inner.upstreams.get(name)?.clone();
        Ok(Target {
            upstream,
            scope: self.scope.narrow(org_id)?,
        })
    }

    /// The most tenants one call may ask, together or one by one.
    pub fn max_tenants(&self) -> usize {
        self.inner.max_tenants
    }

    /// Checks a query's `unlimited` argument against the config.
    pub fn unlimited(&self, requested: Option<bool>) -> Result<bool, ToolError> {
        match requested {
            Some(true) if !self.inner.allow_unlimited => Err(ToolError::InvalidArguments(
                "unlimited: this server does not allow unlimited results; narrow the query instead"
                    .into(),
            )),
            Some(value) => Ok(value),
            None => Ok(false),
        }
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

    /// A query's item limit: the caller's `limit`, or with `unlimited` the
    /// largest the server allows.
    pub fn query_limit(&self, requested: Option<u64>, unlimited: bool) -> Result<usize, ToolError> {
        if unlimited && requested.is_none() {
            return Ok(self.inner.limits.max_limit);
        }
        self.limit(requested)
    }

    /// Metric names cached for the hints of empty answers.
    pub fn names(&self) -> &hints::NameCache {
        &self.inner.names
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
    /// A query or selector that is not PromQL: refused before any request.
    #[error("{argument}: {error}")]
    Promql {
        argument: String,
        error: mcp_prometheus_layers::promql::PromqlError,
    },
    #[error(transparent)]
    UnknownUpstream(#[from] UnknownUpstream),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl From<NarrowError> for ToolError {
    fn from(error: NarrowError) -> Self {
        Self::InvalidArguments(error.to_string())
    }
}

impl ToolError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidArguments(_) | Self::UnknownUpstream(_) => "invalid_arguments",
            Self::Promql { .. } => "invalid_promql",
            Self::Upstream(UpstreamError::Prometheus { .. }) => "prometheus_error",
            Self::Upstream(UpstreamError::Timeout { .. }) => "timeout",
            Self::Upstream(UpstreamError::Guardrail { .. }) => "guardrail",
            Self::Upstream(_) => "upstream_error",
        }
    }
}
