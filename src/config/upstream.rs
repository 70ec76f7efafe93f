//! One upstream's config: where it is, how to reach it, and where a
//! person opens its queries.

use std::collections::BTreeMap;

use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;
use mcp_prometheus_layers::secret::Secret;
use serde::{Deserialize, Serialize};

use super::{ConfigDuration, TlsConfig};

/// One Prometheus-compatible API a tool may query.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// What tools call it (`upstream = "<name>"`).
    pub name: String,
    /// Base URL; may carry a path prefix (`/prometheus` for Mimir,
    /// `/api/datasources/proxy/uid/<uid>` for a Grafana datasource).
    pub url: String,
    #[serde(default = "default_upstream_timeout")]
    pub timeout: ConfigDuration,
    /// Static headers added to every request (values are printed redacted).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub auth: UpstreamAuthConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    /// Sent as `X-Scope-OrgID` on every request to this upstream (with
    /// tenancy off; tenancy's tenants win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// With tenancy off, lets a caller's `org_id` argument pick the tenant
    /// (the Go server's per-call override, which it never authenticated).
    /// Off: a caller's `org_id` is refused and `org_id` above is sent.
    #[serde(default)]
    pub allow_org_id_override: bool,
    /// Largest response body read from this upstream.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Send credentials over plain http to a non-loopback host anyway.
    #[serde(default)]
    pub allow_plain_http_credentials: bool,
    /// Where a person opens this upstream's queries (its Prometheus UI, or
    /// Grafana): query answers then carry a link to the same query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Which UI `external_url` is: `prometheus` (default) or `grafana`.
    #[serde(default)]
    pub external_ui: crate::upstream::ExternalUi,
    /// With `external_ui = "grafana"`: the datasource uid Explore opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana_datasource: Option<String>,
}

fn default_upstream_timeout() -> ConfigDuration {
    ConfigDuration::secs(30)
}

fn default_max_response_bytes() -> usize {
    64 << 20
}

impl UpstreamConfig {
    /// An upstream with defaults for everything but name and URL.
    pub fn new(name: &str, url: &str) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            timeout: default_upstream_timeout(),
            headers: BTreeMap::new(),
            auth: UpstreamAuthConfig::None,
            tls: TlsConfig::default(),
            org_id: None,
            allow_org_id_override: false,
            max_response_bytes: default_max_response_bytes(),
            allow_plain_http_credentials: false,
            external_url: None,
            external_ui: crate::upstream::ExternalUi::default(),
            grafana_datasource: None,
        }
    }

    /// The link settings, checked: what answers' links are built from.
    pub fn external_link(
        &self,
    ) -> Result<Option<crate::upstream::ExternalLink>, crate::upstream::LinkConfigError> {
        crate::upstream::ExternalLink::build(
            self.external_url.as_deref(),
            self.external_ui,
            self.grafana_datasource.as_deref(),
        )
    }
}
