//! Start-up validation: every check names the key and says what to write.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mcp_prometheus_layers::fetch::is_loopback_url;
use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;

use super::{Config, TenancyMode, Transport};
use mcp_prometheus_layers::inbound::tenancy::Enforcement;

/// A config that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: {key}: {message}")]
    Invalid { key: String, message: String },
}

pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Longest tool name MCP clients reliably accept.
const MAX_TOOL_NAME: usize = 64;
/// Longest built-in tool name (`get_targets_metadata`).
const LONGEST_TOOL: usize = 20;

impl Config {
    /// Checks everything serde cannot, except the `[layers.*]` tables and
    /// upstream credentials: their builders check those
    /// (`crate::stack::check`). Run once at start-up and by `check-config`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()?;
        self.validate_stdio_tenancy()?;
        self.validate_upstreams()?;
        self.validate_oauth()?;
        let tools = &self.tools;
        if tools.default_limit == 0 || tools.default_limit > tools.max_limit {
            return Err(invalid(
                "tools.default_limit",
                format!(
                    "must be between 1 and tools.max_limit ({})",
                    tools.max_limit
                ),
            ));
        }
        if tools.max_query_timeout.0.is_zero() {
            return Err(invalid("tools.max_query_timeout", "must be more than 0s"));
        }
        tools.validate_chart()
    }

    /// Under stdio there is no caller identity, so group-based tenancy
    /// would have no tenants: the operator lists them for this transport.
    fn validate_stdio_tenancy(&self) -> Result<(), ConfigError> {
        let tenancy = &self.layers.tenancy;
        if self.server.transport == Transport::Stdio
            && tenancy.enabled
            && matches!(
                tenancy.mode,
                TenancyMode::GroupMap | TenancyMode::GrafanaOrganization
            )
            && tenancy.tenants.is_empty()
        {
            return Err(invalid(
                "layers.tenancy.mode",
                "under stdio there is no caller identity to map groups from: list the tenants stdio may read in layers.tenancy.tenants = [\"…\"], or use mode = \"static\"",
            ));
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if !server.mcp_path.starts_with('/') || server.mcp_path.len() < 2 {
            return Err(invalid(
                "server.mcp_path",
                "must be an absolute path other than \"/\", such as \"/mcp\"",
            ));
        }
        let header_timeout = server.header_read_timeout.0;
        if header_timeout < Duration::from_millis(100) || header_timeout > Duration::from_secs(600)
        {
            return Err(invalid(
                "server.header_read_timeout",
                "must be between 100ms and 10m (e.g. \"10s\")",
            ));
        }
        if server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        self.validate_sse()?;
        if server.allowed_hosts.is_empty() {
            return Err(invalid(
                "server.allowed_hosts",
                "must list the Host values clients use (e.g. [\"mcp.example.com\"]), or [\"*\"] to accept any host behind a proxy that checks it",
            ));
        }
        let prefix = &server.tool_prefix;
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || prefix.len() + LONGEST_TOOL > MAX_TOOL_NAME
        {
            return Err(invalid(
                "server.tool_prefix",
                format!(
                    "may hold only letters, digits, '_' and '-', at most {} characters (e.g. \"mcp_prometheus_\")",
                    MAX_TOOL_NAME - LONGEST_TOOL
                ),
            ));
        }
        if let Some(public) = &server.public_url {
            let url = url::Url::parse(public).map_err(|e| {
                invalid(
                    "server.public_url",
                    format!("{public:?} is not a URL ({e}): send e.g. \"https://mcp.example.com\""),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(invalid(
                    "server.public_url",
                    "must be an http(s) URL without query or fragment",
                ));
            }
        }
        Ok(())
    }

    /// Whether `url` points at our own MCP listener on this host (a
    /// sidecar listening on its upstream's port would query itself).
    fn queries_itself(&self, url: &url::Url) -> bool {
        let listen = self.server.listen.ip();
        let reachable = listen.is_unspecified() || listen.is_loopback();
        // The URL's loopback must be of the family we listen on
        // (`[::1]` never reaches a listener on 127.0.0.1).
        let local = match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() && listen.is_ipv4(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback() && listen.is_ipv6(),
            None => false,
        };
        self.server.transport != Transport::Stdio
            && local
            && reachable
            && url.port_or_known_default() == Some(self.server.listen.port())
    }

    /// The legacy SSE transport's bounds, and its fixed paths beside
    /// `mcp_path`.
    fn validate_sse(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.max_sessions == 0 {
            return Err(invalid(
                "server.max_sessions",
                "must be at least 1 (e.g. 1000)",
            ));
        }
        if server.sse_max_sessions == 0 {
            return Err(invalid(
                "server.sse_max_sessions",
                "must be at least 1 (e.g. 1000)",
            ));
        }
        let idle = server.sse_idle_timeout.0;
        if idle < Duration::from_secs(1) || idle > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "server.sse_idle_timeout",
                "must be between 1s and 24h (e.g. \"5m\")",
            ));
        }
        let sse_on = server.transport == Transport::Sse
            || (server.legacy_sse && server.transport == Transport::StreamableHttp);
        if sse_on && matches!(server.mcp_path.as_str(), "/sse" | "/message") {
            return Err(invalid(
                "server.mcp_path",
                "/sse and /message are the legacy SSE transport's paths: choose another mcp_path (e.g. \"/mcp\")",
            ));
        }
        Ok(())
    }

    fn validate_upstreams(&self) -> Result<(), ConfigError> {
        if self.upstreams.is_empty() {
            return Err(invalid(
                "upstreams",
                "configure at least one [[upstreams]] with name and url (or set PROMETHEUS_URL)",
            ));
        }
        let mut names = HashSet::new();
        for (i, upstream) in self.upstreams.iter().enumerate() {
            let key = |field: &str| format!("upstreams[{i}].{field}");
            let name = &upstream.name;
            if name.is_empty()
                || name.len() > 63
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    key("name"),
                    format!("{name:?} must be 1-63 letters, digits, '-' or '_'"),
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(invalid(key("name"), format!("{name:?} is used twice")));
            }
            let url = url::Url::parse(&upstream.url).map_err(|e| {
                invalid(
                    key("url"),
                    format!(
                        "{:?} is not a URL ({e}): send e.g. \"http://prometheus:9090\"",
                        upstream.url
                    ),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    key("url"),
                    "must be an http:// or https:// URL with a host",
                ));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(invalid(
                    key("url"),
                    "must not carry credentials: use auth = { kind = \"basic\", … }",
                ));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(key("url"), "must not have a query or fragment"));
            }
            upstream
                .external_link()
                .map_err(|e| invalid(key("external_url"), e.to_string()))?;
            if self.queries_itself(&url) {
                return Err(invalid(
                    key("url"),
                    format!(
                        "{} is this server's own listener (server.listen = {}): move one of them to another port (a sidecar next to Mimir on 8080 listens on 8090)",
                        upstream.url, self.server.listen
                    ),
                ));
            }
            let timeout = upstream.timeout.0;
            if timeout.is_zero() || timeout > Duration::from_secs(600) {
                return Err(invalid(key("timeout"), "must be between 1ms and 10m"));
            }
            if upstream.max_response_bytes < 1024 {
                return Err(invalid(key("max_response_bytes"), "must be at least 1024"));
            }
            for (header, value) in &upstream.headers {
                let parsed = HeaderName::try_from(header.as_str()).map_err(|_| {
                    invalid(key("headers"), format!("{header:?} is not a header name"))
                })?;
                if parsed == http::header::AUTHORIZATION || parsed == "x-scope-orgid" {
                    return Err(invalid(
                        key("headers"),
                        format!("set {header} through auth or org_id, not headers"),
                    ));
                }
                HeaderValue::from_str(value.expose()).map_err(|_| {
                    invalid(
                        key("headers"),
                        format!("the value of {header} is not a valid header value"),
                    )
                })?;
            }
            if upstream.org_id.is_some()
                && self.layers.tenancy.enabled
                && self.layers.tenancy.mode != TenancyMode::None
                && self.layers.tenancy.enforce == Enforcement::Header
            {
                tracing::warn!(upstream = %name, "org_id is not sent while tenancy is on: the caller's tenants are");
            }
            if let Some(org_id) = &upstream.org_id {
                mcp_prometheus_layers::tenant_id::validate(org_id)
                    .map_err(|e| invalid(key("org_id"), e.to_string()))?;
            }
            if let Some(ca) = &upstream.tls.ca_file
                && !ca.is_file()
            {
                return Err(invalid(
                    key("tls.ca_file"),
                    format!("{} is not a readable file", ca.display()),
                ));
            }
            let plain = url.scheme() == "http" && !is_loopback_url(&url);
            if matches!(upstream.auth, UpstreamAuthConfig::Forward { .. })
                && plain
                && !upstream.allow_plain_http_credentials
            {
                return Err(invalid(
                    key("auth"),
                    "forwarding callers' credentials over plain http is refused: use an https url, or set allow_plain_http_credentials = true if the network is trusted",
                ));
            }
            let sends_credentials = !matches!(upstream.auth, UpstreamAuthConfig::None);
            if sends_credentials && plain && !upstream.allow_plain_http_credentials {
                tracing::warn!(
                    upstream = %name,
                    "credentials are sent over plain HTTP to a non-loopback host; use https"
                );
            }
        }
        Ok(())
    }
}

mod chart;
pub use chart::{CHART_MIN_HEIGHT, CHART_MIN_WIDTH};
mod oauth;

#[cfg(test)]
mod tests;
