//! Valkey / Redis storage: records as JSON under hashed keys with TTLs,
//! each sealed with the encryption key and bound to its key name, so a
//! write to Valkey (or a record moved to another key) cannot mint tenants,
//! redirect URIs or consents; code redemption and refresh rotation are Lua
//! scripts, so replicas racing on one token see exactly one winner.

use std::time::Duration;

use deadpool_redis::{Pool, Runtime};
use redis::{AsyncCommands, Script};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    ApprovalRequest, ClientRecord, CodeGrant, Fut, PendingLogin, Redeemed, RefreshGrant, Rotated,
    Rotation, Store, StoreError,
};
use crate::oauth::config::{StorageConfig, redact_url};
use crate::oauth::crypto::{Sealer, hash};

/// Marks a code redeemed on first use; returns {status, record}.
const REDEEM: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return {1, v} end
return {2, v}
";

/// Rotates a refresh token: KEYS old, old-used, new, family-revoked;
/// ARGV new record, ttl ms, now ms, grace ms, revocation ttl ms.
const ROTATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
if redis.call('EXISTS', KEYS[4]) == 1 then return {3} end
local used = redis.call('GET', KEYS[2])
if used then
  if tonumber(ARGV[3]) - tonumber(used) <= tonumber(ARGV[4]) then return {4} end
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
  return {2}
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return {1}
";

/// A pooled connection to Valkey or Redis.
pub struct ValkeyStore {
    pool: Pool,
    prefix: String,
    sealer: Sealer,
    /// How long a revoked family stays revoked.
    revoked_ttl: Duration,
    redeem: Script,
    rotate: Script,
}

fn err(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

fn millis(ttl: Duration) -> u64 {
    ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64
}

impl ValkeyStore {
    /// Connects (lazily) and checks the server answers.
    pub async fn connect(
        config: &StorageConfig,
        password: Option<String>,
        sealer: Sealer,
        revoked_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let mut url = url::Url::parse(&config.url).map_err(|e| {
            StoreError(format!(
                "oauth.storage.url {:?}: {e}",
                redact_url(&config.url)
            ))
        })?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(StoreError(
                "oauth.storage.url must start with redis:// or rediss://".into(),
            ));
        }
        if let Some(password) = password {
            url.set_password(Some(&password))
                .map_err(|_| StoreError("cannot put the password into the storage URL".into()))?;
        }
        let manager = match &config.tls.ca_file {
            Some(ca) if url.scheme() == "rediss" => {
                let root =
                    std::fs::read(ca).map_err(|e| StoreError(format!("{}: {e}", ca.display())))?;
                let client = redis::Client::build_with_tls(
                    url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(root),
                    },
                )
                .map_err(err)?;
                deadpool_redis::Manager::new(client.get_connection_info().clone()).map_err(err)?
            }
            _ => deadpool_redis::Manager::new(url.as_str()).map_err(err)?,
        };
        let pool = Pool::builder(manager)
            .max_size(32)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(err)?;
        let store = Self {
            pool,
            prefix: config.key_prefix.clone(),
            sealer,
            revoked_ttl,
            redeem: Script::new(REDEEM),
            rotate: Script::new(ROTATE),
        };
        let mut conn = store.pool.get().await.map_err(err)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut *conn)
            .await
            .map_err(err)?;
        Ok(store)
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A record as stored: JSON sealed for its key name.
    fn seal<T: Serialize>(&self, key: &str, value: &T) -> Result<String, StoreError> {
        let json = serde_json::to_vec(value)?;
        self.sealer.seal(key, &json).map_err(err)
    }

    /// A stored record, or `None` (logged) when it does not open under
    /// this key: tampered with, moved from another key, or sealed with
    /// another encryption key.
    fn open<T: DeserializeOwned>(&self, key: &str, stored: Option<String>) -> Option<T> {
        let stored = stored?;
        let record = self
            .sealer
            .open(key, &stored)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok());
        if record.is_none() {
            tracing::warn!(
                key,
                "an OAuth record failed its integrity check (tampered, moved or another encryption key); ignored"
            );
        }
        record
    }

    async fn set<T: Serialize>(
        &self,
        key: String,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let sealed = self.seal(&key, value)?;
        let mut conn = self.pool.get().await.map_err(err)?;
        conn.pset_ex::<_, _, ()>(key, sealed, millis(ttl))
            .await
            .map_err(err)
    }

    async fn get<T: DeserializeOwned>(&self, key: String) -> Result<Option<T>, StoreError> {
        let mut conn = self.pool.get().await.map_err(err)?;
        let value: Option<String> = conn.get(&key).await.map_err(err)?;
        Ok(self.open(&key, value))
    }

    /// GETDEL: a single-use record.
    async fn take<T: DeserializeOwned>(&self, key: String) -> Result<Option<T>, StoreError> {
        let mut conn = self.pool.get().await.map_err(err)?;
        let value: Option<String> = redis::cmd("GETDEL")
            .arg(&key)
            .query_async(&mut *conn)
            .await
            .map_err(err)?;
        Ok(self.open(&key, value))
    }
}

impl Store for ValkeyStore {
    fn put_client(&self, client: &ClientRecord, idle: Duration) -> Fut<'_, ()> {
        let key = self.key("client", &hash(&client.client_id));
        let client = client.clone();
        Box::pin(async move { self.set(key, &client, idle).await })
    }

    fn client(&self, client_id: &str, idle: Duration) -> Fut<'_, Option<ClientRecord>> {
        let key = self.key("client", &hash(client_id));
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(err)?;
            // GETEX: each use starts the idle clock again.
            let value: Option<String> = redis::cmd("GETEX")
                .arg(&key)
                .arg("PX")
                .arg(millis(idle))
                .query_async(&mut *conn)
                .await
                .map_err(err)?;
            Ok(self.open(&key, value))
        })
    }

    fn put_pending(&self, state_hash: &str, pending: &PendingLogin, ttl: Duration) -> Fut<'_, ()> {
        let key = self.key("pending", state_hash);
        let pending = pending.clone();
        Box::pin(async move { self.set(key, &pending, ttl).await })
    }

    fn take_pending(&self, state_hash: &str) -> Fut<'_, Option<PendingLogin>> {
        let key = self.key("pending", state_hash);
        Box::pin(async move { self.take(key).await })
    }

    fn put_approval(
        &self,
        csrf_hash: &str,
        request: &ApprovalRequest,
        ttl: Duration,
    ) -> Fut<'_, ()> {
        let key = self.key("approval", csrf_hash);
        let request = request.clone();
        Box::pin(async move { self.set(key, &request, ttl).await })
    }

    fn take_approval(&self, csrf_hash: &str) -> Fut<'_, Option<ApprovalRequest>> {
        let key = self.key("approval", csrf_hash);
        Box::pin(async move { self.take(key).await })
    }

    fn remember_consent(&self, consent_hash: &str, ttl: Duration) -> Fut<'_, ()> {
        let key = self.key("consent", consent_hash);
        Box::pin(async move { self.set(key, &true, ttl).await })
    }

    fn consent_remembered(&self, consent_hash: &str) -> Fut<'_, bool> {
        let key = self.key("consent", consent_hash);
        Box::pin(async move { Ok(self.get::<bool>(key).await? == Some(true)) })
    }

    fn put_code(&self, code_hash: &str, grant: &CodeGrant, ttl: Duration) -> Fut<'_, ()> {
        let key = self.key("code", code_hash);
        let grant = grant.clone();
        Box::pin(async move { self.set(key, &grant, ttl).await })
    }

    fn redeem_code(&self, code_hash: &str) -> Fut<'_, Redeemed> {
        let keys = [
            self.key("code", code_hash),
            self.key("code-redeemed", code_hash),
        ];
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(err)?;
            let (status, value): (i64, Option<String>) = self
                .redeem
                .key(&keys[0])
                .key(&keys[1])
                .arg(millis(Duration::from_secs(3600)))
                .invoke_async::<redis::Value>(&mut *conn)
                .await
                .map_err(err)
                .and_then(parse_status)?;
            let grant = self.open::<CodeGrant>(&keys[0], value);
            Ok(match (status, grant) {
                (1, Some(grant)) => Redeemed::Fresh(Box::new(grant)),
                (2, Some(grant)) => Redeemed::Replayed {
                    family: grant.family,
                },
                _ => Redeemed::Unknown,
            })
        })
    }

    fn put_refresh(&self, token_hash: &str, grant: &RefreshGrant, ttl: Duration) -> Fut<'_, ()> {
        let key = self.key("refresh", token_hash);
        let grant = grant.clone();
        Box::pin(async move { self.set(key, &grant, ttl).await })
    }

    fn rotate_refresh(&self, r: Rotation<'_>) -> Fut<'_, Rotated> {
        let old_key = self.key("refresh", r.old_hash);
        let used_key = self.key("refresh-used", r.old_hash);
        let new_key = self.key("refresh", r.new_hash);
        let new = r.new.clone();
        let (ttl, now_ms, grace) = (r.ttl, r.now_ms, r.grace);
        Box::pin(async move {
            // A refresh grant never changes, so reading it before the
            // atomic step is safe: it only names the family to check.
            let Some(old) = self.get::<RefreshGrant>(old_key.clone()).await? else {
                return Ok(Rotated::Unknown);
            };
            let revoked_key = self.key("revoked", &old.family);
            let sealed = self.seal(&new_key, &new)?;
            let mut conn = self.pool.get().await.map_err(err)?;
            let (status, _) = self
                .rotate
                .key(&old_key)
                .key(&used_key)
                .key(&new_key)
                .key(&revoked_key)
                .arg(sealed)
                .arg(millis(ttl))
                .arg(now_ms)
                .arg(grace.as_millis() as u64)
                .arg(millis(self.revoked_ttl))
                .invoke_async::<redis::Value>(&mut *conn)
                .await
                .map_err(err)
                .and_then(parse_status)?;
            Ok(match status {
                1 => Rotated::Done,
                2 => Rotated::Reused,
                3 => Rotated::Revoked,
                4 => Rotated::Raced,
                _ => Rotated::Unknown,
            })
        })
    }

    fn refresh(&self, token_hash: &str) -> Fut<'_, Option<RefreshGrant>> {
        let key = self.key("refresh", token_hash);
        Box::pin(async move { self.get(key).await })
    }

    fn revoke_family(&self, family: &str) -> Fut<'_, ()> {
        let key = self.key("revoked", family);
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(err)?;
            conn.pset_ex::<_, _, ()>(key, "1", millis(self.revoked_ttl))
                .await
                .map_err(err)
        })
    }

    fn family_revoked(&self, family: &str) -> Fut<'_, bool> {
        let key = self.key("revoked", family);
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(err)?;
            conn.exists(key).await.map_err(err)
        })
    }

    fn get_or_init_singleton(&self, name: &str, value: &str, ttl: Duration) -> Fut<'_, String> {
        let key = self.key("singleton", name);
        let value = value.to_owned();
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(err)?;
            let _: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut *conn)
                .await
                .map_err(err)?;
            let stored: Option<String> = redis::cmd("GETEX")
                .arg(&key)
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut *conn)
                .await
                .map_err(err)?;
            stored.ok_or_else(|| StoreError(format!("{key} vanished")))
        })
    }
}

/// `{status}` or `{status, value}` from a script.
fn parse_status(value: redis::Value) -> Result<(i64, Option<String>), StoreError> {
    let redis::Value::Array(items) = value else {
        return Err(StoreError("unexpected script answer".into()));
    };
    let status = match items.first() {
        Some(redis::Value::Int(n)) => *n,
        _ => return Err(StoreError("unexpected script status".into())),
    };
    let payload = match items.get(1) {
        Some(redis::Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    };
    Ok((status, payload))
}
