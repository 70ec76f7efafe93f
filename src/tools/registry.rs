//! The tool table: names, descriptions, schemas and dispatch, written once.

use std::future::Future;
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::de::DeserializeOwned;

use super::args::input_schema;
use super::schemas::output_schema;
use super::{
    ToolContext, ToolError, ToolOutput, alerting, chart, discovery, exemplars, query, status,
    validate,
};

/// Decodes arguments (closed schema; errors name the argument) and runs a
/// tool function.
async fn run<A, F, Fut>(
    ctx: ToolContext,
    arguments: JsonObject,
    tool: F,
) -> Result<ToolOutput, ToolError>
where
    A: DeserializeOwned,
    F: FnOnce(ToolContext, A) -> Fut,
    Fut: Future<Output = Result<ToolOutput, ToolError>>,
{
    let value = serde_json::Value::Object(arguments);
    let args = serde_path_to_error::deserialize::<_, A>(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        ToolError::InvalidArguments(if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        })
    })?;
    tool(ctx, args).await
}

/// The family of a tool (policy rules name families as shorthands):
/// `query`, `discovery`, `status` or `alerting`.
pub fn family(tool: &str) -> &'static str {
    match tool {
        "execute_query"
        | "execute_range_query"
        | "query_exemplars"
        | "validate_query"
        | "render_range_query" => "query",
        "list_metrics"
        | "get_metric_metadata"
        | "list_label_names"
        | "list_label_values"
        | "find_series"
        | "get_targets_metadata" => "discovery",
        "get_alerts" | "get_alertmanagers" | "get_rules" => "alerting",
        "get_targets" | "get_build_info" | "get_runtime_info" | "get_flags" | "get_config"
        | "get_tsdb_stats" | "check_ready" => "status",
        // A new tool joins no family until it is listed above (a family
        // in a policy must not grant it silently).
        _ => "none",
    }
}

/// Takes `argument` out of every tool's input schema: an argument the
/// deployment makes meaningless (`upstream` with one upstream) is one a
/// model should not be offered. Calls that pass it are still accepted.
pub fn hide_argument(tools: &mut [Tool], argument: &str) {
    for tool in tools {
        let mut schema = (*tool.input_schema).clone();
        if let Some(serde_json::Value::Object(properties)) = schema.get_mut("properties")
            && properties.remove(argument).is_some()
        {
            tool.input_schema = Arc::new(schema);
        }
    }
}

#[cfg(test)]
mod family_tests {
    #[test]
    fn every_tool_has_a_family() {
        for tool in super::TOOL_NAMES {
            assert_ne!(super::family(tool), "none", "{tool} has no family");
        }
    }
}

macro_rules! tools {
    ($( $name:literal => $func:path, $args:ty, $title:literal, $description:literal; )*) => {
        /// Built-in tool names, unprefixed, in `tools/list` order.
        pub const TOOL_NAMES: &[&str] = &[$($name),*];

        /// The `tools/list` entries, with `prefix` prepended to each name.
        pub fn tool_list(prefix: &str) -> Vec<Tool> {
            let read_only = ToolAnnotations::new()
                .read_only(true)
                .open_world(false);
            vec![$(
                Tool::new_with_raw(
                    format!("{prefix}{}", $name),
                    Some($description.into()),
                    Arc::new(input_schema::<$args>()),
                )
                .with_title($title)
                .with_raw_output_schema(Arc::new(output_schema($name)))
                .with_annotations(read_only.clone()),
            )*]
        }

        /// Runs the tool called `name` (unprefixed); `None` if there is none.
        pub async fn call(
            ctx: ToolContext,
            name: &str,
            arguments: JsonObject,
        ) -> Option<Result<ToolOutput, ToolError>> {
            Some(match name {
                $( $name => run(ctx, arguments, $func).await, )*
                _ => return None,
            })
        }
    };
}

tools! {
    "execute_query" => query::instant, query::InstantQueryArgs, "Instant query",
        "Evaluate PromQL at one instant (default now): series and their values.";
    "execute_range_query" => query::range, query::RangeQueryArgs, "Range query",
        "Evaluate PromQL over a range (default: last hour): statistics per series, or format=samples.";
    "list_metrics" => discovery::list_metrics, discovery::NamesArgs, "List metric names",
        "Metric names, optionally of series matching selectors.";
    "get_metric_metadata" => discovery::metric_metadata, discovery::MetadataArgs, "Metric metadata",
        "Type (counter, gauge, histogram…), help text and unit of metrics.";
    "list_label_names" => discovery::label_names, discovery::NamesArgs, "List label names",
        "Label names, optionally of series matching selectors.";
    "list_label_values" => discovery::label_values, discovery::LabelValuesArgs, "List label values",
        "Values of one label, optionally on series matching selectors.";
    "find_series" => discovery::find_series, discovery::SeriesArgs, "Find series",
        "Find series (label sets) matching selectors.";
    "get_targets" => status::targets, status::TargetsArgs, "Scrape targets",
        "Scrape targets with their health, last error and labels.";
    "get_build_info" => status::build_info, status::UpstreamOnlyArgs, "Build information",
        "Version, revision and Go version of the Prometheus server.";
    "get_runtime_info" => status::runtime_info, status::UpstreamOnlyArgs, "Runtime information",
        "Start time, retention, goroutines, reload status and other runtime facts.";
    "get_flags" => status::flags, status::UpstreamOnlyArgs, "Command-line flags",
        "The flags the Prometheus server runs with.";
    "get_config" => status::config, status::UpstreamOnlyArgs, "Loaded configuration",
        "The loaded Prometheus configuration, as YAML.";
    "get_tsdb_stats" => status::tsdb_stats, status::TsdbArgs, "TSDB cardinality",
        "Head cardinality: series count, top metrics and labels.";
    "get_alerts" => alerting::alerts, alerting::AlertsArgs, "Active alerts",
        "Pending and firing alerts: labels, annotations, since when.";
    "get_alertmanagers" => status::alertmanagers, status::UpstreamOnlyArgs, "Alertmanagers",
        "The Alertmanagers Prometheus sends alerts to (active and dropped).";
    "get_rules" => alerting::rules, alerting::RulesArgs, "Rules",
        "Alerting and recording rules: health, errors, state; filter by type, name, group, file.";
    "query_exemplars" => exemplars::exemplars, exemplars::ExemplarArgs, "Exemplars",
        "Exemplars (e.g. trace IDs) of a selector's series in a time range.";
    "get_targets_metadata" => discovery::targets_metadata, discovery::TargetsMetadataArgs, "Target metadata",
        "Metric metadata as scraped, by target selector and/or metric.";
    "check_ready" => status::ready, status::UpstreamOnlyArgs, "Readiness",
        "Whether the upstream is ready (/-/ready; /ready on Mimir).";
    "validate_query" => validate::validate, validate::ValidateArgs, "Validate a query",
        "Check PromQL without running it: parts and common mistakes; check_series counts series.";
    "render_range_query" => chart::render, chart::RenderArgs, "Range query chart",
        "Draw a range query as a PNG line chart (limit: lines drawn) with a text summary.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_one_read_only_closed_tools() {
        let tools = tool_list("");
        assert_eq!(tools.len(), 21);
        for tool in &tools {
            let schema = serde_json::Value::Object((*tool.input_schema).clone());
            assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
            assert!(
                schema["properties"]["upstream"].is_object(),
                "{}",
                tool.name
            );
            assert!(tool.output_schema.is_some(), "{}", tool.name);
            assert_eq!(
                tool.annotations.as_ref().and_then(|a| a.read_only_hint),
                Some(true)
            );
        }
    }

    #[test]
    fn a_hidden_argument_leaves_every_schema() {
        let mut tools = tool_list("");
        hide_argument(&mut tools, "upstream");
        for tool in &tools {
            let schema = serde_json::Value::Object((*tool.input_schema).clone());
            assert!(
                schema["properties"].get("upstream").is_none(),
                "{}",
                tool.name
            );
            assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
        }
    }

    #[test]
    fn prefix_applies_to_every_name() {
        let tools = tool_list("mcp_prometheus_");
        assert!(tools.iter().all(|t| t.name.starts_with("mcp_prometheus_")));
        assert!(
            tools
                .iter()
                .any(|t| t.name == "mcp_prometheus_execute_query")
        );
    }

    #[test]
    fn tools_list_stays_small() {
        let size = serde_json::to_vec(&tool_list(""))
            .expect("serializes")
            .len();
        // Every tool with every argument (several upstreams); the default
        // deployment (one upstream) is held to 16 KiB by the integration test.
        assert!(size < 17 * 1024, "tools/list is {size} bytes");
    }
}
