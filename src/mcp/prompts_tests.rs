//! The prompts' text and refusals: every query a prompt writes parses,
//! caller values cannot change a query's shape, and the burn-rate
//! numbers are the SRE workbook's.

use super::*;
use mcp_prometheus_layers::promql::{Expr, parse};
use serde_json::{Value, json};

const UPSTREAMS: &[&str] = &["local", "mimir"];

fn upstreams() -> Vec<String> {
    UPSTREAMS.iter().map(|s| (*s).to_owned()).collect()
}

fn text(name: &str, args: Value, prefix: &str) -> Result<String, PromptError> {
    let result = get(
        name,
        args.as_object().cloned(),
        prefix,
        &upstreams(),
        |_| true,
    )?;
    let message = result.messages.first().expect("one message");
    Ok(message
        .content
        .as_text()
        .map(|t| t.text.clone())
        .expect("text content"))
}

/// Every `"query": "..."` JSON string in a prompt's text, decoded.
fn queries(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        rest = &rest[at..];
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                if let Some(query) = value.get("query").and_then(Value::as_str) {
                    found.push(query.to_owned());
                }
                rest = &rest[stream.byte_offset()..];
            }
            _ => rest = &rest[1..],
        }
    }
    found
}

#[test]
fn an_alert_name_with_quotes_stays_one_label_value() {
    let hostile = r#"X"} or vector(1) or ALERTS{a=""#;
    let text = text("investigate_alert", json!({"alertname": hostile}), "p_").expect("ok");
    let queries = queries(&text);
    let series = queries
        .iter()
        .find(|q| q.starts_with("ALERTS{"))
        .expect("the ALERTS query");
    let Ok(Expr::VectorSelector(selector)) = parse(series) else {
        panic!("{series} is not one selector");
    };
    let matcher = selector.matchers.matchers.first().expect("a matcher");
    assert_eq!(
        (matcher.name.as_str(), matcher.value.as_str()),
        ("alertname", hostile)
    );
    assert!(text.contains("`p_get_rules`"), "{text}");
    assert!(text.contains("`p_get_alerts`"), "{text}");
}

#[test]
fn bad_arguments_are_refused_with_what_to_send() {
    let cases = [
        (
            "investigate_alert",
            json!({}),
            "needs the argument \"alertname\"",
        ),
        (
            "investigate_alert",
            json!({"alertname": "A\nB"}),
            "control characters",
        ),
        (
            "investigate_alert",
            json!({"alertname": "A", "upstream": "nope"}),
            "send one of local, mimir",
        ),
        (
            "investigate_alert",
            json!({"alertname": "A", "extra": "1"}),
            "has no argument \"extra\"",
        ),
        (
            "cardinality_audit",
            json!({"metric": "up}"}),
            "is not a metric name",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e", "total_metric": "t"}),
            "needs the argument \"objective\"",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e", "total_metric": "t", "objective": "100"}),
            "strictly between 0 and 100",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e", "total_metric": "t", "objective": "99", "window": "1h"}),
            "outside 7d..366d",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e{a=\"b\"}", "total_metric": "t", "objective": "99"}),
            "not a metric name",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e", "total_metric": "t", "objective": "99", "matchers": "a=\"b\"} or vector(1) or {c=\"d\""}),
            "not a list of label matchers",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e", "total_metric": "t", "objective": "99", "matchers": "__name__=\"x\""}),
            "__name__",
        ),
        (
            "slo_burn_rate",
            json!({"error_metric": "e", "total_metric": "t", "objective": "99", "matchers": "job=\"a\"} #"}),
            "no comments or line breaks",
        ),
        (
            "nope",
            json!({}),
            "the prompts are investigate_alert, cardinality_audit, slo_burn_rate",
        ),
    ];
    for (name, args, expected) in cases {
        let error = text(name, args.clone(), "").expect_err(&format!("{name} {args}"));
        assert!(
            error.to_string().contains(expected),
            "{name} {args}: {error}"
        );
    }
}

#[test]
fn a_prompt_needing_a_refused_tool_is_refused() {
    let error = get("cardinality_audit", None, "", &upstreams(), |tool| {
        tool != "get_tsdb_stats"
    })
    .expect_err("refused");
    assert!(error.to_string().contains("get_tsdb_stats"), "{error}");
}

#[test]
fn burn_rates_are_the_workbooks_for_30_days() {
    let text = text(
        "slo_burn_rate",
        json!({"error_metric": "http_errors_total", "total_metric": "http_requests_total",
               "objective": "99.9", "matchers": "job=\"api\"", "upstream": "mimir"}),
        "",
    )
    .expect("ok");
    for burn in [
        "(burn rate 14.4)",
        "(burn rate 6)",
        "(burn rate 3)",
        "(burn rate 1)",
    ] {
        assert!(text.contains(burn), "{burn} in {text}");
    }
    let queries = queries(&text);
    let page = "(sum(rate(http_errors_total{job=\"api\"}[1h])) / sum(rate(http_requests_total{job=\"api\"}[1h]))) > 0.0144 \
                and (sum(rate(http_errors_total{job=\"api\"}[5m])) / sum(rate(http_requests_total{job=\"api\"}[5m]))) > 0.0144";
    assert!(queries.iter().any(|q| q == page), "{queries:#?}");
    for threshold in ["> 0.006 and", "> 0.003 and", "> 0.001 and"] {
        assert!(queries.iter().any(|q| q.contains(threshold)), "{threshold}");
    }
    assert!(
        queries.iter().any(|q| q.contains("[30d]")),
        "budget left over 30d"
    );
    for query in &queries {
        parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    }
    assert!(text.contains("\"upstream\":\"mimir\""), "{text}");
}

#[test]
fn a_28_day_window_scales_the_burn_rates() {
    let text = text(
        "slo_burn_rate",
        json!({"error_metric": "e", "total_metric": "t", "objective": "99.5%", "window": "4w"}),
        "",
    )
    .expect("ok");
    // 2% of a 28 day budget in an hour: 0.02 * 672 = 13.44.
    assert!(text.contains("(burn rate 13.44)"), "{text}");
    assert!(
        queries(&text).iter().any(|q| q.contains("> 0.0672 and")),
        "13.44 * 0.005"
    );
}

#[test]
fn cardinality_queries_parse_with_and_without_a_metric() {
    for args in [json!({}), json!({"metric": "http_requests_total"})] {
        let text = text("cardinality_audit", args, "").expect("ok");
        assert!(text.contains("`get_tsdb_stats`"), "{text}");
        for query in queries(&text) {
            parse(&query.replace('L', "job").replace('M', "up"))
                .unwrap_or_else(|e| panic!("{query}: {e}"));
        }
    }
}

#[test]
fn listed_prompts_declare_their_arguments() {
    let investigate = listed(&PROMPTS[0]);
    let arguments = investigate.arguments.expect("arguments");
    assert_eq!(arguments[0].name, "alertname");
    assert_eq!(arguments[0].required, Some(true));
    assert_eq!(arguments[1].required, Some(false));
}
