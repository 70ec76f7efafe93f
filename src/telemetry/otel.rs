//! OpenTelemetry export: spans go to an OTLP/HTTP collector when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `[layers.trace] otlp_endpoint`) is set,
//! named by `OTEL_SERVICE_NAME` (default `mcp-prometheus`), parented on the
//! caller's `traceparent`.

use std::sync::Arc;

use mcp_prometheus_layers::trace::{SpanHook, TraceContext};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The OTLP endpoint from the environment or the config, if any.
pub fn endpoint(configured: &str) -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| (!configured.trim().is_empty()).then(|| configured.to_owned()))
}

/// The span exporter, when an endpoint is configured. Made once in `main`
/// and handed to whoever needs it (the log subscriber, the trace layer's
/// builder, shutdown): there is no global provider to forget to set.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// `None` when no endpoint is configured or the exporter cannot be
    /// built (said on stderr: logging is not up yet).
    pub fn from_config(configured: &str) -> Option<Self> {
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
        let service =
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "mcp-prometheus".into());
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(service)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Some(Self { provider })
    }

    /// The tracing layer that turns spans into exported ones.
    pub fn subscriber_layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("mcp-prometheus"))
    }

    /// Links each inbound request span to the caller's trace.
    pub fn span_hook(&self) -> SpanHook {
        Arc::new(|span: &tracing::Span, context: &TraceContext| {
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
        })
    }

    /// Flushes buffered spans; call before exit.
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("OTLP shutdown: {error}");
        }
    }
}
