//! The passthrough's share of who-may-do-what: the tool policy's decision
//! applied to the tool an API path stands for, and one audit line per
//! request (the PromQL from the query string or form verbatim, tenants
//! sent, outcome).

use std::time::Duration;

use http::request::Parts;
use mcp_prometheus_layers::audit::{AuditEvent, AuditLog, EventKind, redact};
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::inbound::policy::ToolPermissions;
use serde_json::{Map, Value};

use super::refusal::Refusal;

/// Where the tool policy decides: `tool` (unprefixed) is the MCP tool that
/// reads the same data as the requested API. The policy layer sits in this
/// route's stack and always leaves its decision when it is on; without
/// one, no policy is configured.
pub fn authorize(parts: &Parts, tool: &'static str) -> Result<(), Refusal> {
    match parts.extensions.get::<ToolPermissions>() {
        Some(permissions) if permissions.permit(tool).is_err() => Err(Refusal::Denied(tool)),
        _ => Ok(()),
    }
}

/// What one request's audit line says, filled in as the request is
/// checked (a refusal leaves the rest empty).
#[derive(Debug, Default)]
pub struct Draft {
    pub tool: Option<&'static str>,
    pub arguments: Map<String, Value>,
    pub tenants: Option<Vec<String>>,
}

impl Draft {
    /// Adds the parameters of a query string or form (`a=1&b=2`).
    pub fn parameters(&mut self, encoded: &[u8]) {
        for (key, value) in form_urlencoded::parse(encoded) {
            let value = Value::String(value.into_owned());
            match self.arguments.get_mut(key.as_ref()) {
                Some(Value::Array(values)) => values.push(value),
                Some(first) => *first = Value::Array(vec![first.take(), value]),
                None => {
                    self.arguments.insert(key.into_owned(), value);
                }
            }
        }
    }

    /// The tenants the request is sent with.
    pub fn scope(&mut self, scope: &CallScope) {
        self.tenants = scope.tenants.as_ref().map(|t| t.as_slice().to_vec());
    }

    /// Writes the line: `outcome` is `ok`, `denied` or the refusal's kind.
    pub fn record(
        self,
        audit: &AuditLog,
        extensions: &http::Extensions,
        upstream: &str,
        outcome: &str,
        reason: Option<String>,
        duration: Duration,
    ) {
        let mut event = AuditEvent::new(EventKind::Passthrough, outcome, extensions);
        if let Some(tenants) = self.tenants {
            event.tenants = tenants;
        }
        event.tool = self.tool.map(str::to_owned);
        event.arguments = Some(redact(
            &Value::Object(self.arguments),
            audit.max_argument_bytes(),
        ));
        event.upstream = Some(upstream.to_owned());
        event.reason = reason;
        event.duration_ms = Some(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        audit.record(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_prometheus_layers::build::{BuildCtx, ToolEntry};
    use mcp_prometheus_layers::identity::Principal;
    use mcp_prometheus_layers::inbound::policy::PolicyConfig;

    #[test]
    fn the_policy_decides_on_the_apis_tool() {
        let ctx = BuildCtx {
            authn_enabled: true,
            issuers: vec!["https://dex".into()],
            bare_group_issuers: vec!["https://dex".into()],
            tool_catalogue: crate::tools::registry::TOOL_NAMES
                .iter()
                .map(|name| ToolEntry {
                    name: (*name).into(),
                    family: crate::tools::registry::family(name).into(),
                })
                .collect(),
            ..BuildCtx::default()
        };
        let policy: PolicyConfig =
            toml::from_str("enabled = true\n[[rules]]\ngroups = [\"dev\"]\nallow = [\"query\"]\n")
                .expect("toml");
        let layer = policy.build(&ctx).expect("valid").expect("on");
        let dev = Principal {
            subject: "d".into(),
            groups: vec!["dev".into()],
            scopes: vec![],
            issuer: "https://dex".into(),
            client: None,
            audiences: vec![],
            session: None,
        };
        let (mut parts, ()) = http::Request::new(()).into_parts();
        assert!(
            authorize(&parts, "execute_query").is_ok(),
            "no policy: allowed"
        );
        parts
            .extensions
            .insert(layer.gate().permissions(Some(&dev)));
        assert!(authorize(&parts, "execute_range_query").is_ok());
        let refused = authorize(&parts, "get_build_info").expect_err("status is not query");
        assert_eq!(refused.outcome(), "denied");
        assert!(refused.to_string().contains("get_build_info"), "{refused}");
    }

    #[test]
    fn parameters_keep_repeats_and_decode() {
        let mut draft = Draft::default();
        draft.parameters(b"query=sum%20by%20(job)%20(up)&match[]=a&match[]=b");
        assert_eq!(draft.arguments["query"], "sum by (job) (up)");
        assert_eq!(draft.arguments["match[]"], serde_json::json!(["a", "b"]));
    }
}
