//! MCP over stdin/stdout, for desktop clients that spawn the server.

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use super::ServeError;
use crate::app::App;

/// Serves one client on stdio until it closes stdin or we are told to stop.
pub async fn serve(app: &App, shutdown: CancellationToken) -> Result<(), ServeError> {
    tracing::info!("serving MCP on stdio");
    let running = app
        .mcp
        .clone()
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Stdio(e.to_string()))?;
    let cancel = running.cancellation_token();
    tokio::select! {
        result = running.waiting() => {
            result.map_err(|e| ServeError::Stdio(e.to_string()))?;
        }
        _ = shutdown.cancelled() => cancel.cancel(),
    }
    Ok(())
}
