//! The JSON error responses inbound layers answer with (RFC 6749 shape:
//! `error` and `error_description`), so every refusal reads the same.

use http::header::CONTENT_TYPE;
use http::{HeaderValue, Response, StatusCode};

/// A JSON error response with `status`.
pub fn json_error<B: From<String>>(
    status: StatusCode,
    error: &str,
    description: &str,
) -> Response<B> {
    let body = serde_json::json!({"error": error, "error_description": description});
    let mut response = Response::new(B::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_type() {
        let response: Response<String> =
            json_error(StatusCode::FORBIDDEN, "forbidden", "no \"tenants\"");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_str(response.body()).expect("json");
        assert_eq!(body["error_description"], "no \"tenants\"");
    }
}
