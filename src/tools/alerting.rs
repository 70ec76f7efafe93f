//! Alerting tools: active alerts and the rules that produce them.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::render::{count, series_name, str_field};
use super::{Family, ToolContext, ToolError, ToolOutput};
use crate::upstream::ApiCall;

/// Which alerts `get_alerts` returns.
#[derive(Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Pending,
}

/// Arguments of `get_alerts`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsArgs {
    /// Only alerts in this state.
    state: Option<AlertState>,
    /// Most alerts to return.
    limit: Option<u64>,
    /// Upstream name (default: the first configured).
    upstream: Option<String>,
}

/// Which rules `get_rules` returns.
#[derive(Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum RuleType {
    Alert,
    Record,
}

/// Arguments of `get_rules`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesArgs {
    /// alert or record.
    #[serde(rename = "type")]
    rule_type: Option<RuleType>,
    /// Only rules with these names.
    #[serde(default)]
    rule_name: Vec<String>,
    /// Only these rule groups.
    #[serde(default)]
    rule_group: Vec<String>,
    /// Only groups from these files.
    #[serde(default)]
    file: Vec<String>,
    /// Most rules to return.
    limit: Option<u64>,
    /// Upstream name (default: the first configured).
    upstream: Option<String>,
}

/// `get_alerts`: pending and firing alerts.
pub async fn alerts(ctx: ToolContext, args: AlertsArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall::get("/api/v1/alerts"))
        .await?;
    let mut data = answer.data;
    let wanted = args.state.map(|s| match s {
        AlertState::Firing => "firing",
        AlertState::Pending => "pending",
    });
    let mut alerts: Vec<Value> = match data.remove("alerts") {
        Some(Value::Array(alerts)) => alerts,
        _ => Vec::new(),
    };
    alerts.retain(|a| wanted.is_none_or(|w| str_field(a, "state") == w));
    let total = alerts.len();
    alerts.truncate(limit);
    let mut text = count(total, "alert", "alerts");
    for alert in &alerts {
        let labels = alert.get("labels").and_then(Value::as_object);
        text.push_str(&format!(
            "\n{} {} since {} value {}",
            labels.map(series_name).unwrap_or_default(),
            str_field(alert, "state"),
            str_field(alert, "activeAt"),
            str_field(alert, "value"),
        ));
        if let Some(summary) = alert
            .pointer("/annotations/summary")
            .and_then(Value::as_str)
        {
            text.push_str(&format!(": {summary}"));
        }
    }
    let returned = alerts.len();
    data.insert("alerts".into(), Value::Array(alerts));
    Ok(ToolOutput::new(upstream.name(), Value::Object(data), text)
        .counted(returned, total, Family::Alerting)
        .with_notes(answer.warnings, answer.infos))
}

/// `get_rules`: recording and alerting rules with their health.
pub async fn rules(ctx: ToolContext, args: RulesArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let type_name = args.rule_type.map(|t| match t {
        RuleType::Alert => "alerting",
        RuleType::Record => "recording",
    });
    let mut params: Vec<(&'static str, String)> = Vec::new();
    if let Some(t) = args.rule_type {
        params.push((
            "type",
            if t == RuleType::Alert {
                "alert"
            } else {
                "record"
            }
            .into(),
        ));
    }
    params.extend(args.rule_name.iter().map(|n| ("rule_name[]", n.clone())));
    params.extend(args.rule_group.iter().map(|g| ("rule_group[]", g.clone())));
    params.extend(args.file.iter().map(|f| ("file[]", f.clone())));
    let answer = upstream
        .api::<Map<String, Value>>(ApiCall {
            endpoint: "/api/v1/rules",
            path: "/api/v1/rules".into(),
            params,
            post: false,
        })
        .await?;
    let mut data = answer.data;
    let mut groups: Vec<Value> = match data.remove("groups") {
        Some(Value::Array(groups)) => groups,
        _ => Vec::new(),
    };
    // Filter here too: older Prometheus versions ignore some parameters.
    let listed = |list: &[String], value: &str| list.is_empty() || list.iter().any(|x| x == value);
    groups.retain(|g| {
        listed(&args.rule_group, str_field(g, "name")) && listed(&args.file, str_field(g, "file"))
    });
    let (mut total, mut budget) = (0, limit);
    let mut text = String::new();
    for group in &mut groups {
        let name = str_field(group, "name").to_owned();
        let file = str_field(group, "file").to_owned();
        let Some(Value::Array(rules)) = group.get_mut("rules") else {
            continue;
        };
        rules.retain(|r| {
            type_name.is_none_or(|t| str_field(r, "type") == t)
                && listed(&args.rule_name, str_field(r, "name"))
        });
        total += rules.len();
        rules.truncate(budget);
        budget -= rules.len();
        if rules.is_empty() {
            continue;
        }
        text.push_str(&format!("group {name} ({file}):\n"));
        for rule in rules.iter() {
            text.push_str(&render_rule(rule));
        }
    }
    groups.retain(|g| {
        g.get("rules")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty())
    });
    let returned = limit - budget;
    let text = format!("{}\n{}", count(total, "rule", "rules"), text.trim_end());
    data.insert("groups".into(), Value::Array(groups));
    Ok(ToolOutput::new(upstream.name(), Value::Object(data), text)
        .counted(returned, total, Family::Alerting)
        .with_notes(answer.warnings, answer.infos))
}

fn render_rule(rule: &Value) -> String {
    let state = str_field(rule, "state");
    let error = str_field(rule, "lastError");
    format!(
        "  {} [{}] health {}{}{}: {}\n",
        str_field(rule, "name"),
        str_field(rule, "type"),
        str_field(rule, "health"),
        if state.is_empty() {
            String::new()
        } else {
            format!(", state {state}")
        },
        if error.is_empty() {
            String::new()
        } else {
            format!(", error {error}")
        },
        str_field(rule, "query"),
    )
}
