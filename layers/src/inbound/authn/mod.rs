//! Inbound authentication (resource-server mode): a bearer JWT from a
//! trusted issuer becomes a [`Principal`] in the request extensions; a
//! missing or bad token gets 401 with an RFC 6750 / RFC 9728 challenge.

mod build;
mod config;
mod jwks;
mod revocation;
mod verify;

use std::sync::Arc;

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

pub use build::AuthnConfigError;
pub use config::{AuthnConfig, IssuerConfig};
pub use jwks::{JwksCache, JwksError, JwksSource};
pub use revocation::RevocationCheck;
pub use verify::{AuthError, IssuerVerifier, VerifiedCache, Verifier, missing_scopes};

use crate::audit::EventKind;
use crate::identity::{Principal, VerifiedCredential};
use crate::inbound::gate::{Gate, GateLayer, GateService};
use crate::response::json_error;

/// `mcp_prometheus_authn_failures_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    reason: &'static str,
}

/// The authn decision: which headers carry tokens, how they are verified,
/// and how a refusal is answered.
pub struct Authenticator {
    verifier: Verifier,
    headers: Vec<HeaderName>,
    required_scopes: Vec<String>,
    resource_metadata_url: String,
    revocations: Option<Arc<dyn RevocationCheck>>,
    failures: Family<FailureLabels, Counter>,
}

impl Authenticator {
    /// The first token found in a configured header.
    fn token<'a>(&self, headers: &'a http::HeaderMap) -> Option<(&HeaderName, &'a str)> {
        self.headers.iter().find_map(|name| {
            let value = headers.get(name)?.to_str().ok()?.trim();
            let token = if *name == AUTHORIZATION {
                let (scheme, token) = value.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())?
            } else {
                value.strip_prefix("Bearer ").unwrap_or(value)
            };
            (!token.is_empty()).then_some((name, token))
        })
    }

    /// The verified principal and the header its token came in.
    async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<(Principal, HeaderName), Refusal> {
        let Some((header, token)) = self.token(headers) else {
            return Err(Refusal::Unauthorized(AuthError::Missing));
        };
        let principal = self
            .verifier
            .verify(header, token)
            .await
            .map_err(Refusal::Unauthorized)?;
        if let Some(revocations) = &self.revocations {
            match revocations.is_revoked(&principal).await {
                Ok(false) => {}
                Ok(true) => return Err(Refusal::Unauthorized(AuthError::Revoked)),
                Err(error) => {
                    tracing::warn!(%error, "cannot check token revocation");
                    return Err(Refusal::Unauthorized(AuthError::RevocationUnknown));
                }
            }
        }
        let missing = missing_scopes(&principal, &self.required_scopes);
        if !missing.is_empty() {
            return Err(Refusal::Scope(missing.join(" ")));
        }
        Ok((principal, header.clone()))
    }

    fn refuse(&self, refusal: Refusal) -> Response<String> {
        let (status, reason, challenge, (error, description)) = match &refusal {
            Refusal::Unauthorized(AuthError::Missing) => (
                StatusCode::UNAUTHORIZED,
                "missing",
                format!(
                    "Bearer resource_metadata=\"{}\"{}",
                    self.resource_metadata_url,
                    self.scope_param()
                ),
                (
                    "invalid_request",
                    "no bearer token: authenticate and send Authorization: Bearer <token>"
                        .to_owned(),
                ),
            ),
            Refusal::Unauthorized(error) => (
                StatusCode::UNAUTHORIZED,
                error.reason(),
                format!(
                    "Bearer resource_metadata=\"{}\", error=\"invalid_token\", error_description=\"{}\"{}",
                    self.resource_metadata_url,
                    quoted(&error.to_string()),
                    self.scope_param()
                ),
                ("invalid_token", error.to_string()),
            ),
            Refusal::Scope(missing) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "Bearer resource_metadata=\"{}\", error=\"insufficient_scope\", scope=\"{}\", error_description=\"missing scope {}\"",
                    self.resource_metadata_url,
                    quoted(&self.required_scopes.join(" ")),
                    quoted(missing)
                ),
                (
                    "insufficient_scope",
                    format!("the token lacks the scope {missing}"),
                ),
            ),
        };
        self.failures.get_or_create(&FailureLabels { reason }).inc();
        let mut response = json_error(status, error, &description);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }

    fn scope_param(&self) -> String {
        if self.required_scopes.is_empty() {
            String::new()
        } else {
            format!(", scope=\"{}\"", quoted(&self.required_scopes.join(" ")))
        }
    }
}

enum Refusal {
    Unauthorized(AuthError),
    Scope(String),
}

/// Keeps a header parameter's quoted string valid.
fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
        .collect()
}

/// Authenticates every request; see the module docs.
pub type AuthnLayer = GateLayer<Authenticator>;

/// Service of [`AuthnLayer`].
pub type Authn<S> = GateService<Authenticator, S>;

impl Gate for Authenticator {
    const AUDIT_AS: EventKind = EventKind::Authn;

    async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
        match self.authenticate(&parts.headers).await {
            Ok((principal, header)) => {
                tracing::debug!(subject = %principal.subject, issuer = %principal.issuer, "authenticated");
                parts.extensions.insert(principal);
                parts.extensions.insert(VerifiedCredential(header));
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal)),
        }
    }
}

#[cfg(test)]
mod tests;
