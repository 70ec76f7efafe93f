//! What checking PromQL costs per query: the tools' parse (carried on the
//! request as `ParsedQuery`), the guardrails (warn mode, pre-checks
//! answered from their cache) and the label tenancy rewrite,
//! through the real tower layers around an upstream that answers at once,
//! minus the same request through no layers. `make bench` runs it on
//! `bench/queries.promql` (50 realistic queries) and prints JSON.
//!
//! Usage: promql_overhead <queries file> [iterations per query]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_prometheus_layers::BoxError;
use mcp_prometheus_layers::body::{RequestBody, ResponseBody};
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::endpoint::UpstreamEndpoint;
use mcp_prometheus_layers::identity::{TenancyEnforced, TenantSet};
use mcp_prometheus_layers::inbound::tenancy::TenancyConfig;
use mcp_prometheus_layers::outbound::guardrails::GuardrailsConfig;
use mcp_prometheus_layers::outbound::tenant_label::TenantLabelLayer;
use mcp_prometheus_layers::promql::{ParsedQuery, parse};
use tower::{Layer, Service, ServiceExt};

const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0"]}]}}"#;

fn upstream()
-> impl Service<Request<RequestBody>, Response = Response<ResponseBody>, Error = BoxError, Future: Send>
+ Clone {
    tower::service_fn(|_req: Request<RequestBody>| async {
        Ok::<_, BoxError>(Response::new(
            Full::new(Bytes::from_static(EMPTY.as_bytes()))
                .map_err(|never: Infallible| match never {})
                .boxed_unsync(),
        ))
    })
}

fn request(query: &str) -> Request<RequestBody> {
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .finish();
    let mut request = Request::get(format!("http://prom/api/v1/query?{encoded}"))
        .body(Full::new(Bytes::new()))
        .unwrap_or_default();
    let extensions = request.extensions_mut();
    extensions.insert(TenantSet::new(["team-a", "team-b"]));
    extensions.insert(TenancyEnforced);
    extensions.insert(UpstreamEndpoint {
        upstream: Arc::from("prom"),
        endpoint: "/api/v1/query",
    });
    request
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

fn summary(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    serde_json::json!({
        "median_us": percentile(&samples, 0.5),
        "p99_us": percentile(&samples, 0.99),
        "samples": samples.len(),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: promql_overhead <queries file> [iterations]")?;
    let iterations: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let text = std::fs::read_to_string(&path)?;
    let queries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let ctx = BuildCtx::default();
    let guardrails: GuardrailsConfig = toml::from_str("mode = \"warn\"")?;
    let guardrails = guardrails.build(&ctx)?.ok_or("guardrails off")?;
    let tenancy: TenancyConfig = toml::from_str(
        "enabled = true\nmode = \"static\"\ntenants = [\"team-a\", \"team-b\"]\nenforce = \"label\"\n",
    )?;
    let label = TenantLabelLayer::from_config(&tenancy, &ctx)?.ok_or("label tenancy off")?;
    let checked = guardrails.layer(label.layer(upstream()));
    let bare = upstream();
    let (mut parse_us, mut overhead_us, mut refused) = (Vec::new(), Vec::new(), 0usize);
    for query in &queries {
        // Warm-up: fills the guardrails' pre-check cache as a live server's.
        for _ in 0..20 {
            let _ = checked.clone().oneshot(request(query)).await;
        }
        for _ in 0..iterations {
            let started = Instant::now();
            let _ = parse(query);
            parse_us.push(started.elapsed().as_secs_f64() * 1e6);
            let base = Instant::now();
            let _ = bare.clone().oneshot(request(query)).await;
            let base = base.elapsed().as_secs_f64() * 1e6;
            // As the tools do: parse once, the layers reuse it.
            let mut req = request(query);
            let started = Instant::now();
            if let Ok(parsed) = ParsedQuery::parse(query) {
                req.extensions_mut().insert(parsed);
            }
            let outcome = checked.clone().oneshot(req).await;
            let total = started.elapsed().as_secs_f64() * 1e6;
            refused += usize::from(outcome.is_err());
            overhead_us.push((total - base).max(0.0));
        }
    }
    let report = serde_json::json!({
        "queries": queries.len(),
        "iterations_per_query": iterations,
        "parse": summary(parse_us),
        "parse_guardrails_rewrite": summary(overhead_us),
        "refused_by_a_layer": refused,
    });
    println!("{report}");
    Ok(())
}
