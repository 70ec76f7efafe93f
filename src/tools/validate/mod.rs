//! `validate_query`: a query checked without running it. Parses, shows
//! the prettified expression and its parts (selectors with their matchers,
//! functions, aggregations, ranges, offsets, subqueries) and warns about
//! what usually goes wrong; with `check_series = true` it also asks the
//! upstream how many series each selector matches (a bounded `count()` per
//! selector). An invalid query is a successful answer with `valid: false`
//! and where, what and how to fix: validating is this tool's job.

mod analysis;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Family, ToolContext, ToolError, ToolOutput};
use crate::upstream::ApiCall;
use analysis::Analysis;
use mcp_prometheus_layers::promql::{ParsedQuery, parse};

/// Selectors counted at most with `check_series`.
const MAX_COUNTED: usize = 10;
/// The evaluation timeout of each count.
const COUNT_TIMEOUT: &str = "5s";

/// Arguments of `validate_query`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateArgs {
    /// PromQL expression.
    query: String,
    /// Count each selector's series upstream.
    check_series: Option<bool>,
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// `validate_query`.
pub async fn validate(ctx: ToolContext, args: ValidateArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let expr = match parse(&args.query) {
        Ok(expr) => expr,
        Err(error) => {
            let data = json!({
                "valid": false,
                "error": error.message,
                "position": error.position,
                "fragment": error.fragment,
                "hint": error.hint,
            });
            return Ok(ToolOutput::new(
                Family::Query,
                upstream.name(),
                data,
                format!("not valid: {error}"),
            ));
        }
    };
    let analysis = Analysis::of(&expr);
    let mut data = analysis.to_json();
    let mut text = analysis.summary();
    if args.check_series == Some(true) {
        let mut counts = Vec::new();
        for selector in analysis.countable().into_iter().take(MAX_COUNTED) {
            let counted = count_series(&upstream, &selector).await;
            text.push_str(&format!("\n{selector}: {}", describe(&counted)));
            counts.push(match counted {
                Ok(n) => json!({"selector": selector, "series": n}),
                Err(error) => json!({"selector": selector, "error": error}),
            });
        }
        if let Some(map) = data.as_object_mut() {
            map.insert("series".into(), Value::Array(counts));
        }
    }
    Ok(ToolOutput::new(Family::Query, upstream.name(), data, text))
}

fn describe(counted: &Result<u64, String>) -> String {
    match counted {
        Ok(n) => format!("{n} series"),
        Err(error) => format!("not counted ({error})"),
    }
}

/// How many series `selector` matches now, by `count(selector)`.
async fn count_series(upstream: &super::Target, selector: &str) -> Result<u64, String> {
    let query = format!("count({selector})");
    let parsed = ParsedQuery::parse(&query).map_err(|e| e.to_string())?;
    let call = ApiCall::post(
        "/api/v1/query",
        vec![("query", query), ("timeout", COUNT_TIMEOUT.into())],
    )
    .with_parsed(parsed);
    let answer = upstream
        .api::<Value>(call)
        .await
        .map_err(|e| e.to_string())?;
    let value = answer
        .data
        .get("result")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|sample| sample.get("value"))
        .and_then(|v| v.get(1))
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<f64>().ok());
    // No sample: count() of nothing is an empty vector.
    Ok(value.map_or(0, |v| v as u64))
}
