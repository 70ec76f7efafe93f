//! Inbound limits: request body size, time to response headers, and how
//! many requests run at once. Each limit answers with an HTTP error that
//! says which limit was hit.
//!
//! Why not tower-http's `RequestBodyLimit` and `Timeout` and tower's
//! `ConcurrencyLimit`: those answer with an empty or plain-text status (or an
//! error the router cannot show), time out every request alike, and make an
//! excess caller wait without end. Here a refusal is the JSON error every
//! inbound layer speaks and names the limit; only POSTs are timed, because
//! a GET is an SSE stream that is meant to stay open; and a caller over the
//! concurrency limit waits at most `request_timeout`, then gets 503.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::build::BuildCtx;
use crate::duration::ConfigDuration;
use crate::response::json_error;

/// `[layers.limits]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub enabled: bool,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Longest a POST may take to get its response headers.
    pub request_timeout: ConfigDuration,
    /// Requests handled at once; more wait up to `request_timeout`.
    pub max_concurrent_requests: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_body_bytes: 1 << 20,
            request_timeout: ConfigDuration::secs(120),
            max_concurrent_requests: 256,
        }
    }
}

/// A limit that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum LimitsConfigError {
    #[error("layers.limits.max_body_bytes: must be at least 1024")]
    BodyTooSmall,
    #[error("layers.limits.max_concurrent_requests: must be at least 1")]
    NoConcurrency,
    #[error("layers.limits.request_timeout: must be more than 0s")]
    NoTime,
}

impl LimitsConfig {
    /// The layer, or `None` when switched off.
    pub fn build(&self, _ctx: &BuildCtx) -> Result<Option<LimitsLayer>, LimitsConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        if self.max_body_bytes < 1024 {
            return Err(LimitsConfigError::BodyTooSmall);
        }
        if self.max_concurrent_requests == 0 {
            return Err(LimitsConfigError::NoConcurrency);
        }
        if self.request_timeout.0.is_zero() {
            return Err(LimitsConfigError::NoTime);
        }
        Ok(Some(LimitsLayer {
            max_body_bytes: self.max_body_bytes,
            timeout: self.request_timeout.0,
            permits: Arc::new(Semaphore::new(self.max_concurrent_requests)),
        }))
    }
}

/// Applies [`LimitsConfig`].
#[derive(Clone, Debug)]
pub struct LimitsLayer {
    max_body_bytes: usize,
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Limits {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`LimitsLayer`].
#[derive(Clone, Debug)]
pub struct Limits<S> {
    inner: S,
    layer: LimitsLayer,
}

fn refuse<B: From<String>>(status: StatusCode, message: String) -> Response<B> {
    json_error(status, "limit", &message)
}

impl<S, B, ResB> Service<Request<B>> for Limits<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: http_body::Body + Send + Unpin + 'static,
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
            let declared = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > layer.max_body_bytes as u64) {
                // Refused from the declared length: not one byte of the
                // body is read (hyper closes the connection after this).
                return Ok(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is larger than {} bytes",
                        layer.max_body_bytes
                    ),
                ));
            }
            let Ok(Ok(permit)) =
                tokio::time::timeout(layer.timeout, layer.permits.clone().acquire_owned()).await
            else {
                return Ok(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many requests in flight; retry shortly".into(),
                ));
            };
            let bounded = req.method() == Method::POST;
            let call = inner.call(req);
            let result = if bounded {
                match tokio::time::timeout(layer.timeout, call).await {
                    Ok(result) => result,
                    Err(_) => Ok(refuse(
                        StatusCode::GATEWAY_TIMEOUT,
                        format!("the request took longer than {:?}", layer.timeout),
                    )),
                }
            } else {
                call.await
            };
            drop(permit);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn layer(max_body: usize, timeout_ms: u64, concurrent: usize) -> LimitsLayer {
        LimitsConfig {
            enabled: true,
            max_body_bytes: max_body,
            request_timeout: ConfigDuration(Duration::from_millis(timeout_ms)),
            max_concurrent_requests: concurrent,
        }
        .build(&BuildCtx::default())
        .expect("valid")
        .expect("enabled")
    }

    type TestBody = http_body_util::Full<bytes::Bytes>;

    /// A request to `/mcp` without a body.
    fn empty(method: Method) -> Request<TestBody> {
        Request::builder()
            .method(method)
            .uri("/mcp")
            .body(TestBody::default())
            .expect("req")
    }

    fn slow(
        delay_ms: u64,
    ) -> impl Service<
        Request<TestBody>,
        Response = Response<String>,
        Error = Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |_req: Request<TestBody>| async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Ok::<_, Infallible>(Response::new("ok".to_owned()))
        })
    }

    #[tokio::test]
    async fn oversized_bodies_get_413() {
        let req = Request::post("/mcp")
            .header(CONTENT_LENGTH, "2000")
            .body(TestBody::new(bytes::Bytes::from(vec![b'x'; 2000])))
            .expect("req");
        let response = layer(1024, 1000, 4)
            .layer(slow(0))
            .oneshot(req)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(response.body().contains("1024 bytes"));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_posts_get_504_but_streams_do_not() {
        let response = layer(1024, 100, 4)
            .layer(slow(1000))
            .oneshot(empty(Method::POST))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        let response = layer(1024, 100, 4)
            .layer(slow(1000))
            .oneshot(empty(Method::GET))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn excess_concurrency_waits_then_gets_503() {
        let limits = layer(1024, 100, 1);
        let busy = limits.layer(slow(10_000)).oneshot(empty(Method::GET));
        let handle = tokio::spawn(busy);
        tokio::task::yield_now().await;
        let response = limits
            .layer(slow(0))
            .oneshot(empty(Method::POST))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        handle.abort();
    }
}
