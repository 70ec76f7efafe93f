//! The response future of label tenancy: a refusal, the inner answer as
//! it is, or (alerts and rules) the inner answer read whole, within a
//! bound, and filtered to the caller's tenants before anyone else sees it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderValue, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use pin_project_lite::pin_project;

use super::TenantLabelError;
use super::filter::AnswerFilter;
use crate::BoxError;
use crate::body::ResponseBody;

pin_project! {
    /// Response future of [`TenantLabel`](super::TenantLabel).
    #[project = Proj]
    pub enum ResponseFuture<F> {
        /// Refused before sending.
        Refused { error: Option<TenantLabelError> },
        /// Sent; `filter` is applied to a 2xx answer.
        Calling {
            #[pin]
            future: F,
            filter: Option<Filtering>,
        },
        /// A 2xx answer being read for its filter.
        Reading { reading: Option<Reading> },
    }
}

/// A filter with the endpoint (for errors) and the most bytes it reads.
#[derive(Debug)]
pub struct Filtering {
    pub filter: AnswerFilter,
    pub endpoint: &'static str,
    pub limit: usize,
}

pub struct Reading {
    head: http::response::Parts,
    body: ResponseBody,
    buffer: BytesMut,
    filtering: Filtering,
}

impl<F> ResponseFuture<F> {
    pub fn refused(error: TenantLabelError) -> Self {
        Self::Refused { error: Some(error) }
    }

    pub fn calling(future: F, filter: Option<Filtering>) -> Self {
        Self::Calling { future, filter }
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                Proj::Refused { error } => {
                    return Poll::Ready(Err(error
                        .take()
                        .map_or_else(|| "polled after completion".into(), Into::into)));
                }
                Proj::Calling { future, filter } => {
                    let response = match future.poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result.map_err(Into::into)?,
                    };
                    let Some(filtering) = filter.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    if !response.status().is_success() {
                        return Poll::Ready(Ok(response));
                    }
                    if let Some(encoding) = response.headers().get(CONTENT_ENCODING) {
                        return Poll::Ready(Err(TenantLabelError::Encoded {
                            endpoint: filtering.endpoint,
                            encoding: String::from_utf8_lossy(encoding.as_bytes()).into_owned(),
                        }
                        .into()));
                    }
                    let (head, body) = response.into_parts();
                    self.set(Self::Reading {
                        reading: Some(Reading {
                            head,
                            body,
                            buffer: BytesMut::new(),
                            filtering,
                        }),
                    });
                }
                Proj::Reading { reading } => {
                    let Some(state) = reading.as_mut() else {
                        return Poll::Ready(Err("polled after completion".into()));
                    };
                    if state.poll_read(cx)?.is_pending() {
                        return Poll::Pending;
                    }
                    return match reading.take() {
                        Some(state) => Poll::Ready(state.finish().map_err(Into::into)),
                        None => Poll::Ready(Err("polled after completion".into())),
                    };
                }
            }
        }
    }
}

impl Reading {
    /// Reads frames until the body ends.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TenantLabelError>> {
        let endpoint = self.filtering.endpoint;
        loop {
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(source))) => {
                    return Poll::Ready(Err(TenantLabelError::Broken { endpoint, source }));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if self.buffer.len() + data.len() > self.filtering.limit {
                return Poll::Ready(Err(TenantLabelError::AnswerTooLarge {
                    endpoint,
                    limit: self.filtering.limit,
                }));
            }
            self.buffer.extend_from_slice(&data);
        }
    }

    /// The filtered answer, with its length corrected.
    fn finish(self) -> Result<Response<ResponseBody>, TenantLabelError> {
        let Self {
            mut head,
            buffer,
            filtering,
            ..
        } = self;
        let body =
            filtering
                .filter
                .apply(&buffer)
                .map_err(|source| TenantLabelError::Unfilterable {
                    endpoint: filtering.endpoint,
                    source,
                })?;
        head.headers.remove(TRANSFER_ENCODING);
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let body = Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok(Response::from_parts(head, body))
    }
}
