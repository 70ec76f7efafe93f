//! Everything built from the config once at start-up and shared by the
//! transports and the observability listener: the layers (assembled from
//! `[layers.*]`; their order is fixed in the code), the upstreams and the
//! MCP handler.

use std::sync::Arc;

use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::inbound::authn::AuthnConfigError;
use mcp_prometheus_layers::inbound::tenancy::{TenancyConfigError, TenantResolver};

use crate::config::Config;
use crate::mcp::PrometheusMcp;
use crate::oauth::OAuthServer;
use crate::stack::{Inbound, Outbound, StackError};
use crate::telemetry::metrics::Metrics;
use crate::tenancy::grafana_org::GrafanaOrgResolver;
use crate::tools::ToolContext;
use crate::upstream::Upstreams;
use mcp_prometheus_layers::call_scope::CallScope;

/// Why the application could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Upstream(#[from] StackError),
    #[error(transparent)]
    Authn(#[from] AuthnConfigError),
    #[error(transparent)]
    Tenancy(#[from] TenancyConfigError),
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthSetupError),
    #[error("Kubernetes client (in-cluster config or KUBECONFIG): {0}")]
    Kubernetes(String),
}

/// The running application.
pub struct App {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub upstreams: Upstreams,
    pub mcp: PrometheusMcp,
    pub inbound: Inbound,
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
        let outbound = Outbound::from_config(&config, metrics.upstreams.clone())?;
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
        let inbound = Inbound::from_config(&config, &mut metrics, oauth.as_ref(), resolver)?;
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
                    mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig::Forward { .. }
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
}
