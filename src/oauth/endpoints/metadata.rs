//! RFC 8414 authorization server metadata and our JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::oauth::OAuthServer;
use crate::oauth::config::RegistrationPolicy;

/// `/.well-known/oauth-authorization-server` (and the forms clients try).
pub async fn metadata(State(server): State<Arc<OAuthServer>>) -> Json<Value> {
    let issuer = &server.issuer;
    let mut document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "jwks_uri": format!("{issuer}/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": server.scopes.advertised(),
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "resource_indicators_supported": true,
    });
    if server.config.registration != RegistrationPolicy::Off {
        document["registration_endpoint"] = json!(format!("{issuer}/oauth/register"));
    }
    Json(document)
}

/// `/oauth/jwks`.
pub async fn jwks(State(server): State<Arc<OAuthServer>>) -> Json<Value> {
    Json(server.signer.jwks().clone())
}
