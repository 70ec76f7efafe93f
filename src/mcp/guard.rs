//! What stands between a tool call and its tool besides the tool's own
//! argument checks: the policy's decision (made by the policy layer and
//! read from the request, or, under stdio, made once for the configured
//! local principal), the stdio rate limit, and the audit line every call
//! leaves.

use std::sync::Arc;
use std::time::Duration;

use mcp_prometheus_layers::audit::{AuditEvent, AuditLog, EventKind, cut, redact};
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::identity::Principal;
use mcp_prometheus_layers::inbound::policy::{PolicyLayer, ToolPermissions};
use mcp_prometheus_layers::inbound::ratelimit::{Limited, RateLimits};
use rmcp::model::JsonObject;

/// The guards of every call, decided at start-up.
#[derive(Clone, Debug, Default)]
pub struct CallGuards {
    /// Whether `[layers.policy]` is on: a call without a decision is then
    /// refused (fail closed).
    pub policy_on: bool,
    /// Under stdio: the local principal's permissions.
    pub stdio_permissions: Option<ToolPermissions>,
    /// Under stdio: the per-caller limits (an HTTP request is limited by
    /// the rate-limit layer before it gets here).
    pub stdio_limits: Option<Arc<RateLimits>>,
    /// Under stdio: who the calls are made by (`server.local_principal`).
    pub stdio_principal: Option<Principal>,
    /// Whether this server speaks stdio: only then may a call come
    /// without an HTTP request (over HTTP such a call is refused).
    pub stdio: bool,
    pub audit: Option<AuditLog>,
}

impl CallGuards {
    /// The guards from the built layers; `stdio`: the local principal
    /// when this server speaks stdio (`None` over HTTP).
    pub fn new(
        policy: Option<&PolicyLayer>,
        limits: Option<Arc<RateLimits>>,
        audit: Option<AuditLog>,
        stdio: Option<Option<Principal>>,
    ) -> Self {
        let is_stdio = stdio.is_some();
        let stdio_principal = stdio.flatten();
        Self {
            policy_on: policy.is_some(),
            stdio_permissions: policy
                .filter(|_| is_stdio)
                .map(|p| p.gate().permissions(stdio_principal.as_ref())),
            stdio_limits: limits.filter(|_| is_stdio),
            stdio_principal,
            stdio: is_stdio,
            audit,
        }
    }

    /// The caller of one call: from its HTTP request, or the local one.
    pub fn caller(&self, parts: Option<&http::request::Parts>) -> Caller {
        match parts {
            Some(parts) => Caller {
                permissions: parts.extensions.get::<ToolPermissions>().cloned(),
                // Only the audit line reads them: not copied without one.
                extensions: if self.audit.is_some() {
                    parts.extensions.clone()
                } else {
                    http::Extensions::new()
                },
                stdio: false,
            },
            // Over HTTP every call has its request: a call without one gets
            // no permissions (the policy, when on, refuses it).
            None if !self.stdio => Caller {
                permissions: None,
                extensions: http::Extensions::new(),
                stdio: false,
            },
            None => {
                let mut extensions = http::Extensions::new();
                if let Some(principal) = &self.stdio_principal {
                    extensions.insert(principal.clone());
                }
                Caller {
                    permissions: self.stdio_permissions.clone(),
                    extensions,
                    stdio: true,
                }
            }
        }
    }

    /// Whether `caller` may see and call `tool` (unprefixed).
    pub fn allows(&self, caller: &Caller, tool: &str) -> bool {
        !self.policy_on || caller.permissions.as_ref().is_some_and(|p| p.allows(tool))
    }

    /// Admits a call of `tool` or says why not, in words for the model.
    pub fn admit(&self, caller: &Caller, tool: &str, called_as: &str) -> Result<(), Refusal> {
        if self.policy_on {
            let permitted = caller
                .permissions
                .as_ref()
                .is_some_and(|p| p.permit(tool).is_ok());
            if !permitted {
                return Err(Refusal::Denied(format!(
                    "tool {called_as:?} is not allowed for you; call tools/list for the tools you may use"
                )));
            }
        }
        if caller.stdio
            && let Some(limits) = &self.stdio_limits
        {
            limits
                .check(self.stdio_principal.as_ref(), None, None)
                .map_err(Refusal::Limited)?;
        }
        Ok(())
    }

    /// Writes the audit line of one call (when the audit log is on).
    pub fn audit(&self, caller: &Caller, call: &AuditedCall<'_>) {
        let Some(audit) = &self.audit else { return };
        let mut event = AuditEvent::new(EventKind::ToolCall, call.outcome, &caller.extensions);
        let scope = call
            .scope
            .narrow(call.org_id())
            .unwrap_or_else(|_| call.scope.clone());
        event.tenants = scope
            .tenants
            .map(|t| t.as_slice().to_vec())
            .unwrap_or_default();
        event.tool = Some(call.tool.to_owned());
        event.arguments = Some(redact(
            &serde_json::Value::Object(call.arguments.clone()),
            audit.max_argument_bytes(),
        ));
        event.upstream = call.upstream.map(str::to_owned).or_else(|| {
            call.arguments
                .get("upstream")
                .and_then(|v| v.as_str())
                .map(|name| cut(name, MAX_NAME_BYTES))
        });
        event.reason = call.reason.map(|r| cut(r, 1024));
        event.items = call.items;
        // What the model reads: the text content (the structured copy
        // repeats it).
        event.bytes = Some(
            call.result
                .content
                .iter()
                .filter_map(|block| block.as_text())
                .map(|text| text.text.len() as u64)
                .sum(),
        );
        event.duration_ms = Some(u64::try_from(call.duration.as_millis()).unwrap_or(u64::MAX));
        audit.record(&event);
    }
}

/// What the audit line of one `resources/read` that asked an upstream
/// says.
pub struct AuditedRead<'a> {
    pub uri: &'a str,
    pub upstream: &'a str,
    pub scope: &'a CallScope,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub items: Option<u64>,
    pub bytes: u64,
    pub duration: Duration,
}

impl CallGuards {
    /// Writes the audit line of one catalog read (when the audit log is
    /// on): like a tool call's, with the URI as its only argument.
    pub fn audit_read(&self, caller: &Caller, read: &AuditedRead<'_>) {
        let Some(audit) = &self.audit else { return };
        let mut event = AuditEvent::new(EventKind::ResourceRead, read.outcome, &caller.extensions);
        event.tenants = read
            .scope
            .tenants
            .as_ref()
            .map(|t| t.as_slice().to_vec())
            .unwrap_or_default();
        event.arguments = Some(redact(
            &serde_json::json!({ "uri": read.uri }),
            audit.max_argument_bytes(),
        ));
        event.upstream = Some(cut(read.upstream, MAX_NAME_BYTES));
        event.reason = read.reason.map(|r| cut(r, 1024));
        event.items = read.items;
        event.bytes = Some(read.bytes);
        event.duration_ms = Some(u64::try_from(read.duration.as_millis()).unwrap_or(u64::MAX));
        audit.record(&event);
    }
}

/// The longest tool or upstream name written (a caller may send any).
const MAX_NAME_BYTES: usize = 128;

/// One call's caller, as the guards see it.
#[derive(Clone, Debug)]
pub struct Caller {
    permissions: Option<ToolPermissions>,
    /// Identity, tenants and trace id, for the audit line.
    extensions: http::Extensions,
    stdio: bool,
}

/// Why a call was refused before its tool ran.
#[derive(Debug)]
pub enum Refusal {
    Denied(String),
    Limited(Limited),
}

impl Refusal {
    /// The audit outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::Limited(_) => "limited",
        }
    }

    /// What the model reads.
    pub fn message(&self) -> String {
        match self {
            Self::Denied(message) => message.clone(),
            Self::Limited(limited) => limited.to_string(),
        }
    }
}

/// What the audit line of one call says.
pub struct AuditedCall<'a> {
    pub tool: &'a str,
    pub arguments: &'a JsonObject,
    pub scope: &'a CallScope,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub items: Option<u64>,
    pub result: &'a rmcp::model::CallToolResult,
    pub duration: Duration,
}

impl AuditedCall<'_> {
    fn org_id(&self) -> Option<&str> {
        self.arguments.get("org_id").and_then(|v| v.as_str())
    }
}
