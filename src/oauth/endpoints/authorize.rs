//! `/oauth/authorize`: the client's request is checked (sizes first, then
//! the client and its redirect URI, and only then may errors go back to the
//! client by redirect), the browser is bound by a cookie, and the user is
//! sent to the provider.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::OAuthError;
use super::browser;
use super::ratelimit::{client_address, limited};
use crate::oauth::clients::redirect_matches;
use crate::oauth::crypto::{hash, random_token};
use crate::oauth::pending::BudgetError;
use crate::oauth::store::PendingLogin;
use crate::oauth::{LOGIN_TTL, OAuthServer};

/// Longest `state`, `scope` and `client_id` accepted: each is stored with
/// the pending login, so each is bounded.
pub const MAX_PARAM_BYTES: usize = 1024;

/// Query of `/oauth/authorize`.
#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// A redirect (302, or 303 after a form) to `target` with `params` added.
pub fn redirect(status: StatusCode, target: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(target) {
        Ok(url) => url,
        Err(_) => {
            return OAuthError::bad("invalid_request", "unusable redirect_uri").into_response();
        }
    };
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in params {
            query.append_pair(key, value);
        }
    }
    (
        status,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// Sends an error back to a verified redirect URI.
pub fn redirect_error(
    server: &OAuthServer,
    status: StatusCode,
    uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![
        ("error", error),
        ("error_description", description),
        ("iss", server.issuer.as_str()),
    ];
    if let Some(state) = state {
        params.push(("state", state));
    }
    redirect(status, uri, &params)
}

/// The resources a token may be bound to: our MCP endpoint (or our base).
pub fn resource_ok(server: &OAuthServer, resource: &str) -> bool {
    let base = server.resource.trim_end_matches("/mcp");
    resource.trim_end_matches('/') == server.resource || resource.trim_end_matches('/') == base
}

/// Refuses parameters too large to keep, before anything is looked up.
fn check_sizes(query: &AuthorizeQuery) -> Result<(), OAuthError> {
    for (name, value) in [
        ("state", &query.state),
        ("scope", &query.scope),
        ("client_id", &query.client_id),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_PARAM_BYTES) {
            return Err(OAuthError::bad(
                "invalid_request",
                format!("{name} is longer than {MAX_PARAM_BYTES} bytes: send a shorter one"),
            ));
        }
    }
    Ok(())
}

/// `GET /oauth/authorize`.
pub async fn authorize(
    State(server): State<Arc<OAuthServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let address = client_address(server.config.trust_forwarded_for, peer, &headers);
    if let Some(refusal) = limited(&server.authorize_limiter, address) {
        return refusal;
    }
    if let Err(error) = check_sizes(&query) {
        return error.into_response();
    }
    let Some(client_id) = query.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return OAuthError::bad("invalid_request", "client_id is required").into_response();
    };
    let client = match server.clients.get(client_id).await {
        Ok(client) => client,
        Err(error) => {
            return OAuthError::from_client_lookup(error, |e| OAuthError::bad("invalid_client", e))
                .into_response();
        }
    };
    // Until the redirect URI is verified, errors are shown, never redirected.
    let redirect_uri = match (&query.redirect_uri, client.redirect_uris.as_slice()) {
        (Some(uri), registered) if redirect_matches(registered, uri) => uri.clone(),
        (None, [only]) => only.clone(),
        (Some(uri), _) => {
            return OAuthError::bad(
                "invalid_request",
                format!("redirect_uri {uri:?} is not registered for this client"),
            )
            .into_response();
        }
        (None, _) => {
            return OAuthError::bad("invalid_request", "redirect_uri is required").into_response();
        }
    };
    let state = query.state.as_deref();
    let refuse = |error: &str, description: &str| {
        redirect_error(
            &server,
            StatusCode::FOUND,
            &redirect_uri,
            state,
            error,
            description,
        )
    };
    if query.response_type.as_deref() != Some("code") {
        return refuse("unsupported_response_type", "only response_type=code");
    }
    let Some(challenge) = query
        .code_challenge
        .as_deref()
        .filter(|c| (43..=128).contains(&c.len()))
    else {
        return refuse(
            "invalid_request",
            "PKCE is required: send code_challenge (S256)",
        );
    };
    if query.code_challenge_method.as_deref() != Some("S256") {
        return refuse("invalid_request", "code_challenge_method must be S256");
    }
    let resource = match query.resource.as_deref() {
        Some(resource) if !resource_ok(&server, resource) => {
            return refuse("invalid_target", "resource is not this server");
        }
        _ => server.resource.clone(),
    };
    let scope = server
        .scopes
        .grant(query.scope.as_deref(), client.scope.as_deref());
    let result = async {
        let our_state = random_token(32)?;
        let key = hash(&our_state);
        if let Err(refusal) = server.pending.admit(&key, address) {
            return Ok(Err(refusal));
        }
        let binding = browser::bind(&server)?;
        let started = async {
            let (url, verifier, nonce) = server.provider.login_url(&our_state).await?;
            let pending = PendingLogin {
                client_id: client.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: challenge.to_owned(),
                client_state: query.state.clone(),
                scope,
                resource,
                provider_verifier: verifier,
                nonce,
                browser: binding.hash,
                client_name: client.client_name.clone(),
            };
            server.store.put_pending(&key, &pending, LOGIN_TTL).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(url)
        }
        .await;
        if started.is_err() {
            server.pending.release(&key);
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Ok((started?, binding.set_cookie)))
    }
    .await;
    match result {
        Ok(Ok((url, cookie))) => {
            let mut response = redirect(StatusCode::FOUND, &url, &[]);
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Ok(Err(refusal)) => {
            let status = match refusal {
                BudgetError::Address => StatusCode::TOO_MANY_REQUESTS,
                BudgetError::Total => StatusCode::SERVICE_UNAVAILABLE,
            };
            OAuthError {
                status,
                error: "temporarily_unavailable",
                description: refusal.to_string(),
            }
            .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot start the provider login");
            refuse(
                "temporarily_unavailable",
                "the identity provider is unavailable",
            )
        }
    }
}
