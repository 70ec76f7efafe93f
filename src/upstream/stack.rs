//! The outbound stack around hyper-util's pooled client, per DESIGN.md:
//! user agent → upstream auth → metrics → timeout → pooled client.

use std::sync::Arc;
use std::time::Duration;

use http::header::USER_AGENT;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mcp_prometheus_layers::BoxError;
use mcp_prometheus_layers::body::{RequestBody, ResponseBody};
use mcp_prometheus_layers::tenant::TenantLayer;
use mcp_prometheus_layers::timeout::TimeoutLayer;
use mcp_prometheus_layers::trace::PropagateLayer;
use mcp_prometheus_layers::truncate::TruncateLayer;
use mcp_prometheus_layers::upstream_auth::UpstreamAuthConfigError;
use mcp_prometheus_layers::upstream_metrics::{UpstreamMetrics, UpstreamMetricsLayer};
use tower::ServiceBuilder;
use tower::util::{BoxCloneSyncService, MapResponseLayer};
use tower_http::set_header::SetRequestHeaderLayer;

use crate::config::UpstreamConfig;
use mcp_prometheus_layers::tls::{TlsSetupError, client_config};

/// A type-erased outbound service: what a tool calls to reach one upstream.
pub type OutboundService =
    BoxCloneSyncService<Request<RequestBody>, Response<ResponseBody>, BoxError>;

/// Connections idle longer than this are closed (below common LB idle
/// timeouts, so we never write into a connection the peer dropped).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Connect attempts give up after this, even with a longer upstream timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an upstream's outbound stack could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Auth(#[from] UpstreamAuthConfigError),
}

/// `mcp-prometheus/<version>`, sent on every upstream request.
pub fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("mcp-prometheus/", env!("CARGO_PKG_VERSION")))
}

/// The outbound layers shared by every upstream, built once from
/// `[layers.*]`.
#[derive(Clone)]
pub struct OutboundLayers {
    pub metrics: Arc<UpstreamMetrics>,
    pub tenant: TenantLayer,
    pub truncate: Option<TruncateLayer>,
    pub propagate_trace: bool,
}

/// Builds the outbound stack for one upstream, in DESIGN.md's order:
/// trace → user agent → tenant → upstream auth → truncate → metrics →
/// timeout → pooled client.
pub fn build(
    upstream: &UpstreamConfig,
    outbound: &OutboundLayers,
) -> Result<OutboundService, StackError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(upstream.timeout.0.min(CONNECT_TIMEOUT)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config(&upstream.tls)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client: Client<_, RequestBody> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(64)
        .build(https);
    let service = ServiceBuilder::new()
        .option_layer(outbound.propagate_trace.then_some(PropagateLayer))
        .layer(SetRequestHeaderLayer::overriding(USER_AGENT, user_agent()))
        .layer(outbound.tenant)
        .layer(upstream.auth.build()?)
        .option_layer(outbound.truncate.clone())
        .layer(MapResponseLayer::new(|response: Response<_>| {
            response.map(BodyExt::boxed_unsync)
        }))
        .layer(UpstreamMetricsLayer::new(outbound.metrics.clone()))
        .layer(TimeoutLayer::new(upstream.timeout.0))
        .service(client);
    Ok(BoxCloneSyncService::new(service))
}
