//! The configuration file: plain serde structs, one table per concern,
//! loaded once at start-up, overridden by the Go server's environment
//! variables, then validated.

mod env;
mod upstream;
mod validate;

use std::net::SocketAddr;
use std::path::Path;

pub use mcp_prometheus_layers::inbound::audience::AudienceConfig;
pub use mcp_prometheus_layers::inbound::authn::AuthnConfig;
pub use mcp_prometheus_layers::inbound::http_metrics::MetricsConfig;
pub use mcp_prometheus_layers::inbound::limits::LimitsConfig;
pub use mcp_prometheus_layers::inbound::policy::PolicyConfig;
pub use mcp_prometheus_layers::inbound::ratelimit::RateLimitConfig;
pub use mcp_prometheus_layers::inbound::tenancy::{TenancyConfig, TenancyMode};
pub use mcp_prometheus_layers::outbound::guardrails::GuardrailsConfig;
pub use mcp_prometheus_layers::outbound::truncate::TruncateConfig;
pub use mcp_prometheus_layers::tls::TlsConfig;
pub use mcp_prometheus_layers::trace::TraceConfig;
use serde::{Deserialize, Serialize};

pub use env::apply_env_overrides;
pub use mcp_prometheus_layers::audit::AuditConfig;
pub use mcp_prometheus_layers::duration::ConfigDuration;
pub use upstream::UpstreamConfig;
pub use validate::ConfigError;
pub use validate::{CHART_MIN_HEIGHT, CHART_MIN_WIDTH};

/// The defaults `serve` uses without `--config`: the file `make run` uses.
pub const STANDALONE_TOML: &str = include_str!("../../config/standalone.toml");

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub observability: ObservabilityConfig,
    /// Named Prometheus-compatible upstreams; the first is the default.
    pub upstreams: Vec<UpstreamConfig>,
    pub tools: ToolsConfig,
    /// The tower layers, each switched on and tuned here; their order is
    /// fixed by the code.
    pub layers: LayersConfig,
    /// The OAuth 2.1 authorization server (off unless enabled).
    pub oauth: crate::oauth::OAuthConfig,
    /// The audit log of tool calls and refusals (off unless enabled).
    pub audit: AuditConfig,
    /// The authenticated Prometheus API passthrough (off unless enabled).
    pub passthrough: crate::passthrough::PassthroughConfig,
}

/// `[layers.*]`: one table per layer.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LayersConfig {
    pub trace: TraceConfig,
    pub metrics: MetricsConfig,
    pub limits: LimitsConfig,
    pub authn: AuthnConfig,
    pub audience: AudienceConfig,
    pub tenancy: TenancyConfig,
    pub ratelimit: RateLimitConfig,
    pub policy: PolicyConfig,
    pub truncate: TruncateConfig,
    pub guardrails: GuardrailsConfig,
}

/// Which MCP transport `serve` speaks.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum Transport {
    /// JSON-RPC over stdin/stdout, for desktop clients that spawn us.
    Stdio,
    /// MCP streamable HTTP at `server.mcp_path`.
    #[default]
    StreamableHttp,
    /// Only the legacy HTTP+SSE transport of protocol 2024-11-05
    /// (`GET /sse`, `POST /message`), for clients that speak nothing newer.
    Sse,
}

/// The MCP listener.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub transport: Transport,
    pub listen: SocketAddr,
    pub mcp_path: String,
    /// The URL clients reach us at (`https://mcp.example.com`): our OAuth
    /// resource identifier, the default token audience, and the base of the
    /// RFC 9728 metadata URL. Required with authn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `Host` values accepted on the MCP route (DNS-rebinding protection).
    /// Behind a Kubernetes Service, list the Service's DNS names.
    /// `["*"]` accepts any host: only behind a proxy that checks it.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin` values accepted; requests without `Origin` (every
    /// non-browser client) always pass.
    pub allowed_origins: Vec<String>,
    /// Answer simple requests with `application/json` rather than SSE.
    pub json_response: bool,
    /// Give clients of protocol versions before 2026-07-28 a session
    /// (`Mcp-Session-Id`). 2026-07-28 requests are always stateless. Turn off
    /// to serve everything statelessly (any replica answers any request).
    pub stateful_sessions: bool,
    /// Prepended to every tool name, e.g. `mcp_prometheus_`.
    pub tool_prefix: String,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace: ConfigDuration,
    /// How long a client may take to send a request's headers (a slow
    /// client holds a connection no longer than this).
    pub header_read_timeout: ConfigDuration,
    /// Connections open at once on each listener; more wait to be accepted.
    pub max_connections: usize,
    /// Streamable HTTP sessions (clients before 2026-07-28) open at once;
    /// each holds tasks and buffers until it ends or idles out, so an
    /// `initialize` past this is refused with 503 (and its session closed).
    pub max_sessions: usize,
    /// Also serve the legacy HTTP+SSE transport (`GET /sse`, `POST
    /// /message`) beside streamable HTTP, for older clients.
    pub legacy_sse: bool,
    /// Legacy SSE sessions open at once; each holds a connection and a
    /// task, so more are refused with 503 rather than exhausting them.
    pub sse_max_sessions: usize,
    /// A legacy SSE session with no message either way for this long is
    /// closed (an abandoned client otherwise holds its stream for ever).
    pub sse_idle_timeout: ConfigDuration,
    /// Who stdio calls are made by: the principal the tool policy, rate
    /// limits and audit log see when there is no token (desktop clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_principal: Option<LocalPrincipal>,
}

/// `[server.local_principal]`: the identity of stdio calls.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPrincipal {
    pub subject: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The issuer stdio's local principal carries (it has no token).
pub const LOCAL_ISSUER: &str = "local";

impl LocalPrincipal {
    /// The principal the layers' rules match.
    pub fn principal(&self) -> mcp_prometheus_layers::identity::Principal {
        let mut groups = self.groups.clone();
        groups.sort();
        groups.dedup();
        mcp_prometheus_layers::identity::Principal {
            subject: self.subject.clone(),
            groups,
            scopes: Vec::new(),
            issuer: LOCAL_ISSUER.into(),
            client: None,
            audiences: Vec::new(),
            session: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            transport: Transport::StreamableHttp,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            mcp_path: "/mcp".into(),
            public_url: None,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
            json_response: true,
            stateful_sessions: true,
            tool_prefix: String::new(),
            shutdown_grace: ConfigDuration::secs(10),
            header_read_timeout: ConfigDuration::secs(10),
            max_connections: 4096,
            local_principal: None,
            legacy_sse: false,
            sse_max_sessions: 1000,
            max_sessions: 1000,
            sse_idle_timeout: ConfigDuration::secs(300),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The observability listener and logs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservabilityConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; unset turns
    /// the listener off.
    pub listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// A `tracing` filter (`info`, `mcp_prometheus=debug`); `RUST_LOG` wins.
    pub log_level: String,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9091))),
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

/// How much a tool returns.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Items (series, labels, targets…) a tool returns when the caller
    /// gives no `limit`.
    pub default_limit: usize,
    /// The largest `limit` a caller may ask for.
    pub max_limit: usize,
    /// Upper bound for a query's `timeout` argument.
    pub max_query_timeout: ConfigDuration,
    /// Widest chart `render_range_query` draws, in pixels: bounds the
    /// memory of one drawing (width × height × 3 bytes).
    pub chart_max_width: u32,
    /// Tallest chart `render_range_query` draws, in pixels.
    pub chart_max_height: u32,
    /// Most series one chart draws (the rest are counted in its legend):
    /// more lines than this are unreadable, and each costs drawing time.
    pub chart_max_series: usize,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            default_limit: 200,
            max_limit: 5000,
            max_query_timeout: ConfigDuration::secs(120),
            chart_max_width: 1600,
            chart_max_height: 1000,
            chart_max_series: 10,
        }
    }
}

impl Config {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Loads `path` (or the built-in standalone defaults), applies the
    /// environment overrides and validates: the one way a config is made.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = Self::load_unvalidated(path)?;
        config.normalize();
        config.validate()?;
        Ok(config)
    }

    /// Reads the file and the environment; the caller applies its own
    /// overrides (CLI flags), then `normalize` and `validate`.
    pub fn load_unvalidated(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => STANDALONE_TOML.to_owned(),
        };
        let mut config = Self::parse(&text)?;
        apply_env_overrides(&mut config, |name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Settings implied by others: the authorization server's tokens are
    /// checked by the authn layer, so OAuth switches it on.
    pub fn normalize(&mut self) {
        if self.oauth.enabled {
            self.layers.authn.enabled = true;
        }
    }

    /// The issuer of our own authorization server: `oauth.issuer`, or else
    /// `server.public_url`.
    pub fn oauth_issuer(&self) -> String {
        self.oauth
            .issuer
            .as_deref()
            .or(self.server.public_url.as_deref())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    }

    /// Our resource URL (RFC 8707): `public_url` + `mcp_path`.
    pub fn resource_url(&self) -> Option<String> {
        self.server
            .public_url
            .as_ref()
            .map(|base| format!("{}{}", base.trim_end_matches('/'), self.server.mcp_path))
    }

    /// The RFC 9728 metadata URL for our resource.
    pub fn resource_metadata_url(&self) -> Option<String> {
        self.server.public_url.as_ref().map(|base| {
            format!(
                "{}/.well-known/oauth-protected-resource{}",
                base.trim_end_matches('/'),
                self.server.mcp_path
            )
        })
    }

    /// The effective config as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}
