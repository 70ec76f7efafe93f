//! Outbound label tenancy (`[layers.tenancy] enforce = "label"`): one
//! Prometheus (or Thanos Query, which speaks the same API) holds every
//! tenant's series, told apart by a label (`tenant` by default). There is
//! no `X-Scope-OrgID` to trust, so this layer scopes each request itself:
//!
//! - `query` (instant, range, exemplars): the caller's tenants become a
//!   matcher on every selector ([`rewrite`]), intersected with any matcher
//!   the caller wrote on the label;
//! - `match[]` (series, label names, label values): the same, and added
//!   when the request has none;
//! - alerts and rules: the answer is filtered ([`filter`] says exactly
//!   how);
//! - endpoints that answer about the whole server (metadata, targets, TSDB
//!   statistics, config, flags, runtime information, Alertmanagers):
//!   refused unless the operator lists the tool in `label_unscoped_tools`;
//!   build information and readiness read nothing of a tenant's.
//!
//! It fails closed: a request without a [`TenantSet`] (and not a readiness
//! [`Probe`]), or for an endpoint it does not know, is refused before
//! anything is sent. It sits inside the truncate layer, so truncation (and
//! its counts) only ever sees the caller's alerts and rules.

mod endpoint;
mod error;
mod filter;
mod future;
mod params;
pub mod rewrite;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};

pub use endpoint::{Scoping, UNSCOPED, scoping, unscoped_tools};
pub use error::{TenantLabelConfigError, TenantLabelError};
pub use filter::{Answer, AnswerFilter, FilterError};
use future::Filtering;
pub use future::ResponseFuture;
use params::Param;
use rewrite::TenantMatcher;

use crate::BoxError;
use crate::body::{RequestBody, ResponseBody};
use crate::build::BuildCtx;
use crate::endpoint::UpstreamEndpoint;
use crate::identity::{Probe, TenantSet};
use crate::inbound::tenancy::{Enforcement, TenancyConfig, TenancyMode};
use crate::tenant_id;

/// The label when `[layers.tenancy] label` is unset.
pub const DEFAULT_LABEL: &str = "tenant";

/// The most bytes of an alerts or rules answer read to filter it when the
/// upstream sets no bound of its own ([`TenantLabelLayer::for_upstream`]).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 64 << 20;

/// Scopes requests to the caller's tenants by label; built by
/// [`TenantLabelLayer::from_config`].
#[derive(Clone, Debug)]
pub struct TenantLabelLayer {
    label: Arc<str>,
    /// Tools the operator allows although their answers are unscoped.
    unscoped_allowed: Arc<[&'static str]>,
    max_tenants: usize,
    max_answer_bytes: usize,
}

impl TenantLabelLayer {
    /// The layer in label mode, `None` in header mode; checks the label
    /// settings against the rest of `[layers.tenancy]` and the tools
    /// (`ctx.tool_catalogue`).
    pub fn from_config(
        config: &TenancyConfig,
        ctx: &BuildCtx,
    ) -> Result<Option<Self>, TenantLabelConfigError> {
        if config.enforce == Enforcement::Header {
            if config.label.is_some() {
                return Err(TenantLabelConfigError::HeaderMode { key: "label" });
            }
            if !config.label_unscoped_tools.is_empty() {
                return Err(TenantLabelConfigError::HeaderMode {
                    key: "label_unscoped_tools",
                });
            }
            return Ok(None);
        }
        if !config.enabled || config.mode == TenancyMode::None {
            return Err(TenantLabelConfigError::NoTenancy);
        }
        let label = config.label.as_deref().unwrap_or(DEFAULT_LABEL);
        if !is_label_name(label) {
            return Err(TenantLabelConfigError::BadLabel(label.to_owned()));
        }
        let mut allowed = Vec::new();
        for tool in &config.label_unscoped_tools {
            if !ctx.tool_catalogue.iter().any(|entry| entry.name == *tool) {
                return Err(TenantLabelConfigError::UnknownTool {
                    tool: tool.clone(),
                    known: list(ctx.tool_catalogue.iter().map(|e| e.name.as_str())),
                });
            }
            let Some(known) = unscoped_tools().find(|known| known == tool) else {
                return Err(TenantLabelConfigError::AlwaysScoped {
                    tool: tool.clone(),
                    unscoped: list(unscoped_tools()),
                });
            };
            allowed.push(known);
        }
        Ok(Some(Self {
            label: label.into(),
            unscoped_allowed: allowed.into(),
            max_tenants: config.max_tenants_per_request,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
        }))
    }

    /// This layer for an upstream whose answers are read up to
    /// `max_response_bytes`: the bound of an answer read to filter it.
    pub fn for_upstream(mut self, max_response_bytes: usize) -> Self {
        self.max_answer_bytes = max_response_bytes;
        self
    }

    /// The label tenants are told apart by.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Scopes `request`, or says why it cannot be sent; the filter its
    /// answer needs, if any.
    fn prepare(
        &self,
        request: &mut Request<RequestBody>,
    ) -> Result<Option<Filtering>, TenantLabelError> {
        let extensions = request.extensions();
        let probe = extensions.get::<Probe>().is_some();
        let endpoint = extensions.get::<UpstreamEndpoint>().map(|e| e.endpoint);
        let probed = endpoint.and_then(|e| scoping(e, request.uri().path()));
        // A readiness probe acts for no caller; it passes without tenants
        // only where nothing tenant-scoped is read.
        if probe && extensions.get::<TenantSet>().is_none() && probed == Some(Scoping::Harmless) {
            return Ok(None);
        }
        let tenants = extensions
            .get::<TenantSet>()
            .cloned()
            .ok_or(TenantLabelError::Missing)?;
        self.check(&tenants)?;
        let endpoint = endpoint.ok_or(TenantLabelError::NoEndpoint)?;
        let scoping = probed.ok_or(TenantLabelError::UnknownEndpoint {
            endpoint: endpoint.to_owned(),
        })?;
        let param = match scoping {
            Scoping::Query => Param::Query,
            Scoping::Match => Param::Match,
            Scoping::Alerts | Scoping::Rules => {
                return Ok(Some(Filtering {
                    filter: AnswerFilter {
                        answer: if scoping == Scoping::Alerts {
                            Answer::Alerts
                        } else {
                            Answer::Rules
                        },
                        label: self.label.clone(),
                        tenants,
                    },
                    endpoint,
                    limit: self.max_answer_bytes,
                }));
            }
            Scoping::Harmless => return Ok(None),
            Scoping::Unscoped { tool } if self.unscoped_allowed.contains(&tool) => {
                return Ok(None);
            }
            Scoping::Unscoped { tool } => {
                return Err(TenantLabelError::Unscoped {
                    tool,
                    endpoint,
                    label: self.label.to_string(),
                });
            }
        };
        let matcher = TenantMatcher::new(&self.label, &tenants).map_err(|source| {
            TenantLabelError::Rewrite {
                param: param.name(),
                source,
            }
        })?;
        params::rewrite(request, param, &matcher)?;
        Ok(None)
    }

    /// The same checks as the header layer's: at least one tenant, at most
    /// `max_tenants_per_request`, each a valid tenant ID.
    fn check(&self, tenants: &TenantSet) -> Result<(), TenantLabelError> {
        if tenants.is_empty() {
            return Err(TenantLabelError::Empty);
        }
        let count = tenants.as_slice().len();
        if count > self.max_tenants {
            return Err(TenantLabelError::TooMany {
                count,
                max: self.max_tenants,
            });
        }
        for tenant in tenants.as_slice() {
            tenant_id::validate(tenant)?;
        }
        Ok(())
    }
}

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`) that is not one of
/// the reserved `__…` names.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

impl<S> Layer<S> for TenantLabelLayer {
    type Service = TenantLabel<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TenantLabel {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`TenantLabelLayer`].
#[derive(Clone, Debug)]
pub struct TenantLabel<S> {
    inner: S,
    layer: TenantLabelLayer,
}

impl<S> Service<Request<RequestBody>> for TenantLabel<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<RequestBody>) -> Self::Future {
        match self.layer.prepare(&mut request) {
            Ok(filter) => ResponseFuture::calling(self.inner.call(request), filter),
            Err(error) => ResponseFuture::refused(error),
        }
    }
}
