//! `render_range_query`: a range query drawn as a PNG line chart (an
//! `image` content block), with a one-paragraph summary for models that
//! cannot see images. The query is checked and sent exactly like
//! `execute_range_query`'s (tenancy, guardrails, timeouts); at most the
//! configured number of series are read and drawn, the rest counted.

mod axis;
mod draw;
mod legend;
mod series;
mod summary;
mod text;
mod units;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::args::{DurationArg, TimeArg};
use super::query::{PreparedRange, RangeRequest, prepare_range};
use super::{Family, ToolContext, ToolError, ToolOutput};
use crate::config::{CHART_MIN_HEIGHT, CHART_MIN_WIDTH};
use draw::{Line, Picture};

/// Width of a chart when the caller gives none (or the configured maximum
/// if that is smaller).
pub const DEFAULT_WIDTH: u32 = 800;
/// Height of a chart when the caller gives none.
pub const DEFAULT_HEIGHT: u32 = 400;
/// Longest legend entry before the drawing cuts it to its column.
const LEGEND_CHARS: usize = 120;
/// Drawings at once: each holds a core and width × height × 3 bytes (4.8 MB
/// at the default caps), so concurrent calls wait rather than add up.
static DRAWINGS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Arguments of `render_range_query`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderArgs {
    /// PromQL expression.
    query: String,
    /// Start (default end-1h).
    start: Option<TimeArg>,
    /// End (default now).
    end: Option<TimeArg>,
    /// Step (default ~120 points).
    step: Option<DurationArg>,
    /// Evaluation timeout.
    timeout: Option<DurationArg>,
    /// Series to draw (default: server cap).
    limit: Option<u64>,
    /// Lookback for the latest sample.
    lookback_delta: Option<DurationArg>,
    /// Pixels (default 800).
    width: Option<u64>,
    /// Pixels (default 400).
    height: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// `render_range_query`.
pub async fn render(ctx: ToolContext, args: RenderArgs) -> Result<ToolOutput, ToolError> {
    let limits = &ctx.inner.limits;
    let width = side(
        "width",
        args.width,
        DEFAULT_WIDTH,
        CHART_MIN_WIDTH,
        limits.chart_max_width,
    )?;
    let height = side(
        "height",
        args.height,
        DEFAULT_HEIGHT,
        CHART_MIN_HEIGHT,
        limits.chart_max_height,
    )?;
    let cap = limits.chart_max_series;
    let drawn_at_most = match args.limit {
        None => cap,
        Some(0) => {
            return Err(ToolError::InvalidArguments(
                "limit: must be at least 1".into(),
            ));
        }
        Some(n) if n > cap as u64 => {
            return Err(ToolError::InvalidArguments(format!(
                "limit: {n} is above this server's chart cap of {cap} series; ask for at most {cap}, or aggregate (sum by, topk) to draw fewer lines"
            )));
        }
        Some(n) => n as usize,
    };
    let PreparedRange {
        target,
        call,
        window,
        parsed,
    } = prepare_range(
        &ctx,
        RangeRequest {
            query: args.query,
            start: args.start,
            end: args.end,
            step: args.step,
            timeout: args.timeout,
            limit: Some(drawn_at_most as u64),
            stats: None,
            lookback_delta: args.lookback_delta,
            unlimited: None,
            upstream: args.upstream,
            org_id: args.org_id,
        },
    )?;
    let answer = target.api::<Map<String, Value>>(call).await?;
    let notes = answer.notes;
    let result_type = answer
        .data
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let mut series = match (result_type.as_str(), answer.data.get("result")) {
        ("matrix", Some(result)) => series::parse_matrix(result, window),
        _ => Vec::new(),
    };
    let returned = series.len();
    series.truncate(drawn_at_most);
    let total = notes.items_total(returned);
    let at_least = notes
        .truncation
        .as_ref()
        .is_some_and(|t| t.truncated && !t.scan_complete);

    let labels: Vec<&Map<String, Value>> = series.iter().map(|s| &s.labels).collect();
    let unit = units::detect(&labels, &parsed.expr);
    let legend = legend::legend(&labels, LEGEND_CHARS);
    let mut text = summary::paragraph(&summary::Facts {
        query: &parsed.text,
        window,
        total,
        at_least,
        series: &series,
        entries: &legend.entries,
        common: &legend.common,
        unit,
    });
    if result_type != "matrix" {
        text.push_str(&format!(
            " The upstream answered a {result_type:?} result where a range query gives a matrix: nothing to draw."
        ));
    }
    let plotted = series.len();
    let picture = Picture {
        title: parsed.text.to_string(),
        lines: series
            .into_iter()
            .zip(legend.entries)
            .map(|(s, label)| Line {
                label,
                segments: s.segments,
            })
            .collect(),
        more: total.saturating_sub(plotted),
        more_at_least: at_least,
        window,
        unit,
        width,
        height,
    };
    // Drawing is CPU work of tens of milliseconds: off the async runtime,
    // and a panic inside plotters fails this drawing, not the server.
    // The permit lives with the drawing, not with this call: a cancelled
    // call must not free a slot while its drawing still runs.
    let permit = DRAWINGS.acquire().await.ok();
    let drawn = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        draw::draw(&picture)
    })
    .await;
    let mut data = json!({
        "resultType": result_type,
        "series": total,
        "plotted": plotted,
        "width": width,
        "height": height,
        "start": window.start,
        "end": window.end,
        "step": window.step,
        "unit": unit.map(|u| u.name()),
    });
    let image = match drawn {
        Ok(Ok(drawn)) => {
            data["plot"] = json!(drawn.area);
            Some(drawn.png)
        }
        Ok(Err(error)) => {
            text.push_str(&format!(
                " The chart could not be drawn ({error}); the figures above stand."
            ));
            None
        }
        Err(error) => {
            tracing::warn!(%error, "chart drawing failed");
            text.push_str(
                " The chart could not be drawn (internal error); the figures above stand.",
            );
            None
        }
    };
    let link = target.link(
        &parsed.text,
        crate::upstream::LinkTime::Range {
            start: window.start,
            end: window.end,
            step: window.step,
        },
    );
    let mut output = ToolOutput::new(Family::Query, target.name(), data, text)
        .counted(plotted, total)
        .with_notes(notes)
        .with_link(link);
    output.image = image;
    if total == 0 {
        let hints =
            super::hints::for_empty(ctx.names(), &target, &parsed.expr, window.start, window.end)
                .await;
        output = output.with_hints(hints);
    }
    Ok(output)
}

/// A requested image side, checked against the bounds.
fn side(
    name: &str,
    requested: Option<u64>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ToolError> {
    match requested {
        None => Ok(default.clamp(min, max.max(min))),
        Some(n) if n < u64::from(min) || n > u64::from(max) => {
            Err(ToolError::InvalidArguments(format!(
                "{name}: {n} pixels is outside this server's range of {min} to {max}; send a {name} within it, or leave it out for {}",
                default.clamp(min, max.max(min))
            )))
        }
        Some(n) => Ok(n as u32),
    }
}

#[cfg(test)]
mod tests;
