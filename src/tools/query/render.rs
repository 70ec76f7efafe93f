//! What an instant query's answer reads like: the series with their
//! values when they are few, a summary when they are many.

use serde_json::{Map, Value};

use crate::tools::render::{count, series_at, timestamp};
use crate::tools::summary::vector::{self, LIST_UP_TO};
use crate::tools::{Family, ToolOutput};
use crate::upstream::Notes;

/// Renders an instant query's data; the truncate layer has already kept at
/// most the call's `limit` series, and `notes` counts what it dropped.
pub fn instant_output(upstream: &str, mut data: Map<String, Value>, notes: &Notes) -> ToolOutput {
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    // The declared shape, whatever the upstream left out.
    data.insert("resultType".into(), Value::String(result_type.clone()));
    data.entry("result")
        .or_insert_with(|| Value::Array(Vec::new()));
    let mut counts = None;
    let text = match data.get("result") {
        Some(Value::Array(items)) if result_type == "vector" => {
            let total = notes.items_total(items.len());
            counts = Some((items.len(), total));
            let mut text = format!("{} (vector)", count(total, "series", "series"));
            if let Some(time) = items
                .first()
                .and_then(|i| i.get("value"))
                .and_then(|v| v.get(0))
            {
                text.push_str(&format!(" at {}", timestamp(time)));
            }
            if items.len() > LIST_UP_TO {
                let summary = vector::summarize(items);
                text.push_str(&format!(
                    ", summarized (lower `limit` or aggregate to list them):\n{}",
                    summary.text()
                ));
                data.insert(
                    "summary".into(),
                    serde_json::to_value(summary).unwrap_or_default(),
                );
            } else {
                for item in items {
                    text.push('\n');
                    text.push_str(&series_at(item, "metric"));
                    text.push(' ');
                    text.push_str(&instant_value(item));
                }
            }
            text
        }
        Some(result) => render_scalar(&result_type, result),
        None => format!("{result_type}: no result"),
    };
    let output = ToolOutput::new(Family::Query, upstream, Value::Object(data), text);
    match counts {
        Some((returned, total)) => output.counted(returned, total),
        None => output,
    }
}

/// The value of one vector item, as Prometheus wrote it.
fn instant_value(item: &Value) -> String {
    match item
        .get("value")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([_, value]) => value.as_str().unwrap_or_default().to_owned(),
        _ if item.get("histogram").is_some() => {
            "native histogram (see structured content)".to_owned()
        }
        _ => "no value".to_owned(),
    }
}

fn render_scalar(result_type: &str, result: &Value) -> String {
    let pair = result.as_array().map(Vec::as_slice).unwrap_or_default();
    match pair {
        [time, value] => format!(
            "{result_type}: {} @ {}",
            value.as_str().unwrap_or_default(),
            timestamp(time)
        ),
        _ => format!("{result_type}: {result}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_prometheus_layers::outbound::truncate::{Truncation, TruncationReason};
    use serde_json::json;

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    /// The truncate layer kept one series of two (its record in `notes`).
    #[test]
    fn a_cut_vector_is_counted_from_the_layers_record() {
        let notes = Notes {
            truncation: Some(Truncation {
                truncated: true,
                kept_items: 1,
                dropped_items_at_least: 1,
                bytes_seen: 200,
                scan_complete: true,
                reason: Some(TruncationReason::Items),
            }),
            ..Notes::default()
        };
        let output = instant_output(
            "local",
            data(json!({"resultType": "vector", "result": [
                {"metric": {"__name__": "up", "job": "a"}, "value": [1767366245, "1"]},
            ]})),
            &notes,
        )
        .with_notes(notes.clone());
        assert!(output.truncated);
        assert_eq!((output.returned, output.total), (Some(1), Some(2)));
        assert_eq!(output.data["result"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            output.text,
            "2 series (vector) at 2026-01-02T15:04:05Z\nup{job=\"a\"} 1"
        );
        assert!(output.full_text().contains("topk"));
    }

    #[test]
    fn many_series_are_summarized_in_the_text_and_kept_in_the_structure() {
        let items: Vec<Value> = (0..25)
            .map(|i| json!({"metric": {"job": format!("j{i}")}, "value": [1767366245, i.to_string()]}))
            .collect();
        let output = instant_output(
            "local",
            data(json!({"resultType": "vector", "result": items})),
            &Notes::default(),
        );
        assert!(
            output.text.contains("25 series (vector)"),
            "{}",
            output.text
        );
        assert!(
            output.text.contains(r#"top 5: {job="j24"} 24"#),
            "{}",
            output.text
        );
        assert!(!output.text.contains("j13"), "not listed: {}", output.text);
        assert_eq!(output.data["result"].as_array().map(Vec::len), Some(25));
        assert_eq!(output.data["summary"]["count"], 25);
    }

    #[test]
    fn scalar_has_no_count() {
        let output = instant_output(
            "local",
            data(json!({"resultType": "scalar", "result": [1767366245, "42"]})),
            &Notes::default(),
        );
        assert_eq!(output.text, "scalar: 42 @ 2026-01-02T15:04:05Z");
        assert_eq!(output.total, None);
    }
}
