//! What a parsed query is made of, and what in it usually goes wrong.

use std::time::Duration;

use mcp_prometheus_layers::promql::{Expr, walk};
use promql_parser::label::MatchOp;
use promql_parser::parser::VectorSelector;
use promql_parser::util::duration::display_duration;
use serde_json::{Value, json};

/// Functions that expect a counter.
const COUNTER_FUNCTIONS: &[&str] = &["rate", "irate", "increase", "resets"];
/// Name endings of counters and histogram/summary series.
const COUNTER_SUFFIXES: &[&str] = &["_total", "_count", "_sum", "_bucket"];

/// The parts of one query.
pub struct Analysis {
    expression: String,
    selectors: Vec<Value>,
    countable: Vec<String>,
    functions: Vec<String>,
    aggregations: Vec<String>,
    subqueries: Vec<Value>,
    warnings: Vec<String>,
}

impl Analysis {
    /// The parts of `expr`.
    pub fn of(expr: &Expr) -> Self {
        let mut analysis = Self {
            expression: expr.prettify(),
            selectors: Vec::new(),
            countable: Vec::new(),
            functions: Vec::new(),
            aggregations: Vec::new(),
            subqueries: Vec::new(),
            warnings: Vec::new(),
        };
        walk(expr, &mut |node| analysis.visit(node));
        analysis
    }

    fn visit(&mut self, node: &Expr) {
        match node {
            Expr::VectorSelector(vs) => self.selector(vs, None),
            Expr::MatrixSelector(ms) => self.selector(&ms.vs, Some(ms.range)),
            Expr::Call(call) => {
                let name = call.func.name.to_owned();
                if COUNTER_FUNCTIONS.contains(&call.func.name) {
                    self.counter_check(&name, call.args.args.first().map(|a| &**a));
                }
                push_unique(&mut self.functions, name);
            }
            Expr::Aggregate(agg) => push_unique(&mut self.aggregations, agg.op.to_string()),
            Expr::Subquery(sub) => self.subqueries.push(json!({
                "range": display_duration(&sub.range),
                "step": sub.step.as_ref().map(display_duration),
            })),
            _ => {}
        }
    }

    fn selector(&mut self, vs: &VectorSelector, range: Option<Duration>) {
        let matchers: Vec<Value> = vs
            .matchers
            .matchers
            .iter()
            .map(|m| json!({"label": m.name, "op": m.op.to_string(), "value": m.value}))
            .collect();
        for m in &vs.matchers.matchers {
            if matches!(m.op, MatchOp::Re(_))
                && matches!(m.value.as_str(), ".*" | ".+" | "(.*)" | "(.+)")
            {
                self.warnings.push(format!(
                    "{}=~{:?} matches (nearly) everything: drop it, or narrow it to the values you mean",
                    m.name, m.value
                ));
            }
        }
        if let Some(range) = range
            && range < Duration::from_secs(60)
        {
            self.warnings.push(format!(
                "a range of {} holds fewer than 4 samples at the common 15s scrape interval: use at least 1m (4× the scrape interval)",
                display_duration(&range)
            ));
        }
        self.selectors.push(json!({
            "metric": vs.name,
            "matchers": matchers,
            "range": range.as_ref().map(display_duration),
            "offset": vs.offset.as_ref().map(|o| o.to_string()),
            "at": vs.at.as_ref().map(|a| a.to_string()),
        }));
        let plain = VectorSelector {
            offset: None,
            at: None,
            ..vs.clone()
        };
        push_unique(&mut self.countable, plain.to_string());
    }

    /// `rate()` and friends over something that does not look like a
    /// counter.
    fn counter_check(&mut self, function: &str, arg: Option<&Expr>) {
        let name = match arg {
            Some(Expr::MatrixSelector(ms)) => ms.vs.name.clone(),
            _ => None,
        };
        if let Some(name) = name
            && !COUNTER_SUFFIXES.iter().any(|s| name.ends_with(s))
        {
            self.warnings.push(format!(
                "{function}() expects a counter, and {name} does not look like one (counters end in _total, _count, _sum or _bucket): for a gauge use deriv() or delta(), or avg_over_time()"
            ));
        }
    }

    /// The selectors as plain vector selectors, each once: what
    /// `check_series` counts.
    pub fn countable(&self) -> Vec<String> {
        self.countable.clone()
    }

    /// The structured answer.
    pub fn to_json(&self) -> Value {
        json!({
            "valid": true,
            "expression": self.expression,
            "selectors": self.selectors,
            "functions": self.functions,
            "aggregations": self.aggregations,
            "subqueries": self.subqueries,
            "warnings": self.warnings,
        })
    }

    /// The text answer.
    pub fn summary(&self) -> String {
        let mut text = format!("valid PromQL:\n{}", self.expression);
        text.push_str(&format!(
            "\n{} selector(s); functions: {}; aggregations: {}",
            self.selectors.len(),
            list(&self.functions),
            list(&self.aggregations)
        ));
        for warning in &self.warnings {
            text.push_str(&format!("\nwarning: {warning}"));
        }
        text
    }
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_prometheus_layers::promql::parse;

    fn analysis(query: &str) -> Value {
        Analysis::of(&parse(query).expect("valid")).to_json()
    }

    #[test]
    fn parts_of_a_query() {
        let out = analysis(
            "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1h)) / on (job) max_over_time(up[1h:1m])",
        );
        assert_eq!(out["selectors"][0]["metric"], "http_requests_total");
        assert_eq!(out["selectors"][0]["range"], "5m");
        assert_eq!(out["selectors"][0]["offset"], "1h");
        assert_eq!(out["selectors"][0]["matchers"][0]["op"], "=~");
        assert_eq!(out["functions"], json!(["rate", "max_over_time"]));
        assert_eq!(out["aggregations"], json!(["sum"]));
        assert_eq!(out["subqueries"][0]["step"], "1m");
        assert_eq!(out["warnings"], json!([]));
    }

    #[test]
    fn warnings_for_what_usually_goes_wrong() {
        let out = analysis("rate(node_memory_free_bytes[30s]) + on() up{job=~\".*\"}");
        let warnings = out["warnings"].to_string();
        assert!(warnings.contains("does not look like one"), "{warnings}");
        assert!(warnings.contains("fewer than 4 samples"), "{warnings}");
        assert!(
            warnings.contains("matches (nearly) everything"),
            "{warnings}"
        );
        let plain = Analysis::of(&parse("rate(x_total{a=\"b\"}[5m] offset 1h)").expect("valid"));
        assert_eq!(plain.countable(), ["x_total{a=\"b\"}"]);
    }
}
