//! Prometheus's answer envelope (`status`, `data`, `errorType`, `error`,
//! `warnings`, `infos`) read into a typed success or a typed error.

use bytes::Bytes;
use http::StatusCode;
use mcp_prometheus_layers::outbound::guardrails::{GuardrailDecision, GuardrailDecisions};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiSuccess, Notes, RawAnswer, Upstream, UpstreamError};

/// How much of a parser's message an invalid-JSON error keeps.
const MAX_DETAIL_CHARS: usize = 300;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    status: String,
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

/// What the guardrails warned about, from an answer's extensions.
pub(super) fn guardrails_of<B>(response: &http::Response<B>) -> Vec<GuardrailDecision> {
    response
        .extensions()
        .get::<GuardrailDecisions>()
        .map(|d| d.0.clone())
        .unwrap_or_default()
}

impl Upstream {
    /// Decodes a whole answer of `endpoint`: its `data` on success, else
    /// Prometheus's own error or the status with the body's beginning.
    pub(super) fn decode<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        answer: RawAnswer,
    ) -> Result<ApiSuccess<T>, UpstreamError> {
        let RawAnswer {
            status,
            body,
            truncation,
            guardrails,
        } = answer;
        let envelope: Envelope<T> = match serde_json::from_slice(&body) {
            Ok(envelope) => envelope,
            Err(error) if status.is_success() => {
                return Err(self.invalid_json(endpoint, error.to_string()));
            }
            Err(_) => return Err(self.status_error(endpoint, status, &body)),
        };
        if envelope.status == "success" && status.is_success() {
            return envelope
                .data
                .map(|data| ApiSuccess {
                    data,
                    notes: Notes {
                        warnings: envelope.warnings,
                        infos: envelope.infos,
                        truncation,
                        guardrails,
                    },
                })
                .ok_or_else(|| self.invalid_json(endpoint, "no data in a success answer".into()));
        }
        match (envelope.error_type, envelope.error) {
            (Some(error_type), Some(message)) => Err(UpstreamError::Prometheus {
                error_type,
                message,
                warnings: envelope.warnings,
            }),
            _ => Err(self.status_error(endpoint, status, &body)),
        }
    }

    /// A success answer that is not the JSON it should be. The parser's
    /// words quote the upstream's bytes (a bad value of megabytes), so
    /// they are cut before they reach the caller and the logs.
    pub(super) fn invalid_json(&self, endpoint: &'static str, detail: String) -> UpstreamError {
        let detail = match detail.char_indices().nth(MAX_DETAIL_CHARS) {
            Some((end, _)) => format!("{}…", detail.get(..end).unwrap_or_default()),
            None => detail,
        };
        UpstreamError::InvalidJson {
            upstream: self.name.to_string(),
            endpoint,
            detail,
        }
    }

    fn status_error(
        &self,
        endpoint: &'static str,
        status: StatusCode,
        body: &Bytes,
    ) -> UpstreamError {
        let text = String::from_utf8_lossy(body);
        let snippet: String = text.trim().chars().take(300).collect();
        UpstreamError::Status {
            upstream: self.name.to_string(),
            endpoint,
            status: status.as_u16(),
            snippet: if snippet.is_empty() {
                status.canonical_reason().unwrap_or("no body").to_owned()
            } else {
                snippet
            },
        }
    }
}
