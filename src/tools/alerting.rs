//! Alerting tools: active alerts and the rules that produce them.

use futures_util::{StreamExt, stream};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::render::{count, series_at, str_field};
use super::{Family, Target, ToolContext, ToolError, ToolOutput};
use crate::upstream::{ApiCall, Notes};

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
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
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
    /// Upstream name (default: first).
    upstream: Option<String>,
    /// Tenants, a|b (default: all yours).
    org_id: Option<String>,
}

/// `get_alerts`: pending and firing alerts.
pub async fn alerts(ctx: ToolContext, args: AlertsArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
    let (mut alerts, notes) = fan_out(
        &upstream,
        ApiCall::get("/api/v1/alerts"),
        "alerts",
        ctx.max_tenants(),
    )
    .await?;
    let wanted = args.state.map(|s| match s {
        AlertState::Firing => "firing",
        AlertState::Pending => "pending",
    });
    alerts.retain(|a| wanted.is_none_or(|w| str_field(a, "state") == w));
    let total = alerts.len();
    alerts.truncate(limit);
    let mut text = count(total, "alert", "alerts");
    for alert in &alerts {
        text.push_str(&format!(
            "\n{} {} since {} value {}",
            series_at(alert, "labels"),
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
    let data = json!({ "alerts": alerts });
    Ok(
        ToolOutput::new(Family::Alerting, upstream.name(), data, text)
            .counted(returned, total)
            .with_notes(notes),
    )
}

/// `get_rules`: recording and alerting rules with their health.
pub async fn rules(ctx: ToolContext, args: RulesArgs) -> Result<ToolOutput, ToolError> {
    let upstream = ctx.upstream(args.upstream.as_deref(), args.org_id.as_deref())?;
    let limit = ctx.limit(args.limit)?;
    let upstream = upstream.with_budget(limit, false);
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
    let call = ApiCall::get_with("/api/v1/rules", params);
    let (mut groups, notes) = fan_out(&upstream, call, "groups", ctx.max_tenants()).await?;
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
    let data = json!({ "groups": groups });
    Ok(
        ToolOutput::new(Family::Alerting, upstream.name(), data, text)
            .counted(returned, total)
            .with_notes(notes),
    )
}

/// Upstream requests one fan-out keeps in flight at once.
const FAN_OUT_CONCURRENCY: usize = 4;

/// Calls `call` once per tenant (Mimir's ruler refuses `a|b`), at most
/// `max_tenants` of them and [`FAN_OUT_CONCURRENCY`] at a time, and
/// concatenates the lists found under `data[key]`, marking each item with
/// its tenant. Tenants that fail become warnings as long as one answers; if
/// none does, the first error is returned.
async fn fan_out(
    upstream: &Target,
    call: ApiCall,
    key: &'static str,
    max_tenants: usize,
) -> Result<(Vec<Value>, Notes), ToolError> {
    let targets = upstream.per_tenant(max_tenants)?;
    let asked = targets.len();
    let answers: Vec<_> = stream::iter(targets)
        .map(|(tenant, target)| {
            let call = call.clone();
            async move { (tenant, target.api::<Map<String, Value>>(call).await) }
        })
        .buffered(FAN_OUT_CONCURRENCY)
        .collect()
        .await;
    let (mut items, mut notes, mut failures) = (Vec::new(), Notes::default(), Vec::new());
    let several = asked > 1;
    for (tenant, answer) in answers {
        match answer {
            Ok(mut answer) => {
                if let Some(Value::Array(list)) = answer.data.remove(key) {
                    items.extend(list.into_iter().map(|mut item| {
                        if let (Some(tenant), Some(object)) = (&tenant, item.as_object_mut()) {
                            object.insert("tenant".into(), Value::String(tenant.clone()));
                        }
                        item
                    }));
                }
                notes.merge(answer.notes);
            }
            Err(error) => failures.push((tenant, error)),
        }
    }
    if !several || failures.len() == asked {
        if let Some((_, error)) = failures.into_iter().next() {
            return Err(error.into());
        }
        return Ok((items, notes));
    }
    for (tenant, error) in failures {
        notes
            .warnings
            .push(format!("tenant {}: {error}", tenant.unwrap_or_default()));
    }
    Ok((items, notes))
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
