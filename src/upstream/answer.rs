//! What an upstream call hands back: the data, Prometheus's warnings and
//! infos, and the truncate layer's record of what it cut.

use bytes::Bytes;
use http::StatusCode;
use mcp_prometheus_layers::outbound::guardrails::GuardrailDecision;
use mcp_prometheus_layers::outbound::truncate::Truncation;

/// A successful Prometheus API answer.
pub struct ApiSuccess<T> {
    pub data: T,
    pub notes: Notes,
}

/// What came with an answer besides its data.
#[derive(Clone, Debug, Default)]
pub struct Notes {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// What the truncate layer cut, when it ran.
    pub truncation: Option<Truncation>,
    /// What the guardrails warned about (the query was sent).
    pub guardrails: Vec<GuardrailDecision>,
}

impl Notes {
    /// How many items the upstream's answer held, given the `returned`
    /// ones: the truncate layer's count (kept and dropped) when it cut the
    /// answer, else what came back.
    pub fn items_total(&self, returned: usize) -> usize {
        self.truncation
            .as_ref()
            .map_or(returned, |t| t.kept_items + t.dropped_items_at_least)
    }

    /// Folds another answer's notes into these (fan-out merges).
    pub fn merge(&mut self, other: Notes) {
        self.warnings.extend(other.warnings);
        self.infos.extend(other.infos);
        for decision in other.guardrails {
            if !self.guardrails.contains(&decision) {
                self.guardrails.push(decision);
            }
        }
        self.truncation = match (self.truncation.take(), other.truncation) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => a.or(b),
        };
    }
}

/// A raw answer: status, body, the truncate layer's record and the
/// guardrails' warnings.
pub struct RawAnswer {
    pub status: StatusCode,
    pub body: Bytes,
    pub truncation: Option<Truncation>,
    pub guardrails: Vec<GuardrailDecision>,
}
