//! Concise text renderings: what a model reads instead of raw JSON.

use serde_json::{Map, Value};

/// `name{a="1", b="2"}` from a Prometheus label map.
pub fn series_name(labels: &Map<String, Value>) -> String {
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    write_series(
        name,
        labels.iter().map(|(k, v)| (k.as_str(), v)),
        |out, v| {
            use std::fmt::Write as _;
            match v {
                Value::String(s) => push_quoted(out, s),
                other => {
                    let _ = write!(out, "{other}");
                }
            }
        },
    )
}

/// `series_name` of a label set already read as strings (the summaries').
pub fn series_name_of(labels: &std::collections::BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    write_series(
        name,
        labels.iter().map(|(k, v)| (k.as_str(), v)),
        |out, v| push_quoted(out, v),
    )
}

/// The one writer of a series name: the metric name, then the other
/// labels in braces (`{}` for a nameless empty set).
fn write_series<'a, V: 'a>(
    name: &str,
    labels: impl Iterator<Item = (&'a str, V)>,
    value: impl Fn(&mut String, V),
) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(name);
    let mut first = true;
    for (k, v) in labels.filter(|(k, _)| *k != "__name__") {
        out.push_str(if first { "{" } else { ", " });
        first = false;
        out.push_str(k);
        out.push('=');
        value(&mut out, v);
    }
    if first {
        if name.is_empty() {
            out.push_str("{}");
        }
    } else {
        out.push('}');
    }
    out
}

/// `"value"` as `{:?}` writes it. Printable ASCII without quotes or
/// backslashes reads the same: one copy instead of a char-by-char escape
/// (this runs once per series of every answer).
fn push_quoted(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let _ = write!(out, "{s:?}");
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

/// A Prometheus timestamp (Unix seconds) as RFC 3339, UTC.
pub fn timestamp(value: &Value) -> String {
    let seconds = value.as_f64().unwrap_or_default();
    use chrono::Datelike as _;
    let Some(time) = chrono::DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64)
    else {
        return seconds.to_string();
    };
    // RFC 3339 directly (a strftime pattern is parsed on every call); years
    // it would write differently keep the pattern's spelling.
    let text = if (0..=9999).contains(&time.year()) {
        time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    } else {
        time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    };
    match text.strip_suffix(".000Z") {
        Some(whole) => format!("{whole}Z"),
        None => text,
    }
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
        // escaping is exactly `{:?}`'s; numbers as JSON
        let odd = json!({"__name__": "m", "a": "q\"b\\c\n", "b": "é", "c": 1});
        assert_eq!(
            series_name(odd.as_object().expect("object")),
            format!("m{{a={:?}, b={:?}, c=1}}", "q\"b\\c\n", "é")
        );
        assert_eq!(series_name(json!({}).as_object().expect("object")), "{}");
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
