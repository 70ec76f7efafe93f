//! The closed sets the request labels come from: whatever a caller sends,
//! a label takes one of these values or `other`.

/// The MCP methods of the specification (2024-11-05 … 2026-07-28): the
/// only values the `mcp_method` label takes besides `unknown` (no header)
/// and `other`, so no caller can grow the label set.
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "roots/list",
    "sampling/createMessage",
    "elicitation/create",
    "tasks/get",
    "tasks/list",
    "tasks/result",
    "tasks/cancel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/roots/list_changed",
    "notifications/tools/list_changed",
    "notifications/resources/list_changed",
    "notifications/resources/updated",
    "notifications/prompts/list_changed",
];

/// The `mcp_method` label of an `Mcp-Method` header value.
pub(super) fn mcp_method(value: Option<&str>) -> &'static str {
    match value {
        None => "unknown",
        Some(method) => MCP_METHODS
            .iter()
            .find(|known| **known == method)
            .copied()
            .unwrap_or("other"),
    }
}

/// The `method` label: the standard HTTP methods, else `other`.
pub(super) fn http_method(method: &http::Method) -> &'static str {
    use http::Method;
    [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::PUT,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
    ]
    .iter()
    .find(|known| *known == method)
    .map_or("other", Method::as_str)
}
