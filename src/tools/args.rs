//! Argument types shared by the tools: times, durations, limits, and the
//! compact JSON Schemas clients see in `tools/list`.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use rmcp::model::JsonObject;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::promtime::{duration_from_seconds, now_unix, parse_duration, parse_time};

/// A point in time, resolved when the arguments are read; holds Unix
/// seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeArg(pub f64);

/// A duration argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurationArg(pub Duration);

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = TimeArg;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a time: RFC 3339 (2026-01-02T15:04:05Z), Unix seconds, or now / now-1h")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TimeArg, E> {
        parse_time(v, now_unix()).map(TimeArg).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TimeArg, E> {
        if v.is_finite() && v >= 0.0 {
            Ok(TimeArg(v))
        } else {
            Err(E::custom(format!(
                "{v} is not a Unix time: send seconds since 1970"
            )))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TimeArg, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TimeArg, E> {
        self.visit_f64(v as f64)
    }
}

impl<'de> Deserialize<'de> for TimeArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimeVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = DurationArg;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: 30s, 5m, 1h30m, or a number of seconds")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationArg, E> {
        parse_duration(v).map(DurationArg).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationArg, E> {
        duration_from_seconds(v).map(DurationArg).ok_or_else(|| {
            E::custom(format!(
                "{v} is not a duration: send a non-negative number of seconds or 30s, 5m"
            ))
        })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationArg, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationArg, E> {
        self.visit_f64(v as f64)
    }
}

impl<'de> Deserialize<'de> for DurationArg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for TimeArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Time".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "number"],
            "description": "RFC 3339, Unix seconds, or now / now-1h / now-30m"
        })
    }
}

impl JsonSchema for DurationArg {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "number"],
            "description": "30s, 5m, 1h30m, or seconds"
        })
    }
}

/// Arguments many tools share, described once in the server instructions
/// instead of in every tool's schema (`tools/list` stays small).
pub const COMMON_ARGUMENTS: &[&str] = &[
    "upstream",
    "org_id",
    "limit",
    "unlimited",
    "timeout",
    "stats",
    "lookback_delta",
];

/// The input schema of an arguments struct, as small as it can be: inlined,
/// no `$schema`, no titles, no `null` alternatives (optional arguments are
/// simply absent from `required`). Struct doc comments are dropped too: the
/// tool's description says the same.
pub fn input_schema<T: JsonSchema>() -> JsonObject {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = schema.to_value();
    compact(&mut value);
    if let Some(serde_json::Value::Object(properties)) = value.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            let Some(property) = property.as_object_mut() else {
                continue;
            };
            if COMMON_ARGUMENTS.contains(&name.as_str()) {
                property.remove("description");
            }
            // Defaults and `minimum: 0` (from unsigned types) say nothing the
            // tool's answer to a bad value would not.
            property.remove("default");
            if property.get("minimum").is_some_and(|m| m == 0) {
                property.remove("minimum");
            }
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("description");
    }
    match value {
        serde_json::Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

/// Removes schemars' titles, `format` hints and `null` alternatives.
fn compact(value: &mut serde_json::Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    // Only the annotations: a property may be called `format` or `title`.
    for annotation in ["title", "format"] {
        if object
            .get(annotation)
            .is_some_and(serde_json::Value::is_string)
        {
            object.remove(annotation);
        }
    }
    if let Some(serde_json::Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(serde_json::Value::Array(any_of)) = object.get("anyOf").cloned() {
        let kept: Vec<_> = any_of
            .into_iter()
            .filter(|s| s.get("type").is_none_or(|t| t != "null"))
            .collect();
        if kept.len() == 1 {
            object.remove("anyOf");
            if let serde_json::Value::Object(inner) = &kept[0] {
                for (k, v) in inner {
                    object.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    if let Some(serde_json::Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    for (_, child) in object.iter_mut() {
        match child {
            serde_json::Value::Object(_) => compact(child),
            serde_json::Value::Array(items) => items.iter_mut().for_each(compact),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        /// The PromQL expression.
        query: String,
        time: Option<TimeArg>,
        step: Option<DurationArg>,
        limit: Option<u32>,
        /// How to answer.
        format: Option<String>,
    }

    #[test]
    fn schema_is_compact_and_closed() {
        let schema = serde_json::Value::Object(input_schema::<Example>());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["query"]));
        assert_eq!(schema["properties"]["limit"]["type"], "integer");
        assert_eq!(
            schema["properties"]["time"]["type"],
            json!(["string", "number"])
        );
        assert_eq!(
            schema["properties"]["query"]["description"],
            "The PromQL expression."
        );
        // A property named like an annotation is a property all the same.
        assert_eq!(schema["properties"]["format"]["type"], "string");
        let text = schema.to_string();
        assert!(
            !text.contains("null") && !text.contains("title") && !text.contains("$schema"),
            "{text}"
        );
    }

    #[test]
    fn times_and_durations_from_json() {
        let t: TimeArg = serde_json::from_value(json!(1767366245)).expect("number");
        assert_eq!(t.0, 1_767_366_245.0);
        let t: TimeArg = serde_json::from_value(json!("2026-01-02T15:04:05Z")).expect("rfc3339");
        assert_eq!(t.0, 1_767_366_245.0);
        let d: DurationArg = serde_json::from_value(json!("1h30m")).expect("text");
        assert_eq!(d.0, Duration::from_secs(5400));
        let d: DurationArg = serde_json::from_value(json!(15)).expect("number");
        assert_eq!(d.0, Duration::from_secs(15));
        let err = serde_json::from_value::<TimeArg>(json!(true)).expect_err("bool");
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let err = serde_json::from_value::<DurationArg>(json!("soon")).expect_err("word");
        assert!(err.to_string().contains("Prometheus duration"), "{err}");
    }
}
