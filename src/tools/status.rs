//! Status tools: targets, build and runtime information, flags, config,
//! TSDB statistics, Alertmanager discovery and readiness.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::output::limit_filtered;
use super::render::{series_name, str_field};
use super::{Family, ToolContext, ToolError, ToolOutput};
use crate::upstream::{ApiCall, ApiSuccess};

/// Arguments of tools that take nothing but the upstream.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamOnlyArgs {
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Which targets `get_targets` lists.
#[derive(Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum TargetState {
    Active,
    Dropped,
    Any,
}

/// Scrape health of an active target.
#[derive(Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum TargetHealth {
    Up,
    Down,
    Unknown,
}

/// Arguments of `get_targets`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetsArgs {
    /// active (default), dropped or any.
    state: Option<TargetState>,
    /// Only this scrape pool (job).
    scrape_pool: Option<String>,
    /// Only active targets with this health.
    health: Option<TargetHealth>,
    /// Most targets to return per list.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Arguments of `get_tsdb_stats`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TsdbArgs {
    /// Entries per top-list (default 10).
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Top-list entries `get_tsdb_stats` shows without a `limit`.
const TSDB_DEFAULT_LIMIT: u64 = 10;

/// `get_targets`: scrape targets and their health.
pub async fn targets(ctx: ToolContext, args: TargetsArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let state = args.state.unwrap_or(TargetState::Active);
    let mut params = vec![(
        "state",
        match state {
            TargetState::Active => "active",
            TargetState::Dropped => "dropped",
            TargetState::Any => "any",
        }
        .to_owned(),
    )];
    if let Some(pool) = &args.scrape_pool {
        params.push(("scrapePool", pool.clone()));
    }
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get_with("/api/v1/targets", params))
        .await?;
    let mut data = answer.data;
    let keep = |target: &Value| {
        let pool_ok = args
            .scrape_pool
            .as_deref()
            .is_none_or(|pool| str_field(target, "scrapePool") == pool);
        let health_ok = args.health.is_none_or(|health| {
            str_field(target, "health")
                == match health {
                    TargetHealth::Up => "up",
                    TargetHealth::Down => "down",
                    TargetHealth::Unknown => "unknown",
                }
        });
        pool_ok && health_ok
    };
    let (mut total, mut returned) = (0, 0);
    let mut text = String::new();
    for key in ["activeTargets", "droppedTargets"] {
        let Some(list) = data.get_mut(key) else {
            continue;
        };
        if let Some(items) = list.as_array_mut() {
            // Dropped targets have no health; older versions give no pool.
            items.retain(|t| match key {
                "activeTargets" => keep(t),
                _ => args.health.is_none() && (t.get("scrapePool").is_none() || keep(t)),
            });
        }
        let all = limit_filtered(list, limit);
        total += all;
        let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
        returned += items.len();
        text.push_str(&format!("{key}: {all}\n"));
        for target in items {
            text.push_str(&render_target(target));
        }
    }
    Ok(ToolOutput::new(
        Family::Status,
        upstream.name(),
        Value::Object(data),
        text.trim_end().to_owned(),
    )
    .counted(returned, total)
    .with_notes(answer.notes))
}

fn render_target(target: &Value) -> String {
    let labels = target
        .get("labels")
        .or_else(|| target.get("discoveredLabels"))
        .and_then(Value::as_object);
    let error = str_field(target, "lastError");
    format!(
        "  {} {} {}{}\n",
        str_field(target, "scrapePool"),
        labels.map(series_name).unwrap_or_default(),
        str_field(target, "health"),
        if error.is_empty() {
            String::new()
        } else {
            format!(" error: {error}")
        },
    )
}

/// A status answer whose `data` is an object, shown as `text`.
fn object_output(
    upstream: &str,
    answer: ApiSuccess<Map<String, Value>>,
    text: String,
) -> ToolOutput {
    ToolOutput::new(Family::Status, upstream, Value::Object(answer.data), text)
        .with_notes(answer.notes)
}

/// Calls a status endpoint whose `data` is an object and renders it as
/// `key: value` lines.
async fn key_values(
    ctx: ToolContext,
    args: UpstreamOnlyArgs,
    path: &'static str,
    heading: &str,
) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get(path))
        .await?;
    let mut text = format!("{heading}:");
    for (key, value) in &answer.data {
        let shown = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        text.push_str(&format!("\n{key}: {shown}"));
    }
    Ok(object_output(upstream.name(), answer, text))
}

/// `get_build_info`.
pub async fn build_info(ctx: ToolContext, args: UpstreamOnlyArgs) -> Result<ToolOutput, ToolError> {
    key_values(ctx, args, "/api/v1/status/buildinfo", "build information").await
}

/// `get_runtime_info`.
pub async fn runtime_info(
    ctx: ToolContext,
    args: UpstreamOnlyArgs,
) -> Result<ToolOutput, ToolError> {
    key_values(
        ctx,
        args,
        "/api/v1/status/runtimeinfo",
        "runtime information",
    )
    .await
}

/// `get_flags`.
pub async fn flags(ctx: ToolContext, args: UpstreamOnlyArgs) -> Result<ToolOutput, ToolError> {
    key_values(ctx, args, "/api/v1/status/flags", "command-line flags").await
}

/// `get_config`: the loaded configuration as YAML.
pub async fn config(ctx: ToolContext, args: UpstreamOnlyArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get("/api/v1/status/config"))
        .await?;
    let text = answer
        .data
        .get("yaml")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok(object_output(upstream.name(), answer, text))
}

/// `get_tsdb_stats`: cardinality statistics of the head block.
pub async fn tsdb_stats(ctx: ToolContext, args: TsdbArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(Some(args.limit.unwrap_or(TSDB_DEFAULT_LIMIT)))?;
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get_with(
            "/api/v1/status/tsdb",
            vec![("limit", limit.to_string())],
        ))
        .await?;
    let mut data = answer.data;
    let mut text = String::from("TSDB statistics");
    if let Some(head) = data.get("headStats") {
        text.push_str(&format!(
            "\nhead: {} series, {} chunks",
            head.get("numSeries").unwrap_or(&Value::Null),
            head.get("chunkCount").unwrap_or(&Value::Null)
        ));
    }
    let (mut total, mut returned) = (0, 0);
    for (key, list) in data.iter_mut() {
        if !list.is_array() {
            continue;
        }
        // Per list (top N of each statistic), which the layer's budget
        // across lists is not; Prometheus before 2.42 ignores `limit`.
        total += limit_filtered(list, limit);
        let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
        returned += items.len();
        text.push_str(&format!("\n{key}:"));
        for item in items {
            text.push_str(&format!(
                "\n  {} {}",
                str_field(item, "name"),
                item.get("value").unwrap_or(&Value::Null)
            ));
        }
    }
    Ok(
        ToolOutput::new(Family::Status, upstream.name(), Value::Object(data), text)
            .counted(returned, total)
            .with_notes(answer.notes),
    )
}

/// `get_alertmanagers`: the Alertmanagers this Prometheus sends alerts to.
pub async fn alertmanagers(
    ctx: ToolContext,
    args: UpstreamOnlyArgs,
) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get("/api/v1/alertmanagers"))
        .await?;
    let mut text = String::new();
    for key in ["activeAlertmanagers", "droppedAlertmanagers"] {
        let list = answer.data.get(key).and_then(Value::as_array);
        text.push_str(&format!("{key}: {}\n", list.map_or(0, Vec::len)));
        for am in list.into_iter().flatten() {
            text.push_str(&format!("  {}\n", str_field(am, "url")));
        }
    }
    Ok(ToolOutput::new(
        Family::Status,
        upstream.name(),
        Value::Object(answer.data),
        text.trim_end().to_owned(),
    )
    .with_notes(answer.notes))
}

/// `check_ready`: whether the upstream is ready to serve queries.
pub async fn ready(ctx: ToolContext, args: UpstreamOnlyArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let readiness = upstream.readiness().await;
    let text = format!(
        "{} is {}ready ({} answered {}): {}",
        upstream.name(),
        if readiness.ready { "" } else { "not " },
        readiness.endpoint,
        readiness
            .status
            .map_or_else(|| "nothing".into(), |s| s.to_string()),
        readiness.message
    );
    let data = json!(readiness);
    Ok(ToolOutput::new(Family::Status, upstream.name(), data, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_render_with_errors() {
        let target = json!({"scrapePool": "api", "labels": {"instance": "a:1", "job": "api"},
                            "health": "down", "lastError": "connection refused"});
        assert_eq!(
            render_target(&target),
            "  api {instance=\"a:1\", job=\"api\"} down error: connection refused\n"
        );
    }
}
