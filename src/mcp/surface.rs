//! Prompts and resources for one caller: what the `ServerHandler` methods
//! of [`PrometheusMcp`] call. The policy decides what a caller is offered
//! (a prompt needs every tool it names; a metric catalog needs
//! `list_metrics`), and a catalog read goes through the tools' own path:
//! the caller's scope, the stdio rate limit, and an audit line.

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CacheScope, ErrorCode, GetPromptResult, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, ResourceContents,
};
use tokio::time::Instant;

use super::guard::{AuditedRead, Caller};
use super::resources::{self, LIST_TTL_MS, UpstreamFacts};
use super::{PrometheusMcp, catalog, instructions, prompts};
use crate::tools::registry::TOOL_NAMES;
use mcp_prometheus_layers::call_scope::CallScope;

/// How long a catalog page may be kept: names come and go with the
/// upstream, so a minute.
const CATALOG_TTL_MS: u64 = 60_000;

/// What the server offers besides tools, fixed at start-up.
#[derive(Debug, Default)]
pub struct Surface {
    pub facts: Vec<UpstreamFacts>,
    pub instructions: String,
}

impl Surface {
    /// Instructions for `prefix`: the tools the stdio principal may use
    /// when stdio runs under a policy, else every tool.
    pub fn new(prefix: &str, guards: &super::CallGuards, hidden: &[&str]) -> Self {
        let enabled: Vec<&str> = match &guards.stdio_permissions {
            Some(permissions) if guards.stdio => TOOL_NAMES
                .iter()
                .copied()
                .filter(|t| permissions.allows(t))
                .collect(),
            _ => TOOL_NAMES.to_vec(),
        };
        Self {
            facts: Vec::new(),
            instructions: instructions::instructions(prefix, &enabled, hidden),
        }
    }
}

impl PrometheusMcp {
    /// This handler with the upstreams' facts (the upstreams resource and
    /// the names a prompt's `upstream` argument may take).
    pub fn with_upstream_facts(mut self, facts: Vec<UpstreamFacts>) -> Self {
        self.surface = Arc::new(Surface {
            facts,
            instructions: self.surface.instructions.clone(),
        });
        self
    }

    /// A list that changes only with the config: shared by everyone
    /// without a policy, per caller with one.
    fn scope(&self) -> CacheScope {
        if self.guards.policy_on {
            CacheScope::Private
        } else {
            CacheScope::Public
        }
    }

    fn upstream_names(&self) -> Vec<String> {
        self.surface.facts.iter().map(|f| f.name.clone()).collect()
    }

    /// `prompts/list`: the prompts whose tools `caller` may all call.
    pub(super) fn prompts_for(&self, caller: &Caller) -> ListPromptsResult {
        let visible = prompts::PROMPTS
            .iter()
            .filter(|p| p.needs.iter().all(|t| self.guards.allows(caller, t)))
            .map(prompts::listed)
            .collect();
        ListPromptsResult::with_all_items(visible)
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(self.scope())
    }

    /// `prompts/get`.
    pub(super) fn prompt_for(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<GetPromptResult, McpError> {
        prompts::get(
            name,
            arguments,
            &self.prefix,
            &self.upstream_names(),
            |tool| self.guards.allows(caller, tool),
        )
        .map_err(|error| McpError::invalid_params(error.to_string(), None))
    }

    /// `resources/list`: catalogs only for a caller who may list metrics.
    pub(super) fn resources_for(&self, caller: &Caller) -> ListResourcesResult {
        let catalogs = self.guards.allows(caller, "list_metrics");
        ListResourcesResult::with_all_items(resources::list(&self.surface.facts, catalogs))
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(self.scope())
    }

    /// `resources/templates/list`.
    pub(super) fn templates_for(&self, caller: &Caller) -> ListResourceTemplatesResult {
        let catalogs = self.guards.allows(caller, "list_metrics");
        ListResourceTemplatesResult::with_all_items(resources::templates(catalogs))
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(self.scope())
    }

    /// `resources/read`: a static resource, or one catalog page read in
    /// `scope`.
    pub(super) async fn read_for(
        &self,
        caller: &Caller,
        uri: &str,
        scope: CallScope,
    ) -> Result<ReadResourceResult, McpError> {
        if let Some(contents) = resources::read_static(uri, &self.surface.facts, &self.prefix) {
            return Ok(ReadResourceResult::new(vec![contents])
                .with_ttl_ms(LIST_TTL_MS)
                .with_cache_scope(CacheScope::Public));
        }
        let request = catalog::parse(uri)
            .map_err(|bad| McpError::invalid_params(bad.0, None))?
            .ok_or_else(|| McpError::resource_not_found(resources::unknown(uri), None))?;
        if !self.guards.allows(caller, "list_metrics") {
            return Err(McpError::new(
                ErrorCode::INVALID_REQUEST,
                format!(
                    "reading a metric catalog needs the tool {}list_metrics, which you may not use",
                    self.prefix
                ),
                None,
            ));
        }
        // Takes the stdio caller's rate-limit token (over HTTP the layer did).
        self.guards
            .admit(caller, "list_metrics", uri)
            .map_err(|refusal| {
                McpError::new(ErrorCode::INVALID_REQUEST, refusal.message(), None)
            })?;
        let started = Instant::now();
        let metadata = if self.guards.allows(caller, "get_metric_metadata") {
            Ok(())
        } else {
            Err(format!(
                "type, help and unit left out: they need the tool {}get_metric_metadata, which you may not use",
                self.prefix
            ))
        };
        let cap = self
            .ctx
            .query_limit(None, true)
            .unwrap_or(catalog::PAGE_SIZE);
        let outcome = match self
            .ctx
            .with_scope(scope.clone())
            .upstream(Some(&request.upstream), None)
        {
            Ok(target) => catalog::page(target, &request, cap, metadata).await,
            Err(error) => Err(error),
        };
        let (result, kind, reason, items) = match outcome {
            Ok((body, returned)) => {
                let text = body.to_string();
                let contents = ResourceContents::text(text, uri).with_mime_type("application/json");
                let result = ReadResourceResult::new(vec![contents])
                    .with_ttl_ms(CATALOG_TTL_MS)
                    .with_cache_scope(CacheScope::Private);
                (Ok(result), "ok", None, Some(returned as u64))
            }
            Err(error) => {
                let message = format!("metric catalog of {:?}: {error}", request.upstream);
                let kind = error.kind();
                let code = if kind == "invalid_arguments" {
                    ErrorCode::INVALID_PARAMS
                } else {
                    ErrorCode::INTERNAL_ERROR
                };
                (
                    Err(McpError::new(code, message.clone(), None)),
                    kind,
                    Some(message),
                    None,
                )
            }
        };
        let bytes = match &result {
            Ok(read) => read
                .contents
                .iter()
                .map(|c| match c {
                    ResourceContents::TextResourceContents { text, .. } => text.len() as u64,
                    _ => 0,
                })
                .sum(),
            Err(_) => 0,
        };
        self.guards.audit_read(
            caller,
            &AuditedRead {
                uri,
                upstream: &request.upstream,
                scope: &scope,
                outcome: kind,
                reason: reason.as_deref(),
                items,
                bytes,
                duration: started.elapsed(),
            },
        );
        result
    }
}
