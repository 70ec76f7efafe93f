//! `/oauth/token` (authorization_code, refresh_token) and `/oauth/revoke`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;

use super::OAuthError;
use super::authorize::resource_ok;
use crate::oauth::crypto::{constant_time_eq, hash, pkce_challenge, random_token};
use crate::oauth::provider::UpstreamTokens;
use crate::oauth::signer::AccessClaims;
use crate::oauth::store::{ClientRecord, Redeemed, RefreshGrant, Rotated, Rotation, UserInfo};
use crate::oauth::{OAuthServer, now, now_millis};

/// The token endpoint's form (both grants, and revocation).
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    resource: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    pub(super) token: Option<String>,
}

/// Authenticates the client: Basic, form secret, or none for public ones.
pub(super) async fn authenticate(
    server: &OAuthServer,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<ClientRecord, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v.trim()).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| {
            let (id, secret) = v.split_once(':')?;
            Some((id.to_owned(), secret.to_owned()))
        });
    let (client_id, secret) = match (basic, &form.client_id) {
        (Some((id, secret)), _) => (id, Some(secret)),
        (None, Some(id)) => (id.clone(), form.client_secret.clone()),
        (None, None) => {
            return Err(OAuthError::client(
                "client authentication failed: send client_id",
            ));
        }
    };
    let client = server
        .clients
        .get(&client_id)
        .await
        .map_err(|e| OAuthError::from_client_lookup(e, OAuthError::client))?;
    match (&client.secret_hash, secret) {
        (Some(expected), Some(secret)) if constant_time_eq(expected, &hash(&secret)) => Ok(client),
        (Some(_), _) => Err(OAuthError::client("client authentication failed")),
        (None, _) => Ok(client),
    }
}

/// `POST /oauth/token`.
pub async fn token(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    let result = async {
        let client = authenticate(&server, &headers, &form).await?;
        match form.grant_type.as_deref() {
            Some("authorization_code") => code_grant(&server, &client, &form).await,
            Some("refresh_token") => refresh_grant(&server, &client, &form).await,
            Some(other) => Err(OAuthError::bad(
                "unsupported_grant_type",
                format!("{other:?} is not supported"),
            )),
            None => Err(OAuthError::bad("invalid_request", "grant_type is required")),
        }
    }
    .await;
    match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn code_grant(
    server: &OAuthServer,
    client: &ClientRecord,
    form: &TokenForm,
) -> Result<Response, OAuthError> {
    let code = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::bad("invalid_request", "code is required"))?;
    let grant = match server
        .store
        .redeem_code(&hash(code))
        .await
        .map_err(OAuthError::internal)?
    {
        Redeemed::Fresh(grant) => *grant,
        Redeemed::Replayed { family } => {
            server
                .store
                .revoke_family(&family)
                .await
                .map_err(OAuthError::internal)?;
            return Err(OAuthError::bad(
                "invalid_grant",
                "this code was already used; the tokens issued for it are revoked",
            ));
        }
        Redeemed::Unknown => {
            return Err(OAuthError::bad("invalid_grant", "unknown or expired code"));
        }
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::bad(
            "invalid_grant",
            "the code was issued to another client",
        ));
    }
    if form
        .redirect_uri
        .as_deref()
        .is_some_and(|uri| uri != grant.redirect_uri)
    {
        return Err(OAuthError::bad(
            "invalid_grant",
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::bad("invalid_grant", "code_verifier is required (PKCE)"))?;
    if !constant_time_eq(&pkce_challenge(verifier), &grant.code_challenge) {
        return Err(OAuthError::bad(
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        ));
    }
    if let Some(resource) = &form.resource
        && (!resource_ok(server, resource) || resource.trim_end_matches('/') != grant.resource)
    {
        return Err(OAuthError::bad(
            "invalid_target",
            "resource does not match the authorization request",
        ));
    }
    let refresh = RefreshGrant {
        family: grant.family,
        client_id: grant.client_id,
        scope: grant.scope,
        resource: grant.resource,
        user: grant.user,
        upstream: grant.upstream,
        upstream_refresh_at: 0,
        used_at: None,
        started_at: now(),
    };
    let refresh = with_upstream_deadline(server, refresh);
    let token = random_token(32).map_err(OAuthError::internal)?;
    server
        .store
        .put_refresh(&hash(&token), &refresh, refresh_ttl(server, &refresh))
        .await
        .map_err(OAuthError::internal)?;
    issue(server, &refresh, &token)
}

/// How long a refresh token lives: the sliding `refresh_token_ttl`, but
/// never past the family's absolute end (`refresh_token_max_lifetime`).
fn refresh_ttl(server: &OAuthServer, grant: &RefreshGrant) -> Duration {
    let end = grant
        .started_at
        .saturating_add(server.config.refresh_token_max_lifetime.0.as_secs());
    let left = Duration::from_secs(end.saturating_sub(now()));
    server.config.refresh_token_ttl.0.min(left)
}

/// Sets when the provider tokens inside a grant should be refreshed.
fn with_upstream_deadline(server: &OAuthServer, mut grant: RefreshGrant) -> RefreshGrant {
    grant.upstream_refresh_at = upstream_tokens(server, &grant)
        .map(|t| t.expires_at)
        .unwrap_or(u64::MAX);
    grant
}

fn upstream_tokens(server: &OAuthServer, grant: &RefreshGrant) -> Option<UpstreamTokens> {
    let sealed = grant.upstream.as_deref()?;
    let plain = server
        .sealer
        .open(&format!("upstream:{}", grant.family), sealed)
        .ok()?;
    serde_json::from_slice(&plain).ok()
}

async fn refresh_grant(
    server: &OAuthServer,
    client: &ClientRecord,
    form: &TokenForm,
) -> Result<Response, OAuthError> {
    let presented = form
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::bad("invalid_request", "refresh_token is required"))?;
    let old_hash = hash(presented);
    let current = server
        .store
        .refresh(&old_hash)
        .await
        .map_err(OAuthError::internal)?
        .ok_or_else(|| OAuthError::bad("invalid_grant", "unknown or expired refresh token"))?;
    if current.client_id != client.client_id {
        return Err(OAuthError::bad(
            "invalid_grant",
            "the refresh token was issued to another client",
        ));
    }
    if let Some(resource) = &form.resource
        && resource.trim_end_matches('/') != current.resource
    {
        return Err(OAuthError::bad(
            "invalid_target",
            "resource does not match the grant",
        ));
    }
    if refresh_ttl(server, &current).is_zero() {
        return Err(OAuthError::bad(
            "invalid_grant",
            "this login reached its maximum lifetime; log in again",
        ));
    }
    let mut next = RefreshGrant {
        used_at: None,
        ..current.clone()
    };
    if now() >= current.upstream_refresh_at
        && let Some(tokens) = upstream_tokens(server, &current)
    {
        // A revoked login never reaches the provider (otherwise the atomic
        // rotation below refuses it).
        if server
            .store
            .family_revoked(&current.family)
            .await
            .map_err(OAuthError::internal)?
        {
            return Err(OAuthError::bad(
                "invalid_grant",
                "this login was revoked; log in again",
            ));
        }
        // Refresh at the provider so group changes (and revocations) reach us.
        match server.provider.refresh(&tokens, &current.user).await {
            Ok((user, fresh)) => {
                next.user = UserInfo { ..user };
                next.upstream = Some(
                    server
                        .sealer
                        .seal(
                            &format!("upstream:{}", next.family),
                            &serde_json::to_vec(&fresh).map_err(OAuthError::internal)?,
                        )
                        .map_err(OAuthError::internal)?,
                );
            }
            Err(error) => {
                tracing::info!(%error, "provider refresh failed; the user must log in again");
                server
                    .store
                    .revoke_family(&current.family)
                    .await
                    .map_err(OAuthError::internal)?;
                return Err(OAuthError::bad(
                    "invalid_grant",
                    "the login expired at the identity provider; log in again",
                ));
            }
        }
    }
    let next = with_upstream_deadline(server, next);
    let token = random_token(32).map_err(OAuthError::internal)?;
    let outcome = server
        .store
        .rotate_refresh(Rotation {
            old_hash: &old_hash,
            new_hash: &hash(&token),
            new: &next,
            ttl: refresh_ttl(server, &next),
            now_ms: now_millis(),
            grace: server.config.refresh_reuse_grace.0,
        })
        .await
        .map_err(OAuthError::internal)?;
    match outcome {
        Rotated::Done => issue(server, &next, &token),
        Rotated::Reused => Err(OAuthError::bad(
            "invalid_grant",
            "refresh token reuse detected: every token of this login is revoked; log in again",
        )),
        Rotated::Raced => Err(OAuthError::bad(
            "invalid_grant",
            "this refresh token was just used; use the newer one",
        )),
        Rotated::Revoked => Err(OAuthError::bad(
            "invalid_grant",
            "this login was revoked; log in again",
        )),
        Rotated::Unknown => Err(OAuthError::bad(
            "invalid_grant",
            "unknown or expired refresh token",
        )),
    }
}

/// The token response: a signed access token and the refresh token.
fn issue(
    server: &OAuthServer,
    grant: &RefreshGrant,
    refresh_token: &str,
) -> Result<Response, OAuthError> {
    let issued_at = now();
    let ttl = server.config.access_token_ttl.0.as_secs().max(1);
    let claims = AccessClaims {
        iss: &server.issuer,
        sub: &grant.user.subject,
        aud: &grant.resource,
        exp: issued_at + ttl,
        iat: issued_at,
        nbf: issued_at,
        jti: random_token(16).map_err(OAuthError::internal)?,
        sid: &grant.family,
        client_id: &grant.client_id,
        scope: &grant.scope,
        groups: &grant.user.groups,
        email: grant.user.email.as_deref(),
    };
    let access = server.signer.sign(&claims).map_err(OAuthError::internal)?;
    let body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "refresh_token": refresh_token,
        "scope": grant.scope,
    });
    Ok((
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response())
}
