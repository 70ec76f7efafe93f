//! What a tool returns: structured content for programs, and a concise text
//! a model reads cheaply, with truncation guidance it can act on.

use serde::Serialize;

use super::json_text::JsonText;
use crate::upstream::Notes;
use mcp_prometheus_layers::outbound::guardrails::GuardrailDecision;
use serde_json::Value;
#[cfg(test)]
use serde_json::json;

/// Tool families share their advice on how to narrow a truncated answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// PromQL queries.
    Query,
    /// Metric, label, series and metadata discovery.
    Discovery,
    /// Alerts and rules.
    Alerting,
    /// Bulk status endpoints (targets, flags, TSDB stats…).
    Status,
}

impl Family {
    /// What the model should do when a result was cut.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Query => {
                "Narrow the query: add label filters ({job=\"…\"}), aggregate with sum/avg/count by (label), use topk/bottomk, or use a shorter range or a larger step."
            }
            Self::Discovery => {
                "Narrow the request: give tighter `matches` selectors, a narrower start/end window, or a smaller `limit` and page by refining the selector."
            }
            Self::Alerting => {
                "Filter: use `state`, `type`, `rule_name` or `rule_group`, or query ALERTS{alertname=\"…\"} with execute_query."
            }
            Self::Status => {
                "Filter the request (state, scrape_pool, health, metric) or lower `limit`."
            }
        }
    }
}

/// Keeps the first `limit` items of a JSON array in place; returns the
/// count before. Only for a limit applied *after* the tool's own filtering
/// or fan-out, which the truncate layer cannot see (alerts by state, rules
/// by name, targets by health): an upstream answer as such is cut by the
/// layer alone.
pub fn limit_filtered(value: &mut Value, limit: usize) -> usize {
    match value.as_array_mut() {
        Some(items) => {
            let total = items.len();
            items.truncate(limit);
            total
        }
        None => 0,
    }
}

/// The result of a successful tool call.
#[derive(Debug, Serialize)]
pub struct ToolOutput {
    #[serde(skip)]
    family: Family,
    /// Which upstream answered.
    pub upstream: String,
    /// Prometheus's `data`, after our filters and limits.
    #[serde(skip)]
    pub data: Value,
    /// `data` already written as JSON, when a tool's data is too big to be
    /// worth a `Value` tree (a 10k-series summary): it then replaces `data`.
    #[serde(skip)]
    raw_data: Option<JsonText>,
    /// Whether items were left out.
    pub truncated: bool,
    /// Whether the upstream had more than was read (the answer was cut
    /// while streaming, before it was counted in full).
    pub has_more: bool,
    /// Items before our limit, when countable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// Items returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returned: Option<usize>,
    /// How to narrow down, when truncated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<String>,
    /// Why an answer is empty, when that can be told.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// What the guardrails found costly in the query (`{rule, action,
    /// detail}`); the query was sent all the same (`warn` mode, or a
    /// pre-check that failed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<GuardrailDecision>,
    /// Opens the same query and time range in the upstream's UI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The name of that UI ("Prometheus", "Grafana").
    #[serde(skip)]
    link_ui: &'static str,
    /// The concise rendering for the model.
    #[serde(skip)]
    pub text: String,
    /// A picture of the answer (PNG bytes), sent as an `image` content
    /// block after the text.
    #[serde(skip)]
    pub image: Option<Vec<u8>>,
}

impl ToolOutput {
    /// An untruncated result of a tool of `family`.
    pub fn new(family: Family, upstream: &str, data: Value, text: String) -> Self {
        Self {
            family,
            upstream: upstream.to_owned(),
            data,
            raw_data: None,
            truncated: false,
            has_more: false,
            total: None,
            returned: None,
            hint: None,
            warnings: Vec::new(),
            infos: Vec::new(),
            hints: Vec::new(),
            guardrails: Vec::new(),
            link: None,
            link_ui: "",
            text,
            image: None,
        }
    }

    /// Records how many of how many items are returned; sets `truncated`
    /// and the family's hint when some were left out.
    pub fn counted(mut self, returned: usize, total: usize) -> Self {
        self.returned = Some(returned);
        self.total = Some(total);
        if returned < total {
            self.truncated = true;
            self.hint = Some(self.family.hint());
        }
        self
    }

    /// Adds a link back to the upstream's UI (`(ui name, url)`).
    pub fn with_link(mut self, link: Option<(&'static str, String)>) -> Self {
        if let Some((ui, url)) = link {
            self.link_ui = ui;
            self.link = Some(url);
        }
        self
    }

    /// Says why the answer is empty (one line of text, each in `hints`).
    pub fn with_hints(mut self, hints: Vec<String>) -> Self {
        if !hints.is_empty() {
            self.text.push_str(&format!("\nhint: {}", hints.join("; ")));
        }
        self.hints = hints;
        self
    }

    /// Carries Prometheus's warnings and infos to the model, the
    /// guardrails' warnings, and that the truncate layer cut the answer
    /// (its counts reach the tool through [`Notes::items_total`]).
    pub fn with_notes(mut self, notes: Notes) -> Self {
        // Added to what the tool already noted (e.g. that it thinned samples).
        self.warnings.extend(notes.warnings);
        self.infos.extend(notes.infos);
        self.guardrails.extend(notes.guardrails);
        if let Some(cut) = notes.truncation.filter(|t| t.truncated) {
            self.truncated = true;
            self.has_more = true;
            self.hint = Some(self.family.hint());
            if !cut.scan_complete {
                self.warnings.push(format!(
                    "the answer was larger than this server reads ({} bytes seen); counts are lower bounds",
                    cut.bytes_seen
                ));
            }
        }
        self
    }

    /// The structured content, with `data` moved rather than copied (an
    /// answer's data can be megabytes); what stays behind (counts, notes)
    /// still serves the audit line and the session log.
    pub fn take_structured(&mut self) -> Value {
        let data = match self.raw_data.take() {
            Some(raw) => serde_json::from_str(raw.as_str()).unwrap_or_default(),
            None => std::mem::take(&mut self.data),
        };
        let mut structured = serde_json::to_value(&*self).unwrap_or_default();
        if let Value::Object(object) = &mut structured {
            object.insert("data".into(), data);
        }
        structured
    }

    /// Sets the data as JSON written by the tool (see `raw_data`).
    pub fn with_raw_data(mut self, data: JsonText) -> Self {
        self.raw_data = Some(data);
        self
    }

    /// The structured content as JSON text, when the tool wrote its data
    /// as JSON: no `Value` tree is built for it. `None` otherwise (then
    /// [`ToolOutput::take_structured`]).
    pub fn take_structured_json(&mut self) -> Option<JsonText> {
        let data = self.raw_data.take()?;
        let structured = JsonText::of(&*self)
            .ok()
            .and_then(|output| output.with_member("data", &data));
        if structured.is_none() {
            self.raw_data = Some(data);
        }
        structured
    }

    /// The text content: the rendering, then what was cut, the guardrails'
    /// warnings and Prometheus's, so a model that reads only text misses
    /// nothing.
    #[cfg(test)]
    pub fn full_text(&self) -> String {
        self.text_with_notes(self.text.clone())
    }

    /// The text content (the rendering, then the notes), moving the
    /// rendering out instead of copying it (a 10k-series table is megabytes).
    pub fn take_full_text(&mut self) -> String {
        let text = std::mem::take(&mut self.text);
        self.text_with_notes(text)
    }

    fn text_with_notes(&self, mut text: String) -> String {
        if self.truncated
            && let (Some(returned), Some(total)) = (self.returned, self.total)
        {
            let more = if self.has_more { " at least" } else { "" };
            text.push_str(&format!("\n[truncated: {returned} of{more} {total} shown]"));
            if let Some(hint) = self.hint {
                text.push(' ');
                text.push_str(hint);
            }
        }
        for decision in &self.guardrails {
            text.push_str(&format!(
                "\nGuardrail warning ({}, {}): {}",
                decision.rule,
                decision.action.as_str(),
                decision.detail
            ));
        }
        for warning in &self.warnings {
            text.push_str("\nWarning: ");
            text.push_str(warning);
        }
        for info in &self.infos {
            text.push_str("\nInfo: ");
            text.push_str(info);
        }
        if let Some(link) = &self.link {
            text.push_str(&format!("\nOpen in {}: {link}", self.link_ui));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_reaches_the_text_and_the_structure() {
        let output = ToolOutput::new(Family::Discovery, "local", json!(["a"]), "a".into())
            .counted(1, 3)
            .with_notes(Notes {
                warnings: vec!["partial data".into()],
                ..Notes::default()
            });
        assert!(output.truncated);
        let text = output.full_text();
        assert!(text.contains("[truncated: 1 of 3 shown]"), "{text}");
        assert!(text.contains("matches"), "{text}");
        assert!(text.contains("Warning: partial data"), "{text}");
        let mut output = output;
        let value = output.take_structured();
        assert_eq!(value["total"], 3);
        assert_eq!(value["data"], json!(["a"]));
        assert_eq!(output.data, Value::Null, "moved, not copied");
        assert!(value.get("text").is_none());
        assert!(
            value.get("guardrails").is_none(),
            "only when there are some"
        );
    }

    #[test]
    fn guardrail_warnings_reach_the_text_and_the_structure() {
        use mcp_prometheus_layers::outbound::guardrails::{GuardrailAction, GuardrailRule};
        let output = ToolOutput::new(Family::Query, "local", json!([]), "0 series".into())
            .with_notes(Notes {
                guardrails: vec![GuardrailDecision {
                    rule: GuardrailRule::MaxRange,
                    action: GuardrailAction::Warn,
                    detail: "shorten the range to ≤31d".into(),
                }],
                ..Notes::default()
            });
        let text = output.full_text();
        assert!(
            text.contains("Guardrail warning (max_range, warn): shorten the range to ≤31d"),
            "{text}"
        );
        let value = serde_json::to_value(&output).expect("serializes");
        assert_eq!(
            value["guardrails"],
            json!([{"rule": "max_range", "action": "warn", "detail": "shorten the range to ≤31d"}])
        );
    }

    #[test]
    fn limits_after_filtering_count_before_cutting() {
        let mut list = json!([1, 2, 3]);
        assert_eq!(limit_filtered(&mut list, 2), 3);
        assert_eq!(list, json!([1, 2]));
    }

    #[test]
    fn complete_results_have_no_hint() {
        let output =
            ToolOutput::new(Family::Query, "local", json!([]), String::new()).counted(2, 2);
        assert!(!output.truncated);
        assert!(output.hint.is_none());
    }
}
