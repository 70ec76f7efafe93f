//! MCP over HTTP: rmcp's streamable HTTP tower service at
//! `server.mcp_path` and/or the legacy SSE routes (`super::sse`), behind
//! the MCP route's inbound stack (see `crate::stack`), beside the
//! authorization server and the metadata documents.

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::fast_call::FastPath;
use super::listener::{ListenerSettings, serve_connections};
use super::mcp_route::{McpRoute, SessionRoutes};
use super::rebinding::RebindingGuard;
use super::session_bound::SessionBound;
use super::session_call::SessionCalls;
use super::session_owners::SessionOwners;
use super::{ServeError, sse, well_known};
use crate::app::App;
use crate::config::{ServerConfig, Transport};

/// rmcp's transport settings from our `[server]` table.
pub fn transport_config(
    server: &ServerConfig,
    max_body_bytes: usize,
    shutdown: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(server.stateful_sessions)
        .with_json_response(server.json_response)
        .with_max_request_body_bytes(max_body_bytes)
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

/// Every route: MCP (streamable HTTP, legacy SSE or both), the metadata
/// documents, the authorization server and the Prometheus API passthrough,
/// each behind the inbound stack of its route family.
pub fn router(app: &App, shutdown: CancellationToken) -> Router {
    let server = &app.config.server;
    let mut mcp_routes = Router::new();
    if server.transport != Transport::Sse {
        let handler = app.mcp.clone();
        let sessions = Arc::new(LocalSessionManager::default());
        let config = transport_config(
            server,
            app.config.layers.limits.max_body_bytes,
            shutdown.clone(),
        );
        let keep_alive = config.sse_keep_alive;
        let rmcp =
            StreamableHttpService::new(move || Ok(handler.for_session()), sessions.clone(), config);
        // JSON answers only: the fast path does not write rmcp's SSE framing.
        let fast = server.json_response.then(|| {
            FastPath::new(
                app.mcp.clone(),
                RebindingGuard::new(&server.allowed_hosts, &server.allowed_origins),
                app.config.layers.limits.max_body_bytes,
            )
        });
        let sessions = server.stateful_sessions.then(|| {
            let calls = SessionCalls::new(
                sessions.clone(),
                RebindingGuard::new(&server.allowed_hosts, &server.allowed_origins),
                app.config.layers.limits.max_body_bytes,
                keep_alive,
                shutdown.clone(),
            );
            SessionRoutes {
                owners: SessionOwners::new(sessions.clone(), server.max_sessions),
                bound: SessionBound::new(sessions, server.max_sessions),
                calls,
            }
        });
        mcp_routes =
            mcp_routes.route_service(&server.mcp_path, McpRoute::new(rmcp, fast, sessions));
    }
    if server.transport == Transport::Sse || server.legacy_sse {
        mcp_routes = mcp_routes.merge(sse::routes(app, shutdown));
    }
    let mut router = app.inbound.mcp(mcp_routes);
    if let Some(public) = well_known::router(&app.config) {
        router = router.merge(app.inbound.well_known(public));
    }
    if let Some(oauth) = &app.oauth {
        router = router.merge(app.inbound.oauth(oauth.router()));
    }
    if let Some(passthrough) = &app.passthrough {
        router = router.merge(
            app.inbound
                .passthrough(passthrough.router(), passthrough.prefix()),
        );
    }
    router
}

/// Serves until `shutdown`; in-flight requests then get
/// `server.shutdown_grace` to finish.
pub async fn serve(app: &App, shutdown: CancellationToken) -> Result<(), ServeError> {
    let addr = app.config.server.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let server = &app.config.server;
    let addr = listener.local_addr()?;
    if server.transport != Transport::Sse {
        tracing::info!(%addr, path = %server.mcp_path, "serving MCP over streamable HTTP");
    }
    if server.transport == Transport::Sse || server.legacy_sse {
        tracing::info!(%addr, stream = sse::SSE_PATH, endpoint = sse::MESSAGE_PATH, "serving MCP over legacy HTTP+SSE");
    }
    let settings = ListenerSettings::from_server(&app.config.server);
    serve_connections(
        listener,
        router(app, shutdown.child_token()),
        settings,
        shutdown,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use axum::body::Body;
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn app() -> App {
        let mut config = Config::parse(crate::config::STANDALONE_TOML).expect("parses");
        config.server.allowed_hosts = vec!["mcp.example.com".into()];
        config.server.allowed_origins = vec!["https://app.example.com".into()];
        App::build(config, None).await.expect("builds")
    }

    fn discover(host: &str, origin: Option<&str>) -> Request<Body> {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "server/discover",
            "params": {"_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }}
        });
        let mut builder = Request::post("/mcp")
            .header("host", host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "server/discover");
        if let Some(origin) = origin {
            builder = builder.header("origin", origin);
        }
        builder.body(Body::from(body.to_string())).expect("request")
    }

    async fn status_and_body(request: Request<Body>) -> (StatusCode, String) {
        let response = router(&app().await, CancellationToken::new())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn configured_host_is_served_statelessly() {
        let (status, body) = status_and_body(discover("mcp.example.com", None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.contains("mcp-prometheus"), "{body}");
        assert!(body.contains("2026-07-28"), "{body}");
    }

    #[tokio::test]
    async fn foreign_host_is_refused() {
        let (status, _) = status_and_body(discover("evil.example.com", None)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn foreign_origin_is_refused_and_listed_origin_passes() {
        let (status, _) = status_and_body(discover(
            "mcp.example.com",
            Some("https://evil.example.com"),
        ))
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) =
            status_and_body(discover("mcp.example.com", Some("https://app.example.com"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[tokio::test]
    async fn other_paths_are_not_found() {
        let mut request = discover("mcp.example.com", None);
        *request.uri_mut() = "/other".parse().expect("uri");
        let (status, _) = status_and_body(request).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
