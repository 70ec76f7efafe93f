//! The legacy MCP HTTP+SSE transport (protocol 2024-11-05), for clients
//! that speak nothing newer: `GET /sse` opens a session's event stream,
//! whose first event names the endpoint (`/message?sessionId=…`) where the
//! client POSTs its JSON-RPC messages; answers go out on the stream.
//!
//! rmcp runs the protocol over [`transport::ChannelTransport`]; this module
//! is the HTTP around it. Both routes sit behind the MCP route's inbound
//! stack (`Inbound::mcp`), so authn and tenancy apply to the GET and to
//! every POST, and each POST's own request parts (never the GET's) reach
//! the tools, exactly as on the streamable transport. The paths are fixed,
//! as in the Go server, whatever `server.mcp_path` is.

mod session;
mod transport;

#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::Stream;
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::owner::Owner;
use super::rebinding::{RebindingError, RebindingGuard};
use crate::app::App;
use crate::mcp::PrometheusMcp;
use session::{Opened, Session, SessionError, SessionGuard, Sessions};
use transport::{ChannelTransport, STALL_LIMIT};

/// Where a client opens its event stream.
pub const SSE_PATH: &str = "/sse";
/// Where a client POSTs its messages (`?sessionId=` names the session).
pub const MESSAGE_PATH: &str = "/message";
/// A comment line this often keeps proxies from cutting a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// What a refused client is told to wait before trying again.
const RETRY_AFTER_SECONDS: &str = "10";

/// Why a legacy SSE request is refused; each becomes an HTTP status with a
/// JSON-RPC error body saying what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("{0}")]
    Rebinding(#[from] RebindingError),
    #[error("no sessionId: open GET /sse first, then POST to the endpoint its first event names")]
    MissingSession,
    #[error(
        "unknown or ended session: open GET /sse first, then POST to the endpoint its first event names"
    )]
    UnknownSession,
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("the request body is larger than {0} bytes (layers.limits.max_body_bytes)")]
    TooLarge(usize),
    #[error("cannot read the request body: {0}")]
    Unreadable(String),
    #[error("the body is not JSON ({0}): send one JSON-RPC message")]
    NotJson(String),
    #[error("JSON-RPC batches are not supported: send one message per POST")]
    Batch,
    #[error("the body is not a JSON-RPC message this server accepts ({0})")]
    NotJsonRpc(String),
}

impl SseError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Rebinding(RebindingError::BadHost) => StatusCode::BAD_REQUEST,
            Self::Rebinding(_) => StatusCode::FORBIDDEN,
            Self::MissingSession | Self::UnknownSession | Self::Session(SessionError::Ended) => {
                StatusCode::NOT_FOUND
            }
            Self::Session(SessionError::Full(_) | SessionError::Busy) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Session(SessionError::Random) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable(_) | Self::NotJson(_) | Self::Batch | Self::NotJsonRpc(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }

    /// The JSON-RPC error code: parse error, invalid request, or a server
    /// error when the fault is ours or the load's.
    fn code(&self) -> i32 {
        match self {
            Self::NotJson(_) => -32700,
            Self::Session(SessionError::Full(_) | SessionError::Busy | SessionError::Random) => {
                -32000
            }
            _ => -32600,
        }
    }
}

impl IntoResponse for SseError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": self.code(), "message": self.to_string()},
        });
        let mut response = (
            status,
            [(http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// What both handlers share.
#[derive(Clone)]
struct SseState {
    handler: PrometheusMcp,
    sessions: Arc<Sessions>,
    rebinding: Arc<RebindingGuard>,
    max_body_bytes: usize,
    idle_timeout: Duration,
    /// Ends every session (graceful shutdown ends the streams).
    shutdown: CancellationToken,
}

/// `GET /sse` and `POST /message`, not yet behind the inbound stack (the
/// caller wraps them with `Inbound::mcp`, beside the streamable route).
pub fn routes(app: &App, shutdown: CancellationToken) -> Router {
    let server = &app.config.server;
    let state = SseState {
        handler: app.mcp.clone(),
        sessions: Sessions::new(server.sse_max_sessions),
        rebinding: Arc::new(RebindingGuard::new(
            &server.allowed_hosts,
            &server.allowed_origins,
        )),
        max_body_bytes: app.config.layers.limits.max_body_bytes,
        idle_timeout: server.sse_idle_timeout.0,
        shutdown,
    };
    Router::new()
        .route(SSE_PATH, get(open_stream))
        .route(MESSAGE_PATH, post(post_message))
        .with_state(state)
}

async fn open_stream(State(state): State<SseState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    state
        .open(&parts)
        .unwrap_or_else(IntoResponse::into_response)
}

async fn post_message(State(state): State<SseState>, request: Request) -> Response {
    match state.post(request).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error) => {
            tracing::debug!(%error, "legacy SSE message refused");
            error.into_response()
        }
    }
}

impl SseState {
    /// Opens a session: its rmcp service runs in a task of its own, its
    /// answers go out on the returned event stream.
    fn open(&self, parts: &Parts) -> Result<Response, SseError> {
        self.rebinding.check(parts)?;
        let Opened {
            session,
            inbound,
            outbound: (answers_tx, answers),
            guard,
        } = self
            .sessions
            .open(Owner::of(&parts.extensions), &self.shutdown)?;
        let transport =
            ChannelTransport::new(inbound, answers_tx, session.closed().clone(), STALL_LIMIT);
        let span = tracing::info_span!("sse_session", session = %session.id());
        tokio::spawn(
            run_service(self.handler.for_session(), transport, session.clone()).instrument(span),
        );
        tracing::debug!(session = %session.id(), open = self.sessions.len(), "legacy SSE session opened");
        let outgoing = Outgoing {
            endpoint: Some(format!("{MESSAGE_PATH}?sessionId={}", session.id())),
            answers,
            session,
            idle_timeout: self.idle_timeout,
            _guard: guard,
        };
        let mut response = Sse::new(outgoing.into_stream())
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("ping"))
            .into_response();
        // nginx and its kin buffer responses unless told not to.
        response
            .headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }

    /// Hands one POSTed message to its session, with this POST's parts
    /// (identity, tenants, trace context) for the tools to read.
    async fn post(&self, request: Request) -> Result<(), SseError> {
        let (parts, body) = request.into_parts();
        self.rebinding.check(&parts)?;
        let id = session_id(&parts).ok_or(SseError::MissingSession)?;
        let session = self.sessions.get(&id).ok_or(SseError::UnknownSession)?;
        if !session.is_owned_by(&Owner::of(&parts.extensions)) {
            // Answered as a session that does not exist: a leaked id does
            // not even tell its holder that the session is open.
            tracing::warn!(session = %session.id(), "legacy SSE message from another caller refused as unknown");
            return Err(SseError::UnknownSession);
        }
        let body = read_body(body, self.max_body_bytes).await?;
        let mut message = parse_message(&body)?;
        match &mut message {
            ClientJsonRpcMessage::Request(request) => {
                request.request.extensions_mut().insert(parts);
            }
            ClientJsonRpcMessage::Notification(notification) => {
                notification.notification.extensions_mut().insert(parts);
            }
            ClientJsonRpcMessage::Response(_) | ClientJsonRpcMessage::Error(_) => {}
        }
        session.touch();
        Ok(session.deliver(message).await?)
    }
}

/// The `sessionId` query parameter.
fn session_id(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "sessionId")
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

/// The whole body, at most `limit` bytes (a chunked body has no
/// `Content-Length` for the limits layer to check up front).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, SseError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(SseError::TooLarge(limit))
        }
        Err(error) => Err(SseError::Unreadable(error.to_string())),
    }
}

/// One JSON-RPC message, or a 400 saying what is wrong with it.
fn parse_message(body: &[u8]) -> Result<ClientJsonRpcMessage, SseError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| SseError::NotJson(e.to_string()))?;
    if value.is_array() {
        return Err(SseError::Batch);
    }
    serde_json::from_value(value).map_err(|e| SseError::NotJsonRpc(e.to_string()))
}

/// Runs rmcp over one session until either side ends it, then ends the
/// session (its stream closes).
async fn run_service(handler: PrometheusMcp, transport: ChannelTransport, session: Arc<Session>) {
    let closed = session.closed().clone();
    match handler.serve_with_ct(transport, closed.clone()).await {
        Ok(running) => match running.waiting().await {
            Ok(reason) => tracing::debug!(?reason, "legacy SSE session ended"),
            Err(error) => tracing::warn!(%error, "legacy SSE session task failed"),
        },
        Err(error) => tracing::debug!(%error, "legacy SSE session ended before initialize"),
    }
    closed.cancel();
}

/// The event stream of one session: the endpoint event, then each answer,
/// until the session ends. It owns the session's guard, so a client that
/// disconnects (the body is dropped) frees its session.
struct Outgoing {
    endpoint: Option<String>,
    answers: mpsc::Receiver<ServerJsonRpcMessage>,
    session: Arc<Session>,
    idle_timeout: Duration,
    _guard: SessionGuard,
}

impl Outgoing {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(self, |mut outgoing| async move {
            let event = outgoing.next_event().await?;
            Some((Ok(event), outgoing))
        })
    }

    async fn next_event(&mut self) -> Option<Event> {
        if let Some(endpoint) = self.endpoint.take() {
            return Some(Event::default().event("endpoint").data(endpoint));
        }
        loop {
            let deadline = self.session.last_active() + self.idle_timeout;
            tokio::select! {
                () = self.session.closed().cancelled() => return None,
                answer = self.answers.recv() => {
                    let answer = answer?;
                    self.session.touch();
                    match Event::default().event("message").json_data(&answer) {
                        Ok(event) => return Some(event),
                        Err(error) => tracing::warn!(%error, "cannot encode an answer for a legacy SSE client"),
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if self.session.last_active() + self.idle_timeout <= Instant::now() {
                        tracing::info!(session = %self.session.id(), idle = ?self.idle_timeout, "legacy SSE session idle; closing it");
                        self.session.close();
                        return None;
                    }
                }
            }
        }
    }
}
