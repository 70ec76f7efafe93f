//! The OAuth 2.1 authorization server in front of an OIDC provider (Dex):
//! MCP clients discover it, register (or present a client ID metadata
//! document), send their user through the provider's login, and get
//! short-lived access tokens our authn layer verifies without a store
//! lookup, plus rotating refresh tokens.

mod clients;
pub mod config;
mod crypto;
mod endpoints;
mod pending;
mod provider;
mod revocation;
mod scopes;
mod signer;
mod store;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mcp_prometheus_layers::BoxError;
use mcp_prometheus_layers::fetch::Fetch;

pub use config::OAuthConfig;

use clients::{Clients, MetadataPolicy};
use config::{RegistrationPolicy, StorageKind, secret_value};
use crypto::{Sealer, parse_key};
use pending::PendingBudget;
use provider::{Provider, ProviderSettings};
use revocation::FamilyRevocations;
use scopes::Scopes;
use signer::Signer;
use store::{MemoryStore, Store, ValkeyStore};

/// Unix seconds now.
pub fn now() -> u64 {
    now_millis() / 1000
}

/// Unix milliseconds now.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Checks an encryption key without keeping it (`check-config`).
pub fn check_encryption_key(text: &str) -> Result<(), String> {
    parse_key(text).map(|_| ()).map_err(|e| e.to_string())
}

/// Why the authorization server could not start.
#[derive(Debug, thiserror::Error)]
#[error("oauth: {0}")]
pub struct OAuthSetupError(pub String);

fn setup(error: impl std::fmt::Display) -> OAuthSetupError {
    OAuthSetupError(error.to_string())
}

/// Everything the endpoints share.
pub struct OAuthServer {
    pub issuer: String,
    /// Our resource identifier (tokens' audience).
    pub resource: String,
    config: OAuthConfig,
    store: Arc<dyn Store>,
    sealer: Sealer,
    signer: Signer,
    provider: Provider,
    clients: Clients,
    scopes: Scopes,
    registration_token: Option<String>,
    /// Budget of /oauth/register, /oauth/token and /oauth/revoke.
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Budget of /oauth/authorize (browsers, so apart from the above).
    authorize_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pending: PendingBudget,
    revocations: Arc<FamilyRevocations>,
}

/// How long a login may take at the provider and on our consent page.
const LOGIN_TTL: Duration = Duration::from_secs(600);

/// How often expired state is swept from memory.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Sweeps between two renewals of the shared signing key (a day).
const RENEW_EVERY_TICKS: u32 = 24 * 60;

impl OAuthServer {
    /// Opens the store, loads (or creates) the signing key and prepares the
    /// provider client. `public_url` is `server.public_url`.
    pub async fn start(
        config: &OAuthConfig,
        public_url: &str,
        resource: &str,
    ) -> Result<Arc<Self>, OAuthSetupError> {
        let issuer = config
            .issuer
            .as_deref()
            .unwrap_or(public_url)
            .trim_end_matches('/')
            .to_owned();
        let key = secret_value(&config.encryption_key, &config.encryption_key_file)
            .map_err(|e| setup(format!("oauth.encryption_key_file: {e}")))?
            .ok_or_else(|| setup("oauth.encryption_key (or encryption_key_file, MCP_OAUTH_ENCRYPTION_KEY) is required"))?;
        let key = parse_key(&key).map_err(setup)?;
        let sealer = Sealer::new(&key).map_err(setup)?;
        // A revoked login stays revoked while any of its tokens could live.
        let revoked_ttl = config.access_token_ttl.0.max(config.refresh_token_ttl.0);
        let store: Arc<dyn Store> = match config.storage.kind {
            StorageKind::Memory => Arc::new(MemoryStore::new(revoked_ttl)),
            StorageKind::Valkey => {
                let password =
                    secret_value(&config.storage.password, &config.storage.password_file)
                        .map_err(|e| setup(format!("oauth.storage.password_file: {e}")))?;
                let records = Sealer::new(&key).map_err(setup)?;
                Arc::new(
                    ValkeyStore::connect(&config.storage, password, records, revoked_ttl)
                        .await
                        .map_err(setup)?,
                )
            }
        };
        let signer = Signer::load(config.signing_key_file.as_deref(), store.as_ref(), &sealer)
            .await
            .map_err(setup)?;
        let p = &config.provider;
        let provider = Provider::new(ProviderSettings {
            issuer_url: p.issuer_url.clone(),
            client_id: p.client_id.clone(),
            client_secret: secret_value(&p.client_secret, &p.client_secret_file)
                .map_err(|e| setup(format!("oauth.provider.client_secret_file: {e}")))?,
            redirect_url: p
                .redirect_url
                .clone()
                .unwrap_or_else(|| format!("{}/oauth/callback", public_url.trim_end_matches('/'))),
            scopes: p.scopes.clone(),
            groups_claim: p.groups_claim.split('.').map(str::to_owned).collect(),
            allow_private: config.allow_private_urls,
            tls: mcp_prometheus_layers::tls::TlsConfig {
                ca_file: p.ca_file.clone(),
                insecure_skip_verify: false,
            },
        })
        .map_err(setup)?;
        let clients = Clients::new(
            store.clone(),
            MetadataPolicy {
                allow_private: config.client_metadata_allow_private,
                allowed_hosts: config.client_metadata_allowed_hosts.clone(),
            },
            config.client_idle_ttl.0,
        )
        .map_err(setup)?;
        let registration_token =
            secret_value(&config.registration_token, &config.registration_token_file)
                .map_err(|e| setup(format!("oauth.registration_token_file: {e}")))?;
        if config.registration == RegistrationPolicy::Token && registration_token.is_none() {
            return Err(setup(
                "registration = \"token\" needs registration_token (or registration_token_file); or set registration = \"off\"",
            ));
        }
        let per_minute =
            NonZeroU32::new(config.rate_limit_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let server = Arc::new(Self {
            issuer: issuer.clone(),
            resource: resource.to_owned(),
            config: config.clone(),
            revocations: Arc::new(FamilyRevocations::new(store.clone(), &issuer)),
            store,
            sealer,
            signer,
            provider,
            clients,
            scopes: Scopes::new(&config.scopes),
            registration_token,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            authorize_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            pending: PendingBudget::new(
                config.max_pending_logins,
                config.max_pending_logins_per_address,
                LOGIN_TTL,
            ),
        });
        tokio::spawn(housekeeping(Arc::downgrade(&server)));
        Ok(server)
    }

    /// Revocations of our logins, for the authn layer.
    pub fn revocations(&self) -> Arc<dyn mcp_prometheus_layers::inbound::authn::RevocationCheck> {
        self.revocations.clone()
    }

    /// Our JWKS as a fetcher, so the authn layer verifies our tokens with
    /// no HTTP round trip to ourselves.
    pub fn key_source(self: &Arc<Self>) -> Arc<dyn Fetch> {
        Arc::new(LocalKeys(Bytes::from(self.signer.jwks().to_string())))
    }

    /// The authorization server's routes.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        endpoints::router(self.clone())
    }
}

/// Sweeps expired state on a timer (memory store, pending budget, rate
/// limiters) and renews the shared signing key; ends with the server.
async fn housekeeping(server: std::sync::Weak<OAuthServer>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.tick().await;
    let mut ticks: u32 = 0;
    loop {
        tick.tick().await;
        ticks = ticks.wrapping_add(1);
        let Some(server) = server.upgrade() else {
            return;
        };
        server.store.sweep();
        server.pending.sweep();
        server.limiter.retain_recent();
        server.authorize_limiter.retain_recent();
        server.revocations.sweep();
        // The key lives 400 days; a daily renewal is plenty (start-up loads
        // and renews it too).
        if ticks.is_multiple_of(RENEW_EVERY_TICKS)
            && let Err(error) = server.signer.renew(server.store.as_ref()).await
        {
            tracing::warn!(%error, "cannot renew the shared signing key");
        }
    }
}

/// Serves our own key set to the authn layer.
struct LocalKeys(Bytes);

impl Fetch for LocalKeys {
    fn fetch<'a>(
        &'a self,
        _url: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Bytes, BoxError>> + Send + 'a>>
    {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}
