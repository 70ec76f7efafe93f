//! MCP over streamable HTTP: rmcp's tower service at `server.mcp_path`,
//! behind the inbound stack (trace → concurrency limit).

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

use super::ServeError;
use crate::app::App;
use crate::config::ServerConfig;

/// rmcp's transport settings from our `[server]` table.
pub fn transport_config(
    server: &ServerConfig,
    shutdown: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(server.stateful_sessions)
        .with_json_response(server.json_response)
        .with_max_request_body_bytes(server.max_request_body_bytes)
        .with_cancellation_token(shutdown);
    let config = if server.allowed_hosts.iter().any(|h| h == "*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(server.allowed_hosts.iter().cloned())
    };
    config
        .with_allowed_origins(server.allowed_origins.iter().cloned())
        .enforce_origin_validation()
}

/// The MCP router with its inbound layers.
pub fn router(app: &App, shutdown: CancellationToken) -> Router {
    let server = &app.config.server;
    let handler = app.mcp.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        transport_config(server, shutdown),
    );
    Router::new().route_service(&server.mcp_path, mcp).layer(
        ServiceBuilder::new()
            .layer(TraceLayer::new_for_http())
            .layer(GlobalConcurrencyLimitLayer::new(
                server.max_concurrent_requests,
            )),
    )
}

/// Serves until `shutdown`; in-flight requests then get
/// `server.shutdown_grace` to finish.
pub async fn serve(app: &App, shutdown: CancellationToken) -> Result<(), ServeError> {
    let addr = app.config.server.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(
        addr = %listener.local_addr()?,
        path = %app.config.server.mcp_path,
        "serving MCP over streamable HTTP"
    );
    let grace = app.config.server.shutdown_grace.0;
    let server = axum::serve(listener, router(app, shutdown.child_token()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        result = server => result.map_err(ServeError::Io),
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish in time; closing them");
            Ok(())
        }
    }
}
