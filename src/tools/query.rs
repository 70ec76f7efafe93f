//! PromQL tools: instant and range queries, exemplars.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::args::{DurationArg, TimeArg};
use super::render::{count, series_at, timestamp};
use super::{Family, Target, ToolContext, ToolError, ToolOutput};
use crate::promtime::{format_seconds, format_unix, now_unix};
use crate::upstream::ApiCall;
use crate::upstream::Notes;
use mcp_prometheus_layers::promql::ParsedQuery;

/// Prometheus refuses range queries with more points per series.
const MAX_POINTS: f64 = 11_000.0;
/// Points per series a range query gets when no step is given.
const DEFAULT_POINTS: f64 = 120.0;
/// Range queries without `start` cover this many seconds.
const DEFAULT_RANGE: f64 = 3600.0;

/// Arguments of `execute_query`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstantQueryArgs {
    /// PromQL expression, e.g. `sum by (job) (rate(http_requests_total[5m]))`.
    query: String,
    /// Time (default now); RFC 3339, Unix s, now-5m.
    time: Option<TimeArg>,
    /// Evaluation timeout.
    timeout: Option<DurationArg>,
    /// Most series to return.
    limit: Option<u64>,
    /// Include query statistics.
    stats: Option<bool>,
    /// Lookback for the latest sample.
    lookback_delta: Option<DurationArg>,
    /// Up to the hard ceiling, if the server allows.
    unlimited: Option<bool>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// Arguments of `execute_range_query`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeQueryArgs {
    /// PromQL expression.
    query: String,
    /// Start (default end-1h); RFC 3339, Unix s, now-1h.
    start: Option<TimeArg>,
    /// End (default now).
    end: Option<TimeArg>,
    /// Step: 15s, 1m, or seconds (default ~120 points).
    step: Option<DurationArg>,
    /// Evaluation timeout.
    timeout: Option<DurationArg>,
    /// Most series to return.
    limit: Option<u64>,
    /// Include query statistics.
    stats: Option<bool>,
    /// Lookback for the latest sample.
    lookback_delta: Option<DurationArg>,
    /// Up to the hard ceiling, if the server allows.
    unlimited: Option<bool>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

fn common_params(
    ctx: &ToolContext,
    timeout: Option<DurationArg>,
    stats: Option<bool>,
    lookback_delta: Option<DurationArg>,
) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    let timeout = timeout
        .map(|t| t.0.min(ctx.max_query_timeout()))
        .unwrap_or_else(|| ctx.max_query_timeout());
    params.push(("timeout", format_seconds(timeout)));
    if stats == Some(true) {
        params.push(("stats", "all".into()));
    }
    if let Some(delta) = lookback_delta {
        params.push(("lookback_delta", format_seconds(delta.0)));
    }
    params
}

/// `execute_query`: an instant query.
pub async fn instant(ctx: ToolContext, args: InstantQueryArgs) -> Result<ToolOutput, ToolError> {
    let unlimited = ctx.unlimited(args.unlimited)?;
    let limit = ctx.query_limit(args.limit, unlimited)?;
    let upstream = ctx
        .upstream(args.upstream.as_deref(), args.org_id.as_deref())?
        .with_budget(limit, unlimited);
    let parsed = super::promql::query("query", &args.query)?;
    let mut params = vec![("query", args.query)];
    if let Some(time) = &args.time {
        params.push(("time", format_unix(time.0)));
    }
    params.extend(common_params(
        &ctx,
        args.timeout,
        args.stats,
        args.lookback_delta,
    ));
    let at = args.time.map_or_else(now_unix, |t| t.0);
    let call = ApiCall::post("/api/v1/query", params).with_parsed(parsed.clone());
    let output = run_query(&upstream, call).await?;
    Ok(hinted(&ctx, &upstream, output, &parsed, at, at).await)
}

/// `output` with the hints of an empty answer, if it is one.
async fn hinted(
    ctx: &ToolContext,
    upstream: &Target,
    output: ToolOutput,
    parsed: &ParsedQuery,
    start: f64,
    end: f64,
) -> ToolOutput {
    if output.total != Some(0) {
        return output;
    }
    let hints = super::hints::for_empty(ctx.names(), upstream, &parsed.expr, start, end).await;
    output.with_hints(hints)
}

/// The time window of a range query, as sent.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds.
    pub end: f64,
    /// Seconds between points.
    #[allow(dead_code)] // read by the summaries and the chart
    pub step: f64,
}

/// What a range query needs besides the expression: the arguments
/// `execute_range_query` and the chart tool share.
pub struct RangeRequest {
    pub query: String,
    pub start: Option<TimeArg>,
    pub end: Option<TimeArg>,
    pub step: Option<DurationArg>,
    pub timeout: Option<DurationArg>,
    pub limit: Option<u64>,
    pub stats: Option<bool>,
    pub lookback_delta: Option<DurationArg>,
    pub unlimited: Option<bool>,
    pub upstream: Option<String>,
    pub org_id: Option<String>,
}

/// A checked range query, ready to send: the target in the call's scope
/// with its budget, the API call, its window and its parse.
pub struct PreparedRange {
    pub target: Target,
    pub call: ApiCall,
    pub window: Window,
    pub parsed: ParsedQuery,
}

/// Checks a range query's arguments (defaults: the last hour, about 120
/// points) and builds its request; nothing is sent.
pub fn prepare_range(ctx: &ToolContext, args: RangeRequest) -> Result<PreparedRange, ToolError> {
    let unlimited = ctx.unlimited(args.unlimited)?;
    let limit = ctx.query_limit(args.limit, unlimited)?;
    let target = ctx
        .upstream(args.upstream.as_deref(), args.org_id.as_deref())?
        .with_budget(limit, unlimited);
    let parsed = super::promql::query("query", &args.query)?;
    let end = args.end.map_or_else(now_unix, |t| t.0);
    let start = args.start.map_or(end - DEFAULT_RANGE, |t| t.0);
    if start > end {
        return Err(ToolError::InvalidArguments(
            "start: must not be after end".into(),
        ));
    }
    let step = match args.step {
        Some(step) if step.0.is_zero() => {
            return Err(ToolError::InvalidArguments(
                "step: must be more than 0, e.g. \"15s\" or 60".into(),
            ));
        }
        Some(step) => step.0.as_secs_f64(),
        None => ((end - start) / DEFAULT_POINTS).ceil().max(1.0),
    };
    if (end - start) / step > MAX_POINTS {
        let minimum = ((end - start) / MAX_POINTS).ceil();
        return Err(ToolError::InvalidArguments(format!(
            "step: {step}s gives more than {MAX_POINTS} points per series; use a step of at least {minimum}s or a shorter range"
        )));
    }
    let mut params = vec![
        ("query", args.query),
        ("start", format_unix(start)),
        ("end", format_unix(end)),
        ("step", format_unix(step)),
    ];
    params.extend(common_params(
        ctx,
        args.timeout,
        args.stats,
        args.lookback_delta,
    ));
    let call = ApiCall::post("/api/v1/query_range", params).with_parsed(parsed.clone());
    Ok(PreparedRange {
        target,
        call,
        window: Window { start, end, step },
        parsed,
    })
}

/// `execute_range_query`: a range query with defaults a model can rely on.
pub async fn range(ctx: ToolContext, args: RangeQueryArgs) -> Result<ToolOutput, ToolError> {
    let prepared = prepare_range(
        &ctx,
        RangeRequest {
            query: args.query,
            start: args.start,
            end: args.end,
            step: args.step,
            timeout: args.timeout,
            limit: args.limit,
            stats: args.stats,
            lookback_delta: args.lookback_delta,
            unlimited: args.unlimited,
            upstream: args.upstream,
            org_id: args.org_id,
        },
    )?;
    let PreparedRange {
        target,
        call,
        window,
        parsed,
    } = prepared;
    let output = run_query(&target, call).await?;
    Ok(hinted(&ctx, &target, output, &parsed, window.start, window.end).await)
}

/// Sends a query (the truncate layer cuts its answer to the call's
/// budget) and renders its result.
async fn run_query(upstream: &Target, call: ApiCall) -> Result<ToolOutput, ToolError> {
    let answer = upstream.api::<Map<String, Value>>(call).await?;
    Ok(query_output(upstream.name(), answer.data, &answer.notes).with_notes(answer.notes))
}

/// Cuts a query result to `limit` series and renders it.
/// Renders a query's data; the truncate layer has already kept at most the
/// call's `limit` series, and `notes` counts what it dropped.
fn query_output(upstream: &str, data: Map<String, Value>, notes: &Notes) -> ToolOutput {
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let (counts, text) = match data.get("result") {
        Some(result) if matches!(result_type.as_str(), "vector" | "matrix") => {
            let returned = result.as_array().map_or(0, Vec::len);
            let total = notes.items_total(returned);
            (
                Some((returned, total)),
                render_series(&result_type, result, total),
            )
        }
        Some(result) => (None, render_scalar(&result_type, result)),
        None => (None, format!("{result_type}: no result")),
    };
    let output = ToolOutput::new(Family::Query, upstream, Value::Object(data), text);
    match counts {
        Some((returned, total)) => output.counted(returned, total),
        None => output,
    }
}

fn render_scalar(result_type: &str, result: &Value) -> String {
    let pair = result.as_array().map(Vec::as_slice).unwrap_or_default();
    match pair {
        [time, value] => format!(
            "{result_type}: {} @ {}",
            value.as_str().unwrap_or_default(),
            timestamp(time)
        ),
        _ => format!("{result_type}: {result}"),
    }
}

fn render_series(result_type: &str, result: &Value, total: usize) -> String {
    let items = result.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut text = format!("{} ({result_type})", count(total, "series", "series"));
    for item in items {
        let name = series_at(item, "metric");
        text.push('\n');
        text.push_str(&name);
        if let Some([time, value]) = item
            .get("value")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            text.push_str(&format!(
                " => {} @ {}",
                value.as_str().unwrap_or_default(),
                timestamp(time)
            ));
        } else if let Some(points) = item.get("values").and_then(Value::as_array) {
            text.push_str(&render_points(points));
        } else if item.get("histogram").is_some() || item.get("histograms").is_some() {
            text.push_str(" => native histogram (see structured content)");
        }
    }
    text
}

/// `: 120 points 10:00..11:00, last 3, min 1, max 7`.
fn render_points(points: &[Value]) -> String {
    let values: Vec<f64> = points
        .iter()
        .filter_map(|p| p.get(1)?.as_str()?.parse().ok())
        .collect();
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return ": no points".into();
    };
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        ": {} {}..{}, last {}, min {min}, max {max}",
        count(points.len(), "point", "points"),
        timestamp(&first[0]),
        timestamp(&last[0]),
        last.get(1).and_then(Value::as_str).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_prometheus_layers::outbound::truncate::{Truncation, TruncationReason};
    use serde_json::json;

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    /// The truncate layer kept one series of two (its record in `notes`).
    #[test]
    fn a_cut_vector_is_counted_from_the_layers_record() {
        let notes = Notes {
            truncation: Some(Truncation {
                truncated: true,
                kept_items: 1,
                dropped_items_at_least: 1,
                bytes_seen: 200,
                scan_complete: true,
                reason: Some(TruncationReason::Items),
            }),
            ..Notes::default()
        };
        let output = query_output(
            "local",
            data(json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "a"}, "value": [1767366245, "1"]},
            ]})),
            &notes,
        )
        .with_notes(notes.clone());
        assert!(output.truncated);
        assert_eq!((output.returned, output.total), (Some(1), Some(2)));
        assert_eq!(output.data["result"].as_array().map(Vec::len), Some(1));
        assert!(
            output
                .text
                .contains(r#"up{job="a"} => 1 @ 2026-01-02T15:04:05Z"#),
            "{}",
            output.text
        );
        assert!(output.full_text().contains("topk"));
    }

    #[test]
    fn matrix_renders_a_summary_per_series() {
        let output = query_output(
            "local",
            data(json!({"resultType": "matrix", "result": [
                {"metric": {"job": "a"}, "values": [[1767366245, "1"], [1767366260, "7"], [1767366275, "3"]]},
            ]})),
            &Notes::default(),
        );
        assert!(!output.truncated);
        assert!(output.text.contains("3 points"), "{}", output.text);
        assert!(
            output.text.contains("last 3, min 1, max 7"),
            "{}",
            output.text
        );
    }

    #[test]
    fn scalar_has_no_count() {
        let output = query_output(
            "local",
            data(json!({"resultType": "scalar", "result": [1767366245, "42"]})),
            &Notes::default(),
        );
        assert_eq!(output.text, "scalar: 42 @ 2026-01-02T15:04:05Z");
        assert_eq!(output.total, None);
    }
}
