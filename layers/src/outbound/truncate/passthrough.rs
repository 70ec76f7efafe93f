//! Answers the layer does not parse: error statuses, other content types
//! and content codings stream through, cut at the hard ceiling.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::BoxError;
use crate::body::ResponseBody;

/// A 2xx answer with a JSON (or no) content type and no content coding.
pub(super) fn is_json_answer<B>(response: &Response<B>) -> bool {
    let headers = response.headers();
    let json = headers.get(CONTENT_TYPE).is_none_or(|value| {
        value.to_str().is_ok_and(|value| {
            let mime = value.split(';').next().unwrap_or("").trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.to_ascii_lowercase().ends_with("+json")
        })
    });
    let identity = headers
        .get(CONTENT_ENCODING)
        .is_none_or(|value| value.as_bytes().eq_ignore_ascii_case(b"identity"));
    response.status().is_success() && json && identity
}

pub(super) fn boxed<B>(body: B) -> ResponseBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// Passes an answer we do not parse, its body cut at `ceiling` bytes: an
/// error page only needs its beginning.
pub(super) fn capped<B>(response: Response<B>, ceiling: usize) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = response.into_parts();
    let fits = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length <= ceiling as u64);
    if !fits {
        parts.headers.remove(CONTENT_LENGTH);
    }
    let body = CappedBody {
        inner: Some(boxed(body)),
        left: ceiling,
    };
    Response::from_parts(parts, body.boxed_unsync())
}

/// A body that ends after `left` bytes, dropping the rest unread.
struct CappedBody {
    inner: Option<ResponseBody>,
    left: usize,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let mut data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => return Poll::Ready(Some(Ok(frame))),
        };
        if data.len() >= self.left {
            data.truncate(self.left);
            self.inner = None;
        }
        self.left -= data.len();
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = SizeHint::new();
        if let Some(inner) = &self.inner {
            let inner = inner.size_hint();
            hint.set_lower(inner.lower().min(self.left as u64));
            hint.set_upper(inner.upper().unwrap_or(u64::MAX).min(self.left as u64));
        } else {
            hint.set_exact(0);
        }
        hint
    }
}
