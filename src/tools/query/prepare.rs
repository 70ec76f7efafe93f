//! Checking a range query's arguments and building its request: shared by
//! `execute_range_query` and the chart.

use super::common_params;
use crate::promtime::{format_unix, now_unix};
use crate::tools::args::{DurationArg, TimeArg};
use crate::tools::{Target, ToolContext, ToolError};
use crate::upstream::ApiCall;
use mcp_prometheus_layers::promql::ParsedQuery;

/// Prometheus refuses range queries with more points per series.
const MAX_POINTS: f64 = 11_000.0;
/// Points per series a range query gets when no step is given.
const DEFAULT_POINTS: f64 = 120.0;
/// Range queries without `start` cover this many seconds.
const DEFAULT_RANGE: f64 = 3600.0;

/// The time window of a range query, as sent.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Unix seconds.
    pub start: f64,
    /// Unix seconds.
    pub end: f64,
    /// Seconds between points.
    pub step: f64,
}

/// What a range query needs besides the expression: the arguments
/// `execute_range_query` and the chart tool share.
pub struct RangeRequest {
    /// The PromQL expression, unchecked.
    pub query: String,
    /// Default: `end` minus one hour.
    pub start: Option<TimeArg>,
    /// Default: now.
    pub end: Option<TimeArg>,
    /// Default: about 120 points over the window.
    pub step: Option<DurationArg>,
    /// Evaluation timeout, capped by the config.
    pub timeout: Option<DurationArg>,
    /// Most series (the call's budget).
    pub limit: Option<u64>,
    /// Ask Prometheus for query statistics.
    pub stats: Option<bool>,
    /// Lookback for the latest sample.
    pub lookback_delta: Option<DurationArg>,
    /// Up to the hard ceiling, if the server allows.
    pub unlimited: Option<bool>,
    /// Upstream name (default: first).
    pub upstream: Option<String>,
    /// Tenants to narrow to.
    pub org_id: Option<String>,
}

/// A checked range query, ready to send: the target in the call's scope
/// with its budget, the API call, its window and its parse.
pub struct PreparedRange {
    /// The upstream in the call's scope, with the series budget.
    pub target: Target,
    /// The request to send through the outbound stack.
    pub call: ApiCall,
    /// The window as sent.
    pub window: Window,
    /// The parsed expression (for hints and the link).
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
    let parsed = crate::tools::promql::query("query", &args.query)?;
    let end = args.end.map_or_else(now_unix, |t| t.0);
    let start = args.start.map_or(end - DEFAULT_RANGE, |t| t.0);
    if start > end {
        return Err(ToolError::InvalidArguments(
            "start: must not be after end".into(),
        ));
    }
    let step = match args.step {
        Some(step) if step.0.as_secs_f64() < 0.001 => {
            return Err(ToolError::InvalidArguments(
                "step: must be at least 1ms (Prometheus's resolution), e.g. \"15s\" or 60".into(),
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
