//! The authorization server's HTTP endpoints (axum), outside the MCP route
//! and its authentication.

mod authorize;
mod browser;
mod callback;
mod consent;
mod error;
mod metadata;
mod ratelimit;
mod register;
mod revoke;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};

use super::OAuthServer;

pub use error::OAuthError;

/// Largest request body any OAuth endpoint reads (registration JSON,
/// token and consent forms); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Every route of the authorization server.
pub fn router(server: Arc<OAuthServer>) -> Router {
    let throttled = Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(revoke::revoke))
        .route("/oauth/register", post(register::register))
        .route_layer(middleware::from_fn_with_state(
            server.clone(),
            ratelimit::throttle,
        ));
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server/{*rest}",
            get(metadata::metadata),
        )
        .route("/.well-known/openid-configuration", get(metadata::metadata))
        .route("/oauth/jwks", get(metadata::jwks))
        .route("/oauth/authorize", get(authorize::authorize))
        .route("/oauth/callback", get(callback::callback))
        .route("/oauth/consent", post(consent::decide))
        .merge(throttled)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(server)
}
