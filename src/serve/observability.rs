//! The observability listener: `/metrics`, `/healthz`, `/readyz`, on its
//! own port and never behind authentication.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::listener::{ListenerSettings, serve_connections};
use crate::app::App;

/// A readiness probe answers within this, whatever the upstream does.
const READINESS_TIMEOUT: Duration = Duration::from_secs(3);

/// Serves the observability routes until `shutdown`.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    let settings = ListenerSettings::from_server(&app.config.server);
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .layer(app.inbound.catch_panic())
        .with_state(app);
    serve_connections(listener, router, settings, shutdown).await;
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
}

/// 200 only when the default upstream says it is ready; the body names the
/// dependency that is not.
async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let Some(upstream) = app.upstreams.default_upstream() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no upstream configured\n".to_owned(),
        );
    };
    for (name, check) in &app.readiness {
        if let Err(reason) = check() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {name}: {reason}\n"),
            );
        }
    }
    match tokio::time::timeout(READINESS_TIMEOUT, upstream.readiness()).await {
        Ok(readiness) if readiness.ready => (
            StatusCode::OK,
            format!(
                "ready: upstream {:?} answered {}\n",
                upstream.name(),
                readiness.endpoint
            ),
        ),
        Ok(readiness) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: upstream {:?} ({}): {}\n",
                upstream.name(),
                readiness.endpoint,
                readiness.message
            ),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: upstream {:?} did not answer its readiness check within {READINESS_TIMEOUT:?}\n",
                upstream.name()
            ),
        ),
    }
}
