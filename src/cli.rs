//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Transport;

/// What `version` and `--version` print: the release, the git revision
/// and the build date (from build.rs), so an image or bundle in the field
/// says exactly which source it runs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("MCP_PROMETHEUS_GIT_REVISION"),
    ", built ",
    env!("MCP_PROMETHEUS_BUILD_DATE"),
    ")"
);

/// An MCP server giving AI assistants read-only access to Prometheus and
/// Grafana Mimir.
#[derive(Debug, Parser)]
#[command(name = "mcp-prometheus", version = VERSION, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP (streamable HTTP by default, or stdio).
    Serve(ServeArgs),
    /// Validate a config file and print the effective config, secrets
    /// redacted.
    CheckConfig {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the version, git revision and build date.
    Version,
    /// Print the built-in tools (name, title, description) as JSON, so
    /// packaging (the MCP Bundle manifest) lists them without copying.
    Tools,
}

/// Options of `serve`; each overrides the matching config key.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file (default: the built-in config/standalone.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Overrides `server.transport`.
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    /// Overrides `server.listen`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Overrides `observability.listen`.
    #[arg(long)]
    pub observability_listen: Option<SocketAddr>,
    /// Turns on the OAuth authorization server (`[oauth] enabled = true`),
    /// as the Go server's flag did.
    #[arg(long)]
    pub enable_oauth: bool,
    /// Overrides `layers.tenancy.mode` (and enables tenancy), as the Go
    /// server's flag did: none, static, group-map, grafana-organization.
    #[arg(long)]
    pub tenancy_mode: Option<String>,
    /// Static tenants for everyone (`--static-tenants a,b`), implying
    /// `--tenancy-mode static` unless another mode is given.
    #[arg(long, value_delimiter = ',')]
    pub static_tenants: Vec<String>,
}
