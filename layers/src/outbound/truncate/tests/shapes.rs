//! Answer shapes of the Prometheus endpoints, cut points and chunking,
//! straight through the scanner.

use serde_json::{Value, json};

use super::super::TruncationReason;
use super::{envelope, parse, scan, series, vector_answer};

/// A string with every escape kind, multibyte UTF-8 and a surrogate pair.
fn tricky_text(len: usize) -> String {
    let unit = "line: \"quoted\" back\\slash tab\t é ü 日本 😀 \u{1}\n";
    unit.repeat(len / unit.len() + 1)
}

/// A config-like answer whose one string is 200 KB, escaped by serde_json
/// and, once, with `\u` escapes including a surrogate pair.
fn config_answer() -> String {
    let yaml = serde_json::to_string(&tricky_text(200_000)).expect("string");
    let yaml = yaml
        .replacen("é", "\\u00e9", 50)
        .replacen("😀", "\\ud83d\\ude00", 50);
    format!(r#"{{"status":"success","data":{{"yaml":{yaml}}}}}"#)
}

#[test]
fn config_yaml_is_cut_inside_the_string() {
    let input = config_answer();
    let original = parse(input.as_bytes())["data"]["yaml"]
        .as_str()
        .map(str::to_owned)
        .expect("yaml");
    for max_bytes in (1024..9000).step_by(7) {
        let (bytes, truncation) = scan(input.as_bytes(), max_bytes, 500, 4096);
        assert!(bytes.len() <= max_bytes, "{} > {max_bytes}", bytes.len());
        let yaml = parse(&bytes)["data"]["yaml"]
            .as_str()
            .map(str::to_owned)
            .expect("yaml kept");
        assert!(
            original.starts_with(&yaml) && yaml.len() + 60 > max_bytes / 2,
            "{max_bytes}"
        );
        assert!(truncation.truncated);
        assert_eq!(truncation.reason, Some(TruncationReason::Bytes));
    }
}

#[test]
fn every_chunking_gives_the_same_output() {
    let cases = [
        (vector_answer(40), 2048, 500),
        (vector_answer(40), 4096, 7),
        (config_answer()[..3000].to_owned() + "\"}}", 1500, 500),
        (
            envelope(&json!([tricky_text(300), "a", "b"]), true),
            1024,
            500,
        ),
    ];
    for (input, max_bytes, max_items) in cases {
        let input = input.as_bytes();
        let whole = scan(input, max_bytes, max_items, input.len());
        for chunk in [1, 2, 3, 5, 64] {
            assert_eq!(
                scan(input, max_bytes, max_items, chunk),
                whole,
                "chunk {chunk}"
            );
        }
        for split in 0..input.len() {
            let mut scanner = super::Scanner::new(max_bytes, max_items);
            scanner.feed(&input[..split]);
            scanner.feed(&input[split..]);
            assert_eq!(scanner.finish(true), whole, "split at {split}");
        }
    }
}

#[test]
fn every_budget_gives_valid_json_and_a_prefix() {
    let input = vector_answer(30);
    let full = parse(input.as_bytes());
    let items = full["data"]["result"].as_array().expect("result");
    for max_bytes in 1024..input.len() + 10 {
        let (bytes, truncation) = scan(input.as_bytes(), max_bytes, 500, 97);
        let output = parse(&bytes);
        let kept = output["data"]["result"].as_array().expect("result");
        assert_eq!(kept[..], items[..kept.len()]);
        assert_eq!(truncation.kept_items, kept.len());
        assert_eq!(
            truncation.kept_items + truncation.dropped_items_at_least,
            30
        );
        assert_eq!(output["warnings"], full["warnings"]);
        assert!(
            bytes.len() <= max_bytes + 24,
            "{max_bytes}: {}",
            bytes.len()
        );
    }
}

#[test]
fn label_values_are_items() {
    let values: Vec<String> = (0..5000).map(|i| format!("value-{i}")).collect();
    let input = envelope(&json!(values), true);
    let (bytes, truncation) = scan(input.as_bytes(), 50_000, 100, 4096);
    let output = parse(&bytes);
    assert_eq!(output["data"], json!(values[..100]));
    assert!(output["warnings"].is_array());
    assert_eq!(
        (truncation.kept_items, truncation.dropped_items_at_least),
        (100, 4900)
    );
}

#[test]
fn one_huge_label_value_is_cut() {
    let input = envelope(&json!([tricky_text(100_000), "next"]), false);
    let (bytes, truncation) = scan(input.as_bytes(), 2000, 100, 4096);
    let output = parse(&bytes);
    let kept = output["data"].as_array().expect("data");
    assert_eq!(kept.len(), 1);
    assert!(tricky_text(100_000).starts_with(kept[0].as_str().expect("string")));
    assert_eq!(
        (truncation.kept_items, truncation.dropped_items_at_least),
        (1, 1)
    );
}

#[test]
fn series_and_metadata() {
    let labels: Vec<Value> = (0..300)
        .map(|i| json!({"__name__": "up", "instance": format!("h{i}")}))
        .collect();
    let (bytes, truncation) = scan(envelope(&json!(labels), false).as_bytes(), 50_000, 20, 999);
    assert_eq!(parse(&bytes)["data"], json!(labels[..20]));
    assert_eq!(truncation.dropped_items_at_least, 280);

    let mut metadata = serde_json::Map::new();
    for i in 0..300 {
        metadata.insert(
            format!("metric_{i:03}"),
            json!([{"type": "counter", "help": "Some help.", "unit": ""}]),
        );
    }
    let input = envelope(&Value::Object(metadata.clone()), false);
    let (bytes, truncation) = scan(input.as_bytes(), 50_000, 20, 999);
    let output = parse(&bytes);
    let kept = output["data"].as_object().expect("object");
    assert_eq!(
        kept.len(),
        20,
        "a metric whose entries were all dropped is dropped"
    );
    assert!(
        kept.iter()
            .all(|(name, entries)| metadata[name] == *entries)
    );
    assert_eq!(
        (truncation.kept_items, truncation.dropped_items_at_least),
        (20, 280)
    );
}

#[test]
fn targets_alerts_and_rules() {
    let target = |i: usize| json!({"labels": {"job": "node", "instance": format!("h{i}")}, "health": "up", "lastError": ""});
    let data = json!({
        "activeTargets": (0..50).map(target).collect::<Vec<_>>(),
        "droppedTargets": (0..70).map(target).collect::<Vec<_>>(),
    });
    let (bytes, truncation) = scan(envelope(&data, false).as_bytes(), 50_000, 60, 512);
    let output = parse(&bytes);
    assert_eq!(output["data"]["activeTargets"], data["activeTargets"]);
    assert_eq!(
        output["data"]["droppedTargets"].as_array().map(Vec::len),
        Some(10)
    );
    assert_eq!(
        (truncation.kept_items, truncation.dropped_items_at_least),
        (60, 60)
    );

    let (bytes, truncation) = scan(envelope(&data, false).as_bytes(), 50_000, 30, 512);
    let output = parse(&bytes);
    assert_eq!(
        output["data"]["activeTargets"].as_array().map(Vec::len),
        Some(30)
    );
    assert!(output["data"].get("droppedTargets").is_none());
    assert_eq!(truncation.dropped_items_at_least, 90);

    let rule = |i: usize| json!({"name": format!("r{i}"), "query": "up == 0", "health": "ok"});
    let group =
        |g: usize| json!({"name": format!("g{g}"), "rules": (0..40).map(rule).collect::<Vec<_>>()});
    let data = json!({"groups": (0..30).map(group).collect::<Vec<_>>()});
    let (bytes, truncation) = scan(envelope(&data, false).as_bytes(), 20_000, 500, 512);
    let groups = parse(&bytes)["data"]["groups"]
        .as_array()
        .cloned()
        .expect("groups");
    assert!(
        !groups.is_empty()
            && groups[..] == data["groups"].as_array().expect("groups")[..groups.len()]
    );
    assert_eq!(
        truncation.kept_items + truncation.dropped_items_at_least,
        30
    );
}

#[test]
fn one_huge_series_keeps_its_first_samples() {
    let values: Vec<Value> = (0..20_000)
        .map(|i| json!([1_700_000_000 + i, format!("{i}")]))
        .collect();
    let data = json!({"resultType": "matrix", "result": [{"metric": {"job": "a"}, "values": values}, series(1)]});
    let (bytes, truncation) = scan(envelope(&data, true).as_bytes(), 5000, 500, 4096);
    let output = parse(&bytes);
    let kept = output["data"]["result"][0]["values"]
        .as_array()
        .expect("values");
    assert!(
        kept.len() > 100 && kept[..] == values[..kept.len()],
        "{}",
        kept.len()
    );
    assert_eq!(output["data"]["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (truncation.kept_items, truncation.dropped_items_at_least),
        (1, 1)
    );
    assert!(output["warnings"].is_array());
}

#[test]
fn small_answers_are_byte_identical() {
    let answers = [
        envelope(&json!(["a", "b\"\\\u{e9}"]), true),
        envelope(&json!({"yaml": "global:\n  scrape_interval: 15s\n"}), false),
        envelope(
            &json!({"resultType": "scalar", "result": [1.5e3, "-1"]}),
            false,
        ),
        envelope(&json!([]), false),
        "{ \"status\" : \"success\" ,\n \"data\" : [ true , false , null , -0.5E+2 ] }\n"
            .to_owned(),
        r#"{"status":"error","errorType":"bad_data","error":"x"}"#.to_owned(),
        "[1,2,3]".to_owned(),
        "\"just a string\"".to_owned(),
        "42".to_owned(),
    ];
    for input in answers {
        let (bytes, truncation) = scan(input.as_bytes(), 50_000, 500, 3);
        assert_eq!(bytes, input.as_bytes());
        assert!(!truncation.truncated, "{input}");
    }
}
