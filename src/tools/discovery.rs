//! Discovery tools: which metrics, labels and series exist, and what they
//! mean.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::args::TimeArg;
use super::render::{count, series_at, series_name, str_field};
use super::{Family, ToolContext, ToolError, ToolOutput};
use crate::promtime::format_unix;
use crate::upstream::ApiCall;
use crate::upstream::Notes;

/// Arguments of `list_metrics` and `list_label_names`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NamesArgs {
    /// Series selectors such as {job='api'}.
    #[serde(default)]
    matches: Vec<String>,
    /// Window start.
    start: Option<TimeArg>,
    /// Window end.
    end: Option<TimeArg>,
    /// Most names to return.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Arguments of `list_label_values`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelValuesArgs {
    /// Label name, e.g. `job`.
    label: String,
    /// Series selectors to restrict to.
    #[serde(default)]
    matches: Vec<String>,
    /// Window start.
    start: Option<TimeArg>,
    /// Window end.
    end: Option<TimeArg>,
    /// Most values to return.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Arguments of `find_series`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesArgs {
    /// Series selectors (at least one) such as up{job='api'}.
    matches: Vec<String>,
    /// Window start.
    start: Option<TimeArg>,
    /// Window end.
    end: Option<TimeArg>,
    /// Most series to return.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Arguments of `get_metric_metadata`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataArgs {
    /// Metric name (default: all metrics).
    metric: Option<String>,
    /// Most metrics to return.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Arguments of `get_targets_metadata`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetsMetadataArgs {
    /// Label selector for targets, e.g. `{job="prometheus"}`.
    match_target: Option<String>,
    /// Metric name.
    metric: Option<String>,
    /// Most entries to return.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// `match[]`, `start` and `end`; each `matches` entry must be a series
/// selector (checked here: a broken one never reaches the upstream).
fn window_params(
    matches: Vec<String>,
    start: Option<TimeArg>,
    end: Option<TimeArg>,
) -> Result<Vec<(&'static str, String)>, ToolError> {
    super::promql::series_selectors("matches", &matches)?;
    let mut params: Vec<(&'static str, String)> =
        matches.into_iter().map(|m| ("match[]", m)).collect();
    if let Some(start) = start {
        params.push(("start", format_unix(start.0)));
    }
    if let Some(end) = end {
        params.push(("end", format_unix(end.0)));
    }
    Ok(params)
}

/// Renders a list of strings, one per line, under a heading; the truncate
/// layer kept at most the call's `limit`, and `notes` counts the rest.
fn string_list(upstream: &str, data: Value, notes: &Notes, heading: &str) -> ToolOutput {
    let items: Vec<&str> = data
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let returned = items.len();
    let total = notes.items_total(returned);
    let text = format!("{heading} ({total}):\n{}", items.join("\n"));
    // What the schema promises (an array of strings), whatever the upstream sent.
    let data = Value::Array(
        items
            .into_iter()
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    );
    ToolOutput::new(Family::Discovery, upstream, data, text).counted(returned, total)
}

/// `list_metrics`: metric names (values of `__name__`).
pub async fn list_metrics(ctx: ToolContext, args: NamesArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let answer = upstream
        .api::<Value>(ApiCall {
            endpoint: "/api/v1/label/:name/values",
            path: "/api/v1/label/__name__/values".into(),
            params: window_params(args.matches, args.start, args.end)?,
            post: false,
            parsed: None,
        })
        .await?;
    Ok(
        string_list(upstream.name(), answer.data, &answer.notes, "metrics")
            .with_notes(answer.notes),
    )
}

/// `list_label_names`.
pub async fn label_names(ctx: ToolContext, args: NamesArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let answer = upstream
        .api::<Value>(ApiCall::post(
            "/api/v1/labels",
            window_params(args.matches, args.start, args.end)?,
        ))
        .await?;
    Ok(
        string_list(upstream.name(), answer.data, &answer.notes, "label names")
            .with_notes(answer.notes),
    )
}

/// `list_label_values`.
pub async fn label_values(
    ctx: ToolContext,
    args: LabelValuesArgs,
) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    if args.label.is_empty() || args.label.contains('/') {
        return Err(ToolError::InvalidArguments(format!(
            "label: {:?} is not a label name; give one such as \"job\" (list_label_names lists them)",
            args.label
        )));
    }
    let path = format!(
        "/api/v1/label/{}/values",
        utf8_percent_encode(&args.label, NON_ALPHANUMERIC)
    );
    let answer = upstream
        .api::<Value>(ApiCall {
            endpoint: "/api/v1/label/:name/values",
            path,
            params: window_params(args.matches, args.start, args.end)?,
            post: false,
            parsed: None,
        })
        .await?;
    let heading = format!("values of {}", args.label);
    Ok(string_list(upstream.name(), answer.data, &answer.notes, &heading).with_notes(answer.notes))
}

/// `find_series`.
pub async fn find_series(ctx: ToolContext, args: SeriesArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    if args.matches.iter().all(|m| m.trim().is_empty()) {
        return Err(ToolError::InvalidArguments(
            "matches: give at least one series selector, e.g. [\"up{job=\\\"api\\\"}\"]".into(),
        ));
    }
    let answer = upstream
        .api::<Value>(ApiCall::post(
            "/api/v1/series",
            window_params(args.matches, args.start, args.end)?,
        ))
        .await?;
    let data = answer.data;
    let lines: Vec<String> = data
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .map(series_name)
                .collect()
        })
        .unwrap_or_default();
    let total = answer.notes.items_total(lines.len());
    let text = format!(
        "{}:\n{}",
        count(total, "series", "series"),
        lines.join("\n")
    );
    Ok(
        ToolOutput::new(Family::Discovery, upstream.name(), data, text)
            .counted(lines.len(), total)
            .with_notes(answer.notes),
    )
}

/// `get_metric_metadata`: type, help and unit per metric.
pub async fn metric_metadata(
    ctx: ToolContext,
    args: MetadataArgs,
) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let mut params = Vec::new();
    if let Some(metric) = args.metric {
        params.push(("metric", metric));
    }
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get_with("/api/v1/metadata", params))
        .await?;
    let total = answer.data.len();
    let data: Map<String, Value> = answer.data.into_iter().take(limit).collect();
    let mut text = format!("metadata of {}", count(total, "metric", "metrics"));
    for (metric, entries) in &data {
        for entry in entries.as_array().into_iter().flatten() {
            let unit = str_field(entry, "unit");
            text.push_str(&format!(
                "\n{metric} ({}{}): {}",
                str_field(entry, "type"),
                if unit.is_empty() {
                    String::new()
                } else {
                    format!(", unit {unit}")
                },
                str_field(entry, "help"),
            ));
        }
    }
    let returned = data.len();
    Ok(ToolOutput::new(
        Family::Discovery,
        upstream.name(),
        Value::Object(data),
        text,
    )
    .counted(returned, total)
    .with_notes(answer.notes))
}

/// `get_targets_metadata`: metadata as scraped from each target.
pub async fn targets_metadata(
    ctx: ToolContext,
    args: TargetsMetadataArgs,
) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let mut params = Vec::new();
    if let Some(selector) = args.match_target {
        super::promql::series_selector("match_target", &selector)?;
        params.push(("match_target", selector));
    }
    if let Some(metric) = args.metric {
        params.push(("metric", metric));
    }
    let answer = upstream
        .api::<Value>(ApiCall::get_with("/api/v1/targets/metadata", params))
        .await?;
    let data = answer.data;
    let entries = data.as_array().map(Vec::as_slice).unwrap_or_default();
    let total = answer.notes.items_total(entries.len());
    let mut text = count(total, "metadata entry", "metadata entries");
    for entry in entries {
        text.push_str(&format!(
            "\n{} {} ({}): {}",
            series_at(entry, "target"),
            str_field(entry, "metric"),
            str_field(entry, "type"),
            str_field(entry, "help"),
        ));
    }
    let returned = entries.len();
    Ok(
        ToolOutput::new(Family::Discovery, upstream.name(), data, text)
            .counted(returned, total)
            .with_notes(answer.notes),
    )
}
