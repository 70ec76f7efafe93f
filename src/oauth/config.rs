//! `[oauth]`: the authorization server in front of an OIDC provider.

use std::path::PathBuf;

use mcp_prometheus_layers::duration::ConfigDuration;
use mcp_prometheus_layers::secret::Secret;
use mcp_prometheus_layers::tls::TlsConfig;
use serde::{Deserialize, Serialize};

/// Who may register clients.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// No dynamic registration (client ID metadata documents still work).
    Off,
    /// Registration needs `Authorization: Bearer <registration_token>`.
    #[default]
    Token,
    /// Anyone may register (development).
    Public,
}

/// Where OAuth state lives.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// In this process: one replica, lost on restart.
    #[default]
    Memory,
    /// Valkey or Redis: shared by replicas, survives restarts.
    Valkey,
}

/// `[oauth.storage]`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub kind: StorageKind,
    /// `redis://host:6379` or `rediss://` for TLS. A password written
    /// into the URL is printed redacted.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Prefix of every key, so several servers can share one Valkey.
    pub key_prefix: String,
    /// TLS for `rediss://`: an extra CA (`ca_file`).
    pub tls: TlsConfig,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("password", &self.password)
            .field("password_file", &self.password_file)
            .field("key_prefix", &self.key_prefix)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kind: StorageKind::Memory,
            url: String::new(),
            password: None,
            password_file: None,
            key_prefix: "mcp:".into(),
            tls: TlsConfig::default(),
        }
    }
}

/// `[oauth.provider]`: the OIDC provider users log in with (Dex).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    pub issuer_url: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Default: `<public_url>/oauth/callback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// `[oauth]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    pub enabled: bool,
    /// Our issuer; default `server.public_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_key_file: Option<PathBuf>,
    /// PEM (PKCS#8) P-256 key signing our access tokens; default: created
    /// once and shared through the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    pub registration: RegistrationPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_token: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_token_file: Option<PathBuf>,
    /// Allow the provider on a private or loopback address (plain http
    /// then too). Client metadata documents have their own switch.
    pub allow_private_urls: bool,
    /// Allow client ID metadata documents on private or loopback addresses
    /// (and plain http): for tests and closed networks only, since any
    /// caller picks the URL we fetch.
    pub client_metadata_allow_private: bool,
    /// When not empty, the only hosts client metadata documents may live on.
    pub client_metadata_allowed_hosts: Vec<String>,
    /// The scopes we grant (advertised as `scopes_supported`); a token
    /// carries requested ∩ these ∩ the client's registered scope.
    pub scopes: Vec<String>,
    /// How long a user's approval of a client (for the same scopes) is
    /// remembered; `0s` asks on every login.
    pub consent_ttl: ConfigDuration,
    /// Client IDs (or metadata-document URLs) that skip the consent page:
    /// clients the operator vouches for.
    pub preapproved_clients: Vec<String>,
    /// Logins waiting at the provider, at most, per replica.
    pub max_pending_logins: usize,
    /// Logins waiting at the provider, at most, per client address.
    pub max_pending_logins_per_address: usize,
    /// A registered client unused this long is forgotten.
    pub client_idle_ttl: ConfigDuration,
    /// The longest a login lasts through refreshes, from the first code.
    pub refresh_token_max_lifetime: ConfigDuration,
    pub access_token_ttl: ConfigDuration,
    pub refresh_token_ttl: ConfigDuration,
    pub code_ttl: ConfigDuration,
    /// A refresh token presented again within this window after its
    /// rotation (two replicas racing, a client retrying) is refused without
    /// revoking its family; later, reuse revokes the whole family.
    pub refresh_reuse_grace: ConfigDuration,
    /// Requests per minute per client IP on /oauth/register and
    /// /oauth/token, and (a budget of its own) on /oauth/authorize.
    pub rate_limit_per_minute: u32,
    /// Count requests against the address the (trusted) ingress appended
    /// to `X-Forwarded-For` rather than the TCP peer: set it behind an
    /// ingress, or every user shares the ingress's budget.
    pub trust_forwarded_for: bool,
    pub storage: StorageConfig,
    pub provider: ProviderConfig,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: None,
            encryption_key: None,
            encryption_key_file: None,
            signing_key_file: None,
            registration: RegistrationPolicy::Token,
            registration_token: None,
            registration_token_file: None,
            allow_private_urls: false,
            client_metadata_allow_private: false,
            client_metadata_allowed_hosts: Vec::new(),
            scopes: DEFAULT_SCOPES.map(String::from).to_vec(),
            consent_ttl: ConfigDuration::secs(30 * 24 * 3600),
            preapproved_clients: Vec::new(),
            max_pending_logins: 10_000,
            max_pending_logins_per_address: 50,
            client_idle_ttl: ConfigDuration::secs(30 * 24 * 3600),
            refresh_token_max_lifetime: ConfigDuration::secs(30 * 24 * 3600),
            access_token_ttl: ConfigDuration::secs(600),
            refresh_token_ttl: ConfigDuration::secs(30 * 24 * 3600),
            code_ttl: ConfigDuration::secs(60),
            refresh_reuse_grace: ConfigDuration::secs(2),
            rate_limit_per_minute: 30,
            trust_forwarded_for: false,
            storage: StorageConfig::default(),
            provider: ProviderConfig {
                scopes: DEFAULT_SCOPES.map(String::from).to_vec(),
                groups_claim: "groups".into(),
                ..ProviderConfig::default()
            },
        }
    }
}

/// Dex's scopes: what we ask the provider for and, by default, grant.
const DEFAULT_SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// Prints a storage URL with its password (if any) replaced.
fn serialize_redacted_url<S: serde::Serializer>(
    url: &str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

/// A URL safe to print: a password inside it becomes `<redacted>`; text
/// that is no URL is printed only up to an `@`.
pub fn redact_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            if url.set_password(Some("<redacted>")).is_err() {
                return "<redacted>".into();
            }
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) if text.contains('@') => "<redacted>".into(),
        Err(_) => text.to_owned(),
    }
}

/// Reads an inline secret or its file (trimmed); `None` when neither.
pub fn secret_value(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
) -> std::io::Result<Option<String>> {
    match (inline, file) {
        (Some(secret), _) => Ok(Some(secret.expose().to_owned())),
        (None, Some(path)) => std::fs::read_to_string(path).map(|s| Some(s.trim().to_owned())),
        (None, None) => Ok(None),
    }
}

/// The Go server's `MCP_OAUTH_*`, `OAUTH_STORAGE`, `VALKEY_*` and `DEX_*`
/// variables.
pub fn apply_env(
    config: &mut OAuthConfig,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let flag = |name: &str| -> Result<Option<bool>, String> {
        get(name)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                other => Err(format!(
                    "{name}: {other:?} is not a boolean: send true or false"
                )),
            })
            .transpose()
    };
    if let Some(issuer) = get("MCP_OAUTH_ISSUER") {
        config.issuer = Some(issuer);
    }
    if let Some(key) = get("MCP_OAUTH_ENCRYPTION_KEY") {
        config.encryption_key = Some(Secret::new(key));
    }
    if flag("MCP_OAUTH_ALLOW_PUBLIC_REGISTRATION")? == Some(true) {
        config.registration = RegistrationPolicy::Public;
    }
    if let Some(allow) = flag("MCP_OAUTH_ALLOW_PRIVATE_URLS")? {
        config.allow_private_urls = allow;
    }
    match get("OAUTH_STORAGE").as_deref().map(str::trim) {
        Some("memory") => config.storage.kind = StorageKind::Memory,
        Some("valkey") | Some("redis") => config.storage.kind = StorageKind::Valkey,
        Some(other) => {
            return Err(format!(
                "OAUTH_STORAGE: {other:?} is not a storage: send memory or valkey"
            ));
        }
        None => {}
    }
    if let Some(url) = get("VALKEY_URL") {
        config.storage.url = if url.contains("://") {
            url
        } else {
            format!("redis://{url}")
        };
    }
    if let Some(password) = get("VALKEY_PASSWORD") {
        config.storage.password = Some(Secret::new(password));
    }
    if flag("VALKEY_TLS_ENABLED")? == Some(true) && config.storage.url.starts_with("redis://") {
        config.storage.url = config.storage.url.replacen("redis://", "rediss://", 1);
    }
    if let Some(prefix) = get("VALKEY_KEY_PREFIX") {
        config.storage.key_prefix = prefix;
    }
    let provider = &mut config.provider;
    if let Some(url) = get("DEX_ISSUER_URL") {
        provider.issuer_url = url;
    }
    if let Some(id) = get("DEX_CLIENT_ID") {
        provider.client_id = id;
    }
    if let Some(secret) = get("DEX_CLIENT_SECRET") {
        provider.client_secret = Some(Secret::new(secret));
    }
    if let Some(url) = get("DEX_REDIRECT_URL") {
        provider.redirect_url = Some(url);
    }
    if let Some(ca) = get("DEX_CA_FILE") {
        provider.ca_file = Some(PathBuf::from(ca));
    }
    Ok(())
}
