//! Concise text renderings: what a model reads instead of raw JSON.

use serde_json::{Map, Value};

/// `name{a="1", b="2"}` from a Prometheus label map.
pub fn series_name(labels: &Map<String, Value>) -> String {
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={}", quoted(v)))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", rest.join(", "))
    }
}

/// The series name of the label map at `value[key]`, or "" when absent.
pub fn series_at(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_object)
        .map(series_name)
        .unwrap_or_default()
}

fn quoted(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A Prometheus timestamp (Unix seconds) as RFC 3339, UTC.
pub fn timestamp(value: &Value) -> String {
    let seconds = value.as_f64().unwrap_or_default();
    chrono::DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .map(|t| t.replace(".000Z", "Z"))
        .unwrap_or_else(|| seconds.to_string())
}

/// A string field of a JSON object, or "".
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Plural-aware count: `1 series`, `2 targets`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn series_names() {
        let labels = json!({"__name__": "up", "job": "prometheus", "instance": "a:9090"});
        assert_eq!(
            series_name(labels.as_object().expect("object")),
            r#"up{instance="a:9090", job="prometheus"}"#
        );
        let bare = json!({"__name__": "up"});
        assert_eq!(series_name(bare.as_object().expect("object")), "up");
        let nameless = json!({"job": "x"});
        assert_eq!(
            series_name(nameless.as_object().expect("object")),
            r#"{job="x"}"#
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(timestamp(&json!(1767366245)), "2026-01-02T15:04:05Z");
        assert_eq!(timestamp(&json!(1767366245.5)), "2026-01-02T15:04:05.500Z");
    }
}
