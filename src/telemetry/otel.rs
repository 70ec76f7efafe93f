//! OpenTelemetry export: spans go to an OTLP/HTTP collector when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `[layers.trace] otlp_endpoint`) is set,
//! named by `OTEL_SERVICE_NAME` (default `mcp-prometheus`), parented on the
//! caller's `traceparent`.

use std::sync::{Arc, OnceLock};

use mcp_prometheus_layers::trace::{TraceContext, TraceLayer};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The OTLP endpoint from the environment or the config, if any.
pub fn endpoint(configured: &str) -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| (!configured.trim().is_empty()).then(|| configured.to_owned()))
}

/// Builds the exporter and returns the tracing layer that feeds it; `None`
/// when no endpoint is configured or the exporter cannot be built.
pub fn layer<S>(
    configured: &str,
) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let endpoint = endpoint(configured)?;
    let traces = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces)
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("OTLP export disabled: {error}");
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "mcp-prometheus".into());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("mcp-prometheus");
    let _ = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// The inbound trace layer, linking each request span to the caller's
/// trace when spans are exported.
pub fn trace_layer() -> TraceLayer {
    if PROVIDER.get().is_none() {
        return TraceLayer::default();
    }
    TraceLayer::with_hook(Arc::new(|span: &tracing::Span, context: &TraceContext| {
        let parent = SpanContext::new(
            TraceId::from_bytes(context.trace_id),
            SpanId::from_bytes(context.span_id),
            if context.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            TraceState::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(parent);
        let _ = span.set_parent(cx);
    }))
}

/// Flushes buffered spans; call before exit.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("OTLP shutdown: {error}");
    }
}
