//! The stateless `tools/call` fast path, in front of rmcp's streamable HTTP
//! service.
//!
//! A 2026-07-28 `tools/call` needs no session and no protocol state, yet
//! rmcp answers each by parsing the body into its untagged message enum,
//! re-serializing it to check the standard headers, and building and
//! spawning a one-shot service: about a third of the instructions of an
//! `up` call (bench/instructions.py). Here the plainest form of that request
//! is answered directly: the body parsed once into the few fields it may
//! have, the tool called, the answer serialized once by rmcp's own types.
//!
//! The gate is narrower than rmcp's rules, never wider: anything unusual (a
//! session, an `Origin`, `Mcp-Param-*` headers, a field we do not know, a
//! chunked body, SSE answers, a malformed `_meta`) goes to rmcp untouched
//! (the body bytes as read), and rmcp answers or refuses it as before.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use rmcp::model::{ClientCapabilities, JsonObject, RequestId};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;

use super::fast_answer::write_answer;
use super::rebinding::RebindingGuard;
use crate::mcp::PrometheusMcp;

/// The only protocol version served here: the first without sessions.
const STATELESS_VERSION: &str = "2026-07-28";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// rmcp's response body type, which the fast path answers with too.
pub type McpBody = BoxBody<Bytes, Infallible>;

/// An answer on its way: the fast path's or rmcp's.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<McpBody>, Infallible>> + Send>>;

/// Where the requests the fast path does not take go: rmcp's service.
pub trait Fallback: Send + Sync + 'static {
    /// Answers `request` as the full protocol implementation does.
    fn handle(self: Arc<Self>, request: Request<Body>) -> ResponseFuture;
}

impl Fallback for StreamableHttpService<PrometheusMcp, LocalSessionManager> {
    fn handle(self: Arc<Self>, request: Request<Body>) -> ResponseFuture {
        Box::pin(async move { Ok(StreamableHttpService::handle(&self, request).await) })
    }
}

/// The fast path: the handler it calls and the rules it checks.
pub struct FastPath {
    mcp: PrometheusMcp,
    rebinding: RebindingGuard,
    max_body_bytes: usize,
}

impl FastPath {
    /// The fast path for `mcp`'s tools, with the `[server]` host and origin
    /// rules and the body limit rmcp is given.
    pub fn new(mcp: PrometheusMcp, rebinding: RebindingGuard, max_body_bytes: usize) -> Self {
        Self {
            mcp,
            rebinding,
            max_body_bytes,
        }
    }

    /// Answers `request` here if it is a plain stateless tool call, else
    /// hands it (with the body bytes read, if any) to `fallback`.
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
            match plain_call(&bytes, &parts.headers) {
                // In a task of its own, as rmcp runs a handler: a request
                // dropped by the limits layer's timeout or a client gone
                // away leaves the call to finish, be audited and counted.
                Some(call) => {
                    let task = tokio::spawn(async move { this.answer(call, &parts).await });
                    Ok(task.await.unwrap_or_else(|_| internal_error()))
                }
                None => {
                    fallback
                        .handle(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
            }
        })
    }

    /// The request's `Content-Length` when its headers are the plain
    /// stateless tool call's; `None` sends it to rmcp.
    fn admits(&self, request: &Request<Body>) -> Option<usize> {
        let headers = request.headers();
        let plain = request.method() == Method::POST
            && only(headers, "mcp-protocol-version") == Some(STATELESS_VERSION)
            && only(headers, "mcp-method") == Some("tools/call")
            // a `=?base64?…?=` value is decoded by rmcp before it compares
            && only(headers, "mcp-name").is_some_and(|name| !name.starts_with("=?base64?"))
            && !headers.contains_key("mcp-session-id")
            && !headers.contains_key(header::ORIGIN)
            && !headers
                .keys()
                .any(|name| name.as_str().starts_with("mcp-param-"))
            && only(headers, header::CONTENT_TYPE.as_str())
                .is_some_and(|value| value.eq_ignore_ascii_case("application/json"))
            && accepts_json_and_sse(headers)
            && self.rebinding.check_request(request.uri(), headers).is_ok();
        if !plain {
            return None;
        }
        length_within(headers, self.max_body_bytes)
    }

    /// Runs the call and writes the JSON-RPC answer as rmcp would.
    async fn answer(&self, call: PlainCall, parts: &http::request::Parts) -> Response<McpBody> {
        let answer = self
            .mcp
            .call_over_http(
                &call.params.0.name,
                call.params.0.arguments.unwrap_or_default(),
                parts,
            )
            .await;
        match write_answer(call.id, answer) {
            Ok((body, length)) => {
                let length = http::HeaderValue::from(length);
                let mut response = respond_with(StatusCode::OK, "application/json", body);
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, length);
                response
            }
            Err(error) => {
                tracing::error!(%error, "tool answer could not be serialized");
                respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    b"the tool's answer could not be serialized".to_vec(),
                )
            }
        }
    }
}

/// The request's `Content-Length` when it is sent once and is at most
/// `max` (a body the fast paths read before deciding).
pub(super) fn length_within(headers: &HeaderMap, max: usize) -> Option<usize> {
    only(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|length| *length <= max)
}

/// The header's value when it is sent exactly once, as text.
pub(super) fn only<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

/// `Accept` lists both media types, with no weights (a weighted list is
/// rmcp's to judge).
pub(super) fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        // A quoted parameter may hold commas (rmcp splits around quotes).
        if value.contains('"') {
            return false;
        }
        for item in value.split(',') {
            let item = item.trim();
            if item.contains(';') {
                return false;
            }
            json |= item.eq_ignore_ascii_case("application/json");
            sse |= item.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// The body, which must be `length` bytes (hyper enforces a declared
/// length; the bound is ours).
pub(super) async fn read_exactly(body: Body, length: usize) -> Result<Bytes, ()> {
    let limited = http_body_util::Limited::new(body, length);
    let bytes = limited.collect().await.map_err(|_| ())?.to_bytes();
    if bytes.len() == length {
        Ok(bytes)
    } else {
        Err(())
    }
}

/// A `tools/call` with nothing but the fields the fast path knows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainCall {
    jsonrpc: String,
    id: RequestId,
    method: String,
    params: MapOnly<PlainParams>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
    #[serde(rename = "_meta")]
    meta: JsonObject,
}

/// `T` read from a JSON object only. A derived struct also accepts an
/// array of its fields, which rmcp refuses (and which the rate limit, a
/// JSON-RPC reader like rmcp, does not count as a call).
pub(super) struct MapOnly<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Objects<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Objects<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MapOnly<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(MapOnly)
            }
        }
        deserializer.deserialize_map(Objects(std::marker::PhantomData))
    }
}

/// The body as a plain stateless tool call agreeing with its headers, or
/// `None` (rmcp then judges it).
fn plain_call(body: &[u8], headers: &HeaderMap) -> Option<PlainCall> {
    let MapOnly(call) = serde_json::from_slice::<MapOnly<PlainCall>>(body).ok()?;
    if call.jsonrpc != "2.0" || call.method != "tools/call" {
        return None;
    }
    let meta = &call.params.0.meta;
    let version_agrees = meta
        .get(META_PROTOCOL_VERSION)
        .and_then(|v| v.as_str())
        .is_some_and(|v| v == STATELESS_VERSION);
    // Read as rmcp reads it: capabilities it cannot parse are missing, and
    // a request missing them is malformed (rmcp's error, not ours).
    let capabilities = meta
        .get(META_CLIENT_CAPABILITIES)
        .is_some_and(|v| ClientCapabilities::deserialize(v).is_ok());
    let name_agrees = only(headers, "mcp-name") == Some(call.params.0.name.as_str());
    (version_agrees && capabilities && name_agrees).then_some(call)
}

/// A plain answer: `body` as `content_type` with `status`.
pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<McpBody> {
    respond_with(status, content_type, Full::new(Bytes::from(body)).boxed())
}

/// An answer: `body` as `content_type` with `status`.
fn respond_with(
    status: StatusCode,
    content_type: &'static str,
    body: McpBody,
) -> Response<McpBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

/// The client sent fewer bytes than it declared, or the connection broke:
/// rmcp's answer to a body it cannot read.
pub(super) fn unreadable_body() -> Response<McpBody> {
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        b"Failed to read request body: it ended before its Content-Length".to_vec(),
    )
}

/// The call's task ended without an answer (a panic outside the tool's
/// own guard).
fn internal_error() -> Response<McpBody> {
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=utf-8",
        b"internal error: the tool call ended without an answer; retry".to_vec(),
    )
}

#[cfg(test)]
#[path = "fast_call_tests.rs"]
mod tests;
