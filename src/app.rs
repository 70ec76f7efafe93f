//! Everything built from the config once at start-up and shared by the
//! transports and the observability listener: the layers (assembled from
//! `[layers.*]`; their order is fixed in the code), the upstreams and the
//! MCP handler.

use std::sync::Arc;

use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::inbound::tenancy::TenantResolver;
use mcp_prometheus_layers::trace::SpanHook;

use crate::config::Config;
use crate::mcp::PrometheusMcp;
use crate::oauth::OAuthServer;
use crate::passthrough::Passthrough;
use crate::stack::{Inbound, Outbound, StackError};
use crate::telemetry::metrics::Metrics;
use crate::tenancy::grafana_org::GrafanaOrgResolver;
use crate::tools::ToolContext;
use crate::upstream::Upstreams;

/// Why the application could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Stack(#[from] StackError),
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
    /// The Prometheus API passthrough, when `[passthrough]` is enabled.
    pub passthrough: Option<Passthrough>,
    /// Dependencies besides the upstream that `/readyz` waits for.
    pub readiness: Vec<(&'static str, Readiness)>,
}

/// A readiness check of a dependency: `Err` says why it is not ready.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

impl App {
    /// Builds the layers, upstream stacks and MCP handler from a validated
    /// config; `span_hook` links request spans to the span exporter, if any.
    pub async fn build(config: Config, span_hook: Option<SpanHook>) -> Result<Self, BuildError> {
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
        let mut ctx = crate::stack::build_ctx(&config, std::mem::take(&mut metrics.registry));
        if let Some(server) = &oauth {
            ctx.key_sources
                .insert(server.issuer.clone(), server.key_source());
            ctx.revocations = Some(server.revocations());
        }
        ctx.tenant_resolver = resolver;
        ctx.span_hook = span_hook;
        let audit = config
            .audit
            .build()
            .map_err(crate::stack::StackError::from)?;
        let inbound = Inbound::from_config(&config, &ctx, audit)?;
        let outbound = Outbound::from_config(&config, &ctx)?;
        let upstreams = Upstreams::new(&config.upstreams, &outbound, &ctx)?;
        let passthrough = match config
            .passthrough
            .build(&config)
            .map_err(StackError::from)?
        {
            Some(settings) => Some(
                Passthrough::new(settings, &upstreams, &config)
                    .map_err(StackError::from)?
                    .audited(inbound.audit()),
            ),
            None => None,
        };
        metrics.registry = ctx.into_registry();
        let stdio_tenants = (tenancy_on && !layers.tenancy.tenants.is_empty())
            .then(|| TenantSet::new(layers.tenancy.tenants.clone()));
        let ctx = ToolContext::new(
            upstreams.clone(),
            config.tools.clone(),
            layers.truncate.enabled && layers.truncate.allow_unlimited,
            layers.tenancy.max_tenants_per_request,
        );
        let mcp = PrometheusMcp::new(
            ctx,
            &config.server.tool_prefix,
            metrics.tools.clone(),
            inbound.panics(),
            CallScope::stdio(stdio_tenants, tenancy_on),
            config.upstreams.iter().any(|u| {
                matches!(
                    u.auth,
                    mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig::Forward { .. }
                )
            }),
            inbound.call_guards(
                (config.server.transport == crate::config::Transport::Stdio).then(|| {
                    config
                        .server
                        .local_principal
                        .as_ref()
                        .map(crate::config::LocalPrincipal::principal)
                }),
            ),
        )
        .with_upstream_facts(crate::mcp::UpstreamFacts::from_config(&config))
        .hiding_arguments(&meaningless_arguments(&config, tenancy_on));
        Ok(Self {
            config,
            metrics: Arc::new(metrics),
            upstreams,
            mcp,
            inbound,
            oauth,
            passthrough,
            readiness,
        })
    }
}

/// Tool arguments this deployment gives no meaning: `upstream` with a
/// single upstream; `org_id` when tenancy is off and no upstream lets a
/// caller pick the tenant (the argument is then refused).
fn meaningless_arguments(config: &Config, tenancy_on: bool) -> Vec<&'static str> {
    let mut hidden = Vec::new();
    if config.upstreams.len() == 1 {
        hidden.push("upstream");
    }
    if !tenancy_on && !config.upstreams.iter().any(|u| u.allow_org_id_override) {
        hidden.push("org_id");
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    #[test]
    fn arguments_are_offered_only_where_they_mean_something() {
        let mut config =
            Config::parse("[[upstreams]]\nname = \"a\"\nurl = \"http://127.0.0.1:9090\"\n")
                .expect("parses");
        assert_eq!(
            meaningless_arguments(&config, false),
            ["upstream", "org_id"]
        );
        assert_eq!(meaningless_arguments(&config, true), ["upstream"]);
        let mut second = UpstreamConfig::new("b", "http://127.0.0.1:9091");
        second.allow_org_id_override = true;
        config.upstreams.push(second);
        assert!(meaningless_arguments(&config, false).is_empty());
    }
}
