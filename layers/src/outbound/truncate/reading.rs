//! A 2xx JSON answer being scanned, frame by frame: to its end for the
//! buffered mode, or until enough kept bytes settle for the streamed one.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::Body;
use http_body_util::{BodyExt, Full};

use super::scanner::Scanner;
use super::{BrokenBody, Truncation, YIELD_EVERY_BYTES, stream};
use crate::BoxError;
use crate::body::ResponseBody;

/// A 2xx JSON answer being scanned.
pub(super) struct Reading {
    pub(super) body: ResponseBody,
    pub(super) scanner: Scanner,
    pub(super) scan_left: u64,
}

/// How far a poll of [`Reading::poll_scan`] got.
pub(super) enum Scan {
    /// Kept bytes no cut can take back (streaming only).
    Settled(Bytes),
    /// The body ended (`eof`) or the scan limit was reached.
    Ended { eof: bool },
}

impl Reading {
    /// Scans frames until the body ends or the scan limit is reached, or
    /// (when `stream`) until enough kept bytes have settled; a body error
    /// fails the call.
    pub(super) fn poll_scan(
        &mut self,
        cx: &mut Context<'_>,
        stream: bool,
    ) -> Poll<Result<Scan, BoxError>> {
        let mut scanned = 0;
        loop {
            if !self.scanner.wants_more() {
                return Poll::Ready(Ok(Scan::Ended { eof: false }));
            }
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(Scan::Ended { eof: true })),
                Poll::Ready(Some(frame)) => frame.map_err(BrokenBody)?,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let take = data
                .len()
                .min(usize::try_from(self.scan_left).unwrap_or(usize::MAX));
            self.scanner.feed(&data[..take]);
            self.scan_left -= take as u64;
            if take < data.len() {
                return Poll::Ready(Ok(Scan::Ended { eof: false }));
            }
            if stream && let Some(settled) = self.scanner.take_settled(stream::MIN_HANDOVER) {
                return Poll::Ready(Ok(Scan::Settled(settled)));
            }
            scanned += take;
            if scanned >= YIELD_EVERY_BYTES {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// The rest of the kept answer, closed, and the record of what was cut.
    pub(super) fn finish(self, eof: bool) -> (Bytes, Truncation) {
        let (body, truncation) = self.scanner.finish(eof);
        if truncation.truncated {
            tracing::debug!(
                kept_items = truncation.kept_items,
                dropped_items_at_least = truncation.dropped_items_at_least,
                bytes_seen = truncation.bytes_seen,
                scan_complete = truncation.scan_complete,
                "upstream answer truncated"
            );
        }
        (body, truncation)
    }

    pub(super) fn into_response(
        self,
        mut parts: http::response::Parts,
        eof: bool,
    ) -> Response<ResponseBody> {
        let (body, truncation) = self.finish(eof);
        parts.extensions.insert(truncation);
        let body = Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        Response::from_parts(parts, body)
    }
}
