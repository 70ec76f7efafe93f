//! `query_exemplars`: the exemplars (trace IDs…) of a selector's series.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::args::TimeArg;
use super::render::{count, series_at, timestamp};
use super::{Family, ToolContext, ToolError, ToolOutput};
use crate::promtime::{format_unix, now_unix};
use crate::upstream::ApiCall;

/// Exemplars without `start` cover this many seconds.
const DEFAULT_RANGE: f64 = 3600.0;

/// Arguments of `query_exemplars`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExemplarArgs {
    /// PromQL selector whose series' exemplars to return.
    query: String,
    /// Start (default end-1h).
    start: Option<TimeArg>,
    /// End (default now).
    end: Option<TimeArg>,
    /// Most series to return.
    limit: Option<u64>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// `query_exemplars`.
pub async fn exemplars(ctx: ToolContext, args: ExemplarArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let parsed = super::promql::query("query", &args.query)?;
    let end = args.end.map_or_else(now_unix, |t| t.0);
    let start = args.start.map_or(end - DEFAULT_RANGE, |t| t.0);
    let call = ApiCall::post(
        "/api/v1/query_exemplars",
        vec![
            ("query", args.query),
            ("start", format_unix(start)),
            ("end", format_unix(end)),
        ],
    )
    .with_parsed(parsed);
    let answer = upstream.api::<Value>(call).await?;
    let data = answer.data;
    let items = data.as_array().map(Vec::as_slice).unwrap_or_default();
    let total = answer.notes.items_total(items.len());
    let mut text = format!("{} with exemplars", count(total, "series", "series"));
    for item in items {
        let exemplars = item.get("exemplars").and_then(Value::as_array);
        text.push_str(&format!(
            "\n{}: {}",
            series_at(item, "seriesLabels"),
            count(exemplars.map_or(0, Vec::len), "exemplar", "exemplars"),
        ));
        for exemplar in exemplars.into_iter().flatten().take(5) {
            text.push_str(&format!(
                "\n  {} = {} @ {}",
                series_at(exemplar, "labels"),
                exemplar.get("value").and_then(Value::as_str).unwrap_or(""),
                timestamp(exemplar.get("timestamp").unwrap_or(&Value::Null)),
            ));
        }
    }
    let returned = items.len();
    Ok(ToolOutput::new(Family::Query, upstream.name(), data, text)
        .counted(returned, total)
        .with_notes(answer.notes))
}
