//! The resources (`resources/list`, `resources/templates/list`,
//! `resources/read`): a PromQL cheat sheet we wrote, the upstreams this
//! server serves and what applies to each, and each upstream's metric
//! catalog ([`super::catalog`]).
//!
//! The upstreams resource leaves out every URL, header and credential: an
//! upstream's base URL is the operator's internal address, which a model
//! has no use for (it can only name the upstream) and which would map the
//! network for whoever reads it.

use mcp_prometheus_layers::inbound::ratelimit::CHARGED_RESOURCE_PREFIX;
use mcp_prometheus_layers::outbound::tenant_label::unscoped_tools;
use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use serde::Serialize;

use crate::config::{Config, TenancyMode};
use mcp_prometheus_layers::inbound::tenancy::Enforcement;

/// The cheat sheet's URI.
pub const CHEATSHEET_URI: &str = "prometheus://docs/promql-cheatsheet";
/// The upstreams' URI.
pub const UPSTREAMS_URI: &str = "prometheus://upstreams";
/// The catalog template (RFC 6570): `cursor` is optional.
pub const CATALOG_TEMPLATE: &str = "prometheus://upstreams/{name}/metrics{?cursor}";

/// The cheat sheet, written by us for this server's tools.
pub const CHEATSHEET: &str = include_str!("cheatsheet.md");

/// How long a client may keep a list or a static resource: they change
/// only with the config, which changes only with a restart; five minutes
/// bounds how long a client keeps a list a redeploy changed.
pub const LIST_TTL_MS: u64 = 300_000;

/// The first page of `upstream`'s metric catalog.
pub fn catalog_uri(upstream: &str) -> String {
    format!(
        "{CHARGED_RESOURCE_PREFIX}{}/metrics",
        utf8_percent_encode(upstream, NON_ALPHANUMERIC)
    )
}

/// What a client may know of one upstream: no URL, header or credential.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamFacts {
    pub name: String,
    /// Used when a tool is given no `upstream`.
    pub default: bool,
    /// How tenants are chosen: none, static, group-map,
    /// grafana-organization.
    pub tenancy: TenancyMode,
    /// How tenants reach it: `header` (X-Scope-OrgID) or `label` (a
    /// matcher injected into every selector); absent without tenancy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_enforcement: Option<&'static str>,
    /// Whether a fixed tenant is sent (its value is not shown).
    pub fixed_org_id: bool,
    /// Whether a tool's `org_id` argument may pick the tenant.
    pub org_id_argument: bool,
    /// How the server authenticates to it: none, basic, bearer, forward
    /// (the caller's own credential).
    pub auth: &'static str,
    /// Upstream request timeout, e.g. `30s`.
    pub timeout: String,
    /// Tools this upstream refuses (label tenancy cannot scope them).
    pub refused_tools: Vec<&'static str>,
    /// The first page of its metric catalog.
    pub metric_catalog: String,
}

impl UpstreamFacts {
    /// The facts of every configured upstream.
    pub fn from_config(config: &Config) -> Vec<Self> {
        let tenancy = &config.layers.tenancy;
        let tenancy_on = tenancy.enabled && tenancy.mode != TenancyMode::None;
        let label = tenancy_on && tenancy.enforce == Enforcement::Label;
        let refused_tools: Vec<&'static str> = if label {
            unscoped_tools()
                .filter(|t| !tenancy.label_unscoped_tools.iter().any(|a| a == t))
                .collect()
        } else {
            Vec::new()
        };
        config
            .upstreams
            .iter()
            .enumerate()
            .map(|(index, upstream)| Self {
                name: upstream.name.clone(),
                default: index == 0,
                tenancy: if tenancy.enabled {
                    tenancy.mode
                } else {
                    TenancyMode::None
                },
                tenant_enforcement: tenancy_on.then_some(if label { "label" } else { "header" }),
                fixed_org_id: upstream.org_id.is_some(),
                org_id_argument: tenancy_on || upstream.allow_org_id_override,
                auth: match upstream.auth {
                    UpstreamAuthConfig::None => "none",
                    UpstreamAuthConfig::Basic { .. } => "basic",
                    UpstreamAuthConfig::Bearer { .. } => "bearer",
                    UpstreamAuthConfig::Forward { .. } => "forward",
                },
                timeout: crate::promtime::format_seconds(upstream.timeout.0) + "s",
                refused_tools: refused_tools.clone(),
                metric_catalog: catalog_uri(&upstream.name),
            })
            .collect()
    }
}

/// `resources/list`: the cheat sheet, the upstreams, and (when `catalogs`)
/// each upstream's catalog.
pub fn list(facts: &[UpstreamFacts], catalogs: bool) -> Vec<Resource> {
    let mut resources = vec![
        Resource::new(CHEATSHEET_URI, "promql-cheatsheet")
            .with_title("PromQL cheat sheet")
            .with_description("PromQL patterns for this server's tools: rates, aggregation, histograms, joins, pitfalls.")
            .with_mime_type("text/markdown")
            .with_size(CHEATSHEET.len() as u64),
        Resource::new(UPSTREAMS_URI, "upstreams")
            .with_title("Upstreams")
            .with_description("The upstreams tools may name, with tenancy, auth kind and the tools each refuses (no URLs or secrets).")
            .with_mime_type("application/json"),
    ];
    if catalogs {
        resources.extend(facts.iter().map(|f| {
            Resource::new(&f.metric_catalog, format!("{}-metrics", f.name))
                .with_title(format!("Metric catalog of {}", f.name))
                .with_description(
                    "Metric names with type, help and unit, 500 a page; follow next_uri for the next page.",
                )
                .with_mime_type("application/json")
        }));
    }
    resources
}

/// `resources/templates/list`: the catalog of any upstream, any page.
pub fn templates(catalogs: bool) -> Vec<ResourceTemplate> {
    if !catalogs {
        return Vec::new();
    }
    vec![
        ResourceTemplate::new(CATALOG_TEMPLATE, "metric-catalog")
            .with_title("Metric catalog of an upstream")
            .with_description(
                "Metric names with type, help and unit, 500 a page. name: an upstream from prometheus://upstreams; cursor: the next_cursor of the previous page.",
            )
            .with_mime_type("application/json"),
    ]
}

/// The cheat sheet with its tool names as `prefix` serves them.
pub fn cheatsheet(prefix: &str) -> String {
    if prefix.is_empty() {
        return CHEATSHEET.to_owned();
    }
    crate::tools::registry::TOOL_NAMES
        .iter()
        .fold(CHEATSHEET.to_owned(), |text, tool| {
            text.replace(&format!("`{tool}`"), &format!("`{prefix}{tool}`"))
        })
}

/// The static resources' contents, or `None` for any other URI.
pub fn read_static(uri: &str, facts: &[UpstreamFacts], prefix: &str) -> Option<ResourceContents> {
    match uri {
        CHEATSHEET_URI => {
            Some(ResourceContents::text(cheatsheet(prefix), uri).with_mime_type("text/markdown"))
        }
        UPSTREAMS_URI => {
            let body = serde_json::json!({ "upstreams": facts });
            Some(ResourceContents::text(body.to_string(), uri).with_mime_type("application/json"))
        }
        _ => None,
    }
}

/// What to say about a URI that names no resource.
pub fn unknown(uri: &str) -> String {
    format!(
        "no resource at {:?}; read {CHEATSHEET_URI}, {UPSTREAMS_URI}, or a metric catalog such as {} (resources/list lists them)",
        uri.chars().take(128).collect::<String>(),
        catalog_uri("<upstream>")
            .replace("%3C", "<")
            .replace("%3E", ">")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    #[test]
    fn upstream_facts_carry_no_url_header_or_secret() {
        let mut config = Config::default();
        let mut upstream =
            UpstreamConfig::new("mimir", "http://user:pw@mimir.internal:8080/prometheus");
        upstream.headers.insert(
            "X-Secret".into(),
            mcp_prometheus_layers::secret::Secret::new("hunter2"),
        );
        upstream.org_id = Some("tenant-z".into());
        config.upstreams = vec![upstream, UpstreamConfig::new("b/c", "http://other:9090")];
        let facts = UpstreamFacts::from_config(&config);
        let text = serde_json::to_string(&facts).expect("serializes");
        for secret in [
            "mimir.internal",
            "http://",
            "pw",
            "hunter2",
            "X-Secret",
            "tenant-z",
            "other",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(facts[0].default && !facts[1].default);
        assert!(facts[0].fixed_org_id);
        assert_eq!(facts[0].timeout, "30s");
        assert_eq!(
            facts[1].metric_catalog,
            "prometheus://upstreams/b%2Fc/metrics"
        );
    }

    #[test]
    fn catalogs_are_listed_only_when_the_caller_may_read_them() {
        let facts = UpstreamFacts::from_config(&Config::default());
        assert_eq!(list(&facts, false).len(), 2);
        assert_eq!(list(&facts, true).len(), 2 + facts.len());
        assert!(templates(false).is_empty());
        assert!(read_static(CHEATSHEET_URI, &facts, "").is_some());
        assert!(read_static("prometheus://nope", &facts, "").is_none());
        let prefixed = cheatsheet("p_");
        assert!(prefixed.contains("`p_execute_query`") && !prefixed.contains("`execute_query`"));
    }
}
