//! What the guardrails decided about one request: the rules (a closed set,
//! named after their config keys, so a refusal tells the operator which
//! limit to raise), the actions, the record an answer carries
//! ([`GuardrailDecisions`]), the typed refusal ([`GuardrailRefusal`]) and the
//! metric counting both.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// One guardrail; its name is the config key of its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailRule {
    /// A metric-name-only selector on a metric with too many series.
    MaxSeriesPerSelector,
    /// A selector whose every matcher matches (nearly) everything.
    UnboundedRegex,
    /// A range window (matrix, subquery, query_range) longer than allowed.
    MaxRange,
    /// A range query with too many points per series.
    MaxPoints,
    /// A subquery resolving too finely.
    MinSubqueryStep,
    /// A query, `match[]` or range parameter the rules cannot read (it
    /// does not parse here): in `enforce` mode, unjudged is refused.
    Unreadable,
}

impl GuardrailRule {
    /// Every rule, for the metric's closed label set.
    pub const ALL: [Self; 6] = [
        Self::MaxSeriesPerSelector,
        Self::UnboundedRegex,
        Self::MaxRange,
        Self::MaxPoints,
        Self::MinSubqueryStep,
        Self::Unreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxSeriesPerSelector => "max_series_per_selector",
            Self::UnboundedRegex => "unbounded_regex",
            Self::MaxRange => "max_range",
            Self::MaxPoints => "max_points",
            Self::MinSubqueryStep => "min_subquery_step",
            Self::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for GuardrailRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was done about a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailAction {
    /// `mode = "warn"`: sent, with a warning.
    Warn,
    /// `mode = "enforce"`: not sent.
    Refuse,
    /// The series pre-check failed: sent unchecked, with a warning (a
    /// guardrail never blocks on its own failure).
    PrecheckFailed,
}

impl GuardrailAction {
    pub const ALL: [Self; 3] = [Self::Warn, Self::Refuse, Self::PrecheckFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Refuse => "refuse",
            Self::PrecheckFailed => "precheck_failed",
        }
    }
}

/// One decision: which rule, what was done, and a detail naming the part
/// of the query and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuardrailDecision {
    pub rule: GuardrailRule,
    pub action: GuardrailAction,
    pub detail: String,
}

impl fmt::Display for GuardrailDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guardrail {}: {}", self.rule, self.detail)
    }
}

/// Response extension on an answer the guardrails let through with
/// warnings: the tools copy it into their result (`guardrails`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardrailDecisions(pub Vec<GuardrailDecision>);

/// The error of a request refused in `enforce` mode: nothing of it was
/// sent. Its text names every rule it broke and how to fix the query.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused by {}", join(.0))]
pub struct GuardrailRefusal(pub Vec<GuardrailDecision>);

fn join(decisions: &[GuardrailDecision]) -> String {
    decisions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Labels of `mcp_prometheus_guardrail_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    rule: &'static str,
    action: &'static str,
}

/// `mcp_prometheus_guardrail_decisions_total{rule, action}`.
#[derive(Debug, Default)]
pub(super) struct DecisionMetrics {
    decisions: Family<DecisionLabels, Counter>,
}

impl DecisionMetrics {
    /// Registers the family with every (rule, action) at zero, so a
    /// dashboard sees the series before the first decision.
    pub(super) fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Self::default();
        for rule in GuardrailRule::ALL {
            for action in GuardrailAction::ALL {
                drop(metrics.decisions.get_or_create(&DecisionLabels {
                    rule: rule.as_str(),
                    action: action.as_str(),
                }));
            }
        }
        registry.register(
            "mcp_prometheus_guardrail_decisions",
            "Guardrail decisions on upstream queries, by rule and action",
            metrics.decisions.clone(),
        );
        Arc::new(metrics)
    }

    pub(super) fn record(&self, decisions: &[GuardrailDecision]) {
        for decision in decisions {
            self.decisions
                .get_or_create(&DecisionLabels {
                    rule: decision.rule.as_str(),
                    action: decision.action.as_str(),
                })
                .inc();
        }
    }
}
