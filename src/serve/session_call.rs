//! A `tools/call` in an open streamable HTTP session (the protocols before
//! 2026-07-28), given to rmcp's session as the message it already is.
//!
//! rmcp's service parses every body into its untagged message enum, where
//! a `tools/call` is tried as thirteen other requests first (each a serde
//! error with a formatted message): some 29k instructions of a 230k `up`
//! call (bench/instructions.py). rmcp's session manager takes a parsed
//! message (`SessionManager::create_stream`), so the plainest form of that
//! request is read here into the one type it can be and handed to the
//! session; the session runs it as before (its worker, its service task,
//! the handler) and its answers are framed as rmcp frames them
//! ([`super::session_sse`]).
//!
//! The gate is narrower than rmcp's rules, never wider: a version that
//! checks `_meta` or the standard headers (2026-07-28), a session rmcp
//! does not hold (it restores or refuses it), an `Origin`, a field we do
//! not know, a chunked body: all go to rmcp with the same bytes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, JsonObject,
    ProtocolVersion, RequestId,
};
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::fast_call::{
    Fallback, MapOnly, McpBody, ResponseFuture, accepts_json_and_sse, length_within, only,
    read_exactly, unreadable_body,
};
use super::rebinding::RebindingGuard;
use super::session_bound::SESSION_ID;
use super::session_sse::sse_answer;

/// The versions served here: sessions, and neither `_meta` nor the
/// standard `Mcp-*` headers checked by rmcp (those begin with 2026-07-28).
const SESSION_VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
    ProtocolVersion::V_2025_03_26,
];

/// The session path: rmcp's sessions and the rules rmcp checks first.
pub struct SessionCalls {
    manager: Arc<LocalSessionManager>,
    rebinding: RebindingGuard,
    max_body_bytes: usize,
    /// rmcp's `sse_keep_alive`.
    keep_alive: Option<Duration>,
    /// rmcp's `cancellation_token`: shutdown ends the answer streams.
    shutdown: CancellationToken,
}

impl SessionCalls {
    /// Tool calls into `manager`'s sessions, with the `[server]` host and
    /// origin rules, the body limit, keep-alive and shutdown rmcp is given.
    pub fn new(
        manager: Arc<LocalSessionManager>,
        rebinding: RebindingGuard,
        max_body_bytes: usize,
        keep_alive: Option<Duration>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            manager,
            rebinding,
            max_body_bytes,
            keep_alive,
            shutdown,
        }
    }

    /// Hands `request` to its session if it is a plain tool call in one,
    /// else (with the body bytes read, if any) to `fallback`.
    pub fn serve<F: Fallback>(
        self: &Arc<Self>,
        request: Request<Body>,
        fallback: &Arc<F>,
    ) -> ResponseFuture {
        let Some(content_length) = self.admits(&request) else {
            return fallback.clone().handle(request);
        };
        let (this, fallback) = (self.clone(), fallback.clone());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let Ok(bytes) = read_exactly(body, content_length).await else {
                return Ok(unreadable_body());
            };
            let session: Option<Arc<str>> = only(&parts.headers, SESSION_ID).map(Into::into);
            let (Some(session), Some(call)) = (session, session_call(&bytes)) else {
                return fallback
                    .handle(Request::from_parts(parts, Body::from(bytes)))
                    .await;
            };
            // A session this process does not hold is rmcp's to restore
            // from its store or refuse (404).
            if !this.manager.has_session(&session).await.unwrap_or(false) {
                return fallback
                    .handle(Request::from_parts(parts, Body::from(bytes)))
                    .await;
            }
            let message = call.into_message(parts);
            match this.manager.create_stream(&session, message).await {
                Ok(stream) => Ok(sse_answer(stream, this.keep_alive, &this.shutdown)),
                Err(error) => Ok(session_gone(&error)),
            }
        })
    }

    /// The request's `Content-Length` when its headers are a plain call's
    /// in a session; `None` sends it to rmcp.
    fn admits(&self, request: &Request<Body>) -> Option<usize> {
        let headers = request.headers();
        let plain = request.method() == Method::POST
            && only(headers, SESSION_ID).is_some()
            && only(headers, "mcp-protocol-version")
                .is_some_and(|v| SESSION_VERSIONS.iter().any(|known| known.as_str() == v))
            && !headers.contains_key(header::ORIGIN)
            && only(headers, header::CONTENT_TYPE.as_str())
                .is_some_and(|value| value.eq_ignore_ascii_case("application/json"))
            && accepts_json_and_sse(headers)
            && self.rebinding.check_request(request.uri(), headers).is_ok();
        if !plain {
            return None;
        }
        length_within(headers, self.max_body_bytes)
    }
}

/// A `tools/call` with nothing but the fields read here: no `_meta`
/// (rmcp keeps it in the request's extensions and checks its version).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionCall {
    jsonrpc: String,
    id: RequestId,
    method: String,
    params: MapOnly<SessionParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

/// The body as a plain tool call, or `None` (rmcp then judges it).
fn session_call(body: &[u8]) -> Option<SessionCall> {
    let MapOnly(call) = serde_json::from_slice::<MapOnly<SessionCall>>(body).ok()?;
    (call.jsonrpc == "2.0" && call.method == "tools/call").then_some(call)
}

impl SessionCall {
    /// The message rmcp would have parsed, with the HTTP request's parts
    /// in its extensions as rmcp puts them (tools read the caller there).
    fn into_message(self, parts: http::request::Parts) -> ClientJsonRpcMessage {
        let MapOnly(params) = self.params;
        let mut typed = CallToolRequestParams::new(params.name);
        typed.arguments = params.arguments;
        let mut request = CallToolRequest::new(typed);
        request.extensions.insert(parts);
        ClientJsonRpcMessage::request(ClientRequest::CallToolRequest(request), self.id)
    }
}

/// rmcp's answer when the session went away between the check and the
/// call (closed or idled out): a 500 with its text and no content type.
fn session_gone(error: &dyn std::fmt::Display) -> Response<McpBody> {
    tracing::error!("Internal server error when get session: {error}");
    let text = format!("Encounter an error when get session: {error}");
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
#[path = "session_call_tests.rs"]
mod tests;
