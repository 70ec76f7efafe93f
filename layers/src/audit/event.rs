//! One audit line: who (from the request's identity extensions), what
//! (tool and arguments, the PromQL verbatim), where (upstream, tenants
//! sent) and how it ended. Field names are fixed; tools that read the
//! log depend on them.

use serde::Serialize;
use serde_json::Value;

use crate::identity::{Principal, TenantSet};
use crate::trace::TraceContext;

/// Argument keys whose values are never written (a passthrough query
/// string or a future argument could carry one).
const SECRET_KEYS: &[&str] = &[
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "password",
    "secret",
    "client_secret",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
];

/// The longest argument name written.
const MAX_KEY_BYTES: usize = 256;

/// What kind of decision or action a line records.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A tool call (allowed, refused by policy or a limit, or failed).
    ToolCall,
    /// A request refused by authentication.
    Authn,
    /// A request refused by an authorization decision (audience, tenancy).
    Authz,
    /// A request refused by a rate limit before it reached a tool.
    RateLimit,
    /// A Prometheus API request through the passthrough route.
    Passthrough,
    /// A `resources/read` that asks an upstream (the metric catalog).
    ResourceRead,
}

/// One line of the audit log.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub log_type: &'static str,
    pub ts: String,
    pub event: EventKind,
    pub trace_id: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub groups: Vec<String>,
    pub tenants: Vec<String>,
    pub tool: Option<String>,
    pub arguments: Option<Value>,
    pub upstream: Option<String>,
    /// `ok`, `denied`, `limited`, or the error kind of a failed call.
    pub outcome: String,
    /// Why it was refused or failed, as the caller was told.
    pub reason: Option<String>,
    pub items: Option<u64>,
    pub bytes: Option<u64>,
    pub duration_ms: Option<u64>,
}

impl AuditEvent {
    /// A line about the request whose extensions are `extensions`: the
    /// caller, its allowed tenants and its trace id filled in.
    pub fn new(kind: EventKind, outcome: &str, extensions: &http::Extensions) -> Self {
        let principal = extensions.get::<Principal>();
        Self {
            log_type: "audit",
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event: kind,
            trace_id: extensions
                .get::<TraceContext>()
                .map(TraceContext::trace_id_hex),
            subject: principal.map(|p| p.subject.clone()),
            issuer: principal.map(|p| p.issuer.clone()),
            client_id: principal.and_then(|p| p.client.clone()),
            groups: principal.map(|p| p.groups.clone()).unwrap_or_default(),
            tenants: extensions
                .get::<TenantSet>()
                .map(|t| t.as_slice().to_vec())
                .unwrap_or_default(),
            tool: None,
            arguments: None,
            upstream: None,
            outcome: outcome.to_owned(),
            reason: None,
            items: None,
            bytes: None,
            duration_ms: None,
        }
    }

    /// The same line for a caller known without an HTTP request (stdio).
    pub fn for_principal(kind: EventKind, outcome: &str, principal: Option<&Principal>) -> Self {
        let mut extensions = http::Extensions::new();
        if let Some(principal) = principal {
            extensions.insert(principal.clone());
        }
        Self::new(kind, outcome, &extensions)
    }
}

/// `arguments` as written: secret-looking keys replaced, every string cut
/// to `max_bytes` (on a character boundary), nesting kept; if the whole
/// is still larger than eight times that (many keys, long keys), only its
/// size is written.
pub fn redact(arguments: &Value, max_bytes: usize) -> Value {
    let redacted = redact_values(arguments, max_bytes);
    let total = redacted.to_string().len();
    if total > max_bytes.saturating_mul(8) {
        return serde_json::json!({"[cut]": format!("{total} bytes of arguments")});
    }
    redacted
}

/// `text` cut to `max_bytes` on a character boundary (names a caller
/// chose: a tool, an upstream).
pub fn cut(text: &str, max_bytes: usize) -> String {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text.get(..end).unwrap_or_default().to_owned();
    if end < text.len() {
        out.push('…');
    }
    out
}

fn redact_values(arguments: &Value, max_bytes: usize) -> Value {
    match arguments {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let secret = SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s));
                    let value = if secret {
                        Value::String("[redacted]".into())
                    } else {
                        redact_values(value, max_bytes)
                    };
                    (cut(key, MAX_KEY_BYTES), value)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| redact_values(v, max_bytes)).collect())
        }
        Value::String(text) if text.len() > max_bytes => {
            let head = cut(text, max_bytes);
            let head = head.strip_suffix('…').unwrap_or(&head);
            Value::String(format!("{head}…[cut at {max_bytes} bytes]"))
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_and_long_strings_cut() {
        let args = json!({
            "query": "rate(http_requests_total{job=\"api\"}[5m])",
            "Authorization": "Bearer abc",
            "nested": {"password": "hunter2", "list": ["ééééé"]},
        });
        let out = redact_values(&args, 5);
        let text = out.to_string();
        assert!(!text.contains("abc") && !text.contains("hunter2"), "{text}");
        assert_eq!(out["query"], "rate(…[cut at 5 bytes]");
        assert_eq!(out["nested"]["list"][0], "éé…[cut at 5 bytes]");
        assert_eq!(
            redact(&args, 1000)["query"],
            args["query"],
            "PromQL verbatim"
        );
    }

    #[test]
    fn identity_comes_from_the_extensions() {
        let mut extensions = http::Extensions::new();
        extensions.insert(Principal {
            subject: "alice".into(),
            groups: vec!["sre".into()],
            scopes: vec![],
            issuer: "https://dex".into(),
            client: Some("cli".into()),
            audiences: vec![],
            session: None,
        });
        extensions.insert(TenantSet::new(["b", "a"]));
        let event = AuditEvent::new(EventKind::ToolCall, "ok", &extensions);
        let line = serde_json::to_value(&event).expect("json");
        assert_eq!(line["subject"], "alice");
        assert_eq!(line["client_id"], "cli");
        assert_eq!(line["tenants"], json!(["a", "b"]));
        assert_eq!(line["event"], "tool_call");
        assert_eq!(line["log_type"], "audit");
    }
}
