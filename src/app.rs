//! Everything built from the config once at start-up and shared by the
//! transports and the observability listener: the layers (assembled from
//! `[layers.*]`; their order is fixed in the code), the upstreams and the
//! MCP handler.

use std::sync::Arc;

use mcp_prometheus_layers::audience::AudienceLayer;
use mcp_prometheus_layers::authn::{AuthnConfigError, AuthnLayer, AuthnSettings, IssuerConfig};
use mcp_prometheus_layers::fetch::{Fetch, FetchPolicy, SafeFetcher};
use mcp_prometheus_layers::http_metrics::HttpMetricsLayer;
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::limits::LimitsLayer;
use mcp_prometheus_layers::tenancy::{TenancyConfigError, TenancyLayer, TenantResolver};
use mcp_prometheus_layers::tenant::TenantLayer;
use mcp_prometheus_layers::trace::TraceLayer;
use mcp_prometheus_layers::truncate::TruncateConfigError;

use crate::config::Config;
use crate::mcp::PrometheusMcp;
use crate::oauth::OAuthServer;
use crate::telemetry::metrics::Metrics;
use crate::tenancy::grafana_org::GrafanaOrgResolver;
use crate::tools::ToolContext;
use crate::tools::scope::CallScope;
use crate::upstream::{OutboundLayers, StackError, Upstreams};

/// Why the application could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Upstream(#[from] StackError),
    #[error(transparent)]
    Authn(#[from] AuthnConfigError),
    #[error(transparent)]
    Tenancy(#[from] TenancyConfigError),
    #[error("layers.truncate: {0}")]
    Truncate(#[from] TruncateConfigError),
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthSetupError),
    #[error("Kubernetes client (in-cluster config or KUBECONFIG): {0}")]
    Kubernetes(String),
}

/// The inbound layers that are switched on, outermost first:
/// trace → metrics → limits → authn → audience → tenancy.
#[derive(Clone)]
pub struct InboundLayers {
    pub trace: Option<TraceLayer>,
    pub metrics: Option<HttpMetricsLayer>,
    pub limits: Option<LimitsLayer>,
    pub authn: Option<AuthnLayer>,
    pub audience: Option<AudienceLayer>,
    pub tenancy: Option<TenancyLayer>,
}

/// The running application.
pub struct App {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub upstreams: Upstreams,
    pub mcp: PrometheusMcp,
    pub inbound: InboundLayers,
    /// The authorization server, when `[oauth]` is enabled.
    pub oauth: Option<Arc<OAuthServer>>,
    /// Dependencies besides the upstream that `/readyz` waits for.
    pub readiness: Vec<(&'static str, Readiness)>,
}

/// A readiness check of a dependency: `Err` says why it is not ready.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

impl App {
    /// Builds the layers, upstream stacks and MCP handler from a validated
    /// config.
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        let oauth = if config.oauth.enabled {
            let public = config.server.public_url.clone().unwrap_or_default();
            let resource = config.resource_url().unwrap_or_default();
            Some(OAuthServer::start(&config.oauth, &public, &resource).await?)
        } else {
            None
        };
        let mut metrics = Metrics::new();
        let layers = &config.layers;
        let tenancy_on =
            layers.tenancy.enabled && layers.tenancy.mode != crate::config::TenancyMode::None;
        let outbound = OutboundLayers {
            metrics: metrics.upstreams.clone(),
            tenant: TenantLayer::new(tenancy_on, layers.tenancy.max_tenants_per_request),
            truncate: layers
                .truncate
                .enabled
                .then(|| layers.truncate.build())
                .transpose()?,
            propagate_trace: layers.trace.enabled,
        };
        let upstreams = Upstreams::new(&config.upstreams, &outbound)?;
        let mut readiness = Vec::new();
        let resolver = if layers.tenancy.enabled
            && layers.tenancy.mode == crate::config::TenancyMode::GrafanaOrganization
        {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| BuildError::Kubernetes(e.to_string()))?;
            let resolver = GrafanaOrgResolver::start(
                client,
                &layers.tenancy.crd_version,
                layers.tenancy.max_staleness.0,
                &mut metrics.registry,
            );
            let check = resolver.clone();
            readiness.push((
                "grafana-organizations",
                Arc::new(move || check.health()) as Readiness,
            ));
            Some(resolver as Arc<dyn TenantResolver>)
        } else {
            None
        };
        let inbound = Self::inbound(&config, &mut metrics, oauth.as_ref(), resolver)?;
        let stdio_tenants = (tenancy_on && !layers.tenancy.tenants.is_empty())
            .then(|| TenantSet::new(layers.tenancy.tenants.clone()));
        let ctx = ToolContext::new(
            upstreams.clone(),
            config.tools.clone(),
            layers.truncate.enabled && layers.truncate.allow_unlimited,
        );
        let mcp = PrometheusMcp::new(
            ctx,
            &config.server.tool_prefix,
            metrics.tools.clone(),
            CallScope::stdio(stdio_tenants),
            config.upstreams.iter().any(|u| {
                matches!(
                    u.auth,
                    mcp_prometheus_layers::upstream_auth::UpstreamAuthConfig::Forward { .. }
                )
            }),
        );
        Ok(Self {
            config,
            metrics: Arc::new(metrics),
            upstreams,
            mcp,
            inbound,
            oauth,
            readiness,
        })
    }

    fn inbound(
        config: &Config,
        metrics: &mut Metrics,
        oauth: Option<&Arc<OAuthServer>>,
        resolver: Option<Arc<dyn TenantResolver>>,
    ) -> Result<InboundLayers, BuildError> {
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
        Ok(InboundLayers {
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
