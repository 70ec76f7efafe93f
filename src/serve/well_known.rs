//! RFC 9728 protected-resource metadata: how a client that got a 401 finds
//! out which authorization servers issue tokens for us. Public, as the
//! spec requires.

use axum::Router;
use axum::routing::get;
use serde_json::json;

use crate::config::Config;

/// The Go server's non-standard path of the same document.
pub const GO_SERVER_ALIAS: &str = "/.well-known/protected-resources";

/// The metadata routes, when authn is on (there is nothing to discover
/// otherwise).
pub fn router(config: &Config) -> Option<Router> {
    let authn = &config.layers.authn;
    if !authn.enabled {
        return None;
    }
    let resource = config.resource_url()?;
    // Our own authorization server first, when it runs.
    let own = config.oauth.enabled.then(|| {
        config
            .oauth
            .issuer
            .clone()
            .or_else(|| config.server.public_url.clone())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    });
    let issuers: Vec<String> = own
        .into_iter()
        .chain(authn.issuers.iter().map(|i| i.issuer.clone()))
        .collect();
    let mut document = json!({
        "resource": resource,
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-prometheus",
    });
    if !authn.required_scopes.is_empty() {
        document["scopes_supported"] = json!(authn.required_scopes);
    }
    let body = document.to_string();
    let handler = move || {
        let body = body.clone();
        async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
    };
    let suffixed = format!(
        "/.well-known/oauth-protected-resource{}",
        config.server.mcp_path
    );
    Some(
        Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(handler.clone()),
            )
            .route(&suffixed, get(handler.clone()))
            // Where the Go mcp-prometheus (mcp-oauth) served the document;
            // kept so clients configured against it keep discovering.
            .route(GO_SERVER_ALIAS, get(handler)),
    )
}
