//! The output schema of every tool: what its `structuredContent` holds, in
//! JSON Schema 2020-12 (the MCP default dialect). Written to be exact and
//! small: every field has its type, objects that Prometheus may extend stay
//! open, and the parts a schema repeats live in its `$defs`. `tools/list`
//! carries them all, so every byte here is paid on each listing.

use serde_json::{Map, Value, json};

/// `{"type": t}`.
fn t(name: &str) -> Value {
    json!({ "type": name })
}

/// An array of `items`.
fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

/// An object with these properties, of which `required` must be there.
fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A reference to an entry of the schema's `$defs`.
fn def(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

/// A label set, or any other map of strings.
fn strings_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// `data` of a query tool: Prometheus's result (an instant vector, or a
/// scalar or string as `[time, "value"]`), and its summary past 20 series.
fn instant_data() -> Value {
    object(
        &[
            ("resultType", t("string")),
            ("result", t("array")),
            ("summary", t("object")),
        ],
        &["resultType", "result"],
    )
}

/// `data` of `execute_range_query`: statistics per series (`format:
/// summary`: labels, marks, and numbers: points, min, max, mean, last,
/// p95, delta, trend_per_hour, nan, inf…) or Prometheus's matrix (`format:
/// samples`).
fn range_data() -> Value {
    let stats = json!({
        "type": "object",
        "properties": {"labels": def("l"), "marks": t("array")},
        "additionalProperties": t("number")
    });
    object(
        &[
            ("resultType", t("string")),
            ("format", t("string")),
            ("window", t("object")),
            ("series", array(stats)),
            ("result", t("array")),
        ],
        &["resultType"],
    )
}

/// A map whose values are strings but for the `typed` properties.
fn strings_but(typed: &[(&str, Value)], required: &[&str]) -> Value {
    let mut schema = object(typed, required);
    schema["additionalProperties"] = t("string");
    schema
}

/// The `data` schema of each tool, by unprefixed name: the shape down to
/// where Prometheus's own objects begin (those stay open: Prometheus adds
/// fields from version to version).
fn data_schema(tool: &str) -> Value {
    let strings = || array(t("string"));
    let arrays = |names: &[&str]| {
        let fields: Vec<(&str, Value)> = names.iter().map(|n| (*n, t("array"))).collect();
        object(&fields, &[])
    };
    match tool {
        "execute_query" => instant_data(),
        "execute_range_query" => range_data(),
        "list_metrics" | "list_label_names" | "list_label_values" => strings(),
        "get_metric_metadata" => {
            json!({"type": "object", "additionalProperties": {"type": ["array", "number"]}})
        }
        "find_series" => array(def("l")),
        "get_targets" => arrays(&["activeTargets", "droppedTargets"]),
        "get_flags" => def("l"),
        // Mimir adds `features`, an object.
        "get_build_info" => {
            json!({"type": "object", "additionalProperties": {"type": ["string", "object"]}})
        }
        "get_runtime_info" => t("object"),
        "get_config" => object(&[("yaml", t("string"))], &["yaml"]),
        "get_tsdb_stats" => json!({"type": "object", "properties": {"headStats": t("object")},
            "additionalProperties": t("array")}),
        "get_alerts" => object(
            &[(
                "alerts",
                array(strings_but(
                    &[("labels", def("l")), ("annotations", def("l"))],
                    &[],
                )),
            )],
            &["alerts"],
        ),
        "get_alertmanagers" => arrays(&["activeAlertmanagers", "droppedAlertmanagers"]),
        "get_rules" => object(
            &[(
                "groups",
                array(object(&[("name", t("string")), ("rules", t("array"))], &[])),
            )],
            &["groups"],
        ),
        "query_exemplars" => array(object(
            &[("seriesLabels", def("l")), ("exemplars", t("array"))],
            &[],
        )),
        "get_targets_metadata" => array(strings_but(&[("target", def("l"))], &[])),
        "check_ready" => object(
            &[
                ("ready", t("boolean")),
                // No status when the upstream could not be asked at all.
                ("status", json!({"type": ["integer", "null"]})),
                ("message", t("string")),
            ],
            &["ready"],
        ),
        "validate_query" => json!({"type": "object", "properties": {"valid": t("boolean"),
            "expression": t("string"), "position": {"type": ["integer", "null"]}},
            "additionalProperties": {"type": ["array", "string"]}, "required": ["valid"]}),
        "render_range_query" => json!({"type": "object", "properties": {"resultType": t("string"),
            "unit": {"type": ["string", "null"]}, "plot": t("object")},
            "additionalProperties": t("number"), "required": ["series", "plotted", "width", "height"]}),
        _ => json!({}),
    }
}

/// Replaces every reference to the label-set definition with the
/// definition itself (where it is used once, a reference costs more).
fn inline_labels(value: &mut Value) {
    match value {
        Value::Object(object) if object.get("$ref").is_some_and(|r| r == LABELS_REF) => {
            *value = strings_map();
        }
        Value::Object(object) => object.values_mut().for_each(inline_labels),
        Value::Array(items) => items.iter_mut().for_each(inline_labels),
        _ => {}
    }
}

/// The one shared definition: a label set (`#/$defs/l`).
const LABELS_REF: &str = "#/$defs/l";

/// The output schema of `tool`: the envelope every answer shares (where it
/// came from, whether it was cut, what Prometheus and the guardrails warned
/// of) around the tool's own `data`.
pub fn output_schema(tool: &str) -> rmcp::model::JsonObject {
    // The envelope's optional fields (has_more, total, returned, hint,
    // warnings, infos, hints, guardrails) are documented in the README, not
    // declared: each declaration is paid on every listing, for every tool.
    let mut schema = json!({
        "type": "object",
        "properties": {"upstream": t("string"), "truncated": t("boolean"), "data": data_schema(tool)},
        "required": ["upstream", "truncated", "data"],
    });
    // Label sets are the one part a schema repeats: defined once where
    // they recur, written in place where they occur once.
    let uses = schema.to_string().matches(LABELS_REF).count();
    if uses > 1 {
        schema["$defs"] = json!({"l": strings_map()});
    } else {
        inline_labels(&mut schema);
    }
    match schema {
        Value::Object(object) => object,
        _ => rmcp::model::JsonObject::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::registry::TOOL_NAMES;

    #[test]
    fn every_tool_has_its_own_data_schema() {
        for tool in TOOL_NAMES {
            assert_ne!(data_schema(tool), json!({}), "{tool} has no data schema");
        }
    }

    #[test]
    fn every_reference_is_defined() {
        for tool in TOOL_NAMES {
            let schema = Value::Object(output_schema(tool));
            if schema.to_string().contains(LABELS_REF) {
                assert_eq!(schema["$defs"]["l"], strings_map(), "{tool}");
            } else {
                assert!(schema.get("$defs").is_none(), "{tool}: unused $defs");
            }
        }
    }
}
