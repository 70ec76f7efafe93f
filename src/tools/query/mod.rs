//! PromQL tools: instant and range queries. Range answers are summarized
//! per series unless the samples are asked for.

mod prepare;
mod range_output;
mod render;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::args::{DurationArg, TimeArg};
use super::summary::stream::RangeStream;
use super::{Target, ToolContext, ToolError, ToolOutput};
use crate::promtime::{format_seconds, format_unix, now_unix};
use crate::upstream::{ApiCall, LinkTime};
use mcp_prometheus_layers::promql::ParsedQuery;
pub use prepare::{PreparedRange, RangeRequest, Window, prepare_range};

/// Arguments of `execute_query`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstantQueryArgs {
    /// PromQL, e.g. sum by (job) (rate(x_total[5m])).
    query: String,
    /// Time (default now).
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
    /// Start (default end-1h).
    start: Option<TimeArg>,
    /// End (default now).
    end: Option<TimeArg>,
    /// Step, e.g. 15s (default ~120 points).
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
    /// summary (default): statistics per series; samples: the points.
    format: Option<RangeFormat>,
    /// With samples: most points per series (min/max kept).
    max_points: Option<u64>,
}

/// What `execute_range_query` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RangeFormat {
    /// Statistics per series: what a model reads best.
    #[default]
    Summary,
    /// The samples, as Prometheus sends them.
    Samples,
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
    let at = args.time.as_ref().map_or_else(now_unix, |t| t.0);
    let link = upstream.link(&args.query, LinkTime::Instant(at));
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
    let call = ApiCall::post("/api/v1/query", params).with_parsed(parsed.clone());
    let output = run_query(&upstream, call).await?.with_link(link);
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

/// `execute_range_query`: a range query with defaults a model can rely on,
/// answered with statistics per series (or the samples, when asked).
pub async fn range(ctx: ToolContext, args: RangeQueryArgs) -> Result<ToolOutput, ToolError> {
    let format = args.format.unwrap_or_default();
    let max_points = match (args.max_points, format) {
        (Some(n), RangeFormat::Samples) if n < 2 => {
            return Err(ToolError::InvalidArguments(
                "max_points: must be at least 2 (the lowest and highest sample of a bucket)".into(),
            ));
        }
        (Some(_), RangeFormat::Summary) => {
            return Err(ToolError::InvalidArguments(
                "max_points: only with format=\"samples\"; a summary has no points to thin out"
                    .into(),
            ));
        }
        (n, _) => n.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    };
    let PreparedRange {
        target,
        call,
        window,
        parsed,
    } = prepare_range(
        &ctx,
        RangeRequest {
            query: args.query.clone(),
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
    let output = match format {
        RangeFormat::Summary => {
            let answer = target
                .clone()
                .summarized()
                .api_streamed(call, RangeStream::default())
                .await?;
            range_output::summary(target.name(), answer.data, &window, &answer.notes)
                .with_notes(answer.notes)
        }
        RangeFormat::Samples => {
            let answer = target.api::<Map<String, Value>>(call).await?;
            range_output::samples(target.name(), answer.data, max_points, &answer.notes)
                .with_notes(answer.notes)
        }
    };
    let link = target.link(
        &args.query,
        LinkTime::Range {
            start: window.start,
            end: window.end,
            step: window.step,
        },
    );
    Ok(hinted(
        &ctx,
        &target,
        output.with_link(link),
        &parsed,
        window.start,
        window.end,
    )
    .await)
}

/// Sends an instant query (the truncate layer cuts its answer to the
/// call's budget) and renders its result.
async fn run_query(upstream: &Target, call: ApiCall) -> Result<ToolOutput, ToolError> {
    let answer = upstream.api::<Map<String, Value>>(call).await?;
    Ok(
        render::instant_output(upstream.name(), answer.data, &answer.notes)
            .with_notes(answer.notes),
    )
}
