//! The per-caller limit on the HTTP path: a POST is read (at most
//! `max_body_bytes`), and if it is a tool call, or a `resources/read` of a
//! resource that asks an upstream ([`CHARGED_RESOURCE_PREFIX`]), a token is
//! taken from the caller's bucket. Over the limit: `429`, `Retry-After`, and a JSON-RPC error the
//! client's SDK shows. Nothing else is refused; `every_request` (the
//! passthrough route, where each request is one API call) counts every
//! request instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited as LimitedBody};
use serde_json::{Value, json};
use tower::{Layer, Service};

use super::{Limited, RateLimits};
use crate::audit::{AuditEvent, AuditLog, EventKind, cut, redact};
use crate::identity::{PeerAddr, Principal, TenantSet};
use crate::response::json_error;

/// Applies the per-caller limits of [`super::RateLimitConfig`].
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    limits: Arc<RateLimits>,
    /// The most of a body read to count its tool calls.
    max_body_bytes: usize,
    every_request: bool,
    audit: Option<AuditLog>,
}

impl RateLimitLayer {
    pub(super) fn new(limits: Arc<RateLimits>, max_body_bytes: usize) -> Self {
        Self {
            limits,
            max_body_bytes,
            every_request: false,
            audit: None,
        }
    }

    /// The same limits, counting every request (one API call each).
    pub fn every_request(&self) -> Self {
        Self {
            every_request: true,
            ..self.clone()
        }
    }

    /// The same limits, writing refusals to `audit`.
    pub fn audited(self, audit: Option<AuditLog>) -> Self {
        Self { audit, ..self }
    }

    /// The limits, for calls that have no HTTP request (stdio).
    pub fn limits(&self) -> Arc<RateLimits> {
        self.limits.clone()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`RateLimitLayer`].
#[derive(Clone, Debug)]
pub struct RateLimit<S> {
    inner: S,
    layer: RateLimitLayer,
}

/// URIs under this prefix are read from an upstream (the metric
/// catalog): a `resources/read` of one costs a token like a tool call.
/// The MCP service builds those URIs from this constant.
pub const CHARGED_RESOURCE_PREFIX: &str = "prometheus://upstreams/";

/// Whether `message` reaches an upstream: a tool call, or a read of a
/// resource under [`CHARGED_RESOURCE_PREFIX`].
fn charged(message: &Value) -> bool {
    match message.get("method").and_then(Value::as_str) {
        Some("tools/call") => true,
        Some("resources/read") => message
            .get("params")
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .is_some_and(|uri| uri.starts_with(CHARGED_RESOURCE_PREFIX)),
        _ => false,
    }
}

/// The number of charged calls in a POST body (0 or 1) and its message. Read as
/// a generic value, so a duplicated key counts as the last one, never
/// less. A batch (a JSON array) counts nothing: rmcp reads one message per
/// request and refuses an array, so counting it would only let a caller
/// drain a shared bucket with calls that never run.
fn tool_calls(body: &[u8]) -> (u32, Value) {
    match serde_json::from_slice::<Value>(body) {
        Ok(message @ Value::Object(_)) if charged(&message) => (1, message),
        // Not a call, not JSON (the MCP service refuses it), or a batch.
        _ => (0, Value::Null),
    }
}

/// The audit line of a refused call: a `tool_call` line like any other
/// call's, its tool and arguments from the message.
fn refused_call_event(
    audit: &AuditLog,
    extensions: &http::Extensions,
    message: &Value,
    limited: &Limited,
) -> AuditEvent {
    let params = message.get("params");
    if message.get("method").and_then(Value::as_str) == Some("resources/read") {
        let mut event = AuditEvent::new(EventKind::ResourceRead, "limited", extensions);
        event.tenants = Vec::new();
        event.arguments = params
            .and_then(|p| p.get("uri"))
            .map(|uri| redact(&json!({ "uri": uri }), audit.max_argument_bytes()));
        event.reason = Some(limited.to_string());
        return event;
    }
    let mut event = AuditEvent::new(EventKind::ToolCall, "limited", extensions);
    event.tenants = Vec::new();
    event.tool = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(|name| cut(name, 128));
    event.arguments = params
        .and_then(|p| p.get("arguments"))
        .map(|args| redact(args, audit.max_argument_bytes()));
    event.reason = Some(limited.to_string());
    event
}

/// The refusal: `429`, `Retry-After`, and an error naming the limit in
/// the caller's protocol: JSON-RPC for MCP, Prometheus's error shape for
/// the API passthrough (`every_request`).
fn too_many<B: From<String>>(limited: &Limited, id: Value, every_request: bool) -> Response<B> {
    let body = if every_request {
        json!({"status": "error", "errorType": "unavailable", "error": limited.to_string()})
    } else {
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": -32000,
                "message": limited.to_string(),
                "data": {"rule": limited.rule, "retry_after_seconds": limited.retry_after_secs},
            },
        })
    };
    let mut response = Response::new(B::from(body.to_string()));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
    response
}

impl<S, B, ResB> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: http_body::Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResB: From<String> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let (calls, message, body) = if layer.every_request {
                (1, Value::Null, body)
            } else if parts.method != Method::POST {
                (0, Value::Null, body)
            } else {
                let max = layer.max_body_bytes;
                let bytes = match LimitedBody::new(body, max).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) if error.is::<LengthLimitError>() => {
                        return Ok(json_error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "limit",
                            &format!("the request body is larger than {max} bytes"),
                        ));
                    }
                    Err(error) => {
                        return Ok(json_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            &format!("the request body could not be read: {error}"),
                        ));
                    }
                };
                let (calls, id) = tool_calls(&bytes);
                (calls, id, B::from(bytes))
            };
            if calls > 0 {
                let principal = parts.extensions.get::<Principal>();
                let tenants = parts.extensions.get::<TenantSet>();
                let peer = parts.extensions.get::<PeerAddr>();
                if let Err(limited) = layer.limits.check(principal, tenants, peer) {
                    if let Some(audit) = &layer.audit {
                        let event = if layer.every_request {
                            let mut event =
                                AuditEvent::new(EventKind::RateLimit, "limited", &parts.extensions);
                            event.reason = Some(limited.to_string());
                            event
                        } else {
                            refused_call_event(audit, &parts.extensions, &message, &limited)
                        };
                        audit.record(&event);
                    }
                    let id = message.get("id").cloned().unwrap_or(Value::Null);
                    return Ok(too_many(&limited, id, layer.every_request));
                }
            }
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tool_calls_in_messages_and_batches() {
        let one = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#;
        assert_eq!(tool_calls(one).0, 1);
        assert_eq!(tool_calls(one).1["id"], json!(7));
        let batch = br#"[{"jsonrpc":"2.0","id":"a","method":"tools/call"},
            {"jsonrpc":"2.0","id":3,"method":"tools/call"}]"#;
        assert_eq!(tool_calls(batch).0, 0, "rmcp refuses batches: nothing runs");
        assert_eq!(
            tool_calls(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).0,
            0
        );
        assert_eq!(tool_calls(b"not json").0, 0);
        assert_eq!(tool_calls(br#"{"result":{}}"#).0, 0, "a response");
        let duplicated = br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}"#;
        assert_eq!(tool_calls(duplicated).0, 1, "the last key counts");
    }

    #[test]
    fn reads_of_upstream_resources_are_charged_and_others_are_not() {
        let catalog = br#"{"jsonrpc":"2.0","id":2,"method":"resources/read",
            "params":{"uri":"prometheus://upstreams/local/metrics?cursor=YQ"}}"#;
        assert_eq!(tool_calls(catalog).0, 1);
        for free in [
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"prometheus://upstreams"}}"#.as_slice(),
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"prometheus://docs/promql-cheatsheet"}}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":7}}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/list"}"#,
        ] {
            assert_eq!(tool_calls(free).0, 0, "{}", String::from_utf8_lossy(free));
        }
    }
}
