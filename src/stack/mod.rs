//! The request path, assembled in one place. Nowhere else is a stack built
//! or an order decided; each layer is switched on in `[layers.*]` and built
//! by its own `XConfig::build(&BuildCtx)`, the same code `check-config` runs.
//!
//! ```text
//!  MCP client ──HTTP──► INBOUND (one stack per route family, inbound.rs; outermost: catch panic)
//!    /mcp           trace → metrics{route="/mcp"} → limits → authn → audience → tenancy → MCP tools
//!    /oauth/*       trace → metrics{route="/oauth"} → limits → authorization server
//!    /.well-known/* trace → metrics{route="/.well-known"} → metadata documents
//!    <prefix>/api/v1/* the MCP route's stack (metrics{route=<prefix>}) → passthrough
//!                   (src/passthrough: read APIs only, forwarded untruncated)
//!                          │ a tool call builds typed Prometheus API requests
//!                          ▼
//!                   OUTBOUND (one stack per upstream, outbound.rs)
//!                   trace propagation → user agent → [guardrails] → tenant (X-Scope-OrgID)
//!                   → upstream auth → truncate (tools only) → tenant label (label tenancy only)
//!                   → upstream metrics → timeout → pooled client
//!                   (upstream/client.rs)
//! ```

mod inbound;
#[cfg(test)]
mod label_tests;
mod outbound;
pub mod panic;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderName;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::identity::TenantSet;
use mcp_prometheus_layers::inbound::audience::AudienceConfigError;
use mcp_prometheus_layers::inbound::authn::AuthnConfigError;
use mcp_prometheus_layers::inbound::limits::LimitsConfigError;
use mcp_prometheus_layers::inbound::tenancy::{ResolveError, TenancyConfigError, TenantResolver};
use mcp_prometheus_layers::outbound::guardrails::GuardrailsConfigError;
use mcp_prometheus_layers::outbound::tenant_label::TenantLabelConfigError;
use mcp_prometheus_layers::outbound::truncate::TruncateConfigError;
use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfigError;
use mcp_prometheus_layers::tls::TlsSetupError;
use prometheus_client::registry::Registry;

pub use inbound::Inbound;
pub use outbound::{Outbound, OutboundService, UpstreamStacks};

use crate::config::{Config, LOCAL_ISSUER, TenancyMode, Transport};
use crate::passthrough::PassthroughConfigError;
use mcp_prometheus_layers::audit::AuditConfigError;
use mcp_prometheus_layers::build::ToolEntry;
use mcp_prometheus_layers::inbound::policy::PolicyConfigError;
use mcp_prometheus_layers::inbound::ratelimit::RateLimitConfigError;

/// Why a stack could not be built: a layer's config (each names its key)
/// or an upstream's TLS or credentials.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("invalid config: {0}")]
    Limits(#[from] LimitsConfigError),
    #[error("invalid config: {0}")]
    Authn(#[from] AuthnConfigError),
    #[error("invalid config: {0}")]
    Audience(#[from] AudienceConfigError),
    #[error("invalid config: {0}")]
    Tenancy(#[from] TenancyConfigError),
    #[error("invalid config: {0}")]
    Policy(#[from] PolicyConfigError),
    #[error("invalid config: {0}")]
    RateLimit(#[from] RateLimitConfigError),
    #[error("invalid config: {0}")]
    Audit(#[from] AuditConfigError),
    #[error("invalid config: layers.truncate: {0}")]
    Truncate(#[from] TruncateConfigError),
    #[error("invalid config: layers.guardrails: {0}")]
    Guardrails(#[from] GuardrailsConfigError),
    #[error("invalid config: upstreams[{index}].tls: {source}")]
    Tls { index: usize, source: TlsSetupError },
    #[error("invalid config: upstreams[{index}].auth: {source}")]
    Auth {
        index: usize,
        source: UpstreamAuthConfigError,
    },
    #[error("invalid config: {0}")]
    Passthrough(#[from] PassthroughConfigError),
    #[error("invalid config: {0}")]
    TenantLabel(#[from] TenantLabelConfigError),
}

impl From<std::convert::Infallible> for StackError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// The facts the layer builders share, decided once from the config: our
/// audiences, the trusted client IDs, whether authn is on. The caller adds
/// what only a running server has (our issuer's keys, a tenant resolver).
pub fn build_ctx(config: &Config, registry: Registry) -> BuildCtx {
    let layers = &config.layers;
    let resource_audiences: Vec<String> = config
        .resource_url()
        .into_iter()
        .chain(
            config
                .server
                .public_url
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned()),
        )
        .collect();
    BuildCtx {
        mcp_route: config.server.mcp_path.clone(),
        max_body_bytes: layers.limits.max_body_bytes,
        tool_names: crate::tools::registry::TOOL_NAMES
            .iter()
            .map(|tool| format!("{}{tool}", config.server.tool_prefix))
            .collect(),
        tool_catalogue: crate::tools::registry::TOOL_NAMES
            .iter()
            .map(|tool| ToolEntry {
                name: (*tool).to_owned(),
                family: crate::tools::registry::family(tool).to_owned(),
            })
            .collect(),
        token_audiences: if layers.authn.audiences.is_empty() {
            resource_audiences
        } else {
            layers.authn.audiences.clone()
        },
        trusted_audiences: if layers.audience.enabled {
            layers.audience.trusted.clone()
        } else {
            Vec::new()
        },
        resource_metadata_url: config.resource_metadata_url(),
        authn_enabled: layers.authn.enabled,
        verified_headers: verified_headers(config),
        bare_group_issuers: bare_group_issuers(config)
            .into_iter()
            .chain(local_issuer(config))
            .collect(),
        issuers: layers
            .authn
            .issuers
            .iter()
            .map(|issuer| issuer.issuer.clone())
            .chain(config.oauth.enabled.then(|| config.oauth_issuer()))
            .chain(local_issuer(config))
            .collect(),
        own_issuer: config.oauth.enabled.then(|| config.oauth_issuer()),
        ..BuildCtx::new(registry)
    }
}

/// Under stdio with a local principal, its issuer: rules may name its
/// groups bare.
fn local_issuer(config: &Config) -> Option<String> {
    (config.server.transport == Transport::Stdio && config.server.local_principal.is_some())
        .then(|| LOCAL_ISSUER.to_owned())
}

/// Issuers whose bare group names tenancy matches. Groups come from
/// identity providers: each configured issuer is one, and our own
/// authorization server relays its provider's groups. With one provider
/// every issuer's bare names count (unless it says otherwise); with several,
/// only those that say `groups_for_tenancy = true`, and our own issuer when
/// its provider is such an issuer.
fn bare_group_issuers(config: &Config) -> Vec<String> {
    let configured = &config.layers.authn.issuers;
    let own = config.oauth.enabled.then(|| {
        let provider = config.oauth.provider.issuer_url.trim_end_matches('/');
        (config.oauth_issuer(), provider.to_owned())
    });
    let mut providers: Vec<&str> = configured
        .iter()
        .map(|i| i.issuer.trim_end_matches('/'))
        .collect();
    if let Some((_, provider)) = &own
        && !providers.contains(&provider.as_str())
    {
        providers.push(provider);
    }
    let one_provider = providers.len() == 1;
    let mut bare: Vec<String> = configured
        .iter()
        .filter(|i| i.groups_for_tenancy.unwrap_or(one_provider))
        .map(|i| i.issuer.clone())
        .collect();
    if let Some((issuer, provider)) = own {
        let relays_a_bare_provider = bare.iter().any(|b| b.trim_end_matches('/') == provider);
        if one_provider || relays_a_bare_provider {
            bare.push(issuer);
        }
    }
    bare
}

/// The headers authn verifies a token in: each issuer's `header`, and
/// `Authorization` for our own authorization server's tokens.
fn verified_headers(config: &Config) -> Vec<HeaderName> {
    let authn = &config.layers.authn;
    if !authn.enabled {
        return Vec::new();
    }
    let own = config.oauth.enabled.then_some(http::header::AUTHORIZATION);
    let mut headers: Vec<HeaderName> = Vec::new();
    let named = authn
        .issuers
        .iter()
        .filter_map(|issuer| HeaderName::try_from(issuer.header.as_str()).ok());
    for header in named.chain(own) {
        if !headers.contains(&header) {
            headers.push(header);
        }
    }
    headers
}

/// Builds every stack the server would, without serving and without
/// touching the network: what `check-config` runs, so a config it passes
/// is one `serve` builds.
pub fn check(config: &Config) -> Result<(), StackError> {
    let mut ctx = build_ctx(config, Registry::default());
    if config.layers.tenancy.mode == TenancyMode::GrafanaOrganization {
        ctx.tenant_resolver = Some(Arc::new(NotConnected));
    }
    config.audit.check()?;
    Inbound::from_config(config, &ctx, None)?;
    let outbound = Outbound::from_config(config, &ctx)?;
    for (index, upstream) in config.upstreams.iter().enumerate() {
        outbound.stack(&ctx, index, upstream)?;
    }
    config.passthrough.build(config)?;
    Ok(())
}

/// The Kubernetes resolver's stand-in under `check-config`, which does not
/// contact the cluster; it is never asked.
struct NotConnected;

impl TenantResolver for NotConnected {
    fn resolve<'a>(
        &'a self,
        _: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Result<TenantSet, ResolveError>> + Send + 'a>> {
        Box::pin(std::future::ready(Err(ResolveError(
            "check-config does not contact Kubernetes".into(),
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::STANDALONE_TOML;
    use mcp_prometheus_layers::inbound::authn::IssuerConfig;

    fn config(issuers: &[&str], oauth_provider: Option<&str>) -> Config {
        let mut config = Config::parse(STANDALONE_TOML).expect("parses");
        config.server.public_url = Some("https://mcp.example".into());
        config.layers.authn.enabled = true;
        config.layers.authn.issuers = issuers.iter().map(|i| IssuerConfig::new(i)).collect();
        if let Some(provider) = oauth_provider {
            config.oauth.enabled = true;
            config.oauth.provider.issuer_url = provider.into();
        }
        config
    }

    #[test]
    fn bare_group_names_belong_to_the_one_provider() {
        assert_eq!(
            bare_group_issuers(&config(&["https://dex"], None)),
            ["https://dex"]
        );
        assert_eq!(
            bare_group_issuers(&config(&["https://dex"], Some("https://dex/"))),
            ["https://dex", "https://mcp.example"],
            "our tokens relay the same provider's groups"
        );
        assert!(
            bare_group_issuers(&config(&["https://teleport"], Some("https://dex"))).is_empty(),
            "two providers: nobody's bare names count unless they say so"
        );
        let mut opted = config(&["https://teleport", "https://dex"], Some("https://dex"));
        opted.layers.authn.issuers[1].groups_for_tenancy = Some(true);
        assert_eq!(
            bare_group_issuers(&opted),
            ["https://dex", "https://mcp.example"]
        );
    }
}
