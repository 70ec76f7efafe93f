//! The alerts and rules filter, alone and through the layer.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{request, send};
use crate::identity::TenantSet;
use crate::inbound::tenancy::{Enforcement, TenancyConfig, TenancyMode};
use crate::outbound::tenant_label::{Answer, AnswerFilter, TenantLabelError, TenantLabelLayer};

fn filter(answer: Answer, tenants: &[&str]) -> AnswerFilter {
    AnswerFilter {
        answer,
        label: "tenant".into(),
        tenants: TenantSet::new(tenants.iter().copied()),
    }
}

fn alert(tenant: Option<&str>, state: &str) -> Value {
    let mut labels = json!({"alertname": "X"});
    if let Some(t) = tenant {
        labels["tenant"] = json!(t);
    }
    json!({"labels": labels, "state": state, "value": "1"})
}

fn apply(f: &AnswerFilter, answer: &Value) -> Value {
    let body = f.apply(answer.to_string().as_bytes()).expect("filtered");
    serde_json::from_slice(&body).expect("json")
}

#[test]
fn alerts_keep_only_the_callers() {
    let answer = json!({"status": "success", "data": {"alerts": [
        alert(Some("a"), "firing"), alert(Some("b"), "firing"), alert(None, "firing"),
        alert(Some("c"), "pending"), alert(Some("a"), "pending"),
    ]}});
    let kept = apply(&filter(Answer::Alerts, &["a"]), &answer);
    let tenants: Vec<&str> = kept["data"]["alerts"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["labels"]["tenant"].as_str().expect("tenant"))
        .collect();
    assert_eq!(tenants, ["a", "a"]);
    let kept = apply(&filter(Answer::Alerts, &["b", "c"]), &answer);
    assert_eq!(kept["data"]["alerts"].as_array().expect("list").len(), 2);
}

#[test]
fn rules_by_their_labels_or_their_alerts() {
    let rule = |name: &str, labels: Value, alerts: Option<Vec<Value>>, state: &str| {
        let mut r = json!({"name": name, "labels": labels, "type": "alerting", "state": state,
                           "lastError": "many-to-many matching on tenant=\"b\"", "query": "x"});
        match alerts {
            Some(a) => r["alerts"] = Value::Array(a),
            None => r["type"] = json!("recording"),
        }
        r
    };
    let answer = json!({"status": "success", "data": {"groups": [
        {"name": "a-rules", "rules": [
            rule("OwnA", json!({"tenant": "a"}), Some(vec![alert(Some("a"), "firing")]), "firing"),
            rule("RecordA", json!({"tenant": "a"}), None, ""),
        ]},
        {"name": "b-rules", "rules": [
            rule("OwnB", json!({"tenant": "b"}), Some(vec![alert(Some("b"), "firing")]), "firing"),
            rule("RecordB", json!({"tenant": "b"}), None, ""),
            rule("RecordShared", json!({}), None, ""),
        ]},
        {"name": "shared", "rules": [
            rule("Shared", json!({"severity": "page"}),
                 Some(vec![alert(Some("b"), "firing"), alert(Some("a"), "pending")]), "firing"),
            rule("Templated", json!({"tenant": "{{ $labels.tenant }}"}),
                 Some(vec![alert(Some("b"), "firing")]), "firing"),
        ]},
    ]}});
    let kept = apply(&filter(Answer::Rules, &["a"]), &answer);
    let groups = kept["data"]["groups"].as_array().expect("groups");
    let names: Vec<(&str, Vec<&str>)> = groups
        .iter()
        .map(|g| {
            (
                g["name"].as_str().expect("name"),
                g["rules"]
                    .as_array()
                    .expect("rules")
                    .iter()
                    .map(|r| r["name"].as_str().expect("name"))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("a-rules", vec!["OwnA", "RecordA"]),
            ("shared", vec!["Shared"])
        ]
    );
    let shared = &groups[1]["rules"][0];
    assert_eq!(shared["alerts"].as_array().expect("alerts").len(), 1);
    assert_eq!(
        shared["state"], "pending",
        "recomputed from the caller's alerts"
    );
    assert!(
        !shared["lastError"]
            .as_str()
            .expect("text")
            .contains("tenant=\\\"b\\\"")
    );
    assert!(
        !kept.to_string().contains("OwnB") && !kept.to_string().contains("\"b\""),
        "{kept}"
    );
    assert_eq!(
        groups[0]["rules"][0]["lastError"], "many-to-many matching on tenant=\"b\"",
        "a tenant's own rule is shown as it is"
    );
}

#[test]
fn errors_pass_and_odd_shapes_are_refused() {
    let f = filter(Answer::Alerts, &["a"]);
    let error = json!({"status": "error", "errorType": "bad_data", "error": "no"});
    assert_eq!(apply(&f, &error), error);
    for odd in [
        json!({"status": "success", "data": {}}),
        json!({"status": "success", "data": {"alerts": {"a": 1}}}),
        json!({"status": "success", "data": {"alerts": [1]}}),
        json!({"status": "success", "data": []}),
    ] {
        assert!(f.apply(odd.to_string().as_bytes()).is_err(), "{odd}");
    }
    assert!(f.apply(b"not json").is_err());
    let rules = filter(Answer::Rules, &["a"]);
    for odd in [
        json!({"status": "success", "data": {"groups": [{"rules": {}}]}}),
        json!({"status": "success", "data": {"groups": [{"rules": [7]}]}}),
        json!({"status": "success", "data": {"groups": [{"rules": [{"alerts": {}}]}]}}),
    ] {
        assert!(rules.apply(odd.to_string().as_bytes()).is_err(), "{odd}");
    }
}

fn layer(max_answer_bytes: usize) -> TenantLabelLayer {
    let config = TenancyConfig {
        enabled: true,
        mode: TenancyMode::Static,
        tenants: vec!["a".into()],
        enforce: Enforcement::Label,
        ..TenancyConfig::default()
    };
    TenantLabelLayer::from_config(&config, &Default::default())
        .expect("valid")
        .expect("label mode")
        .for_upstream(max_answer_bytes)
}

const ALERTS: &str = r#"{"status":"success","data":{"alerts":[{"labels":{"tenant":"b"},"value":"202"},{"labels":{"tenant":"a"},"value":"101"}]}}"#;

#[tokio::test]
async fn through_the_layer() {
    let req = || {
        request(
            Method::GET,
            "http://p/api/v1/alerts",
            "",
            "/api/v1/alerts",
            Some(&["a"]),
        )
    };
    let (result, _) = send(&layer(1 << 20), req(), StatusCode::OK, ALERTS).await;
    let (status, body, length) = result.expect("filtered");
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("101") && !body.contains("202"), "{body}");
    assert_eq!(length, Some(body.len().to_string()));
    let (result, _) = send(
        &layer(1 << 20),
        req(),
        StatusCode::SERVICE_UNAVAILABLE,
        "down",
    )
    .await;
    assert_eq!(result.expect("passed").1, "down", "errors pass unfiltered");
    let (result, _) = send(&layer(10), req(), StatusCode::OK, ALERTS).await;
    let err = result.expect_err("too large");
    assert!(
        matches!(
            err.downcast_ref::<TenantLabelError>(),
            Some(TenantLabelError::AnswerTooLarge { limit: 10, .. })
        ),
        "{err}"
    );
    let (result, _) = send(&layer(1 << 20), req(), StatusCode::OK, "<html>").await;
    let err = result.expect_err("not json");
    assert!(err.to_string().contains("cannot be filtered"), "{err}");
    let rules = request(
        Method::GET,
        "http://p/api/v1/rules?type=alert",
        "",
        "/api/v1/rules",
        Some(&["a"]),
    );
    let (result, seen) = send(
        &layer(1 << 20),
        rules,
        StatusCode::OK,
        r#"{"status":"success","data":{"groups":[]}}"#,
    )
    .await;
    result.expect("filtered");
    assert_eq!(
        seen.expect("sent").query,
        [("type".to_owned(), "alert".to_owned())]
    );
}
