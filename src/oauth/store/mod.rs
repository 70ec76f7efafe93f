//! Where OAuth state lives: registered clients, pending logins, logins
//! waiting for the user's consent, remembered consents, authorization
//! codes, refresh-token families and the signing key. Keys are hashes of
//! the secrets, never the secrets; single-use and rotation are atomic so
//! replicas racing on one token cannot both win; every record expires.

mod memory;
mod valkey;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use valkey::ValkeyStore;

/// A store failure (Valkey unreachable, corrupt record).
#[derive(Debug, thiserror::Error)]
#[error("OAuth store: {0}")]
pub struct StoreError(pub String);

/// A registered client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    /// SHA-256 of the client secret (confidential clients only).
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub auth_method: String,
    pub scope: Option<String>,
}

/// Who logged in, as the provider said.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub subject: String,
    pub groups: Vec<String>,
    pub email: Option<String>,
}

/// An authorization request waiting for the provider's callback.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub client_state: Option<String>,
    pub scope: String,
    pub resource: String,
    /// Our PKCE verifier and nonce towards the provider.
    pub provider_verifier: String,
    pub nonce: String,
    /// SHA-256 of the browser-binding cookie set by /oauth/authorize: the
    /// callback and the consent form must come from that browser.
    pub browser: String,
    /// Shown on the consent page.
    pub client_name: Option<String>,
}

/// A login back from the provider, waiting for the user to approve the
/// client on our consent page; keyed by the hash of its CSRF token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// The code to issue on approval.
    pub grant: CodeGrant,
    pub client_state: Option<String>,
    /// SHA-256 of the browser-binding cookie.
    pub browser: String,
    pub client_name: Option<String>,
}

/// An authorization code's grant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub user: UserInfo,
    /// The provider's tokens, sealed.
    pub upstream: Option<String>,
    /// The refresh-token family this code starts.
    pub family: String,
    /// Set once redeemed: a second redemption revokes the family.
    #[serde(default)]
    pub redeemed: bool,
}

/// The Unix second a login started: refresh families end this long after it
/// whatever their refreshes (`refresh_token_max_lifetime`).
pub type StartedAt = u64;

/// A refresh token's grant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub family: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub user: UserInfo,
    pub upstream: Option<String>,
    /// Unix seconds when the provider tokens should be refreshed.
    pub upstream_refresh_at: u64,
    /// Unix milliseconds of the rotation that used this token, if any.
    #[serde(default)]
    pub used_at: Option<u64>,
    /// When the family's first code was redeemed (Unix seconds).
    pub started_at: StartedAt,
}

/// The result of redeeming a code.
#[derive(Debug)]
pub enum Redeemed {
    Fresh(Box<CodeGrant>),
    /// Already redeemed: the family it started must be revoked.
    Replayed {
        family: String,
    },
    Unknown,
}

/// One refresh-token rotation: `old` is spent and `new` stored in one
/// step. `now_ms` is Unix milliseconds; a second use of `old` within
/// `grace` is a race (a client retrying), later it is reuse (theft).
pub struct Rotation<'a> {
    pub old_hash: &'a str,
    pub new_hash: &'a str,
    pub new: &'a RefreshGrant,
    pub ttl: Duration,
    pub now_ms: u64,
    pub grace: Duration,
}

/// The result of rotating a refresh token.
#[derive(Debug)]
pub enum Rotated {
    Done,
    /// Used before, outside the grace window: the family is now revoked.
    Reused,
    /// Used moments ago (a racing replica or a retry): refused, but the
    /// family stays valid.
    Raced,
    Revoked,
    Unknown,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Storage operations; every multi-step change is atomic.
pub trait Store: Send + Sync + 'static {
    /// Stores a client that is forgotten after `idle` without use.
    fn put_client(&self, client: &ClientRecord, idle: Duration) -> Fut<'_, ()>;
    /// A client, whose idle clock starts again.
    fn client(&self, client_id: &str, idle: Duration) -> Fut<'_, Option<ClientRecord>>;
    fn put_pending(&self, state_hash: &str, pending: &PendingLogin, ttl: Duration) -> Fut<'_, ()>;
    /// Takes (and deletes) a pending login: single use.
    fn take_pending(&self, state_hash: &str) -> Fut<'_, Option<PendingLogin>>;
    fn put_approval(
        &self,
        csrf_hash: &str,
        request: &ApprovalRequest,
        ttl: Duration,
    ) -> Fut<'_, ()>;
    /// Takes (and deletes) a login waiting for consent: single use.
    fn take_approval(&self, csrf_hash: &str) -> Fut<'_, Option<ApprovalRequest>>;
    /// Remembers that a user approved a client for some scopes.
    fn remember_consent(&self, consent_hash: &str, ttl: Duration) -> Fut<'_, ()>;
    fn consent_remembered(&self, consent_hash: &str) -> Fut<'_, bool>;
    fn put_code(&self, code_hash: &str, grant: &CodeGrant, ttl: Duration) -> Fut<'_, ()>;
    fn redeem_code(&self, code_hash: &str) -> Fut<'_, Redeemed>;
    fn put_refresh(&self, token_hash: &str, grant: &RefreshGrant, ttl: Duration) -> Fut<'_, ()>;
    /// Marks `old` used and stores `new` in one step, unless `old` was used
    /// already (then reports reuse or a race) or its family is revoked.
    fn rotate_refresh(&self, rotation: Rotation<'_>) -> Fut<'_, Rotated>;
    fn refresh(&self, token_hash: &str) -> Fut<'_, Option<RefreshGrant>>;
    /// Revokes a family; the mark outlives every token of it (the store's
    /// revocation lifetime).
    fn revoke_family(&self, family: &str) -> Fut<'_, ()>;
    /// Whether a family was revoked (its access tokens are refused).
    fn family_revoked(&self, family: &str) -> Fut<'_, bool>;
    /// Stores `value` under the singleton key unless one exists; returns
    /// whichever is stored (the signing key all replicas share). Each call
    /// keeps it for `ttl` more.
    fn get_or_init_singleton(&self, name: &str, value: &str, ttl: Duration) -> Fut<'_, String>;
    /// Drops expired records (the memory store; Valkey expires keys itself).
    fn sweep(&self) {}
}
