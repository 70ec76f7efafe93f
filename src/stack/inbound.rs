//! The inbound stacks, one per route family, outermost first. Only the
//! MCP route is authenticated; the authorization server and the metadata
//! documents must be reachable without a token.

use std::sync::Arc;

use axum::Router;
use mcp_prometheus_layers::fetch::{Fetch, FetchPolicy, SafeFetcher};
use mcp_prometheus_layers::inbound::audience::AudienceLayer;
use mcp_prometheus_layers::inbound::authn::{
    AuthnConfigError, AuthnLayer, AuthnSettings, IssuerConfig,
};
use mcp_prometheus_layers::inbound::http_metrics::HttpMetricsLayer;
use mcp_prometheus_layers::inbound::limits::LimitsLayer;
use mcp_prometheus_layers::inbound::tenancy::{TenancyLayer, TenantResolver};
use mcp_prometheus_layers::trace::TraceLayer;
use tower::ServiceBuilder;

use crate::app::BuildError;
use crate::config::Config;
use crate::oauth::OAuthServer;
use crate::telemetry::metrics::Metrics;

/// The inbound layers that are switched on.
#[derive(Clone)]
pub struct Inbound {
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
    /// The inbound layers `[layers.*]` switch on, in their fixed order.
    pub fn from_config(
        config: &Config,
        metrics: &mut Metrics,
        oauth: Option<&Arc<OAuthServer>>,
        resolver: Option<Arc<dyn TenantResolver>>,
    ) -> Result<Self, BuildError> {
        let layers = &config.layers;
        let resource = config.resource_url();
        let resource_audiences: Vec<String> = resource
            .iter()
            .cloned()
            .chain(
                config
                    .server
                    .public_url
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_owned()),
            )
            .collect();
        let trusted = if layers.audience.enabled {
            layers.audience.trusted.clone()
        } else {
            Vec::new()
        };
        let authn = if layers.authn.enabled {
            let settings = AuthnSettings {
                default_audiences: resource_audiences.clone(),
                extra_audiences: trusted,
                resource_metadata_url: config.resource_metadata_url().unwrap_or_default(),
                revocations: oauth.map(|server| server.revocations()),
            };
            let mut authn = layers.authn.clone();
            let own = oauth.map(|server| {
                // Our own tokens: verified against our key, in process.
                let mut issuer = IssuerConfig::new(&server.issuer);
                issuer.jwks_url = Some(format!("{}/oauth/jwks", server.issuer));
                issuer.algorithms = vec![jsonwebtoken::Algorithm::ES256];
                issuer.allow_private_urls = true;
                authn.issuers.push(issuer);
                (authn.issuers.len() - 1, server.key_source())
            });
            Some(authn.build_with(
                settings,
                &mut metrics.registry,
                |index, issuer| match &own {
                    Some((own_index, keys)) if *own_index == index => Ok(keys.clone()),
                    _ => guarded_fetcher(index, issuer),
                },
            )?)
        } else {
            None
        };
        let audience = (layers.authn.enabled && layers.audience.enabled).then(|| {
            let own = if layers.authn.audiences.is_empty() {
                resource_audiences.clone()
            } else {
                layers.authn.audiences.clone()
            };
            layers.audience.build(own)
        });
        let tenancy = if layers.tenancy.enabled {
            layers.tenancy.build(resolver, &mut metrics.registry)?
        } else {
            None
        };
        Ok(Self {
            trace: layers
                .trace
                .enabled
                .then(crate::telemetry::otel::trace_layer),
            metrics: layers
                .metrics
                .enabled
                .then(|| HttpMetricsLayer::new(&mut metrics.registry, &config.server.mcp_path)),
            limits: layers.limits.enabled.then(|| layers.limits.build()),
            authn,
            audience,
            tenancy,
        })
    }

    /// The MCP route: trace → metrics → limits → authn → audience →
    /// tenancy → the MCP service.
    pub fn mcp(&self, routes: Router) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.clone())
                .option_layer(self.limits.clone())
                .option_layer(self.authn.clone())
                .option_layer(self.audience.clone())
                .option_layer(self.tenancy.clone()),
        )
    }

    /// The authorization server's routes: trace → metrics → limits, no
    /// authentication (they are how a client gets a token).
    pub fn oauth(&self, routes: Router) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.as_ref().map(|m| m.for_route(OAUTH_ROUTE)))
                .option_layer(self.limits.clone()),
        )
    }

    /// The public metadata documents (RFC 9728): trace → metrics.
    pub fn well_known(&self, routes: Router) -> Router {
        routes.layer(
            ServiceBuilder::new()
                .option_layer(self.trace.clone())
                .option_layer(self.metrics.as_ref().map(|m| m.for_route(WELL_KNOWN_ROUTE))),
        )
    }
}

/// The fetcher an external issuer's discovery and keys go through.
fn guarded_fetcher(
    index: usize,
    issuer: &IssuerConfig,
) -> Result<Arc<dyn Fetch>, AuthnConfigError> {
    let fetcher = SafeFetcher::new(FetchPolicy {
        allow_private: issuer.allow_private_urls,
        tls: issuer.tls.clone(),
        ..FetchPolicy::default()
    })
    .map_err(|e| AuthnConfigError::Fetcher(index, e.to_string()))?;
    Ok(Arc::new(fetcher))
}
