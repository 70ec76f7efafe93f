//! The rules that need nothing but the query: unbounded selectors, range
//! windows, points per series, subquery resolution; and which selectors
//! need the series pre-check (`precheck.rs`) because they name a metric and
//! nothing else.

use std::time::Duration;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::VectorSelector;

use super::decision::GuardrailRule;
use super::request::{Api, QueryRequest};
use crate::promql::{Expr, selectors, walk};

/// The limits of the rules, from the config.
#[derive(Clone, Debug)]
pub(super) struct Limits {
    pub max_range: Duration,
    pub max_points: u64,
    pub min_subquery_step: Duration,
    /// Rules switched off (`disabled_rules`).
    pub disabled: Vec<GuardrailRule>,
}

impl Limits {
    pub fn enabled(&self, rule: GuardrailRule) -> bool {
        !self.disabled.contains(&rule)
    }
}

/// A rule a query breaks, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Finding {
    pub rule: GuardrailRule,
    pub detail: String,
}

/// What the query-only rules found, and the selectors (as PromQL without
/// offset or `@`) whose series count only the upstream can tell.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub findings: Vec<Finding>,
    pub precheck: Vec<String>,
}

/// Applies every enabled rule to `request`.
pub(super) fn check(limits: &Limits, request: &QueryRequest) -> Checked {
    let mut checked = Checked::default();
    let mut add = |rule: GuardrailRule, detail: String| {
        let finding = Finding { rule, detail };
        if limits.enabled(rule) && !checked.findings.contains(&finding) {
            checked.findings.push(finding);
        }
    };
    for what in &request.unreadable {
        add(
            GuardrailRule::Unreadable,
            format!(
                "{what}: the guardrails cannot judge what they cannot read; send PromQL this server parses (validate_query shows why not) and times as RFC 3339 or Unix seconds"
            ),
        );
    }
    if request.api == Api::QueryRange {
        range_query(limits, request, &mut add);
    }
    let mut precheck = Vec::new();
    for expr in &request.exprs {
        for (vs, range) in selectors(expr) {
            let shown = bare(vs);
            if selects_everything(vs) {
                add(
                    GuardrailRule::UnboundedRegex,
                    format!(
                        "`{shown}` selects every series: all its matchers match (nearly) everything; name a metric and add a label matcher such as {{job=\"…\"}}"
                    ),
                );
            } else if !narrowed(vs) && !precheck.contains(&shown) {
                precheck.push(shown.clone());
            }
            if let Some(range) = range.filter(|r| *r > limits.max_range) {
                add(
                    GuardrailRule::MaxRange,
                    format!(
                        "the range [{}] of `{shown}` is longer than max_range {}; shorten the range to ≤{}",
                        human(range),
                        human(limits.max_range),
                        human(limits.max_range)
                    ),
                );
            }
        }
        walk(expr, &mut |node| {
            if let Expr::Subquery(sub) = node {
                subquery(limits, sub.range, sub.step, &mut add);
            }
        });
    }
    if limits.enabled(GuardrailRule::MaxSeriesPerSelector) {
        checked.precheck = precheck;
    }
    checked
}

/// Rules 3 and 4 on a range query's window and step.
fn range_query(
    limits: &Limits,
    request: &QueryRequest,
    add: &mut impl FnMut(GuardrailRule, String),
) {
    let Some(window) = request.window else { return };
    if window > limits.max_range {
        add(
            GuardrailRule::MaxRange,
            format!(
                "the query range (end - start) is {}, longer than max_range {}; shorten the range to ≤{}",
                human(window),
                human(limits.max_range),
                human(limits.max_range)
            ),
        );
    }
    let Some(step) = request.step.filter(|s| !s.is_zero()) else {
        return;
    };
    let points = points(window, step);
    if points > limits.max_points {
        let intervals = u128::from(limits.max_points.saturating_sub(1));
        let longest = u64::try_from(step.as_millis().saturating_mul(intervals))
            .map_or(Duration::MAX, Duration::from_millis);
        add(
            GuardrailRule::MaxPoints,
            format!(
                "{points} points per series (range {} / step {} + 1) is more than max_points {}; shorten the range to ≤{} or raise the step to ≥{}s",
                human(window),
                human(step),
                limits.max_points,
                human(longest),
                min_step(window, limits.max_points),
            ),
        );
    }
}

/// Rules 3 and 5 on one subquery `[range:step]`.
fn subquery(
    limits: &Limits,
    range: Duration,
    step: Option<Duration>,
    add: &mut impl FnMut(GuardrailRule, String),
) {
    let shown = match step {
        Some(step) => format!("[{}:{}]", human(range), human(step)),
        None => format!("[{}:]", human(range)),
    };
    if range > limits.max_range {
        add(
            GuardrailRule::MaxRange,
            format!(
                "the subquery range {shown} is longer than max_range {}; shorten the range to ≤{}",
                human(limits.max_range),
                human(limits.max_range)
            ),
        );
    }
    // Without a step the upstream's evaluation interval applies, unknown here.
    let Some(step) = step.filter(|s| !s.is_zero()) else {
        return;
    };
    let points = points(range, step);
    if step < limits.min_subquery_step {
        add(
            GuardrailRule::MinSubqueryStep,
            format!(
                "the subquery {shown} resolves every {}, finer than min_subquery_step {}; use a coarser subquery resolution, e.g. [{}:{}]",
                human(step),
                human(limits.min_subquery_step),
                human(range),
                human(limits.min_subquery_step)
            ),
        );
    } else if points > limits.max_points {
        add(
            GuardrailRule::MinSubqueryStep,
            format!(
                "the subquery {shown} evaluates {points} points per series, more than max_points {}; use a coarser subquery resolution (≥{}s) or a shorter range",
                limits.max_points,
                min_step(range, limits.max_points)
            ),
        );
    }
}

/// Points of one series over `range` at `step`: Prometheus counts both ends.
fn points(range: Duration, step: Duration) -> u64 {
    let steps = range.as_millis() / step.as_millis().max(1);
    u64::try_from(steps).unwrap_or(u64::MAX).saturating_add(1)
}

/// The smallest whole step (seconds) giving at most `max_points` points.
fn min_step(range: Duration, max_points: u64) -> u64 {
    let intervals = max_points.saturating_sub(1).max(1);
    range.as_secs().div_ceil(intervals).max(1)
}

/// The selector as PromQL without its offset and `@`: what the pre-check
/// counts and what a finding quotes.
fn bare(vs: &VectorSelector) -> String {
    VectorSelector {
        offset: None,
        at: None,
        ..vs.clone()
    }
    .to_string()
}

/// The matcher groups of a selector: its matchers, or with `or` each
/// alternative (with the common matchers).
fn groups(vs: &VectorSelector) -> Vec<Vec<&Matcher>> {
    let common: Vec<&Matcher> = vs.matchers.matchers.iter().collect();
    if vs.matchers.or_matchers.is_empty() {
        return vec![common];
    }
    vs.matchers
        .or_matchers
        .iter()
        .map(|alt| common.iter().copied().chain(alt.iter()).collect())
        .collect()
}

/// Whether some alternative of the selector names no metric and has only
/// matchers that match (nearly) everything: `{__name__=~".+"}`,
/// `{job=~".*", __name__!=""}`.
fn selects_everything(vs: &VectorSelector) -> bool {
    vs.name.is_none()
        && groups(vs)
            .iter()
            .any(|group| group.iter().all(|m| unbounded(m)))
}

/// Whether every alternative has a label matcher besides the metric name
/// that narrows the series (one that is not unbounded).
fn narrowed(vs: &VectorSelector) -> bool {
    groups(vs)
        .iter()
        .all(|group| group.iter().any(|m| m.name != "__name__" && !unbounded(m)))
}

/// A matcher that matches every value, or every non-empty one: `=~".*"`,
/// `=~".+"`, `!=""`, `!~""`.
fn unbounded(m: &Matcher) -> bool {
    match &m.op {
        MatchOp::Re(_) => matches_anything(&m.value),
        MatchOp::NotRe(_) | MatchOp::NotEqual => m.value.is_empty(),
        MatchOp::Equal => false,
    }
}

/// A regex made only of `.*` and `.+` (in groups, with a `(?s)` flag).
fn matches_anything(pattern: &str) -> bool {
    let mut rest = pattern.trim();
    rest = rest.strip_prefix("(?s)").unwrap_or(rest);
    loop {
        let inner = rest
            .strip_prefix("(?:")
            .or_else(|| rest.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'));
        match inner {
            Some(inner) => rest = inner,
            None => break,
        }
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        match rest.strip_prefix(".*").or_else(|| rest.strip_prefix(".+")) {
            Some(next) => rest = next,
            None => return false,
        }
    }
    true
}

/// A duration as PromQL writes it: `31d`, `1h30m`, `500ms`.
pub(super) fn human(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::parse;

    fn vs(query: &str) -> VectorSelector {
        match parse(query).expect("valid") {
            Expr::VectorSelector(vs) => vs,
            other => panic!("not a selector: {other:?}"),
        }
    }

    #[test]
    fn unbounded_selectors_are_told_apart() {
        for everything in [
            r#"{__name__=~".+"}"#,
            r#"{__name__=~"(.+)", job=~".*"}"#,
            r#"{job!=""}"#,
        ] {
            assert!(selects_everything(&vs(everything)), "{everything}");
        }
        for bounded in [
            "up",
            r#"{__name__="up"}"#,
            r#"{__name__=~"node_.*"}"#,
            r#"{job="a"}"#,
        ] {
            assert!(!selects_everything(&vs(bounded)), "{bounded}");
        }
    }

    #[test]
    fn narrowing_needs_a_label_matcher_that_restricts() {
        for bare in [
            "up",
            r#"up{job=~".*"}"#,
            r#"{__name__="up"}"#,
            r#"up{job!=""}"#,
        ] {
            assert!(!narrowed(&vs(bare)), "{bare}");
        }
        for narrow in [r#"up{job="a"}"#, r#"up{job=~"a.*"}"#, r#"up{job!="a"}"#] {
            assert!(narrowed(&vs(narrow)), "{narrow}");
        }
    }

    #[test]
    fn durations_read_as_promql() {
        assert_eq!(human(Duration::from_secs(31 * 86_400)), "31d");
        assert_eq!(human(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(
            points(Duration::from_secs(3600), Duration::from_secs(60)),
            61
        );
        assert_eq!(min_step(Duration::from_secs(86_400 * 31), 11_000), 244);
    }
}
