//! Everything built from the config once at start-up and shared by the
//! transports and the observability listener.

use std::sync::Arc;

use crate::config::Config;
use crate::mcp::PrometheusMcp;
use crate::telemetry::metrics::Metrics;
use crate::tools::ToolContext;
use crate::upstream::{StackError, Upstreams};

/// The running application.
pub struct App {
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub upstreams: Upstreams,
    pub mcp: PrometheusMcp,
}

impl App {
    /// Builds the upstream stacks and the MCP handler from a validated config.
    pub fn build(config: Config) -> Result<Self, StackError> {
        let metrics = Metrics::new();
        let upstreams = Upstreams::new(&config.upstreams, metrics.upstreams.clone())?;
        let ctx = ToolContext::new(upstreams.clone(), config.tools.clone());
        let mcp = PrometheusMcp::new(ctx, &config.server.tool_prefix, metrics.tools.clone());
        Ok(Self {
            config,
            metrics: Arc::new(metrics),
            upstreams,
            mcp,
        })
    }
}
