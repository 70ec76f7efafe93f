//! rmcp's own client logging in to mcp-prometheus through its OAuth
//! authorization server, then calling a tool with the token it got.
//!
//! The browser part (the provider's login form) is the test's: this
//! program prints `AUTHORIZE <url>`, reads `CALLBACK <redirect url>` from
//! stdin, finishes the flow, calls `execute_query`, prints `RESULT <json>`
//! and exits 0; any failure exits 1 with the error on stderr.
//!
//! usage: rmcp-oauth-client MCP_URL REDIRECT_URI

use std::io::BufRead;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn run(mcp_url: &str, redirect_uri: &str) -> Result<(), Error> {
    let mut state = OAuthState::new(mcp_url, None).await?;
    state
        .start_authorization(
            AuthorizationRequest::new(redirect_uri).with_client_name("rmcp-oauth-client"),
        )
        .await?;
    println!("AUTHORIZE {}", state.get_authorization_url().await?);
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let callback = line
        .strip_prefix("CALLBACK ")
        .ok_or("expected CALLBACK <url> on stdin")?
        .trim()
        .to_owned();
    state.handle_callback_url(&callback).await?;
    let manager = state
        .into_authorization_manager()
        .ok_or("not authorized after the callback")?;
    let client = AuthClient::new(reqwest::Client::default(), manager);
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(mcp_url),
    );
    let service = ().serve(transport).await?;
    let tools = service.list_tools(None).await?;
    if !tools.tools.iter().any(|t| t.name == "execute_query") {
        return Err("execute_query missing from tools/list".into());
    }
    let mut arguments = serde_json::Map::new();
    arguments.insert("query".into(), serde_json::Value::String("up".into()));
    let result = service
        .call_tool(CallToolRequestParams::new("execute_query").with_arguments(arguments))
        .await?;
    println!("RESULT {}", serde_json::to_string(&result)?);
    service.cancel().await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mcp_url, redirect_uri] = args.as_slice() else {
        eprintln!("usage: rmcp-oauth-client MCP_URL REDIRECT_URI");
        std::process::exit(2);
    };
    if let Err(error) = run(mcp_url, redirect_uri).await {
        eprintln!("rmcp-oauth-client: {error}");
        std::process::exit(1);
    }
}
