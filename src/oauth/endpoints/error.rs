//! OAuth error responses (RFC 6749 §5.2): JSON `error` and
//! `error_description`, the right status, never a stack of internals.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::oauth::clients::ClientError;

/// An OAuth protocol error.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    /// A 400 with `error`.
    pub fn bad(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }

    /// 401 `invalid_client`.
    pub fn client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
        }
    }

    /// 500 `server_error`, logged; the client learns nothing internal.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "OAuth server error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the authorization server failed; try again".into(),
        }
    }
}

impl OAuthError {
    /// 503 `temporarily_unavailable`: the store (Valkey) cannot be reached.
    /// The cause goes to the log beside a correlation id; the client learns
    /// to retry, never that its valid credentials are wrong.
    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        let id = mcp_prometheus_layers::correlation::correlation_id();
        tracing::warn!(correlation_id = %id, %error, "OAuth store unavailable");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: format!(
                "the authorization server cannot reach its store; retry in a few seconds (correlation id {id})"
            ),
        }
    }

    /// A failed client lookup: unknown or unusable clients are the
    /// client's problem (`invalid`), a store failure is ours.
    pub fn from_client_lookup(error: ClientError, invalid: fn(String) -> Self) -> Self {
        match error {
            ClientError::Store(error) => Self::unavailable(error),
            other => invalid(other.to_string()),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"mcp-prometheus\""),
            );
        }
        response
    }
}
