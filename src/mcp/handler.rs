//! rmcp's side of the server: the protocol methods, each a thin call into
//! [`PrometheusMcp`] and its [`Surface`](super::surface::Surface).

#[allow(deprecated)] // logging/setLevel: clients before 2026-07-28 use it (SEP-2577)
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::PrometheusMcp;
use super::resources;

impl ServerHandler for PrometheusMcp {
    #[allow(deprecated)] // the logging capability, for clients before 2026-07-28
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_prompts()
                .enable_resources()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new(
            "mcp-prometheus",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(self.surface.instructions.clone())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let parts = context.extensions.get::<http::request::Parts>();
        Ok(self.prompts_for(&self.guards.caller(parts)))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = self
            .guards
            .caller(context.extensions.get::<http::request::Parts>());
        self.prompt_for(&caller, &request.name, request.arguments)
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let parts = context.extensions.get::<http::request::Parts>();
        Ok(self.resources_for(&self.guards.caller(parts)))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let parts = context.extensions.get::<http::request::Parts>();
        Ok(self.templates_for(&self.guards.caller(parts)))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let parts = context.extensions.get::<http::request::Parts>();
        // The catalog reaches an upstream in the caller's scope, as a tool.
        let scope = self.scope_of(parts);
        let caller = self.guards.caller(parts);
        self.read_for(&caller, &request.uri, scope)
            .await
            .map(Into::into)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        // The list changes only with the config (a restart): fresh for the
        // same time as the other lists.
        if !self.guards.policy_on {
            return Ok(ListToolsResult::with_all_items((*self.tools).clone())
                .with_ttl_ms(resources::LIST_TTL_MS)
                .with_cache_scope(CacheScope::Public));
        }
        let caller = self
            .guards
            .caller(context.extensions.get::<http::request::Parts>());
        let visible = self
            .tools
            .iter()
            .filter(|tool| {
                self.tool_of(&tool.name)
                    .is_some_and(|name| self.guards.allows(&caller, name))
            })
            .cloned()
            .collect();
        // The list depends on who asks: no shared cache may serve it.
        Ok(ListToolsResult::with_all_items(visible)
            .with_ttl_ms(resources::LIST_TTL_MS)
            .with_cache_scope(CacheScope::Private))
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
        let parts = context.extensions.get::<http::request::Parts>();
        let outcome = self.call_from(&request.name, arguments, parts).await;
        if let Some(output) = &outcome.output {
            self.log
                .tool_warnings(&request.name, output, &context)
                .await;
        }
        Ok(outcome.into_result().into())
    }

    #[allow(deprecated)] // logging is how clients before 2026-07-28 set a level
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.log.set(request.level);
        Ok(())
    }
}
