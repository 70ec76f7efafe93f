//! `/oauth/register`: dynamic client registration (RFC 7591), as the
//! configured policy allows, rate-limited per address.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::OAuthError;
use crate::oauth::OAuthServer;
use crate::oauth::clients::check_redirect_uri;
use crate::oauth::config::RegistrationPolicy;
use crate::oauth::crypto::{constant_time_eq, hash, random_token};
use crate::oauth::store::ClientRecord;

/// RFC 7591 client metadata we read.
#[derive(Debug, Deserialize)]
pub struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    response_types: Vec<String>,
    scope: Option<String>,
}

/// Most redirect URIs a client may register.
const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI, client name and scope.
const MAX_URI_BYTES: usize = 2048;
const MAX_NAME_CHARS: usize = 200;

/// Refuses metadata too large to keep (each client is stored for
/// `client_idle_ttl` and shown on the consent page).
fn check_bounds(request: &Registration) -> Result<(), String> {
    let longer_than = |text: &Option<String>, most: usize, count: fn(&str) -> usize| {
        text.as_deref().is_some_and(|t| count(t) > most)
    };
    let limits = [
        (
            request.redirect_uris.len() > MAX_REDIRECT_URIS,
            format!("redirect_uris: at most {MAX_REDIRECT_URIS} URIs"),
        ),
        (
            request
                .redirect_uris
                .iter()
                .any(|u| u.len() > MAX_URI_BYTES),
            format!("redirect_uris: each at most {MAX_URI_BYTES} bytes"),
        ),
        (
            longer_than(&request.client_name, MAX_NAME_CHARS, |t| t.chars().count()),
            format!("client_name: at most {MAX_NAME_CHARS} characters"),
        ),
        (
            longer_than(&request.scope, MAX_URI_BYTES, str::len),
            format!("scope: at most {MAX_URI_BYTES} bytes"),
        ),
    ];
    match limits.into_iter().find(|(broken, _)| *broken) {
        Some((_, message)) => Err(message),
        None => Ok(()),
    }
}

/// `POST /oauth/register`.
pub async fn register(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match server.config.registration {
        RegistrationPolicy::Off => {
            return OAuthError {
                status: StatusCode::FORBIDDEN,
                error: "access_denied",
                description: "dynamic registration is off here; use a client ID metadata document"
                    .into(),
            }
            .into_response();
        }
        RegistrationPolicy::Token => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let expected = server.registration_token.as_deref().unwrap_or_default();
            if !presented
                .is_some_and(|p| !expected.is_empty() && constant_time_eq(p.trim(), expected))
            {
                return OAuthError {
                    status: StatusCode::UNAUTHORIZED,
                    error: "invalid_token",
                    description: "registration needs Authorization: Bearer <initial access token>"
                        .into(),
                }
                .into_response();
            }
        }
        RegistrationPolicy::Public => {}
    }
    let request: Registration = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return OAuthError::bad(
                "invalid_client_metadata",
                format!("not RFC 7591 JSON: {error}"),
            )
            .into_response();
        }
    };
    if let Err(reason) = check_bounds(&request) {
        return OAuthError::bad("invalid_client_metadata", reason).into_response();
    }
    if request.redirect_uris.is_empty() {
        return OAuthError::bad(
            "invalid_redirect_uri",
            "redirect_uris must list at least one URI",
        )
        .into_response();
    }
    for uri in &request.redirect_uris {
        if let Err(reason) = check_redirect_uri(uri) {
            return OAuthError::bad("invalid_redirect_uri", reason).into_response();
        }
    }
    if request
        .grant_types
        .iter()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return OAuthError::bad(
            "invalid_client_metadata",
            "grant_types: only authorization_code and refresh_token",
        )
        .into_response();
    }
    if request.response_types.iter().any(|r| r != "code") {
        return OAuthError::bad("invalid_client_metadata", "response_types: only code")
            .into_response();
    }
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(
        method.as_str(),
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return OAuthError::bad(
            "invalid_client_metadata",
            "token_endpoint_auth_method: none, client_secret_basic or client_secret_post",
        )
        .into_response();
    }
    let issued = async {
        let client_id = random_token(18)?;
        let secret = if method == "none" {
            None
        } else {
            Some(random_token(32)?)
        };
        let record = ClientRecord {
            client_id: client_id.clone(),
            secret_hash: secret.as_deref().map(hash),
            redirect_uris: request.redirect_uris.clone(),
            client_name: request.client_name.clone(),
            auth_method: method.clone(),
            // What it may ever be granted: narrowed to what we advertise.
            scope: request
                .scope
                .as_deref()
                .map(|scope| server.scopes.grant(Some(scope), None)),
        };
        server.clients.register(&record).await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((record, secret))
    }
    .await;
    let (record, secret) = match issued {
        Ok(issued) => issued,
        Err(error) => return OAuthError::internal(error).into_response(),
    };
    let mut body = json!({
        "client_id": record.client_id,
        "client_id_issued_at": crate::oauth::now(),
        "redirect_uris": record.redirect_uris,
        "token_endpoint_auth_method": record.auth_method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    if let Some(name) = &record.client_name {
        body["client_name"] = json!(name);
    }
    if let Some(scope) = &record.scope {
        body["scope"] = json!(scope);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    (
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}
