//! Logs via tracing: text or JSON, to stderr (stdout is the MCP channel
//! under stdio), level from `RUST_LOG` or the config.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::otel::Exporter;
use crate::config::{LogFormat, ObservabilityConfig};

/// Installs the global subscriber (spans also go to `exporter`, if any).
/// Call once, first thing after the config is read.
pub fn init(config: &ObservabilityConfig, exporter: Option<&Exporter>) {
    // rmcp logs every session event at info; keep it quiet unless asked.
    let level = if config.log_level.contains("rmcp") {
        config.log_level.clone()
    } else {
        format!("{},rmcp=warn", config.log_level)
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match config.log_format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.with_ansi(false).boxed(),
    };
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(exporter.map(Exporter::subscriber_layer))
        .try_init();
    if let Err(error) = result {
        eprintln!("logging already initialised: {error}");
    }
}
