//! Why a passthrough request got no upstream answer, as the caller reads
//! it: Prometheus's error shape (`status`, `errorType`, `error`), so a
//! Prometheus client library reports our refusals as it reports the
//! upstream's.

use axum::body::Body;
use axum::response::Response;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use mcp_prometheus_layers::call_scope::NarrowError;

use super::MAX_QUERY_BYTES;
use super::paths::{PathError, served_list};
use crate::upstream::UpstreamError;

/// A refused or failed passthrough request.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the Host this request names is not one of server.allowed_hosts (DNS-rebinding protection)"
    )]
    Host,
    #[error("{0}; only these read APIs are served: {list}", list = served_list())]
    NotServed(PathError),
    #[error("{method} is not allowed on {path}; it answers {allow}")]
    Method {
        method: Method,
        path: String,
        allow: &'static str,
    },
    #[error(
        "the query string is {0} bytes, more than the {MAX_QUERY_BYTES} allowed; send the parameters as a POST form (Content-Type: application/x-www-form-urlencoded) instead"
    )]
    QueryTooLong(usize),
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the request body could not be read: {0}")]
    BrokenBody(String),
    #[error(
        "a POST body must be a form (Content-Type: application/x-www-form-urlencoded), not {0}"
    )]
    NotAForm(String),
    #[error(
        "X-Scope-OrgID: give it at most once, as one header of visible ASCII (a|b for several tenants)"
    )]
    OrgIdHeader,
    #[error("the API that reads what tool {0:?} reads is not allowed for you (tool policy)")]
    Denied(&'static str),
    #[error("{}", header_wording(&.0.to_string()))]
    Tenant(NarrowError),
    #[error("{}", header_wording(&.0.to_string()))]
    Upstream(#[from] UpstreamError),
}

/// The tenant checks speak of a tool's `org_id`; here the caller sent
/// `X-Scope-OrgID`.
fn header_wording(message: &str) -> String {
    match message.strip_prefix("org_id: ") {
        Some(rest) => format!("X-Scope-OrgID: {rest}"),
        None => message.replace(": org_id: ", ": X-Scope-OrgID: "),
    }
}

impl Refusal {
    /// The HTTP status and Prometheus `errorType`.
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Host | Self::Denied(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotServed(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Method { .. } => (StatusCode::METHOD_NOT_ALLOWED, "bad_data"),
            Self::QueryTooLong(_) => (StatusCode::URI_TOO_LONG, "bad_data"),
            Self::BodyTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "bad_data"),
            Self::BrokenBody(_) | Self::OrgIdHeader => (StatusCode::BAD_REQUEST, "bad_data"),
            Self::NotAForm(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_data"),
            Self::Tenant(NarrowError::Invalid(_)) => (StatusCode::BAD_REQUEST, "bad_data"),
            Self::Tenant(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Upstream(error) => match error {
                UpstreamError::Refused { .. } => (StatusCode::FORBIDDEN, "forbidden"),
                // Prometheus answers its own cost limit (11000 points) so.
                UpstreamError::Guardrail { .. } => (StatusCode::BAD_REQUEST, "bad_data"),
                UpstreamError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
                UpstreamError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_data"),
                UpstreamError::Unreachable { .. } | UpstreamError::BrokenAnswer { .. } => {
                    (StatusCode::BAD_GATEWAY, "unavailable")
                }
                _ => (StatusCode::BAD_GATEWAY, "internal"),
            },
        }
    }

    /// The audit outcome: `denied` for the policy, else the error type.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            other => other.status().1,
        }
    }

    /// The error answer (with `Allow` on a 405).
    pub fn response(&self) -> Response {
        let (status, error_type) = self.status();
        let body = serde_json::json!({
            "status": "error",
            "errorType": error_type,
            "error": self.to_string(),
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Self::Method { allow, .. } = self {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_messages_name_the_header() {
        let refusal = Refusal::Upstream(UpstreamError::Refused {
            upstream: "mimir".into(),
            detail: "org_id: this upstream does not let callers choose".into(),
        });
        let text = refusal.to_string();
        assert!(
            text.contains("not sent: X-Scope-OrgID: this upstream"),
            "{text}"
        );
        assert_eq!(refusal.status().0, StatusCode::FORBIDDEN);
        let refusal = Refusal::Tenant(NarrowError::NoTenants);
        assert!(refusal.to_string().starts_with("X-Scope-OrgID: "));
    }

    #[test]
    fn a_guardrail_refusal_is_prometheus_bad_data() {
        use mcp_prometheus_layers::outbound::guardrails::{
            GuardrailAction, GuardrailDecision, GuardrailRefusal, GuardrailRule,
        };
        let refusal = Refusal::Upstream(UpstreamError::Guardrail {
            upstream: "mimir".into(),
            refusal: GuardrailRefusal(vec![GuardrailDecision {
                rule: GuardrailRule::MaxPoints,
                action: GuardrailAction::Refuse,
                detail: "raise the step to ≥8s".into(),
            }]),
        });
        assert_eq!(refusal.status(), (StatusCode::BAD_REQUEST, "bad_data"));
        let text = refusal.to_string();
        assert!(
            text.contains("guardrail max_points: raise the step"),
            "{text}"
        );
    }

    #[test]
    fn a_405_names_what_is_allowed() {
        let response = Refusal::Method {
            method: Method::DELETE,
            path: "/api/v1/series".into(),
            allow: "GET, POST",
        }
        .response();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, POST");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }
}
