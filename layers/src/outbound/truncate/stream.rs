//! The kept answer handed over as it is scanned, for a caller that decodes
//! while the upstream still sends (a range query's summary): memory stays at
//! what is in flight instead of the whole budget, and decoding overlaps the
//! transfer.
//!
//! Bytes are handed over once no later cut can take them back: up to the
//! end of the last kept item of the result list being read. Until an item
//! is kept (and outside `data`), everything waits for the end, as in the
//! buffered mode; a cut then only ever shortens what is still held.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::Reading;
use super::Truncation;
use super::scanner::{DataState, Scanner};
use crate::BoxError;

/// Fewer settled bytes than this wait for the next upstream frame, so the
/// caller is not handed a frame per series.
pub(super) const MIN_HANDOVER: usize = 16 << 10;

/// Request extension asking the truncate layer to stream the kept answer
/// instead of handing it over whole; the response then carries a
/// [`PendingTruncation`] instead of a [`Truncation`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamKept;

/// Response extension of a streamed answer: its [`Truncation`] record,
/// known once the body has been read to its end.
#[derive(Clone, Debug, Default)]
pub struct PendingTruncation(Arc<OnceLock<Truncation>>);

impl PendingTruncation {
    /// The record, once the body ended (`None` before, or if it broke off).
    pub fn get(&self) -> Option<Truncation> {
        self.0.get().cloned()
    }
}

impl Scanner {
    /// Length of the kept answer so far, handed over or not: every
    /// position the scanner records is counted from the answer's start.
    pub(super) fn len(&self) -> usize {
        self.base + self.out.len()
    }

    /// The kept byte at answer position `pos` (still held).
    pub(super) fn kept_byte(&self, pos: usize) -> u8 {
        pos.checked_sub(self.base)
            .and_then(|i| self.out.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Where the next cut can go back to at the earliest: the end of the
    /// last kept item of the list being read (see `list_cut`); the start of
    /// what is held when that is not known.
    fn settled(&self) -> usize {
        if self.data != DataState::In || self.skip.is_some() {
            return self.base;
        }
        self.innermost_list()
            .and_then(|i| self.stack.get(i))
            .filter(|list| list.kept > 0)
            .map_or(self.base, |list| list.commit.max(self.base))
    }

    /// The held bytes no cut can take back any more, once there are at
    /// least `min` of them.
    pub(super) fn take_settled(&mut self, min: usize) -> Option<Bytes> {
        let upto = self.settled() - self.base;
        if upto < min.max(1) {
            return None;
        }
        let mut rest = Vec::with_capacity(self.out.capacity());
        rest.extend_from_slice(self.out.get(upto..).unwrap_or_default());
        let mut settled = std::mem::replace(&mut self.out, rest);
        settled.truncate(upto);
        self.base += upto;
        Some(Bytes::from(settled))
    }
}

/// The body of a streamed answer: the kept bytes as they settle, then the
/// rest with its closing brackets; the record goes to its
/// [`PendingTruncation`] at the end.
pub(super) struct KeptBody {
    reading: Option<Reading>,
    record: PendingTruncation,
}

impl KeptBody {
    pub(super) fn new(reading: Reading) -> (Self, PendingTruncation) {
        let record = PendingTruncation::default();
        let body = Self {
            reading: Some(reading),
            record: record.clone(),
        };
        (body, record)
    }
}

impl Body for KeptBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let eof = match reading.poll_scan(cx, true) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(error)) => {
                self.reading = None;
                return Poll::Ready(Some(Err(error)));
            }
            Poll::Ready(Ok(super::Scan::Settled(bytes))) => {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            Poll::Ready(Ok(super::Scan::Ended { eof })) => eof,
        };
        let Some(reading) = self.reading.take() else {
            return Poll::Ready(None);
        };
        let (rest, truncation) = reading.finish(eof);
        // Set once: this is the only place, and `reading` is gone after it.
        let _ = self.record.0.set(truncation);
        Poll::Ready((!rest.is_empty()).then(|| Ok(Frame::data(rest))))
    }

    fn is_end_stream(&self) -> bool {
        self.reading.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
