//! A caller's own Prometheus API request, forwarded (the passthrough):
//! the same tenant header, credentials, metrics and timeout as a tool's
//! call, but no truncation; the answer streams back as the upstream sends
//! it.
//!
//! The upstream request is built here from scratch, from what the
//! passthrough checked (method, API path, query, form body): no header of
//! the caller's travels unless named below, so a caller's `Authorization`,
//! `Cookie` or `X-Scope-OrgID` never reaches the upstream (the tenant layer
//! writes the tenant, upstream auth the credential).

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response};
use mcp_prometheus_layers::body::ResponseBody;
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::outbound::guardrails::GuardrailDecisions;
use tower::ServiceExt;

use super::{Upstream, UpstreamError};

/// One forwarded API request.
#[derive(Clone, Debug)]
pub struct Forward {
    /// GET or POST (the passthrough refuses every other method).
    pub method: Method,
    /// Low-cardinality label for metrics, e.g. `/api/v1/label/:name/values`.
    pub endpoint: &'static str,
    /// The API path under the upstream's base URL (`/api/v1/query`),
    /// already checked and safely encoded.
    pub path: String,
    /// The caller's raw query string, bounded by the passthrough.
    pub query: Option<String>,
    /// The caller's `Accept`, if any (else `application/json`).
    pub accept: Option<HeaderValue>,
    /// A POST's form body (`application/x-www-form-urlencoded`), bounded.
    pub form: Option<Bytes>,
}

impl Upstream {
    /// Sends `forward` through the passthrough stack with `scope`'s
    /// tenants and trace, and returns the upstream's answer unread.
    pub async fn forward(
        &self,
        forward: Forward,
        scope: &CallScope,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let endpoint = forward.endpoint;
        let mut uri = format!("{}{}", self.base, forward.path);
        if let Some(query) = forward.query.as_deref().filter(|q| !q.is_empty()) {
            uri.push('?');
            uri.push_str(query);
        }
        let mut builder = Request::builder().method(forward.method).uri(&uri).header(
            ACCEPT,
            forward
                .accept
                .unwrap_or_else(|| HeaderValue::from_static("application/json")),
        );
        let body = match forward.form {
            Some(form) => {
                builder = builder.header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                form
            }
            None => Bytes::new(),
        };
        let mut request = self.finish(builder, body, endpoint)?;
        scope.apply(&mut request);
        let mut response = self
            .passthrough
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| UpstreamError::from_transport(&self.name, endpoint, &e))?;
        if let Some(warning) = guardrail_warning(&response) {
            response.headers_mut().insert(GUARDRAIL_HEADER, warning);
        }
        Ok(response)
    }
}

/// Where a passthrough answer tells of the guardrails' warnings: the body
/// streams through untouched, so its `warnings` cannot carry them.
pub const GUARDRAIL_HEADER: HeaderName = HeaderName::from_static("mcp-prometheus-guardrail");

/// The guardrails' warnings on `response` as one header value (ASCII:
/// the details' `…`, `≤` and `≥` spelled out).
fn guardrail_warning<B>(response: &Response<B>) -> Option<HeaderValue> {
    let decisions = response.extensions().get::<GuardrailDecisions>()?;
    let text = decisions
        .0
        .iter()
        .map(|d| format!("{} ({}): {}", d.rule, d.action.as_str(), d.detail))
        .collect::<Vec<_>>()
        .join("; ")
        .replace('…', "...")
        .replace('≤', "<=")
        .replace('≥', ">=");
    let ascii: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&ascii).ok()
}
