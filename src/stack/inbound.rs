//! The inbound stacks, one per route family, outermost first. Only the
//! MCP route is authenticated; the authorization server and the metadata
//! documents must be reachable without a token.

use axum::Router;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::inbound::audience::AudienceLayer;
use mcp_prometheus_layers::inbound::authn::AuthnLayer;
use mcp_prometheus_layers::inbound::http_metrics::HttpMetricsLayer;
use mcp_prometheus_layers::inbound::limits::LimitsLayer;
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
    authn: Option<AuthnLayer>,
    audience: Option<AudienceLayer>,
    tenancy: Option<TenancyLayer>,
}

/// Route labels of the route families besides MCP.
const OAUTH_ROUTE: &str = "/oauth";
const WELL_KNOWN_ROUTE: &str = "/.well-known";

impl Inbound {
    /// The inbound layers `[layers.*]` switch on, each built by its own
    /// config from `ctx`.
    pub fn from_config(config: &Config, ctx: &BuildCtx) -> Result<Self, StackError> {
        let layers = &config.layers;
        let panics = Panics::default();
        ctx.register(|registry| {
            registry.register(
                "mcp_prometheus_panics",
                "Panics caught and answered, by place (http handler or tool call)",
                panics.clone(),
            )
        });
        Ok(Self {
            panics,
            trace: layers.trace.build(ctx)?,
            metrics: layers.metrics.build(ctx)?,
            limits: layers.limits.build(ctx)?,
            authn: layers.authn.build(ctx)?,
            audience: layers.audience.build(ctx)?,
            tenancy: layers.tenancy.build(ctx)?,
        })
    }

    /// The panic counter tool calls share with the inbound stacks.
    pub fn panics(&self) -> Panics {
        self.panics.clone()
    }

    /// The panic guard every listener's routes sit behind.
    pub fn catch_panic(&self) -> CatchPanicLayer<PanicResponder> {
        CatchPanicLayer::custom(PanicResponder {
            panics: self.panics.clone(),
        })
    }

    /// The MCP route: catch panic → trace → metrics → limits → authn → audience →
    /// tenancy → the MCP service.
    pub fn mcp(&self, routes: Router) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .layer(self.catch_panic())
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.clone())
                .option_layer(self.limits.clone())
                .option_layer(self.authn.clone())
                .option_layer(self.audience.clone())
                .option_layer(self.tenancy.clone()),
        )
    }

    /// The Prometheus API passthrough: exactly the MCP route's stack
    /// ([`Inbound::mcp`], so every layer guarding MCP guards it too), its
    /// metrics labelled with `route` (the prefix) instead of the MCP path.
    pub fn passthrough(&self, routes: Router, route: &str) -> Router {
        Self {
            metrics: self.metrics.as_ref().map(|m| m.for_route(route)),
            ..self.clone()
        }
        .mcp(routes)
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
