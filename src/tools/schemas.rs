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

/// `[{name, value}]`, as the TSDB statistics list their top entries.
fn name_values() -> Value {
    array(object(&[("name", t("string")), ("value", t("integer"))], &["name", "value"]))
}

/// `data` of a query tool: an instant vector (with its summary past 20
/// series), or a scalar or string as `[time, "value"]`.
fn instant_data() -> Value {
    let item = json!({
        "type": ["object", "number", "string"],
        "properties": {"metric": def("l"), "value": t("array"), "histogram": t("array")}
    });
    let ranked = array(object(&[("series", t("string")), ("value", t("number"))], &[]));
    let summary = object(
        &[
            ("count", t("integer")),
            ("top", ranked.clone()),
            ("bottom", ranked),
            ("labels", json!({"type": "object", "additionalProperties": object(
                &[("distinct", t("integer")), ("common", t("array"))], &[])})),
        ],
        &["count"],
    );
    object(
        &[
            ("resultType", json!({"enum": ["vector", "matrix", "scalar", "string"]})),
            ("result", array(item)),
            ("summary", summary),
        ],
        &["resultType", "result"],
    )
}

/// `data` of `execute_range_query`: statistics per series (`format:
/// summary`; every statistic a number, absent when the series has no
/// finite value) or Prometheus's matrix (`format: samples`).
fn range_data() -> Value {
    let stats = json!({
        "type": "object",
        "properties": {"labels": def("l"), "marks": array(t("string"))},
        "additionalProperties": t("number"),
        "required": ["labels", "points", "nan", "inf"]
    });
    let samples = object(
        &[("metric", def("l")), ("values", array(array(json!({"type": ["number", "string"]}))))],
        &["metric"],
    );
    object(
        &[
            ("resultType", t("string")),
            ("format", json!({"enum": ["summary"]})),
            ("window", object(&[("start", t("number")), ("end", t("number")), ("step", t("number"))], &[])),
            ("series", array(stats)),
            ("result", array(samples)),
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

/// The `data` schema of each tool, by unprefixed name.
fn data_schema(tool: &str) -> Value {
    let strings = || array(t("string"));
    match tool {
        "execute_query" => instant_data(),
        "execute_range_query" => range_data(),
        "list_metrics" | "list_label_names" | "list_label_values" => strings(),
        "get_metric_metadata" => json!({"type": "object", "additionalProperties":
            array(strings_but(&[], &["type", "help"]))}),
        "find_series" => array(def("l")),
        "get_targets" => object(
            &[
                ("activeTargets", array(strings_but(
                    &[("labels", def("l")), ("discoveredLabels", def("l")), ("lastScrapeDuration", t("number"))],
                    &["labels", "health"],
                ))),
                ("droppedTargets", array(object(&[("discoveredLabels", def("l"))], &[]))),
            ],
            &[],
        ),
        "get_build_info" | "get_flags" => strings_map(),
        "get_runtime_info" => json!({"type": "object", "properties": {"reloadConfigSuccess": t("boolean")},
            "additionalProperties": {"type": ["string", "integer"]}}),
        "get_config" => object(&[("yaml", t("string"))], &["yaml"]),
        "get_tsdb_stats" => object(
            &[
                ("headStats", json!({"type": "object", "additionalProperties": t("integer")})),
                ("seriesCountByMetricName", def("nv")),
                ("labelValueCountByLabelName", def("nv")),
                ("memoryInBytesByLabelName", def("nv")),
                ("seriesCountByLabelValuePair", def("nv")),
            ],
            &[],
        ),
        "get_alerts" => object(&[("alerts", array(def("a")))], &["alerts"]),
        "get_alertmanagers" => {
            let urls = array(object(&[("url", t("string"))], &["url"]));
            object(&[("activeAlertmanagers", urls.clone()), ("droppedAlertmanagers", urls)], &[])
        }
        "get_rules" => {
            let rule = object(
                &[
                    ("name", t("string")),
                    ("query", t("string")),
                    ("type", json!({"enum": ["alerting", "recording"]})),
                    ("labels", def("l")),
                    ("annotations", def("l")),
                    ("alerts", array(def("a"))),
                ],
                &["name", "query", "type"],
            );
            let group = object(&[("name", t("string")), ("file", t("string")), ("rules", array(rule))], &["name", "rules"]);
            object(&[("groups", array(group))], &["groups"])
        }
        "query_exemplars" => array(object(
            &[
                ("seriesLabels", def("l")),
                ("exemplars", array(object(
                    &[("labels", def("l")), ("value", t("string")), ("timestamp", t("number"))],
                    &["value", "timestamp"],
                ))),
            ],
            &["seriesLabels", "exemplars"],
        )),
        "get_targets_metadata" => array(strings_but(&[("target", def("l"))], &["metric"])),
        "check_ready" => object(
            &[("ready", t("boolean")), ("status", t("integer")), ("endpoint", t("string")), ("message", t("string"))],
            &["ready"],
        ),
        "validate_query" => object(
            &[
                ("valid", t("boolean")),
                ("expression", t("string")),
                ("selectors", array(t("object"))),
                ("functions", strings()),
                ("aggregations", strings()),
                ("subqueries", t("array")),
                ("warnings", strings()),
                ("series", array(object(
                    &[("selector", t("string")), ("series", t("integer")), ("error", t("string"))],
                    &["selector"],
                ))),
                ("error", t("string")),
                ("position", t("integer")),
                ("fragment", t("string")),
                ("hint", t("string")),
            ],
            &["valid"],
        ),
        _ => t("object"),
    }
}

/// The schemas a tool's schema may refer to by `#/$defs/<name>`.
fn defs() -> [(&'static str, Value); 4] {
    [
        ("l", strings_map()),
        ("s", array(t("string"))),
        ("nv", name_values()),
        (
            "a",
            strings_but(&[("labels", def("l")), ("annotations", def("l"))], &["labels", "state"]),
        ),
    ]
}

/// The output schema of `tool`: the envelope every answer shares (where it
/// came from, whether it was cut, what Prometheus and the guardrails warned
/// of) around the tool's own `data`.
pub fn output_schema(tool: &str) -> rmcp::model::JsonObject {
    let mut schema = object(
        &[
            ("upstream", t("string")),
            ("data", data_schema(tool)),
            ("truncated", t("boolean")),
            ("has_more", t("boolean")),
            ("total", t("integer")),
            ("returned", t("integer")),
            ("hint", t("string")),
            ("warnings", def("s")),
            ("infos", def("s")),
            ("hints", def("s")),
            ("guardrails", array(object(&[("rule", t("string")), ("action", t("string")), ("detail", t("string"))], &[]))),
        ],
        &["upstream", "data", "truncated", "has_more"],
    );
    // Only the definitions this schema uses (one level of nesting: `a` uses `l`).
    let text = schema.to_string();
    let used: Map<String, Value> = defs()
        .into_iter()
        .filter(|(name, _)| {
            text.contains(&format!("\"#/$defs/{name}\""))
                || (*name == "l" && text.contains("\"#/$defs/a\""))
        })
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect();
    if !used.is_empty() {
        schema["$defs"] = Value::Object(used);
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
            assert_ne!(data_schema(tool), t("object"), "{tool} has no data schema");
        }
    }

    #[test]
    fn every_reference_is_defined() {
        for tool in TOOL_NAMES {
            let schema = Value::Object(output_schema(tool));
            let text = schema.to_string();
            for (name, _) in defs() {
                if text.contains(&format!("\"#/$defs/{name}\"")) {
                    assert!(schema["$defs"][name].is_object(), "{tool}: $defs/{name} missing");
                }
            }
        }
    }
}
#[cfg(test)]
mod size_probe {
    #[test]
    fn probe() {
        for tool in crate::tools::registry::TOOL_NAMES {
            let s = serde_json::Value::Object(super::output_schema(tool)).to_string();
            let d = super::data_schema(tool).to_string();
            eprintln!("PROBE {tool} total={} data={}", s.len(), d.len());
        }
    }
}
