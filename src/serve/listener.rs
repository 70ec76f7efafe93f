//! The listeners' connections: hyper's HTTP/1.1 server with the settings
//! axum's `serve` does not expose. A client gets `server.header_read_timeout`
//! to send each request's headers, from its first byte on (hyper's timer
//! must be set for that); HTTP/1.1 only, because telling HTTP/2 apart first
//! reads bytes with no deadline at all. At most `server.max_connections` are
//! open (more wait in the kernel's backlog). Every connection has
//! TCP_NODELAY (each small SSE answer would otherwise wait for the client's
//! delayed ACK), and shutdown is graceful within `server.shutdown_grace`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How the listener treats connections.
pub struct ListenerSettings {
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_connections: usize,
}

impl ListenerSettings {
    /// The settings `[server]` gives every listener.
    pub fn from_server(server: &crate::config::ServerConfig) -> Self {
        Self {
            header_read_timeout: server.header_read_timeout.0,
            shutdown_grace: server.shutdown_grace.0,
            max_connections: server.max_connections,
        }
    }
}

/// Accepts connections until `shutdown`, then lets in-flight requests
/// finish for at most the grace period.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = router
            .clone()
            .map_request(move |request: http::Request<Incoming>| with_peer(request, peer));
        let connection =
            builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!(grace = ?settings.shutdown_grace, "in-flight requests did not finish in time; closing them");
        }
    }
}

/// The request as axum's handlers see it, with the peer address that
/// `ConnectInfo` extractors (the OAuth rate limit) read.
fn with_peer(request: http::Request<Incoming>, peer: SocketAddr) -> http::Request<Body> {
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ConnectInfo(peer));
    request
        .extensions_mut()
        .insert(mcp_prometheus_layers::identity::PeerAddr(peer));
    request
}
