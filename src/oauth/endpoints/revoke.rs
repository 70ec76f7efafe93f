//! `/oauth/revoke` (RFC 7009).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::OAuthError;
use super::token::{TokenForm, authenticate};
use crate::oauth::OAuthServer;
use crate::oauth::crypto::hash;

/// `POST /oauth/revoke` (RFC 7009): always 200; a refresh token of this
/// client revokes its whole family.
pub async fn revoke(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let client = match authenticate(&server, &headers, &form).await {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    if let Some(token) = form.token.as_deref()
        && let Ok(Some(grant)) = server.store.refresh(&hash(token)).await
        && grant.client_id == client.client_id
        && let Err(error) = server.store.revoke_family(&grant.family).await
    {
        return OAuthError::internal(error).into_response();
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}
