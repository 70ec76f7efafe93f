//! Outbound truncation: Prometheus answers can be hundreds of megabytes of
//! JSON (a query over 200k series), far more than a tool result can carry
//! or this process should hold. This layer reads the upstream body as a
//! stream, keeps what the budget allows and hands back a *valid JSON prefix*
//! of the answer: trailing items dropped, open containers closed, and a
//! [`Truncation`] record of what was dropped. Memory stays O(budget) however
//! large the body is.
//!
//! # Items
//!
//! Items are the elements of the *result lists*: the `data` value when it is
//! an array (labels, label values, series, exemplars, targets metadata), and
//! every array that is the value of a member of the `data` object
//! (`data.result`, `data.activeTargets`, `data.droppedTargets`,
//! `data.alerts`, `data.groups`, and for metadata `data.<metric>`, whose
//! items are metadata entries). Counting runs across all lists of an answer.
//! The rule needs no knowledge of endpoints, and it never nests: an item's
//! own arrays (a series' `values`) are never lists.
//!
//! # Cuts
//!
//! When the next item would be one too many, or the budget runs out inside
//! an item, `data` is cut right after the last kept item and everything
//! after it inside `data` is only counted. If no item was kept yet (one item,
//! or a scalar `data` like the config's `yaml`, is larger than the budget),
//! the cut goes inside it: after the last complete element of a nested
//! array, else inside a string at a character boundary. Members of the
//! envelope after `data` (`warnings`, `infos`) are kept if they fit in
//! [`TAIL_BYTES`] more; a member that does not fit is dropped whole.

mod bulk;
mod cut;
mod passthrough;
mod reading;
mod record;
mod scanner;
mod stream;
#[cfg(test)]
mod tests;

pub use record::{Truncation, TruncationReason};
pub use stream::{PendingTruncation, StreamKept};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

pub use cut::TAIL_BYTES;

use crate::BoxError;
use crate::body::ResponseBody;
use crate::build::BuildCtx;
use passthrough::{boxed, capped, is_json_answer};
use reading::{Reading, Scan};
use scanner::Scanner;
use stream::KeptBody;

/// The smallest budget accepted: it must hold an envelope and a few items.
pub const MIN_MAX_BYTES: usize = 1024;

/// Bytes scanned in one poll before yielding to the runtime, so a fast
/// upstream cannot monopolise a worker thread for a 300 MB answer.
const YIELD_EVERY_BYTES: usize = 4 << 20;

/// `[layers.truncate]` in TOML: the answer budget of every upstream call.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TruncateConfig {
    /// `false` makes the layer a pass-through.
    pub enabled: bool,
    /// Size of the kept JSON, closing brackets included.
    pub max_bytes: usize,
    /// Items kept, across all result lists of one answer.
    pub max_series: usize,
    /// Whether a tool may ask for the hard ceiling ([`TruncateBudget::unlimited`]).
    pub allow_unlimited: bool,
    /// The most ever kept, even when "unlimited".
    pub hard_ceiling_bytes: usize,
    /// After the budget is spent, how many bytes of the body (in total) are
    /// still read, only to count what was dropped and reach the envelope's
    /// tail; the body is then dropped.
    pub max_scan_bytes: u64,
}

impl Default for TruncateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: 50_000,
            max_series: 500,
            allow_unlimited: false,
            hard_ceiling_bytes: 5_000_000,
            max_scan_bytes: 256 << 20,
        }
    }
}

/// A truncation config that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TruncateConfigError {
    #[error("`max_bytes` must be at least {MIN_MAX_BYTES}, got {0}")]
    MaxBytesTooSmall(usize),
    #[error("`max_series` must be at least 1")]
    NoSeries,
    #[error("`hard_ceiling_bytes` ({ceiling}) must be at least `max_bytes` ({max_bytes})")]
    CeilingBelowBudget { ceiling: usize, max_bytes: usize },
    #[error("`max_scan_bytes` ({scan}) must be at least `hard_ceiling_bytes` ({ceiling})")]
    ScanBelowCeiling { scan: u64, ceiling: usize },
}

impl TruncateConfig {
    /// The layer, or `None` when switched off; checks the limits, so a
    /// budget that could not hold an answer is reported at start-up.
    pub fn build(&self, _ctx: &BuildCtx) -> Result<Option<TruncateLayer>, TruncateConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        if self.max_bytes < MIN_MAX_BYTES {
            return Err(TruncateConfigError::MaxBytesTooSmall(self.max_bytes));
        }
        if self.max_series == 0 {
            return Err(TruncateConfigError::NoSeries);
        }
        if self.hard_ceiling_bytes < self.max_bytes {
            return Err(TruncateConfigError::CeilingBelowBudget {
                ceiling: self.hard_ceiling_bytes,
                max_bytes: self.max_bytes,
            });
        }
        if self.max_scan_bytes < self.hard_ceiling_bytes as u64 {
            return Err(TruncateConfigError::ScanBelowCeiling {
                scan: self.max_scan_bytes,
                ceiling: self.hard_ceiling_bytes,
            });
        }
        Ok(Some(TruncateLayer {
            config: self.clone(),
        }))
    }
}

/// Request extension changing the budget of one request, e.g. a tool's
/// `limit` argument. Sizes are clamped to the hard ceiling; `unlimited`
/// (the hard ceiling, no item limit) is honoured only if the operator set
/// `allow_unlimited`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TruncateBudget {
    /// Replaces `max_bytes` (at least [`MIN_MAX_BYTES`], at most the ceiling).
    pub max_bytes: Option<usize>,
    /// Replaces `max_series`.
    pub max_items: Option<usize>,
    /// Asks for the hard ceiling and no item limit.
    pub unlimited: bool,
}

/// The upstream's answer broke off while the layer read it (the connection
/// closed or reset mid-body, or the body timed out: the source says which).
#[derive(Debug, thiserror::Error)]
#[error("the answer broke off")]
pub struct BrokenBody(#[source] pub BoxError);

/// Applies [`Truncate`] to a service; built by [`TruncateConfig::build`].
#[derive(Clone, Debug)]
pub struct TruncateLayer {
    config: TruncateConfig,
}

impl TruncateLayer {
    /// The layer when `[layers.truncate]` is off: no budget of its own, but
    /// a tool's per-call budget (its `limit`) and the hard ceiling still
    /// hold, so the layer stays the one place an upstream answer is cut.
    pub fn calls_only(config: &TruncateConfig) -> Self {
        Self {
            config: TruncateConfig {
                enabled: true,
                max_bytes: config.hard_ceiling_bytes,
                max_series: usize::MAX,
                ..config.clone()
            },
        }
    }
}

impl<S> Layer<S> for TruncateLayer {
    type Service = Truncate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Truncate {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Reads 2xx JSON answers within the budget and returns them as one valid,
/// possibly truncated, JSON body with a [`Truncation`] extension; other
/// answers stream through, cut at the hard ceiling.
#[derive(Clone, Debug)]
pub struct Truncate<S> {
    inner: S,
    config: TruncateConfig,
}

/// The limits of one request, after its [`TruncateBudget`].
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_bytes: usize,
    max_items: usize,
    ceiling: usize,
    max_scan: u64,
}

impl TruncateConfig {
    fn limits(&self, budget: Option<&TruncateBudget>) -> Limits {
        let budget = budget.copied().unwrap_or_default();
        let unlimited = budget.unlimited && self.allow_unlimited;
        let (max_bytes, max_items) = if unlimited {
            (self.hard_ceiling_bytes, usize::MAX)
        } else {
            (
                budget.max_bytes.unwrap_or(self.max_bytes),
                budget.max_items.unwrap_or(self.max_series),
            )
        };
        Limits {
            max_bytes: max_bytes.max(MIN_MAX_BYTES).min(self.hard_ceiling_bytes),
            max_items,
            ceiling: self.hard_ceiling_bytes,
            max_scan: self.max_scan_bytes,
        }
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Truncate<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = TruncateFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let limits = self.config.limits(req.extensions().get());
        let stream = req.extensions().get::<StreamKept>().is_some();
        TruncateFuture {
            inner: self.inner.call(req),
            limits,
            stream,
            reading: None,
        }
    }
}

pin_project! {
    /// Response future of [`Truncate`]: completes once the body is scanned.
    pub struct TruncateFuture<F> {
        #[pin]
        inner: F,
        limits: Limits,
        // The caller asked for `StreamKept`.
        stream: bool,
        reading: Option<(http::response::Parts, Reading)>,
    }
}

impl<F, B, E> Future for TruncateFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.reading.is_none() {
            let response = match this.inner.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result.map_err(Into::into)?,
            };
            let limits = *this.limits;
            if !is_json_answer(&response) {
                return Poll::Ready(Ok(capped(response, limits.ceiling)));
            }
            let (mut parts, body) = response.into_parts();
            parts.headers.remove(CONTENT_LENGTH);
            let reading = Reading {
                body: boxed(body),
                scanner: Scanner::new(limits.max_bytes, limits.max_items),
                scan_left: limits.max_scan,
            };
            if *this.stream {
                let (body, record) = KeptBody::new(reading);
                parts.extensions.insert(record);
                return Poll::Ready(Ok(Response::from_parts(parts, body.boxed_unsync())));
            }
            *this.reading = Some((parts, reading));
        }
        // `reading` is `None` here only if polled after completion.
        let eof = match this
            .reading
            .as_mut()
            .map(|(_, reading)| reading.poll_scan(cx, false))
        {
            None | Some(Poll::Pending) => return Poll::Pending,
            Some(Poll::Ready(Ok(Scan::Ended { eof }))) => eof,
            // Only a streamed read hands bytes over; were one ever handed
            // here, the answer would be missing them: fail the call.
            Some(Poll::Ready(Ok(Scan::Settled(_)))) => {
                return Poll::Ready(Err(
                    "truncate: kept bytes handed over while buffering".into()
                ));
            }
            Some(Poll::Ready(Err(error))) => return Poll::Ready(Err(error)),
        };
        match this.reading.take() {
            Some((parts, reading)) => Poll::Ready(Ok(reading.into_response(parts, eof))),
            None => Poll::Pending,
        }
    }
}
