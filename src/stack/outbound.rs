//! The outbound stack: what every request to an upstream passes through,
//! outermost first, around the pooled client.

use std::sync::Arc;

use http::header::USER_AGENT;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use mcp_prometheus_layers::BoxError;
use mcp_prometheus_layers::body::{RequestBody, ResponseBody};
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::outbound::guardrails::GuardrailsLayer;
use mcp_prometheus_layers::outbound::tenant_header::TenantLayer;
use mcp_prometheus_layers::outbound::tenant_label::TenantLabelLayer;
use mcp_prometheus_layers::outbound::timeout::TimeoutLayer;
use mcp_prometheus_layers::outbound::truncate::TruncateLayer;
use mcp_prometheus_layers::outbound::upstream_metrics::{UpstreamMetrics, UpstreamMetricsLayer};
use mcp_prometheus_layers::trace::PropagateLayer;
use tower::ServiceBuilder;
use tower::util::{BoxCloneSyncService, MapResponseLayer};
use tower_http::set_header::SetRequestHeaderLayer;

use super::StackError;
use crate::config::{Config, TenancyMode, UpstreamConfig};
use crate::upstream::pooled_client;

/// A type-erased outbound service: what a tool calls to reach one upstream.
pub type OutboundService =
    BoxCloneSyncService<Request<RequestBody>, Response<ResponseBody>, BoxError>;

/// `mcp-prometheus/<version>`, sent on every upstream request.
pub fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("mcp-prometheus/", env!("CARGO_PKG_VERSION")))
}

/// The outbound layers every upstream shares, built once from `[layers.*]`;
/// the upstream's own auth and timeout join them in [`Outbound::stack`].
#[derive(Clone)]
pub struct Outbound {
    /// Always on: upstream requests by upstream, endpoint and status.
    pub metrics: Arc<UpstreamMetrics>,
    /// Always on: the only writer of `X-Scope-OrgID` (each upstream adds
    /// its fixed `org_id`); fails closed when tenancy is enforced and a
    /// request carries no tenants. Under label tenancy it writes only the
    /// fixed `org_id`.
    pub tenant: TenantLayer,
    /// Label tenancy (`[layers.tenancy] enforce = "label"`): the caller's
    /// tenants as a matcher in every query and series selector, alerts and
    /// rules filtered, unscoped endpoints refused; fails closed.
    pub label: Option<TenantLabelLayer>,
    /// Always on: with `[layers.truncate]` off it still applies each
    /// call's `limit` and the hard ceiling ([`TruncateLayer::calls_only`]).
    pub truncate: TruncateLayer,
    /// `[layers.guardrails]` (off unless its mode says otherwise): judges
    /// every query of both stacks before the tenant layer, so it sees the
    /// caller's query as written, while its pre-checks pass the tenant
    /// layer and the rest like any request. One layer (one pre-check
    /// cache, keyed by upstream) for every upstream.
    pub guardrails: Option<GuardrailsLayer>,
    pub propagate_trace: bool,
}

impl Outbound {
    /// The shared layers from `[layers.*]`; the upstream metrics are
    /// registered in `ctx`.
    pub fn from_config(config: &Config, ctx: &BuildCtx) -> Result<Self, StackError> {
        let layers = &config.layers;
        let tenancy_on = layers.tenancy.enabled && layers.tenancy.mode != TenancyMode::None;
        let label = TenantLabelLayer::from_config(&layers.tenancy, ctx)?;
        let tenant = TenantLayer::new(tenancy_on, layers.tenancy.max_tenants_per_request);
        Ok(Self {
            metrics: ctx.register(UpstreamMetrics::register),
            tenant: if label.is_some() {
                tenant.by_label()
            } else {
                tenant
            },
            label,
            truncate: layers
                .truncate
                .build(ctx)?
                .unwrap_or_else(|| TruncateLayer::calls_only(&layers.truncate)),
            guardrails: layers.guardrails.build(ctx)?,
            propagate_trace: layers.trace.enabled,
        })
    }

    /// One upstream's two stacks, outermost first: trace propagation →
    /// user agent → \[guardrails\] → tenant → upstream auth → \[truncate\]
    /// → \[tenant label\] → metrics → timeout → pooled client. The tools'
    /// stack truncates; the passthrough's does not (its caller gets
    /// Prometheus's whole answer, streamed). Both share the credential (read
    /// once) and the pool. The tenant label layer sits inside truncation so
    /// that the alerts and rules it filters are cut (and counted) only after
    /// the other tenants' are gone; the query it rewrites is the same
    /// wherever it sits. `index` is the upstream's place in `[[upstreams]]`,
    /// for errors.
    pub fn stack(
        &self,
        ctx: &BuildCtx,
        index: usize,
        upstream: &UpstreamConfig,
    ) -> Result<UpstreamStacks, StackError> {
        let auth = upstream
            .auth
            .build(ctx)
            .map_err(|source| StackError::Auth { index, source })?;
        let client = pooled_client(upstream).map_err(|source| StackError::Tls { index, source })?;
        let identity = ServiceBuilder::new()
            .option_layer(self.propagate_trace.then_some(PropagateLayer))
            .layer(SetRequestHeaderLayer::overriding(USER_AGENT, user_agent()))
            .option_layer(self.guardrails.clone())
            .layer(
                self.tenant
                    .clone()
                    .for_upstream(upstream.org_id.as_deref(), upstream.allow_org_id_override),
            )
            .layer(auth);
        let wire = ServiceBuilder::new()
            .option_layer(
                self.label
                    .clone()
                    .map(|label| label.for_upstream(upstream.max_response_bytes)),
            )
            .layer(MapResponseLayer::new(|response: Response<_>| {
                response.map(BodyExt::boxed_unsync)
            }))
            .layer(UpstreamMetricsLayer::new(self.metrics.clone()))
            .layer(TimeoutLayer::new(upstream.timeout.0))
            .service(client);
        let tools = identity
            .clone()
            .layer(self.truncate.clone())
            .service(wire.clone());
        let passthrough = identity.service(wire);
        Ok(UpstreamStacks {
            tools: BoxCloneSyncService::new(tools),
            passthrough: BoxCloneSyncService::new(passthrough),
        })
    }
}

/// One upstream's outbound services.
pub struct UpstreamStacks {
    /// What tools call: answers cut to the call's budget.
    pub tools: OutboundService,
    /// What the Prometheus API passthrough calls: the same tenant header,
    /// credentials, metrics and timeout, without truncation.
    pub passthrough: OutboundService,
}
