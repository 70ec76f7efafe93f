//! The text of each prompt: a guided sequence of calls of this server's
//! tools (named as `tools/list` names them), with the PromQL written out.
//! Every caller value reaching PromQL was checked in [`super::prompt_args`];
//! tool arguments are written as JSON by serde, so they are escaped too.

use std::time::Duration;

use serde_json::{Value, json};

use super::prompt_args::{number, promql_duration};

/// What a prompt's text needs besides its arguments: the tool names as
/// served and the `upstream` every call should pass (if one was chosen).
pub struct Speaker<'a> {
    pub prefix: &'a str,
    pub upstream: Option<&'a str>,
}

impl Speaker<'_> {
    /// A tool call as the model should make it: the served name and its
    /// JSON arguments (with the chosen `upstream`).
    fn call(&self, tool: &str, arguments: Value) -> String {
        let mut arguments = match arguments {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        if let Some(upstream) = self.upstream {
            arguments.insert("upstream".into(), json!(upstream));
        }
        format!("`{}` {}", self.tool(tool), Value::Object(arguments))
    }

    fn tool(&self, tool: &str) -> String {
        format!("{}{tool}", self.prefix)
    }

    fn on_upstream(&self) -> String {
        match self.upstream {
            Some(name) => format!(" on upstream {}", json!(name)),
            None => String::new(),
        }
    }
}

/// `investigate_alert`: `alert` is the alert name as given, `literal` the
/// same as a PromQL string literal.
pub fn investigate_alert(s: &Speaker<'_>, alert: &str, literal: &str) -> String {
    let alerts_series = format!("ALERTS{{alertname={literal}}}");
    let for_state = format!("ALERTS_FOR_STATE{{alertname={literal}}}");
    format!(
        "Investigate the alert {name}{on} step by step with these tools, then report.\n\n\
         1. {alerts}: find the entries whose labels have alertname={name}. Note state (pending or firing), activeAt, labels (job, instance, severity…) and annotations (summary, description, runbook_url). If none is listed the alert is not active now: step 3 shows when it was.\n\
         2. {rules}: read the rule's expression (query), its `for` duration, health and lastError. A lastError or health other than ok means the rule itself is broken.\n\
         3. {history}: when it fired and whether it flaps (one series per label set; value 1 while active). {for_state_call} gives the time each instance became active.\n\
         4. {now}: run the rule's expression as it is, then each selector in it alone. Which series cross the threshold now? An empty selector means the metric or a label is gone, not that all is well: check it with {find_series}.\n\
         5. {trend}: the rule's expression from an hour before activeAt until now: what changed before it fired.\n\
         6. Report: what fired, since when, which series and labels are affected, the likely cause and what to check next. Quote the queries you ran.",
        name = json!(alert),
        on = s.on_upstream(),
        alerts = s.call("get_alerts", json!({})),
        rules = s.call("get_rules", json!({"type": "alert", "rule_name": [alert]})),
        history = s.call(
            "execute_range_query",
            json!({"query": alerts_series, "start": "now-6h"})
        ),
        for_state_call = s.call("execute_query", json!({"query": for_state})),
        now = s.call("execute_query", json!({"query": "<the rule's expression>"})),
        find_series = s.call("find_series", json!({"matches": ["<the selector>"]})),
        trend = s.call(
            "execute_range_query",
            json!({"query": "<the rule's expression>", "start": "<activeAt - 1h>", "end": "now"})
        ),
    )
}

/// `cardinality_audit`, for the whole upstream or one `metric` (checked
/// to be a metric name).
pub fn cardinality_audit(s: &Speaker<'_>, metric: Option<&str>) -> String {
    let focus = match metric {
        Some(metric) => format!(
            "2. Focus on {metric}: {count} is its series count; {labels} lists its labels; for each label L, {distinct} counts L's distinct values on {metric}. The label with most values drives the count.",
            count = s.call(
                "execute_query",
                json!({"query": format!("count({metric})")})
            ),
            labels = s.call("list_label_names", json!({"matches": [metric]})),
            distinct = s.call(
                "execute_query",
                json!({"query": format!("count(count by (L) ({metric}))")})
            ),
        ),
        None => format!(
            "2. For each of the five metrics with most series, M: {labels} lists its labels; for each label L, {distinct} counts L's distinct values on M. The label with most values drives the count.",
            labels = s.call("list_label_names", json!({"matches": ["M"]})),
            distinct = s.call("execute_query", json!({"query": "count(count by (L) (M))"})),
        ),
    };
    format!(
        "Audit which metrics and labels drive the series count{on}, then report.\n\n\
         1. {stats}: the head block's series count, the metrics with most series (seriesCountByMetricName), the labels with most values (labelValueCountByLabelName) and the label pairs with most series (seriesCountByLabelValuePair).\n\
         {focus}\n\
         3. Labels whose values look like IDs (user, request, trace, path with IDs, pod hashes) are the usual cause; histograms multiply their labels by the bucket count ({buckets} shows how many le values a histogram has).\n\
         4. Report a table metric → series → driving labels, and concrete fixes: drop or relabel the label at scrape time, aggregate it away in a recording rule, fewer histogram buckets.",
        on = s.on_upstream(),
        stats = s.call("get_tsdb_stats", json!({"limit": 20})),
        buckets = s.call(
            "execute_query",
            json!({"query": "count(count by (le) (M_bucket))"})
        ),
    )
}

/// The SLO of `slo_burn_rate`: the two counters (metric names), their
/// optional label matchers (checked), the error budget and the period.
pub struct Slo<'a> {
    pub errors: &'a str,
    pub total: &'a str,
    pub matchers: Option<&'a str>,
    pub budget: f64,
    pub window: Duration,
}

/// The multi-window, multi-burn-rate pairs of the SRE workbook: a long
/// window, its short window, and the share of the error budget spent in
/// the long window that makes the pair fire. For a 30 day period the burn
/// rates are 14.4, 6, 3 and 1.
pub const BURN_PAIRS: [(u64, u64, f64, &str); 4] = [
    (3_600, 300, 0.02, "page"),
    (21_600, 1_800, 0.05, "page"),
    (86_400, 7_200, 0.10, "ticket"),
    (259_200, 21_600, 0.10, "ticket"),
];

impl Slo<'_> {
    fn selector(&self, metric: &str) -> String {
        match self.matchers {
            Some(matchers) => format!("{metric}{{{matchers}}}"),
            None => metric.to_owned(),
        }
    }

    /// The error ratio over `window` (a PromQL duration).
    pub fn ratio(&self, window: &str) -> String {
        format!(
            "sum(rate({}[{window}])) / sum(rate({}[{window}]))",
            self.selector(self.errors),
            self.selector(self.total)
        )
    }

    /// The burn rate a pair fires at: its budget share spread over the
    /// long window, relative to spending the budget evenly over the period.
    pub fn burn_rate(&self, long_seconds: u64, share: f64) -> f64 {
        share * self.window.as_secs_f64() / long_seconds as f64
    }

    /// One pair's alert condition (a non-empty result means it fires).
    pub fn condition(&self, long: u64, short: u64, share: f64) -> String {
        let threshold = number(self.burn_rate(long, share) * self.budget);
        let long = promql_duration(Duration::from_secs(long));
        let short = promql_duration(Duration::from_secs(short));
        format!(
            "({}) > {threshold} and ({}) > {threshold}",
            self.ratio(&long),
            self.ratio(&short)
        )
    }

    /// The share of the period's error budget still left.
    pub fn budget_left(&self) -> String {
        let period = promql_duration(self.window);
        format!(
            "1 - (sum(increase({}[{period}])) / sum(increase({}[{period}]))) / {}",
            self.selector(self.errors),
            self.selector(self.total),
            number(self.budget)
        )
    }
}

/// `slo_burn_rate`: current burn rates, the four alert conditions and the
/// budget left, with the numbers worked out for this SLO.
pub fn slo_burn_rate(s: &Speaker<'_>, slo: &Slo<'_>) -> String {
    let period = promql_duration(slo.window);
    let budget = number(slo.budget);
    let mut conditions = String::new();
    for (long, short, share, severity) in BURN_PAIRS {
        conditions.push_str(&format!(
            "   - {severity}, {} of the budget in {} (burn rate {}): {}\n",
            number(share * 100.0) + "%",
            promql_duration(Duration::from_secs(long)),
            number(slo.burn_rate(long, share)),
            s.call(
                "execute_query",
                json!({"query": slo.condition(long, short, share)})
            ),
        ));
    }
    format!(
        "Check the SLO \"{errors} / {total} stays under {budget} (objective {objective}%) over {period}\"{on} with multi-window, multi-burn-rate alerts (Google SRE workbook), then report.\n\n\
         1. {validate}: both counters must exist (check_series counts their series); if one is empty, stop and say so.\n\
         2. Current burn rate (1 = spending the budget exactly over {period}): {burn_1h}; repeat with 5m, 30m, 6h and 1d in place of 1h.\n\
         3. The alert conditions; each fires when both its long and short window burn faster than its rate (a non-empty answer means it fires now):\n{conditions}\
         4. Budget left over the period (1 = untouched, below 0 = overspent): {left}. A {period} range over raw counters is costly: if the server's guardrails refuse it, say that a recording rule of the 5m ratio is the fix.\n\
         5. The 1h burn rate over the last day, to see when it rose: {trend}.\n\
         6. Report: which conditions fire, the current burn rates, the budget left, and when the budget runs out at the current 1h rate.",
        errors = slo.errors,
        total = slo.total,
        objective = number(100.0 - slo.budget * 100.0),
        on = s.on_upstream(),
        validate = s.call(
            "validate_query",
            json!({"query": slo.ratio("5m"), "check_series": true})
        ),
        burn_1h = s.call(
            "execute_query",
            json!({"query": format!("({}) / {budget}", slo.ratio("1h"))})
        ),
        left = s.call("execute_query", json!({"query": slo.budget_left()})),
        trend = s.call(
            "execute_range_query",
            json!({"query": format!("({}) / {budget}", slo.ratio("1h")), "start": "now-1d", "step": "5m"})
        ),
    )
}
