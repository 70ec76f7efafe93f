//! The login leg against the OIDC provider (Dex): discovery, authorization
//! code with PKCE and nonce on our side too, ID-token verification, and
//! refresh so group changes at the provider reach us. HTTP goes through our
//! guarded client: no redirects followed, custom CA, private addresses only
//! when allowed — for discovery and JWKS alike.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_prometheus_layers::fetch::{FetchPolicy, SafeFetcher};
use mcp_prometheus_layers::tls::TlsConfig;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::store::UserInfo;

type ProviderClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Metadata (and so the provider's keys) is discovered again this often.
const REDISCOVER: Duration = Duration::from_secs(3600);
/// A failed ID-token check triggers rediscovery at most this often.
const FORCED_REDISCOVERY: Duration = Duration::from_secs(60);

/// A failure talking to the provider.
#[derive(Debug, thiserror::Error)]
#[error("identity provider: {0}")]
pub struct ProviderError(pub String);

fn fail(error: impl std::fmt::Display) -> ProviderError {
    ProviderError(error.to_string())
}

/// The provider's tokens for one user, kept sealed in our store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What the provider login settings resolve to.
pub struct ProviderSettings {
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub groups_claim: Vec<String>,
    pub allow_private: bool,
    pub tls: TlsConfig,
}

/// The OIDC provider.
pub struct Provider {
    settings: ProviderSettings,
    fetcher: Arc<SafeFetcher>,
    client: RwLock<Option<(Instant, Arc<ProviderClient>)>>,
    discovery: tokio::sync::Mutex<Option<Instant>>,
}

impl Provider {
    /// A provider; nothing is fetched until the first login.
    pub fn new(settings: ProviderSettings) -> Result<Self, ProviderError> {
        let fetcher = SafeFetcher::new(FetchPolicy {
            allow_private: settings.allow_private,
            tls: settings.tls.clone(),
            timeout: Duration::from_secs(15),
            max_bytes: 1 << 20,
            https_only: false,
        })
        .map_err(fail)?;
        Ok(Self {
            settings,
            fetcher: Arc::new(fetcher),
            client: RwLock::new(None),
            discovery: tokio::sync::Mutex::new(None),
        })
    }

    async fn client(&self, force: bool) -> Result<Arc<ProviderClient>, ProviderError> {
        if let Some((at, client)) = self
            .client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && !force
            && at.elapsed() < REDISCOVER
        {
            return Ok(client.clone());
        }
        let mut last = self.discovery.lock().await;
        if let Some((at, client)) = self
            .client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let recent = last.is_some_and(|t| t.elapsed() < FORCED_REDISCOVERY);
            if (force && recent) || (!force && at.elapsed() < REDISCOVER) {
                return Ok(client.clone());
            }
        }
        *last = Some(Instant::now());
        let http = self.http();
        let issuer = IssuerUrl::new(self.settings.issuer_url.clone()).map_err(fail)?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                ProviderError(format!("discovery of {}: {e}", self.settings.issuer_url))
            })?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.settings.redirect_url.clone()).map_err(fail)?);
        let client = Arc::new(client);
        *self.client.write().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), client.clone()));
        Ok(client)
    }

    fn http(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        openidconnect::HttpResponse,
                        mcp_prometheus_layers::fetch::FetchError,
                    >,
                > + Send,
        >,
    > + Send
    + Sync {
        let fetcher = self.fetcher.clone();
        move |request| {
            let fetcher = fetcher.clone();
            Box::pin(async move { fetcher.send(request).await })
        }
    }

    /// Where to send the user: the provider's authorization URL carrying
    /// `state`, our PKCE challenge and a nonce. Returns the URL, the PKCE
    /// verifier and the nonce to keep.
    pub async fn login_url(&self, state: &str) -> Result<(String, String, String), ProviderError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            Nonce::new_random,
        );
        for scope in &self.settings.scopes {
            if scope != "openid" {
                request = request.add_scope(Scope::new(scope.clone()));
            }
        }
        let (url, _, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url.to_string(),
            verifier.secret().clone(),
            nonce.secret().clone(),
        ))
    }

    /// Redeems the provider's code, verifies the ID token (signature,
    /// issuer, audience, expiry, nonce) and reads who logged in.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<(UserInfo, UpstreamTokens), ProviderError> {
        let client = self.client(false).await?;
        let http = self.http();
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(fail)?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| ProviderError(format!("code exchange: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError("the provider returned no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        if let Err(error) = id_token.claims(&client.id_token_verifier(), &nonce) {
            // Perhaps the provider rotated its keys: look again, once.
            let fresh = self.client(true).await?;
            id_token
                .claims(&fresh.id_token_verifier(), &nonce)
                .map_err(|_| ProviderError(format!("ID token rejected: {error}")))?;
        }
        let user = self.user(&id_token.to_string(), None)?;
        Ok((user, tokens(&response)))
    }

    /// Refreshes the provider's tokens; returns the user as the new ID
    /// token describes them (when the provider sends one).
    pub async fn refresh(
        &self,
        current: &UpstreamTokens,
        known: &UserInfo,
    ) -> Result<(UserInfo, UpstreamTokens), ProviderError> {
        let refresh = current
            .refresh_token
            .clone()
            .ok_or_else(|| ProviderError("no provider refresh token".into()))?;
        let client = self.client(false).await?;
        let http = self.http();
        let refresh = RefreshToken::new(refresh);
        let response = client
            .exchange_refresh_token(&refresh)
            .map_err(fail)?
            .request_async(&http)
            .await
            .map_err(|e| ProviderError(format!("refresh: {e}")))?;
        let mut next = tokens(&response);
        if next.refresh_token.is_none() {
            next.refresh_token = current.refresh_token.clone();
        }
        let user = match response.id_token() {
            Some(id_token) => {
                id_token
                    .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
                    .map_err(|e| ProviderError(format!("refreshed ID token rejected: {e}")))?;
                self.user(&id_token.to_string(), Some(known))?
            }
            None => known.clone(),
        };
        Ok((user, next))
    }

    /// Reads subject, groups and email from a verified ID token.
    fn user(&self, id_token: &str, known: Option<&UserInfo>) -> Result<UserInfo, ProviderError> {
        let payload = id_token
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .ok_or_else(|| ProviderError("unreadable ID token".into()))?;
        let subject = payload
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| known.map(|k| k.subject.clone()))
            .ok_or_else(|| ProviderError("ID token without sub".into()))?;
        let mut value = Some(&payload);
        for segment in &self.settings.groups_claim {
            value = value.and_then(|v| v.get(segment));
        }
        let mut groups: Vec<String> = match value {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        groups.sort();
        groups.dedup();
        Ok(UserInfo {
            subject,
            groups,
            email: payload
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

fn tokens(response: &openidconnect::core::CoreTokenResponse) -> UpstreamTokens {
    let lifetime = response.expires_in().unwrap_or(Duration::from_secs(300));
    UpstreamTokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_at: super::now() + lifetime.as_secs(),
    }
}
