//! `/oauth/authorize` and `/oauth/callback`: the client's request is
//! checked, the user is sent to the provider, and on the way back gets a
//! single-use code for the client (with `state` and `iss`, RFC 9207).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::OAuthError;
use crate::oauth::clients::redirect_matches;
use crate::oauth::crypto::{hash, random_token};
use crate::oauth::store::{CodeGrant, PendingLogin};
use crate::oauth::{LOGIN_TTL, OAuthServer};

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

/// A 302 to `target` with `params` added to its query.
fn redirect(target: &str, params: &[(&str, &str)]) -> Response {
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
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// Sends an error back to a verified redirect URI.
fn redirect_error(
    server: &OAuthServer,
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
    redirect(uri, &params)
}

/// The resources a token may be bound to: our MCP endpoint (or our base).
pub fn resource_ok(server: &OAuthServer, resource: &str) -> bool {
    let base = server.resource.trim_end_matches("/mcp");
    resource.trim_end_matches('/') == server.resource || resource.trim_end_matches('/') == base
}

/// `GET /oauth/authorize`.
pub async fn authorize(
    State(server): State<Arc<OAuthServer>>,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let Some(client_id) = query.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return OAuthError::bad("invalid_request", "client_id is required").into_response();
    };
    let client = match server.clients.get(client_id).await {
        Ok(client) => client,
        Err(error) => return OAuthError::bad("invalid_client", error.to_string()).into_response(),
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
    if query.response_type.as_deref() != Some("code") {
        return redirect_error(
            &server,
            &redirect_uri,
            state,
            "unsupported_response_type",
            "only response_type=code",
        );
    }
    let Some(challenge) = query
        .code_challenge
        .as_deref()
        .filter(|c| (43..=128).contains(&c.len()))
    else {
        return redirect_error(
            &server,
            &redirect_uri,
            state,
            "invalid_request",
            "PKCE is required: send code_challenge (S256)",
        );
    };
    if query.code_challenge_method.as_deref() != Some("S256") {
        return redirect_error(
            &server,
            &redirect_uri,
            state,
            "invalid_request",
            "code_challenge_method must be S256",
        );
    }
    let resource = match query.resource.as_deref() {
        Some(resource) if !resource_ok(&server, resource) => {
            return redirect_error(
                &server,
                &redirect_uri,
                state,
                "invalid_target",
                "resource is not this server",
            );
        }
        _ => server.resource.clone(),
    };
    let result = async {
        let our_state = random_token(32)?;
        let (url, verifier, nonce) = server.provider.login_url(&our_state).await?;
        let pending = PendingLogin {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: challenge.to_owned(),
            client_state: query.state.clone(),
            scope: query.scope.clone().unwrap_or_default(),
            resource,
            provider_verifier: verifier,
            nonce,
        };
        server
            .store
            .put_pending(&hash(&our_state), &pending, LOGIN_TTL)
            .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(url)
    }
    .await;
    match result {
        Ok(url) => redirect(&url, &[]),
        Err(error) => {
            tracing::error!(%error, "cannot start the provider login");
            redirect_error(
                &server,
                &redirect_uri,
                state,
                "temporarily_unavailable",
                "the identity provider is unavailable",
            )
        }
    }
}

/// Query of `/oauth/callback`.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /oauth/callback`: the provider sends the user back here.
pub async fn callback(
    State(server): State<Arc<OAuthServer>>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(state) = query.state.as_deref() else {
        return OAuthError::bad("invalid_request", "missing state").into_response();
    };
    let pending = match server.store.take_pending(&hash(state)).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return OAuthError::bad(
                "invalid_request",
                "unknown or expired login; start again from the client",
            )
            .into_response();
        }
        Err(error) => return OAuthError::internal(error).into_response(),
    };
    let client_state = pending.client_state.as_deref();
    if let Some(error) = &query.error {
        tracing::info!(%error, "the provider refused the login");
        return redirect_error(
            &server,
            &pending.redirect_uri,
            client_state,
            "access_denied",
            "the login was not completed",
        );
    }
    let Some(code) = query.code.as_deref() else {
        return redirect_error(
            &server,
            &pending.redirect_uri,
            client_state,
            "access_denied",
            "no code from the provider",
        );
    };
    let (user, upstream) = match server
        .provider
        .exchange(code, &pending.provider_verifier, &pending.nonce)
        .await
    {
        Ok(result) => result,
        Err(error) => {
            tracing::warn!(%error, "provider login failed");
            return redirect_error(
                &server,
                &pending.redirect_uri,
                client_state,
                "access_denied",
                "the identity provider login failed",
            );
        }
    };
    let issued = async {
        let code = random_token(32)?;
        let family = random_token(16)?;
        let sealed = server.sealer.seal(
            &format!("upstream:{family}"),
            &serde_json::to_vec(&upstream)?,
        )?;
        let grant = CodeGrant {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge.clone(),
            scope: pending.scope.clone(),
            resource: pending.resource.clone(),
            user,
            upstream: Some(sealed),
            family,
            redeemed: false,
        };
        server
            .store
            .put_code(&hash(&code), &grant, server.config.code_ttl.0)
            .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(code)
    }
    .await;
    match issued {
        Ok(code) => {
            let mut params = vec![("code", code.as_str()), ("iss", server.issuer.as_str())];
            if let Some(state) = client_state {
                params.push(("state", state));
            }
            redirect(&pending.redirect_uri, &params)
        }
        Err(error) => OAuthError::internal(error).into_response(),
    }
}
