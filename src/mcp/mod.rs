//! The MCP server: `tools/list` and `tools/call` over the tool registry,
//! with the policy's decision applied to both, `logging/setLevel`, and
//! the prompts and resources of [`surface`].

mod catalog;
mod guard;
mod handler;
mod instructions;
mod logging;
mod prompt_args;
mod prompt_text;
mod prompts;
mod resources;
mod surface;

use std::sync::Arc;

use crate::tools::json_text::JsonText;
use rmcp::model::{CallToolResult, ContentBlock, Tool};
use tokio::time::Instant;

pub use guard::CallGuards;
use guard::{AuditedCall, Caller};
use logging::SessionLog;
pub use resources::UpstreamFacts;
use surface::Surface;

use crate::stack::panic::{Panics, guard};
use crate::telemetry::metrics::ToolMetrics;
use crate::tools::ToolContext;
use crate::tools::registry::{self, tool_list};
use mcp_prometheus_layers::call_scope::CallScope;

/// The MCP handler; cheap to clone. Each session gets its own copy from
/// [`PrometheusMcp::for_session`] (its own logging level).
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
    guards: CallGuards,
    log: SessionLog,
    /// Prompts, resources and instructions (fixed at start-up).
    surface: Arc<Surface>,
}

/// How one call ended, before it becomes a result and an audit line.
struct Outcome {
    result: CallToolResult,
    /// The structured content as JSON text, when the tool wrote it so
    /// (`result` then has none): see [`CallAnswer`].
    structured_json: Option<JsonText>,
    outcome: &'static str,
    reason: Option<String>,
    output: Option<crate::tools::ToolOutput>,
}

impl Outcome {
    fn failed(outcome: &'static str, message: String) -> Self {
        Self {
            result: CallToolResult::error(vec![ContentBlock::text(message.clone())]),
            structured_json: None,
            outcome,
            reason: Some(message),
            output: None,
        }
    }

    /// The result as rmcp sends it: structured content as a `Value`.
    fn into_result(self) -> CallToolResult {
        CallAnswer {
            result: self.result,
            structured_json: self.structured_json,
        }
        .into_result()
    }
}

/// A tool call's answer for a transport that writes it itself (the fast
/// path): big structured content stays JSON text instead of becoming a
/// `Value` tree only to be written out again.
pub struct CallAnswer {
    /// The result; without structured content when `structured_json` has it.
    pub result: CallToolResult,
    pub structured_json: Option<JsonText>,
}

impl CallAnswer {
    /// The result with its structured content as a `Value`, for rmcp.
    pub fn into_result(self) -> CallToolResult {
        let mut result = self.result;
        if let Some(json) = self.structured_json {
            result.structured_content = serde_json::from_str(json.as_str()).ok();
        }
        result
    }
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
        guards: CallGuards,
    ) -> Self {
        Self {
            ctx,
            prefix: prefix.into(),
            tools: Arc::new(tool_list(prefix)),
            metrics,
            panics,
            stdio_scope,
            keep_headers,
            surface: Arc::new(Surface::new(prefix, &guards, &[])),
            guards,
            log: SessionLog::default(),
        }
    }

    /// Leaves arguments the deployment makes meaningless out of
    /// `tools/list` (`upstream` with one upstream, `org_id` when no caller
    /// may pick a tenant); calls that pass them are still accepted.
    pub fn hiding_arguments(mut self, arguments: &[&str]) -> Self {
        if !arguments.is_empty() {
            let mut tools = (*self.tools).clone();
            for argument in arguments {
                registry::hide_argument(&mut tools, argument);
            }
            self.tools = Arc::new(tools);
            let instructions = Surface::new(&self.prefix, &self.guards, arguments).instructions;
            self.surface = Arc::new(Surface {
                facts: self.surface.facts.clone(),
                instructions,
            });
        }
        self
    }

    /// The handler of a new session: shared tools and guards, its own
    /// logging level.
    pub fn for_session(&self) -> Self {
        Self {
            log: SessionLog::default(),
            ..self.clone()
        }
    }

    /// The unprefixed registry name of `name`, if it is one of ours.
    fn tool_of(&self, name: &str) -> Option<&'static str> {
        let unprefixed = name.strip_prefix(&*self.prefix)?;
        registry::TOOL_NAMES
            .iter()
            .find(|t| **t == unprefixed)
            .copied()
    }

    /// A `tools/call` that came without an rmcp session or request context:
    /// the stateless fast path (`crate::serve`), which has already checked
    /// the request as rmcp would. The answer is the one rmcp would send.
    pub async fn call_over_http(
        &self,
        name: &str,
        arguments: rmcp::model::JsonObject,
        parts: &http::request::Parts,
    ) -> CallAnswer {
        let outcome = self.call_from(name, arguments, Some(parts)).await;
        CallAnswer {
            result: outcome.result,
            structured_json: outcome.structured_json,
        }
    }

    /// What a call reaches upstream with: its HTTP request's scope, or the
    /// stdio scope when there is no request.
    fn scope_of(&self, parts: Option<&http::request::Parts>) -> CallScope {
        match parts {
            Some(parts) => CallScope::from_parts(parts, self.keep_headers),
            None => self.stdio_scope.clone(),
        }
    }

    /// One call with the scope and caller of its HTTP request (`None`:
    /// stdio).
    async fn call_from(
        &self,
        name: &str,
        arguments: rmcp::model::JsonObject,
        parts: Option<&http::request::Parts>,
    ) -> Outcome {
        let scope = self.scope_of(parts);
        let caller = self.guards.caller(parts);
        // Boxed: the tool futures (21 tools, one state machine) are large,
        // and rmcp moves the request future into a task by value; a box
        // makes those moves pointer-sized (bench/instructions.py).
        Box::pin(self.call(name, arguments, scope, &caller)).await
    }

    /// Runs one tool call for `caller` and turns every failure into a tool
    /// result the model can read (`isError: true`), never a protocol error;
    /// the call leaves one audit line.
    async fn call(
        &self,
        name: &str,
        arguments: rmcp::model::JsonObject,
        scope: CallScope,
        caller: &Caller,
    ) -> Outcome {
        let started = Instant::now();
        let tool = self.tool_of(name);
        // The audit line needs the arguments and scope after the tool took
        // them: copied only when there is an audit log to write.
        let audited = self
            .guards
            .audit
            .is_some()
            .then(|| (arguments.clone(), scope.clone()));
        let outcome = match tool {
            None => {
                self.metrics
                    .record("unknown", Some("unknown_tool"), started.elapsed());
                Outcome::failed(
                    "unknown_tool",
                    format!("unknown tool {name:?}; call tools/list for the available tools"),
                )
            }
            Some(tool) => match self.guards.admit(caller, tool, name) {
                Err(refusal) => {
                    self.metrics
                        .record(tool, Some(refusal.outcome()), started.elapsed());
                    Outcome::failed(refusal.outcome(), refusal.message())
                }
                Ok(()) => self.run(tool, arguments, scope, started).await,
            },
        };
        let Some((arguments, scope)) = &audited else {
            return outcome;
        };
        let output = outcome.output.as_ref();
        self.guards.audit(
            caller,
            &AuditedCall {
                tool: tool.unwrap_or(name),
                arguments,
                scope,
                outcome: outcome.outcome,
                reason: outcome.reason.as_deref(),
                upstream: output.map(|o| o.upstream.as_str()),
                items: output.and_then(|o| o.returned).map(|n| n as u64),
                result: &outcome.result,
                duration: started.elapsed(),
            },
        );
        outcome
    }

    /// The tool itself, behind the panic guard.
    async fn run(
        &self,
        tool: &'static str,
        arguments: rmcp::model::JsonObject,
        scope: CallScope,
        started: Instant,
    ) -> Outcome {
        // A panic in a tool is this call's failure, never a dropped answer
        // (rmcp would leave the client waiting, holding a permit).
        let call = registry::call(self.ctx.with_scope(scope), tool, arguments);
        let outcome = match guard(call, &self.panics, "tool", tool).await {
            Ok(outcome) => outcome,
            Err(id) => {
                self.metrics
                    .record(tool, Some("internal"), started.elapsed());
                return Outcome::failed(
                    "internal",
                    format!(
                        "internal error (correlation id {id}): this call failed inside the server, which keeps running; retry, or report the id"
                    ),
                );
            }
        };
        match outcome {
            Some(Ok(mut output)) => {
                self.metrics.record(tool, None, started.elapsed());
                let text = output.take_full_text();
                let structured_json = output.take_structured_json();
                let structured = structured_json.is_none().then(|| output.take_structured());
                let mut content = vec![ContentBlock::text(text)];
                if let Some(png) = output.image.take() {
                    use base64::Engine as _;
                    let data = base64::engine::general_purpose::STANDARD.encode(&png);
                    content.push(ContentBlock::image(data, "image/png"));
                }
                let mut result = CallToolResult::success(content);
                result.structured_content = structured;
                Outcome {
                    result,
                    structured_json,
                    outcome: "ok",
                    reason: None,
                    output: Some(output),
                }
            }
            Some(Err(error)) => {
                self.metrics
                    .record(tool, Some(error.kind()), started.elapsed());
                tracing::debug!(tool, %error, "tool call failed");
                Outcome::failed(error.kind(), error.to_string())
            }
            None => Outcome::failed("unknown_tool", format!("unknown tool {tool:?}")),
        }
    }
}
