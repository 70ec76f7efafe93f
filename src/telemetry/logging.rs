//! Logs via tracing: text or JSON, to stderr (stdout is the MCP channel
//! under stdio), level from `RUST_LOG` or the config.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, ObservabilityConfig};

/// Installs the global subscriber. Call once, first thing after the config
/// is read.
pub fn init(config: &ObservabilityConfig) {
    // rmcp logs every session event at info; keep it quiet unless asked.
    let level = if config.log_level.contains("rmcp") {
        config.log_level.clone()
    } else {
        format!("{},rmcp=warn", config.log_level)
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    if let Err(error) = result {
        eprintln!("logging already initialised: {error}");
    }
}
