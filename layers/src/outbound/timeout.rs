//! Outbound timeout: one deadline for the whole exchange with the upstream,
//! response headers *and* body, so an upstream that answers quickly and then
//! trickles its body cannot hold a tool call open.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower::{Layer, Service};

use crate::BoxError;

/// The upstream did not finish answering within the configured time.
#[derive(Debug, thiserror::Error)]
#[error("upstream did not answer within {0:?}")]
pub struct TimeoutError(pub Duration);

/// Applies [`Timeout`] to a service.
#[derive(Clone, Debug)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    /// A deadline of `limit` from the moment the request is sent.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            limit: self.limit,
        }
    }
}

/// Fails the call with [`TimeoutError`] when the deadline passes, whether the
/// upstream is still silent or still sending its body.
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Timeout<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: Body<Data = Bytes>,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<TimeoutBody<ResB>>;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let deadline = Instant::now() + self.limit;
        TimeoutFuture {
            inner: self.inner.call(req),
            sleep: Some(Box::pin(sleep_until(deadline))),
            limit: self.limit,
        }
    }
}

fn expired(sleep: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> bool {
    sleep
        .as_mut()
        .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
}

pin_project! {
    /// Response future of [`Timeout`].
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        sleep: Option<Pin<Box<Sleep>>>,
        limit: Duration,
    }
}

impl<F, B, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<TimeoutBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            let sleep = this.sleep.take();
            return Poll::Ready(result.map_err(Into::into).map(|response| {
                response.map(|body| TimeoutBody {
                    inner: body,
                    sleep,
                    limit: *this.limit,
                })
            }));
        }
        if expired(this.sleep, cx) {
            return Poll::Ready(Err(TimeoutError(*this.limit).into()));
        }
        Poll::Pending
    }
}

pin_project! {
    /// A response body that fails with [`TimeoutError`] once the exchange's
    /// deadline has passed.
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        sleep: Option<Pin<Box<Sleep>>>,
        limit: Duration,
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if expired(this.sleep, cx) {
            return Poll::Ready(Some(Err(TimeoutError(*this.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::convert::Infallible;
    use tower::ServiceExt;

    /// A body that sends nothing for `delay`, then one frame.
    fn slow_body(delay: Duration) -> impl Body<Data = Bytes, Error = Infallible> + Send {
        StreamBody::new(Box::pin(futures_util::stream::once(async move {
            tokio::time::sleep(delay).await;
            Ok(Frame::data(Bytes::from_static(b"late")))
        })))
    }

    #[tokio::test(start_paused = true)]
    async fn slow_headers_time_out() {
        let svc = TimeoutLayer::new(Duration::from_secs(1)).layer(tower::service_fn(
            |_req: Request<()>| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            },
        ));
        let err = svc
            .oneshot(Request::new(()))
            .await
            .err()
            .expect("must time out");
        assert!(err.downcast_ref::<TimeoutError>().is_some(), "{err}");
    }

    /// The answer of an upstream whose headers come at once and whose body
    /// takes `body_delay`, through a timeout of `limit`.
    async fn answer_of_slow_body(
        limit: Duration,
        body_delay: Duration,
    ) -> Response<impl Body<Data = Bytes, Error = BoxError>> {
        let svc = TimeoutLayer::new(limit).layer(tower::service_fn(
            move |_req: Request<()>| async move {
                Ok::<_, Infallible>(Response::new(slow_body(body_delay)))
            },
        ));
        svc.oneshot(Request::new(()))
            .await
            .expect("headers in time")
    }

    #[tokio::test(start_paused = true)]
    async fn slow_body_times_out_after_fast_headers() {
        let response = answer_of_slow_body(Duration::from_secs(1), Duration::from_secs(5)).await;
        let err = response
            .into_body()
            .collect()
            .await
            .expect_err("body must time out");
        assert!(err.downcast_ref::<TimeoutError>().is_some(), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn answer_within_deadline_passes_through() {
        let response =
            answer_of_slow_body(Duration::from_secs(2), Duration::from_millis(500)).await;
        let body = response.into_body().collect().await.expect("body in time");
        assert_eq!(body.to_bytes(), Bytes::from_static(b"late"));
    }
}
