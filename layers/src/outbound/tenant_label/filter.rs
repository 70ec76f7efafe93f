//! The answer half of label tenancy: `/api/v1/alerts` and `/api/v1/rules`
//! take no selector, so their answers are filtered instead.
//!
//! Semantics (an item's tenant is the value of the tenant label in its
//! `labels`; it is the caller's when that value is one of its tenants):
//! - alerts: an alert is kept when it is the caller's.
//! - rules: an alerting rule's `alerts` are filtered like alerts. A rule is
//!   kept when its own `labels` are the caller's (Prometheus sets rule
//!   labels on every alert and series it makes, so such a rule belongs to
//!   that tenant), or when at least one of its alerts is kept: a rule
//!   shared by tenants (no tenant label of its own, or a templated one) is
//!   shown with the caller's alerts only, its `state` recomputed from them
//!   and its `lastError` withheld (it may quote another tenant's series).
//!   A recording rule is kept only by its labels. Groups left without
//!   rules are dropped.
//! - an answer that is not `status: success` passes as it is (it holds an
//!   error message, no data); a success whose shape is not the one above
//!   is refused rather than passed unfiltered.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::identity::TenantSet;

/// Which answer is filtered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Alerts,
    Rules,
}

/// Why an answer could not be filtered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("the answer is not JSON ({0})")]
    NotJson(String),
    #[error("the answer does not have the shape of Prometheus's {0} answer")]
    Shape(&'static str),
}

/// Filters one answer to the caller's tenants.
#[derive(Clone, Debug)]
pub struct AnswerFilter {
    pub answer: Answer,
    pub label: std::sync::Arc<str>,
    pub tenants: TenantSet,
}

impl AnswerFilter {
    /// The filtered body.
    pub fn apply(&self, body: &[u8]) -> Result<Bytes, FilterError> {
        let mut envelope: Value =
            serde_json::from_slice(body).map_err(|e| FilterError::NotJson(e.to_string()))?;
        if envelope.get("status").and_then(Value::as_str) != Some("success") {
            return Ok(Bytes::copy_from_slice(body));
        }
        let (key, what) = match self.answer {
            Answer::Alerts => ("alerts", "alerts"),
            Answer::Rules => ("groups", "rules"),
        };
        let list = envelope
            .get_mut("data")
            .and_then(|data| data.get_mut(key))
            .and_then(Value::as_array_mut)
            .ok_or(FilterError::Shape(what))?;
        match self.answer {
            Answer::Alerts => self.alerts(list).ok_or(FilterError::Shape(what))?,
            Answer::Rules => self.groups(list).ok_or(FilterError::Shape(what))?,
        }
        serde_json::to_vec(&envelope)
            .map(Bytes::from)
            .map_err(|e| FilterError::NotJson(e.to_string()))
    }

    /// Whether an object's `labels` carry one of the caller's tenants.
    fn owned(&self, item: &Map<String, Value>) -> bool {
        item.get("labels")
            .and_then(|labels| labels.get(&*self.label))
            .and_then(Value::as_str)
            .is_some_and(|tenant| self.tenants.contains(tenant))
    }

    /// Keeps the caller's alerts; `None` when an alert is not an object.
    fn alerts(&self, alerts: &mut Vec<Value>) -> Option<()> {
        if alerts.iter().any(|a| !a.is_object()) {
            return None;
        }
        alerts.retain(|a| a.as_object().is_some_and(|a| self.owned(a)));
        Some(())
    }

    fn groups(&self, groups: &mut Vec<Value>) -> Option<()> {
        for group in groups.iter_mut() {
            let rules = group.get_mut("rules")?.as_array_mut()?;
            let mut kept = Vec::with_capacity(rules.len());
            for rule in rules.drain(..) {
                let Value::Object(mut rule) = rule else {
                    return None;
                };
                if self.rule(&mut rule)? {
                    kept.push(Value::Object(rule));
                }
            }
            *rules = kept;
        }
        groups.retain(|g| {
            g.get("rules")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty())
        });
        Some(())
    }

    /// Filters one rule's alerts; whether the rule is kept.
    fn rule(&self, rule: &mut Map<String, Value>) -> Option<bool> {
        let own = self.owned(rule);
        let Some(alerts) = rule.get_mut("alerts") else {
            return Some(own);
        };
        let alerts = alerts.as_array_mut()?;
        let before = alerts.len();
        self.alerts(alerts)?;
        let dropped = alerts.len() != before;
        let any_left = !alerts.is_empty();
        let state = [("firing", "firing"), ("pending", "pending")]
            .into_iter()
            .find(|(wanted, _)| {
                alerts
                    .iter()
                    .any(|a| a.get("state").and_then(Value::as_str) == Some(wanted))
            })
            .map_or("inactive", |(_, state)| state);
        if own {
            return Some(true);
        }
        if !any_left {
            return Some(false);
        }
        if dropped && rule.contains_key("state") {
            rule.insert("state".into(), Value::String(state.into()));
        }
        if rule
            .get("lastError")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty())
        {
            rule.insert(
                "lastError".into(),
                Value::String("(withheld: this rule is shared with other tenants)".into()),
            );
        }
        Some(true)
    }
}
