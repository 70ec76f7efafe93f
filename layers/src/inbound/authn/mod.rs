//! Inbound authentication (resource-server mode): a bearer JWT from a
//! trusted issuer becomes a [`Principal`] in the request extensions; a
//! missing or bad token gets 401 with an RFC 6750 / RFC 9728 challenge.

mod config;
mod jwks;
mod revocation;
mod verify;

use std::sync::Arc;

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use jsonwebtoken::DecodingKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

pub use config::{AuthnConfig, IssuerConfig};
pub use jwks::{JwksCache, JwksError, JwksSource};
pub use revocation::RevocationCheck;
pub use verify::{AuthError, IssuerVerifier, VerifiedCache, Verifier, missing_scopes};

use crate::fetch::{Fetch, FetchPolicy, SafeFetcher};
use crate::identity::Principal;
use crate::inbound::gate::{Gate, GateLayer, GateService};
use crate::response::json_error;

/// What the server tells the layer about itself.
#[derive(Clone)]
pub struct AuthnSettings {
    /// Audiences accepted when `audiences` is not configured (our
    /// resource URL and public URL).
    pub default_audiences: Vec<String>,
    /// Further accepted audiences (trusted client IDs of the audience layer).
    pub extra_audiences: Vec<String>,
    /// RFC 9728 metadata URL sent in every challenge.
    pub resource_metadata_url: String,
    /// Revocations of logins of our own authorization server, if it runs.
    pub revocations: Option<Arc<dyn RevocationCheck>>,
}

/// A config that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum AuthnConfigError {
    #[error("layers.authn.issuers: configure at least one issuer")]
    NoIssuer,
    #[error("layers.authn.issuers[{0}].header: {1:?} is not a header name")]
    Header(usize, String),
    #[error("layers.authn.issuers[{0}].algorithms: {1}")]
    Algorithms(usize, String),
    #[error("layers.authn.issuers[{0}].hmac_secret_file: {1}")]
    Secret(usize, String),
    #[error("layers.authn.issuers[{0}]: {1}")]
    Fetcher(usize, String),
}

/// `mcp_prometheus_authn_failures_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    reason: &'static str,
}

impl AuthnConfig {
    /// Builds the layer, fetching keys through a [`SafeFetcher`] per issuer.
    pub fn build(
        &self,
        settings: AuthnSettings,
        registry: &mut Registry,
    ) -> Result<AuthnLayer, AuthnConfigError> {
        self.build_with(settings, registry, |i, issuer| {
            let fetcher = SafeFetcher::new(FetchPolicy {
                allow_private: issuer.allow_private_urls,
                tls: issuer.tls.clone(),
                ..FetchPolicy::default()
            })
            .map_err(|e| AuthnConfigError::Fetcher(i, e.to_string()))?;
            Ok(Arc::new(fetcher) as Arc<dyn Fetch>)
        })
    }

    /// Builds the layer with a caller-chosen fetcher (tests).
    pub fn build_with(
        &self,
        settings: AuthnSettings,
        registry: &mut Registry,
        fetcher: impl Fn(usize, &IssuerConfig) -> Result<Arc<dyn Fetch>, AuthnConfigError>,
    ) -> Result<AuthnLayer, AuthnConfigError> {
        if self.issuers.is_empty() {
            return Err(AuthnConfigError::NoIssuer);
        }
        let mut issuers = Vec::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            let header = HeaderName::try_from(issuer.header.as_str())
                .map_err(|_| AuthnConfigError::Header(i, issuer.header.clone()))?;
            if issuer.algorithms.is_empty() {
                return Err(AuthnConfigError::Algorithms(
                    i,
                    "list at least one algorithm".into(),
                ));
            }
            let wants_hmac = issuer
                .algorithms
                .iter()
                .any(|a| a.family() == jsonwebtoken::AlgorithmFamily::Hmac);
            let hmac = match (&issuer.hmac_secret_file, wants_hmac) {
                (Some(path), true) => {
                    let secret = std::fs::read(path).map_err(|e| {
                        AuthnConfigError::Secret(i, format!("{}: {e}", path.display()))
                    })?;
                    let secret = secret.trim_ascii();
                    if secret.len() < 32 {
                        return Err(AuthnConfigError::Secret(
                            i,
                            "an HMAC secret needs at least 32 bytes".into(),
                        ));
                    }
                    Some(Arc::new(DecodingKey::from_secret(secret)))
                }
                (None, true) => {
                    return Err(AuthnConfigError::Algorithms(
                        i,
                        "HS256/HS384/HS512 need hmac_secret_file (published RSA/EC keys are never HMAC secrets)".into(),
                    ));
                }
                (Some(_), false) => {
                    return Err(AuthnConfigError::Secret(
                        i,
                        "list an HS* algorithm to use the secret".into(),
                    ));
                }
                (None, false) => None,
            };
            let source = match &issuer.jwks_url {
                Some(url) => JwksSource::Url(url.clone()),
                None => JwksSource::Discover {
                    issuer: issuer.issuer.clone(),
                },
            };
            issuers.push(IssuerVerifier {
                issuer: issuer.issuer.clone(),
                header,
                algorithms: issuer.algorithms.clone(),
                groups_claim: issuer.groups_claim.split('.').map(str::to_owned).collect(),
                hmac,
                jwks: JwksCache::new(
                    source,
                    fetcher(i, issuer)?,
                    issuer.jwks_refresh_interval.0,
                    issuer.jwks_min_refetch_interval.0,
                ),
            });
        }
        let mut audiences = if self.audiences.is_empty() {
            settings.default_audiences.clone()
        } else {
            self.audiences.clone()
        };
        audiences.extend(settings.extra_audiences.iter().cloned());
        let mut headers: Vec<HeaderName> = Vec::new();
        for issuer in &issuers {
            if !headers.contains(&issuer.header) {
                headers.push(issuer.header.clone());
            }
        }
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "mcp_prometheus_authn_failures",
            "Requests refused by the authn layer, by reason",
            failures.clone(),
        );
        Ok(GateLayer::new(Authenticator {
            verifier: Verifier {
                issuers,
                audiences,
                leeway: self.leeway.0.as_secs(),
                max_token_bytes: self.max_token_bytes,
                cache: VerifiedCache::default(),
            },
            headers,
            required_scopes: self.required_scopes.clone(),
            resource_metadata_url: settings.resource_metadata_url,
            revocations: settings.revocations,
            failures,
        }))
    }
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

    async fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, Refusal> {
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
        Ok(principal)
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
    async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
        match self.authenticate(&parts.headers).await {
            Ok(principal) => {
                tracing::debug!(subject = %principal.subject, issuer = %principal.issuer, "authenticated");
                parts.extensions.insert(principal);
                Ok(())
            }
            Err(refusal) => Err(self.refuse(refusal)),
        }
    }
}

#[cfg(test)]
mod tests;
