//! W3C trace context: the inbound `traceparent` (or a new trace) becomes a
//! [`TraceContext`] in the request extensions and a tracing span; outbound,
//! every upstream request carries a `traceparent` in that trace with a span
//! id of its own, so one trace runs from the MCP client to Prometheus.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::build::BuildCtx;

/// The `traceparent` header.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// `[layers.trace]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceConfig {
    pub enabled: bool,
    /// OTLP/HTTP endpoint for span export; `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// wins. Empty: spans go to the log only.
    pub otlp_endpoint: String,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            otlp_endpoint: String::new(),
        }
    }
}

/// The trace a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The span that called us (the caller's), or ours when we started it.
    pub span_id: [u8; 8],
    pub sampled: bool,
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

/// Lower-case hex digits of `bytes` onto `out` (a `format!` per byte cost
/// 12k instructions per traced call).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Random trace and span ids. They must not repeat, not resist an
/// attacker (W3C trace context carries no secret), so a per-thread wyrand
/// generator seeded once from the system's random source does: aws-lc's
/// DRBG cost 6.8k instructions per traced call.
fn random<const N: usize>() -> [u8; N] {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(seed());
    }
    let mut out = [0u8; N];
    STATE.with(|state| {
        for chunk in out.chunks_mut(8) {
            let next = state.get().wrapping_add(0xa076_1d64_78bd_642f);
            state.set(next);
            let wide = u128::from(next) * u128::from(next ^ 0xe703_7ed1_a0b4_28db);
            let word = ((wide >> 64) as u64 ^ wide as u64).to_le_bytes();
            for (byte, random) in chunk.iter_mut().zip(word) {
                *byte = random;
            }
        }
    });
    if out.iter().all(|b| *b == 0) {
        out[N - 1] = 1;
    }
    out
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // no system randomness: ids stay distinct per thread and start
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        // the address of a local differs between threads started together
        let here = &bytes as *const _ as u64;
        return nanos ^ u64::from(std::process::id()) ^ here.rotate_left(32);
    }
    u64::from_le_bytes(bytes)
}

impl TraceContext {
    /// Parses a `traceparent` value (version 00); `None` when malformed or
    /// all-zero, as the W3C spec says to ignore such values.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let trace_id = unhex::<16>(trace)?;
        let span_id = unhex::<8>(span)?;
        let flags = unhex::<1>(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    /// A new trace.
    pub fn start() -> Self {
        Self {
            trace_id: random::<16>(),
            span_id: random::<8>(),
            sampled: true,
        }
    }

    /// The trace id as 32 hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// A `traceparent` for a child span of this context.
    pub fn child_header(&self) -> HeaderValue {
        let mut value = String::with_capacity(55);
        value.push_str("00-");
        push_hex(&mut value, &self.trace_id);
        value.push('-');
        push_hex(&mut value, &random::<8>());
        value.push_str(if self.sampled { "-01" } else { "-00" });
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Links a request's span to its trace in whatever exporter is installed
/// (the binary sets the OpenTelemetry parent here).
pub type SpanHook = Arc<dyn Fn(&tracing::Span, &TraceContext) + Send + Sync>;

/// Inbound: reads or starts the trace and opens a span per request.
#[derive(Clone, Default)]
pub struct TraceLayer {
    hook: Option<SpanHook>,
}

impl TraceConfig {
    /// The inbound layer, or `None` when switched off; request spans are
    /// linked to the exporter's trace through `ctx.span_hook`.
    pub fn build(&self, ctx: &BuildCtx) -> Result<Option<TraceLayer>, std::convert::Infallible> {
        Ok(self.enabled.then(|| TraceLayer {
            hook: ctx.span_hook.clone(),
        }))
    }
}

impl TraceLayer {
    /// A layer that calls `hook` on every request span.
    pub fn with_hook(hook: SpanHook) -> Self {
        Self { hook: Some(hook) }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            hook: self.hook.clone(),
        }
    }
}

/// Service of [`TraceLayer`].
#[derive(Clone)]
pub struct Trace<S> {
    inner: S,
    hook: Option<SpanHook>,
}

impl<S, B> Service<Request<B>> for Trace<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let context = req
            .headers()
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse)
            .unwrap_or_else(TraceContext::start);
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            path = %req.uri().path(),
            trace_id = %context.trace_id_hex(),
        );
        if let Some(hook) = &self.hook {
            hook(&span, &context);
        }
        req.extensions_mut().insert(context);
        let future = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        Box::pin(future.instrument(span))
    }
}

/// Outbound: writes `traceparent` from the request's [`TraceContext`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateLayer;

impl<S> Layer<S> for PropagateLayer {
    type Service = Propagate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Propagate { inner }
    }
}

/// Service of [`PropagateLayer`].
#[derive(Clone, Debug)]
pub struct Propagate<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Propagate<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(context) = req.extensions().get::<TraceContext>().copied() {
            req.headers_mut()
                .insert(TRACEPARENT.clone(), context.child_header());
        } else {
            req.headers_mut().remove(&TRACEPARENT);
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_valid_and_ignores_invalid() {
        let context = TraceContext::parse(PARENT).expect("valid");
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(context.sampled);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test]
    async fn inbound_trace_reaches_the_upstream_with_a_new_span() {
        let outbound = PropagateLayer.layer(tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(req.headers().get(&TRACEPARENT).cloned())
        }));
        let inbound = TraceLayer::default().layer(tower::service_fn(move |req: Request<()>| {
            let outbound = outbound.clone();
            async move {
                let context = req.extensions().get::<TraceContext>().copied();
                let mut upstream = Request::new(());
                if let Some(context) = context {
                    upstream.extensions_mut().insert(context);
                }
                outbound.oneshot(upstream).await
            }
        }));
        let mut req = Request::new(());
        req.headers_mut()
            .insert(TRACEPARENT.clone(), HeaderValue::from_static(PARENT));
        let sent = inbound
            .oneshot(req)
            .await
            .expect("infallible")
            .expect("traceparent");
        let sent = sent.to_str().expect("ascii");
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent}"
        );
        assert!(!sent.contains("00f067aa0ba902b7"), "a new span id: {sent}");
        assert!(TraceContext::parse(sent).is_some());
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: std::collections::HashSet<[u8; 16]> =
            (0..10_000).map(|_| random::<16>()).collect();
        assert_eq!(ids.len(), 10_000);
        let spans: std::collections::HashSet<[u8; 8]> =
            (0..10_000).map(|_| random::<8>()).collect();
        assert_eq!(spans.len(), 10_000);
    }
}
