//! Outbound RED metrics: requests to each upstream by endpoint and status,
//! and how long the upstream took to answer (time to response headers).

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
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::BoxError;
use crate::endpoint::UpstreamEndpoint;
use crate::outbound::timeout::TimeoutError;

/// Labels of `mcp_prometheus_upstream_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamRequestLabels {
    pub upstream: String,
    pub endpoint: String,
    /// The HTTP status code, or `timeout` / `error` when none came back.
    pub status: String,
}

/// Labels of `mcp_prometheus_upstream_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamDurationLabels {
    pub upstream: String,
    pub endpoint: String,
}

/// The metric families this layer writes; register once, share by `Arc`.
#[derive(Debug)]
pub struct UpstreamMetrics {
    requests: Family<UpstreamRequestLabels, Counter>,
    duration: Family<UpstreamDurationLabels, Histogram>,
}

impl UpstreamMetrics {
    /// Creates the families and registers them under `registry`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        registry.register(
            "mcp_prometheus_upstream_requests",
            "Requests sent to upstreams, by upstream, endpoint and status",
            metrics.requests.clone(),
        );
        registry.register(
            "mcp_prometheus_upstream_request_duration_seconds",
            "Time until the upstream's response headers, by upstream and endpoint",
            metrics.duration.clone(),
        );
        Arc::new(metrics)
    }

    fn record(&self, endpoint: &UpstreamEndpoint, status: String, started: Instant) {
        self.requests
            .get_or_create(&UpstreamRequestLabels {
                upstream: endpoint.upstream.to_string(),
                endpoint: endpoint.endpoint.to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&UpstreamDurationLabels {
                upstream: endpoint.upstream.to_string(),
                endpoint: endpoint.endpoint.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Records every outbound request in [`UpstreamMetrics`].
#[derive(Clone, Debug)]
pub struct UpstreamMetricsLayer {
    metrics: Arc<UpstreamMetrics>,
}

impl UpstreamMetricsLayer {
    /// A layer writing into `metrics`.
    pub fn new(metrics: Arc<UpstreamMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for UpstreamMetricsLayer {
    type Service = UpstreamMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        UpstreamMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Service of [`UpstreamMetricsLayer`].
#[derive(Clone, Debug)]
pub struct UpstreamMetricsService<S> {
    inner: S,
    metrics: Arc<UpstreamMetrics>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for UpstreamMetricsService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let endpoint = req.extensions().get::<UpstreamEndpoint>().cloned();
        MetricsFuture {
            inner: self.inner.call(req),
            record: endpoint.map(|e| (e, self.metrics.clone())),
            started: Instant::now(),
        }
    }
}

pin_project! {
    /// Response future of [`UpstreamMetricsService`].
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        record: Option<(UpstreamEndpoint, Arc<UpstreamMetrics>)>,
        started: Instant,
    }
}

impl<F, B, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result.map_err(Into::into),
        };
        if let Some((endpoint, metrics)) = this.record.take() {
            let status = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(error) if error.downcast_ref::<TimeoutError>().is_some() => "timeout".into(),
                Err(_) => "error".into(),
            };
            metrics.record(&endpoint, status, *this.started);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use std::convert::Infallible;
    use tower::ServiceExt;

    #[tokio::test]
    async fn counts_by_upstream_endpoint_and_status() {
        let mut registry = Registry::default();
        let metrics = UpstreamMetrics::register(&mut registry);
        let svc = UpstreamMetricsLayer::new(metrics).layer(tower::service_fn(
            |_req: Request<()>| async {
                let mut response = Response::new(());
                *response.status_mut() = http::StatusCode::BAD_REQUEST;
                Ok::<_, Infallible>(response)
            },
        ));
        let mut req = Request::new(());
        req.extensions_mut().insert(UpstreamEndpoint {
            upstream: "mimir".into(),
            endpoint: "/api/v1/query",
        });
        svc.oneshot(req).await.expect("infallible");
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains(
                r#"mcp_prometheus_upstream_requests_total{upstream="mimir",endpoint="/api/v1/query",status="400"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("mcp_prometheus_upstream_request_duration_seconds_count"));
    }
}
