//! The pooled HTTP client at the bottom of every outbound stack: hyper-util
//! with rustls, TCP_NODELAY, bounded connect time and idle connections.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mcp_prometheus_layers::body::RequestBody;
use mcp_prometheus_layers::tls::{TlsSetupError, client_config};

use crate::config::UpstreamConfig;

/// Connections idle longer than this are closed (below common LB idle
/// timeouts, so we never write into a connection the peer dropped).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// Connect attempts give up after this, even with a longer upstream timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pooled client type every upstream uses.
pub type PooledClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, RequestBody>;

/// A pooled client for one upstream (its TLS settings and timeout).
pub fn pooled_client(upstream: &UpstreamConfig) -> Result<PooledClient, TlsSetupError> {
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
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(64)
        .build(https))
}
