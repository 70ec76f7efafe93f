//! The inbound stacks, one per route family, outermost first. Only the
//! MCP route is authenticated; the authorization server and the metadata
//! documents must be reachable without a token.

use axum::Router;
use mcp_prometheus_layers::audit::AuditLog;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::inbound::audience::AudienceLayer;
use mcp_prometheus_layers::inbound::authn::AuthnLayer;
use mcp_prometheus_layers::inbound::http_metrics::HttpMetricsLayer;
use mcp_prometheus_layers::inbound::limits::LimitsLayer;
use mcp_prometheus_layers::inbound::policy::PolicyLayer;
use mcp_prometheus_layers::inbound::ratelimit::{AddressLimitLayer, RateLimitLayer};
use mcp_prometheus_layers::inbound::tenancy::TenancyLayer;
use mcp_prometheus_layers::trace::TraceLayer;
use tower::ServiceBuilder;

use super::StackError;
use super::panic::{PanicResponder, Panics};
use crate::config::Config;
use tower_http::catch_panic::CatchPanicLayer;

/// The inbound layers that are switched on.
#[derive(Clone)]
pub struct Inbound {
    /// Always on, outermost: a panic is a 500 with a correlation id.
    panics: Panics,
    trace: Option<TraceLayer>,
    /// Labelled with the MCP route; the other route families get their
    /// own label from the same families.
    metrics: Option<HttpMetricsLayer>,
    limits: Option<LimitsLayer>,
    /// Requests without a credential, per address, before authn.
    address_limit: Option<AddressLimitLayer>,
    authn: Option<AuthnLayer>,
    audience: Option<AudienceLayer>,
    tenancy: Option<TenancyLayer>,
    /// Tool calls per caller.
    ratelimit: Option<RateLimitLayer>,
    policy: Option<PolicyLayer>,
    audit: Option<AuditLog>,
}

/// Route labels of the route families besides MCP.
const OAUTH_ROUTE: &str = "/oauth";
const WELL_KNOWN_ROUTE: &str = "/.well-known";

impl Inbound {
    /// The inbound layers `[layers.*]` switch on, each built by its own
    /// config from `ctx`; the deciding ones write their refusals to
    /// `audit` (`None` under `check-config`, which opens no file).
    pub fn from_config(
        config: &Config,
        ctx: &BuildCtx,
        audit: Option<AuditLog>,
    ) -> Result<Self, StackError> {
        let layers = &config.layers;
        let panics = Panics::default();
        ctx.register(|registry| {
            registry.register(
                "mcp_prometheus_panics",
                "Panics caught and answered, by place (http handler or tool call)",
                panics.clone(),
            )
        });
        let ratelimit = layers.ratelimit.build(ctx)?;
        Ok(Self {
            panics,
            trace: layers.trace.build(ctx)?,
            metrics: layers.metrics.build(ctx)?,
            limits: layers.limits.build(ctx)?,
            address_limit: ratelimit
                .as_ref()
                .and_then(|r| r.by_address.clone())
                .map(|l| l.audited(audit.clone())),
            authn: layers.authn.build(ctx)?.map(|l| l.audited(audit.clone())),
            audience: layers
                .audience
                .build(ctx)?
                .map(|l| l.audited(audit.clone())),
            tenancy: layers.tenancy.build(ctx)?.map(|l| l.audited(audit.clone())),
            ratelimit: ratelimit.map(|r| r.by_caller.audited(audit.clone())),
            policy: layers.policy.build(ctx)?,
            audit,
        })
    }

    /// The panic counter tool calls share with the inbound stacks.
    pub fn panics(&self) -> Panics {
        self.panics.clone()
    }

    /// What tool calls need of the deciding layers: the policy (for stdio
    /// callers), the limits (likewise) and the audit log.
    /// `stdio`: the local principal (if any) when the server speaks stdio.
    pub fn call_guards(
        &self,
        stdio: Option<Option<mcp_prometheus_layers::identity::Principal>>,
    ) -> crate::mcp::CallGuards {
        crate::mcp::CallGuards::new(
            self.policy.as_ref(),
            self.ratelimit.as_ref().map(RateLimitLayer::limits),
            self.audit.clone(),
            stdio,
        )
    }

    /// The audit log, for routes that write their own lines (passthrough).
    pub fn audit(&self) -> Option<AuditLog> {
        self.audit.clone()
    }

    /// The panic guard every listener's routes sit behind.
    pub fn catch_panic(&self) -> CatchPanicLayer<PanicResponder> {
        CatchPanicLayer::custom(PanicResponder {
            panics: self.panics.clone(),
        })
    }

    /// The MCP route: catch panic → trace → metrics → limits → address
    /// limit → authn → audience → tenancy → rate limit → policy → the MCP
    /// service (which applies the policy's decision and audits each call).
    pub fn mcp(&self, routes: Router) -> Router {
        self.authenticated(routes, self.ratelimit.clone())
    }

    fn authenticated(&self, routes: Router, ratelimit: Option<RateLimitLayer>) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .layer(self.catch_panic())
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.clone())
                .option_layer(self.limits.clone())
                .option_layer(self.address_limit.clone())
                .option_layer(self.authn.clone())
                .option_layer(self.audience.clone())
                .option_layer(self.tenancy.clone())
                .option_layer(ratelimit)
                .option_layer(self.policy.clone()),
        )
    }

    /// The Prometheus API passthrough: the MCP route's stack (every layer
    /// guarding MCP guards it too), its metrics labelled with `route` (the
    /// prefix), and each request counted as one call by the rate limit.
    pub fn passthrough(&self, routes: Router, route: &str) -> Router {
        Self {
            metrics: self.metrics.as_ref().map(|m| m.for_route(route)),
            ..self.clone()
        }
        .authenticated(
            routes,
            self.ratelimit.as_ref().map(RateLimitLayer::every_request),
        )
    }

    /// The authorization server's routes: catch panic → trace → metrics → limits, no
    /// authentication (they are how a client gets a token).
    pub fn oauth(&self, routes: Router) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .layer(self.catch_panic())
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.as_ref().map(|m| m.for_route(OAUTH_ROUTE)))
                .option_layer(self.limits.clone()),
        )
    }

    /// The public metadata documents (RFC 9728): catch panic → trace → metrics.
    pub fn well_known(&self, routes: Router) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .layer(self.catch_panic())
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.as_ref().map(|m| m.for_route(WELL_KNOWN_ROUTE))),
        )
    }
}
