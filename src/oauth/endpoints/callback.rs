//! `/oauth/callback`: the provider sends the user back. The login must
//! come back to the browser that started it; then the user either gets a
//! code at once (a client the operator pre-approved, or one this user
//! approved for these scopes lately) or our consent page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::OAuthError;
use super::authorize::{redirect, redirect_error};
use super::browser::is_bound;
use super::consent;
use crate::oauth::crypto::{hash, random_token};
use crate::oauth::store::{ApprovalRequest, CodeGrant, PendingLogin, UserInfo};
use crate::oauth::{LOGIN_TTL, OAuthServer};

/// Query of `/oauth/callback`.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The answer to a browser that did not start this login.
pub fn foreign_browser() -> Response {
    OAuthError::bad(
        "invalid_request",
        "this login was started in another browser, or its cookie expired: start again from the application",
    )
    .into_response()
}

/// `GET /oauth/callback`.
pub async fn callback(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(state) = query.state.as_deref() else {
        return OAuthError::bad("invalid_request", "missing state").into_response();
    };
    let key = hash(state);
    let pending = match server.store.take_pending(&key).await {
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
    server.pending.release(&key);
    if !is_bound(&headers, &pending.browser) {
        return foreign_browser();
    }
    let client_state = pending.client_state.as_deref();
    let refuse = |description: &str| {
        redirect_error(
            &server,
            StatusCode::FOUND,
            &pending.redirect_uri,
            client_state,
            "access_denied",
            description,
        )
    };
    if let Some(error) = &query.error {
        // Debug-formatted: the value is the caller's, control characters
        // must not reach the log as they are.
        tracing::info!(error = ?error.chars().take(64).collect::<String>(), "the provider refused the login");
        return refuse("the login was not completed");
    }
    let Some(code) = query.code.as_deref() else {
        return refuse("no code from the provider");
    };
    let (user, upstream) = match server
        .provider
        .exchange(code, &pending.provider_verifier, &pending.nonce)
        .await
    {
        Ok(result) => result,
        Err(error) => {
            tracing::warn!(%error, "provider login failed");
            return refuse("the identity provider login failed");
        }
    };
    let grant = async {
        let family = random_token(16)?;
        let sealed = server.sealer.seal(
            &format!("upstream:{family}"),
            &serde_json::to_vec(&upstream)?,
        )?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(code_grant(
            &pending, user, sealed, family,
        ))
    }
    .await;
    let grant = match grant {
        Ok(grant) => grant,
        Err(error) => return OAuthError::internal(error).into_response(),
    };
    match needs_consent(&server, &grant).await {
        Ok(false) => issue_code(&server, grant, client_state, StatusCode::FOUND).await,
        Ok(true) => ask_consent(&server, grant, &pending).await,
        Err(error) => OAuthError::internal(error).into_response(),
    }
}

fn code_grant(
    pending: &PendingLogin,
    user: UserInfo,
    upstream: String,
    family: String,
) -> CodeGrant {
    CodeGrant {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        scope: pending.scope.clone(),
        resource: pending.resource.clone(),
        user,
        upstream: Some(upstream),
        family,
        redeemed: false,
    }
}

/// What a remembered approval is keyed by: this user, this client, these
/// scopes (a client asking for more asks the user again).
pub fn consent_key(grant: &CodeGrant) -> String {
    hash(&format!(
        "{}\n{}\n{}",
        grant.user.subject, grant.client_id, grant.scope
    ))
}

async fn needs_consent(
    server: &OAuthServer,
    grant: &CodeGrant,
) -> Result<bool, crate::oauth::store::StoreError> {
    if server.config.preapproved_clients.contains(&grant.client_id) {
        return Ok(false);
    }
    if server.config.consent_ttl.0.is_zero() {
        return Ok(true);
    }
    Ok(!server.store.consent_remembered(&consent_key(grant)).await?)
}

/// Keeps the login until the user decides, and shows the page.
async fn ask_consent(server: &OAuthServer, grant: CodeGrant, pending: &PendingLogin) -> Response {
    let csrf = match random_token(32) {
        Ok(csrf) => csrf,
        Err(error) => return OAuthError::internal(error).into_response(),
    };
    let request = ApprovalRequest {
        grant,
        client_state: pending.client_state.clone(),
        browser: pending.browser.clone(),
        client_name: pending.client_name.clone(),
    };
    if let Err(error) = server
        .store
        .put_approval(&hash(&csrf), &request, LOGIN_TTL)
        .await
    {
        return OAuthError::internal(error).into_response();
    }
    consent::page(server, &request, &csrf)
}

/// Stores a single-use code for `grant` and sends the browser back to the
/// client with it.
pub async fn issue_code(
    server: &OAuthServer,
    grant: CodeGrant,
    client_state: Option<&str>,
    status: StatusCode,
) -> Response {
    let issued = async {
        let code = random_token(32)?;
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
            redirect(status, &grant.redirect_uri, &params)
        }
        Err(error) => OAuthError::internal(error).into_response(),
    }
}
