//! The MCP server: `tools/list` and `tools/call` over the tool registry.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use tokio::time::Instant;

use crate::stack::panic::{Panics, guard};
use crate::telemetry::metrics::ToolMetrics;
use crate::tools::ToolContext;
use crate::tools::registry::{self, tool_list};
use mcp_prometheus_layers::call_scope::CallScope;

const INSTRUCTIONS: &str = "Read-only access to Prometheus-compatible metrics. \
Start with list_metrics or find_series to discover names and labels, then execute_query \
(instant) or execute_range_query. Results are cut to a limit; when `truncated` is true, \
follow the hint to narrow the request. Times accept RFC 3339, Unix seconds or now-1h; \
durations 30s, 5m, 1h.";

/// The MCP handler; cheap to clone (one per streamable HTTP session).
#[derive(Clone)]
pub struct PrometheusMcp {
    ctx: ToolContext,
    prefix: Arc<str>,
    tools: Arc<Vec<Tool>>,
    metrics: Arc<ToolMetrics>,
    /// Panics caught in tool calls (shared with the inbound stacks).
    panics: Panics,
    /// The scope of calls that arrive without an HTTP request (stdio).
    stdio_scope: CallScope,
    /// Whether calls must carry their inbound headers (an upstream
    /// forwards the caller's credential); copying them is wasted otherwise.
    keep_headers: bool,
}

impl PrometheusMcp {
    /// A handler serving the registry's tools, named with `prefix`.
    pub fn new(
        ctx: ToolContext,
        prefix: &str,
        metrics: Arc<ToolMetrics>,
        panics: Panics,
        stdio_scope: CallScope,
        keep_headers: bool,
    ) -> Self {
        Self {
            ctx,
            prefix: prefix.into(),
            tools: Arc::new(tool_list(prefix)),
            metrics,
            panics,
            stdio_scope,
            keep_headers,
        }
    }

    /// Runs one tool call and turns every failure into a tool result the
    /// model can read (`isError: true`), never a protocol error.
    pub async fn call(
        &self,
        name: &str,
        arguments: rmcp::model::JsonObject,
        scope: CallScope,
    ) -> CallToolResult {
        let started = Instant::now();
        let Some(tool) = name
            .strip_prefix(&*self.prefix)
            .filter(|t| registry::TOOL_NAMES.contains(t))
        else {
            self.metrics
                .record("unknown", Some("unknown_tool"), started.elapsed());
            return CallToolResult::error(vec![ContentBlock::text(format!(
                "unknown tool {name:?}; call tools/list for the available tools"
            ))]);
        };
        // A panic in a tool is this call's failure, never a dropped answer
        // (rmcp would leave the client waiting, holding a permit).
        let call = registry::call(self.ctx.with_scope(scope), tool, arguments);
        let outcome = match guard(call, &self.panics, "tool", tool).await {
            Ok(outcome) => outcome,
            Err(id) => {
                self.metrics
                    .record(tool, Some("internal"), started.elapsed());
                return CallToolResult::error(vec![ContentBlock::text(format!(
                    "internal error (correlation id {id}): this call failed inside the server, which keeps running; retry, or report the id"
                ))]);
            }
        };
        match outcome {
            Some(Ok(output)) => {
                self.metrics.record(tool, None, started.elapsed());
                let text = output.full_text();
                let structured = serde_json::to_value(&output).unwrap_or_default();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(structured);
                result
            }
            Some(Err(error)) => {
                self.metrics
                    .record(tool, Some(error.kind()), started.elapsed());
                tracing::debug!(tool, %error, "tool call failed");
                CallToolResult::error(vec![ContentBlock::text(error.to_string())])
            }
            None => {
                CallToolResult::error(vec![ContentBlock::text(format!("unknown tool {name:?}"))])
            }
        }
    }
}

impl ServerHandler for PrometheusMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-prometheus",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items((*self.tools).clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = request.arguments.unwrap_or_default();
        let scope = match context.extensions.get::<http::request::Parts>() {
            Some(parts) => CallScope::from_parts(parts, self.keep_headers),
            None => self.stdio_scope.clone(),
        };
        Ok(self.call(&request.name, arguments, scope).await.into())
    }
}
