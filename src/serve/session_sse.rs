//! rmcp's SSE answer to a request in a session, framed in one buffer.
//!
//! The bytes, headers, keep-alive and shutdown are rmcp's
//! (`sse_stream_response` over `sse_stream::SseBody`): each message is
//! `data: <json>`, then `id:` and `retry:` when it has them, then a blank
//! line; a `:` comment every keep-alive interval without one; the stream
//! ends at shutdown. rmcp serializes each message into a `String` and
//! copies it into the frame; here it is serialized into the frame.

use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::BodyExt as _;
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::fast_call::McpBody;

/// What a keep-alive sends: an empty comment (sse_stream's default).
const KEEP_ALIVE: &[u8] = b":\n\n";

/// A 200 `text/event-stream` answer carrying `messages`.
pub(super) fn sse_answer<S>(
    messages: S,
    keep_alive: Option<Duration>,
    shutdown: &CancellationToken,
) -> Response<McpBody>
where
    S: Stream<Item = ServerSseMessage> + Send + Sync + 'static,
{
    let body = SseAnswer {
        messages,
        timer: keep_alive.map(tokio::time::sleep),
        every: keep_alive.unwrap_or_default(),
        shutdown: shutdown.clone().cancelled_owned(),
        ended: false,
    };
    let mut response = Response::new(body.boxed());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

pin_project_lite::pin_project! {
    /// The answer stream as an HTTP body.
    struct SseAnswer<S> {
        #[pin]
        messages: S,
        // Reset after every frame, as sse_stream's keep-alive timer is.
        #[pin]
        timer: Option<Sleep>,
        every: Duration,
        #[pin]
        shutdown: WaitForCancellationFutureOwned,
        ended: bool,
    }
}

impl<S: Stream<Item = ServerSseMessage>> Body for SseAnswer<S> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        // Shutdown first, as rmcp's `take_until` checks it.
        if *this.ended || this.shutdown.poll(cx).is_ready() {
            *this.ended = true;
            return Poll::Ready(None);
        }
        let frame = match this.messages.poll_next(cx) {
            Poll::Ready(Some(message)) => match frame(&message) {
                Some(frame) => frame,
                None => {
                    *this.ended = true;
                    return Poll::Ready(None);
                }
            },
            Poll::Ready(None) => {
                *this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {
                let Some(timer) = this.timer.as_mut().as_pin_mut() else {
                    return Poll::Pending;
                };
                ready!(timer.poll(cx));
                Bytes::from_static(KEEP_ALIVE)
            }
        };
        if let Some(timer) = this.timer.as_pin_mut() {
            timer.reset(Instant::now() + *this.every);
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }
}

/// One SSE event as rmcp writes it (a message without JSON is a priming
/// event: empty data); `None` if the message cannot be serialized, where
/// rmcp panics.
fn frame(message: &ServerSseMessage) -> Option<Bytes> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    if let Some(json) = &message.message
        && let Err(error) = serde_json::to_writer(&mut out, json.as_ref())
    {
        tracing::error!(%error, "an answer could not be serialized");
        return None;
    }
    out.push(b'\n');
    if let Some(id) = &message.event_id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    if let Some(retry) = message.retry {
        // Writing into a Vec cannot fail.
        let _ = writeln!(out, "retry: {}", retry.as_millis() as u64);
    }
    out.push(b'\n');
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::model::{EmptyResult, NumberOrString, ServerJsonRpcMessage, ServerResult};

    use super::*;

    fn message(event_id: Option<&str>, retry: Option<Duration>, json: bool) -> ServerSseMessage {
        let mut message = ServerSseMessage::default();
        message.event_id = event_id.map(str::to_owned);
        message.retry = retry;
        message.message = json.then(|| {
            Arc::new(ServerJsonRpcMessage::response(
                ServerResult::EmptyResult(EmptyResult {}),
                NumberOrString::Number(7),
            ))
        });
        message
    }

    #[test]
    fn frames_are_rmcps() {
        let answer = frame(&message(Some("0/1"), None, true)).expect("frame");
        assert_eq!(
            &answer[..],
            b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\nid: 0/1\n\n"
        );
        let priming = frame(&message(Some("0"), Some(Duration::from_secs(3)), false));
        assert_eq!(
            &priming.expect("frame")[..],
            b"data: \nid: 0\nretry: 3000\n\n"
        );
    }

    #[tokio::test]
    async fn the_body_ends_with_its_messages_or_at_shutdown() {
        let shutdown = CancellationToken::new();
        let messages = futures_util::stream::iter([message(None, None, true)]);
        let body = sse_answer(messages, Some(Duration::from_secs(15)), &shutdown);
        assert_eq!(body.headers()[header::CONTENT_TYPE], "text/event-stream");
        let bytes = body.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(
            &bytes[..],
            b"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n"
        );

        let pending = futures_util::stream::pending::<ServerSseMessage>();
        let body = sse_answer(pending, None, &shutdown);
        shutdown.cancel();
        let bytes = body.into_body().collect().await.expect("body").to_bytes();
        assert!(bytes.is_empty());
    }
}
