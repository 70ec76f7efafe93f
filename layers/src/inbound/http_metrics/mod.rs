//! Inbound RED metrics: requests by route, MCP method, tool and status, and
//! their duration. The MCP method and tool come from the 2026-07-28
//! `Mcp-Method` / `Mcp-Name` headers when the client sends them.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::build::BuildCtx;

mod labels;
use labels::{http_method, mcp_method};

/// `[layers.metrics]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Labels of `mcp_prometheus_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    mcp_method: &'static str,
    tool: String,
    status: u16,
}

/// Labels of `mcp_prometheus_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: String,
    mcp_method: &'static str,
}

struct Families {
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram>,
}

/// Counts and times every inbound request.
#[derive(Clone)]
pub struct HttpMetricsLayer {
    families: Arc<Families>,
    route: Arc<str>,
    /// The tool names we serve: the only `tool` label values besides
    /// `unknown` (no `Mcp-Name`) and `other`.
    tools: Arc<HashSet<String>>,
}

impl HttpMetricsLayer {
    /// Registers the families; `route` names the route this layer wraps
    /// (a fixed label, never the raw path, so cardinality stays bounded)
    /// and `tools` the tool names that may label a `tools/call`.
    pub fn new(
        registry: &mut Registry,
        route: &str,
        tools: impl IntoIterator<Item = String>,
    ) -> Self {
        let families = Families {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        registry.register(
            "mcp_prometheus_http_requests",
            "Inbound HTTP requests by route, HTTP method, MCP method, tool and status",
            families.requests.clone(),
        );
        registry.register(
            "mcp_prometheus_http_request_duration_seconds",
            "Time to response headers of inbound HTTP requests",
            families.duration.clone(),
        );
        Self {
            families: Arc::new(families),
            route: route.into(),
            tools: Arc::new(tools.into_iter().collect()),
        }
    }
}

impl MetricsConfig {
    /// The layer for the MCP route (`ctx.mcp_route`), or `None` when
    /// switched off; [`HttpMetricsLayer::for_route`] labels the others.
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<HttpMetricsLayer>, Infallible> {
        Ok(self.enabled.then(|| {
            ctx.register(|registry| {
                HttpMetricsLayer::new(registry, &ctx.mcp_route, ctx.tool_names.iter().cloned())
            })
        }))
    }
}

impl HttpMetricsLayer {
    /// The same metric families for another route (one layer per route
    /// family, each with its own fixed `route` label).
    pub fn for_route(&self, route: &str) -> Self {
        Self {
            families: self.families.clone(),
            route: route.into(),
            tools: self.tools.clone(),
        }
    }
}

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`HttpMetricsLayer`].
#[derive(Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    layer: HttpMetricsLayer,
}

impl<S, B, ResB> Service<Request<B>> for HttpMetrics<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let mcp_method = mcp_method(header("mcp-method"));
        let tool = if mcp_method == "tools/call" {
            match header("mcp-name") {
                None => "unknown".to_owned(),
                Some(name) => self
                    .layer
                    .tools
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "other".to_owned()),
            }
        } else {
            String::new()
        };
        let request = RequestLabelsSoFar {
            method: http_method(req.method()),
            mcp_method,
            tool,
        };
        ResponseFuture {
            inner: self.inner.call(req),
            record: Some(Record {
                layer: self.layer.clone(),
                request,
                started: Instant::now(),
            }),
        }
    }
}

/// What is known of a request before its answer: the labels but the status.
struct RequestLabelsSoFar {
    method: &'static str,
    mcp_method: &'static str,
    tool: String,
}

/// A request waiting for its answer to be counted.
struct Record {
    layer: HttpMetricsLayer,
    request: RequestLabelsSoFar,
    started: Instant,
}

impl Record {
    fn count(self, status: u16) {
        let Self {
            layer,
            request,
            started,
        } = self;
        let route = layer.route.to_string();
        layer
            .families
            .duration
            .get_or_create(&DurationLabels {
                route: route.clone(),
                mcp_method: request.mcp_method,
            })
            .observe(started.elapsed().as_secs_f64());
        layer
            .families
            .requests
            .get_or_create(&RequestLabels {
                route,
                method: request.method,
                mcp_method: request.mcp_method,
                tool: request.tool,
                status,
            })
            .inc();
    }
}

pin_project! {
    /// Response future of [`HttpMetrics`]: counts the request when its
    /// response headers (or an error) arrive; nothing is boxed per call.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, ResB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some(record) = this.record.take() {
            record.count(result.as_ref().map_or(500, |r| r.status().as_u16()));
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    /// The text exposition of `registry`.
    fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
        text
    }

    /// The layer on `/mcp`, serving `execute_query`, around an empty answer.
    fn measured(
        registry: &mut Registry,
    ) -> (
        HttpMetricsLayer,
        HttpMetrics<
            impl Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone + use<>,
        >,
    ) {
        let layer = HttpMetricsLayer::new(registry, "/mcp", ["execute_query".to_owned()]);
        let svc = layer.layer(tower::service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
        (layer, svc)
    }

    #[tokio::test]
    async fn labels_come_from_the_mcp_headers() {
        let mut registry = Registry::default();
        let (layer, svc) = measured(&mut registry);
        let req = Request::post("/mcp")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "execute_query")
            .body(())
            .expect("request");
        svc.clone().oneshot(req).await.expect("infallible");
        let req = Request::post("/mcp")
            .header("mcp-method", "x".repeat(100))
            .body(())
            .expect("request");
        svc.oneshot(req).await.expect("infallible");
        let text = exposition(&registry);
        assert!(
            text.contains(r#"mcp_prometheus_http_requests_total{route="/mcp",method="POST",mcp_method="tools/call",tool="execute_query",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"mcp_method="other""#), "{text}");
        let oauth = layer
            .for_route("/oauth")
            .layer(tower::service_fn(|_req: Request<()>| async {
                Ok::<_, Infallible>(Response::new(()))
            }));
        let req = Request::get("/oauth/authorize").body(()).expect("request");
        oauth.oneshot(req).await.expect("infallible");
        let text = exposition(&registry);
        assert!(
            text.contains(r#"mcp_prometheus_http_requests_total{route="/oauth",method="GET",mcp_method="unknown",tool="",status="200"} 1"#),
            "one family, its own route label: {text}"
        );
    }

    /// Whatever a stranger sends in the method line and the MCP headers,
    /// the series stay within the closed label sets.
    #[tokio::test]
    async fn random_headers_cannot_grow_the_series() {
        let mut registry = Registry::default();
        let (_, svc) = measured(&mut registry);
        for i in 0..1500 {
            let req = Request::builder()
                .method(format!("M{i}").as_str())
                .uri("/mcp")
                .header(
                    "mcp-method",
                    if i % 2 == 0 {
                        "tools/call".to_owned()
                    } else {
                        format!("x/{i}")
                    },
                )
                .header("mcp-name", format!("tool_{i}"))
                .body(())
                .expect("request");
            svc.clone().oneshot(req).await.expect("infallible");
        }
        let text = exposition(&registry);
        let series = text
            .lines()
            .filter(|l| l.starts_with("mcp_prometheus_http_requests_total{"))
            .count();
        assert_eq!(series, 2, "{text}");
        assert!(
            text.contains(r#"method="other",mcp_method="tools/call",tool="other""#),
            "{text}"
        );
        assert!(
            text.contains(r#"method="other",mcp_method="other",tool="""#),
            "{text}"
        );
    }
}
