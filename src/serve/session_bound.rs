//! The bound on rmcp's streamable HTTP sessions (`server.max_sessions`).
//!
//! rmcp keeps any number of sessions until they idle out (5 minutes), each
//! with its tasks and buffers, so `initialize` calls could grow memory
//! without bound. A session an `initialize` opens past the bound is closed
//! again at once and the client is told to retry.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use super::fast_call::{McpBody, respond};

/// rmcp's sessions and how many may be open at once.
pub struct SessionBound {
    manager: Arc<LocalSessionManager>,
    max: usize,
}

impl SessionBound {
    /// At most `max` of `manager`'s sessions.
    pub fn new(manager: Arc<LocalSessionManager>, max: usize) -> Self {
        Self { manager, max }
    }

    /// rmcp's answer, unless it opened a session past the bound: that one
    /// is closed and the client gets 503.
    pub(super) async fn admit(&self, response: Response<McpBody>) -> Response<McpBody> {
        let Some(id) = response
            .headers()
            .get(SESSION_ID)
            .and_then(|v| v.to_str().ok())
        else {
            return response;
        };
        let open = self.manager.sessions.read().await.len();
        if open <= self.max {
            return response;
        }
        let id: Arc<str> = id.into();
        if let Err(error) = self.manager.close_session(&id).await {
            tracing::warn!(%error, "a session past server.max_sessions could not be closed");
        }
        tracing::warn!(
            open,
            max = self.max,
            "session refused: server.max_sessions reached"
        );
        too_many_sessions(self.max)
    }
}

/// The header that names a session (and, on an answer, a new one).
pub const SESSION_ID: &str = "mcp-session-id";

/// Whether a request names a session, decided as rmcp decides it: a value
/// that is not text counts as none, and rmcp opens a session for it, so
/// such a request must pass the bound like any other.
pub fn names_session(headers: &http::HeaderMap) -> bool {
    headers
        .get(SESSION_ID)
        .is_some_and(|value| value.to_str().is_ok())
}

/// 503 with `Retry-After`: the bound is reached, sessions idle out.
fn too_many_sessions(max: usize) -> Response<McpBody> {
    let text = format!(
        "too many MCP sessions are open ({max}, server.max_sessions); retry later, or use protocol 2026-07-28, which needs no session"
    );
    let mut response = respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        text.into_bytes(),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Empty};

    use super::*;

    fn answer(session: Option<&str>) -> Response<McpBody> {
        let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
        if let Some(id) = session {
            response
                .headers_mut()
                .insert(SESSION_ID, HeaderValue::from_str(id).expect("id"));
        }
        response
    }

    #[tokio::test]
    async fn a_session_past_the_bound_is_closed_and_refused() {
        let manager = Arc::new(LocalSessionManager::default());
        let bound = SessionBound::new(manager.clone(), 1);
        let (first, _first) = manager.create_session().await.expect("session");
        let admitted = bound.admit(answer(Some(&first))).await;
        assert_eq!(admitted.status(), StatusCode::OK);
        assert_eq!(bound.admit(answer(None)).await.status(), StatusCode::OK);

        let (second, _second) = manager.create_session().await.expect("session");
        let refused = bound.admit(answer(Some(&second))).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "30");
        assert!(!refused.headers().contains_key(SESSION_ID));
        let body = refused
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("server.max_sessions"));
        let open = manager.sessions.read().await;
        assert_eq!(open.len(), 1);
        assert!(open.contains_key(&first) && !open.contains_key(&second));
    }
}
