//! The metrics registry and the MCP tool-call metrics.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `mcp_prometheus_tool_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolCallLabels {
    pub tool: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels of `mcp_prometheus_tool_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolErrorLabels {
    pub tool: String,
    /// invalid_arguments, prometheus_error, timeout, upstream_error, unknown_tool.
    pub kind: &'static str,
}

/// Labels of `mcp_prometheus_tool_call_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub tool: String,
}

/// Tool-call metrics, named as in the Go server so dashboards carry over.
#[derive(Debug)]
pub struct ToolMetrics {
    calls: Family<ToolCallLabels, Counter>,
    errors: Family<ToolErrorLabels, Counter>,
    duration: Family<ToolLabels, Histogram>,
}

impl ToolMetrics {
    /// Records one finished call; `error` is the error kind, if it failed.
    pub fn record(&self, tool: &str, error: Option<&'static str>, elapsed: Duration) {
        self.calls
            .get_or_create(&ToolCallLabels {
                tool: tool.to_owned(),
                outcome: if error.is_some() { "error" } else { "ok" },
            })
            .inc();
        if let Some(kind) = error {
            self.errors
                .get_or_create(&ToolErrorLabels {
                    tool: tool.to_owned(),
                    kind,
                })
                .inc();
        }
        self.duration
            .get_or_create(&ToolLabels {
                tool: tool.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// Every metric the process exports, registered once at start-up.
pub struct Metrics {
    pub registry: Registry,
    pub tools: Arc<ToolMetrics>,
}

impl Metrics {
    /// Creates and registers all families.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let tools = ToolMetrics {
            calls: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 2.0, 14))
            }),
        };
        registry.register(
            "mcp_prometheus_tool_calls",
            "MCP tool calls by tool and outcome",
            tools.calls.clone(),
        );
        registry.register(
            "mcp_prometheus_tool_errors",
            "Failed MCP tool calls by tool and kind of error",
            tools.errors.clone(),
        );
        registry.register(
            "mcp_prometheus_tool_call_duration_seconds",
            "Duration of MCP tool calls",
            tools.duration.clone(),
        );
        Self {
            registry,
            tools: Arc::new(tools),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
