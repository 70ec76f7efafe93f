//! `serve`: the transports, the observability listener and shutdown.

mod chunked;
mod fast_answer;
mod fast_call;
mod http;
mod listener;
mod mcp_route;
mod observability;
mod owner;
mod rebinding;
mod session_bound;
mod session_call;
mod session_owners;
mod session_sse;
mod shutdown;
mod sse;
mod stdio;
mod well_known;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Transport;

pub use shutdown::shutdown_signal;

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("MCP stdio transport failed: {0}")]
    Stdio(String),
}

/// Serves until `shutdown` is cancelled (or stdin closes under stdio).
pub async fn run(app: App, shutdown: CancellationToken) -> Result<(), ServeError> {
    let app = Arc::new(app);
    let observability = match app.config.observability.listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => Some(tokio::spawn(observability::serve(
                listener,
                app.clone(),
                shutdown.clone(),
            ))),
            Err(source) if app.config.server.transport == Transport::Stdio => {
                // A second desktop client spawning us must still work.
                tracing::warn!(%addr, %source, "observability listener disabled");
                None
            }
            Err(source) => return Err(ServeError::Bind { addr, source }),
        },
        None => None,
    };
    let result = match app.config.server.transport {
        Transport::Stdio => stdio::serve(&app, shutdown.clone()).await,
        Transport::StreamableHttp | Transport::Sse => http::serve(&app, shutdown.clone()).await,
    };
    shutdown.cancel();
    if let Some(task) = observability {
        let _ = task.await;
    }
    result
}
