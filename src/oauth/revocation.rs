//! Revoked logins, as the authn layer asks about them: our access tokens
//! name their refresh family (`sid`), and a family revoked at
//! `/oauth/revoke` or by refresh-token reuse stops its access tokens within
//! [`FamilyRevocations::CACHE_TTL`], on every replica sharing the store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_prometheus_layers::identity::Principal;
use mcp_prometheus_layers::inbound::authn::RevocationCheck;
use tokio::time::Instant;

use super::store::Store;

/// Answers from the store, each kept for a moment so a busy client costs
/// one store lookup per family every [`Self::CACHE_TTL`].
pub struct FamilyRevocations {
    store: Arc<dyn Store>,
    /// Our issuer: only our tokens name a family of ours.
    issuer: String,
    cache: Mutex<HashMap<String, (Instant, bool)>>,
}

impl FamilyRevocations {
    /// How stale a "not revoked" answer may be.
    pub const CACHE_TTL: Duration = Duration::from_secs(2);
    /// Families cached at most; beyond it the cache starts over.
    const CAPACITY: usize = 10_000;

    /// Revocations kept in `store`, of tokens `issuer` (we) issued.
    pub fn new(store: Arc<dyn Store>, issuer: &str) -> Self {
        Self {
            store,
            issuer: issuer.to_owned(),
            cache: Mutex::default(),
        }
    }

    fn cached(&self, family: &str) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(family)
            .filter(|(at, _)| at.elapsed() < Self::CACHE_TTL)
            .map(|(_, revoked)| *revoked)
    }

    fn remember(&self, family: &str, revoked: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= Self::CAPACITY {
            cache.retain(|_, (at, _)| at.elapsed() < Self::CACHE_TTL);
            if cache.len() >= Self::CAPACITY {
                cache.clear();
            }
        }
        cache.insert(family.to_owned(), (Instant::now(), revoked));
    }

    /// Drops stale answers (on the housekeeping timer).
    pub fn sweep(&self) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < Self::CACHE_TTL);
    }
}

impl RevocationCheck for FamilyRevocations {
    fn is_revoked<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async move {
            // Other issuers' `sid` names no family of ours: their tokens
            // cost no lookup and do not depend on our store.
            let Some(family) = principal
                .session
                .as_deref()
                .filter(|_| principal.issuer == self.issuer)
            else {
                return Ok(false);
            };
            if let Some(revoked) = self.cached(family) {
                return Ok(revoked);
            }
            let revoked = self
                .store
                .family_revoked(family)
                .await
                .map_err(|e| e.to_string())?;
            self.remember(family, revoked);
            Ok(revoked)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::store::MemoryStore;

    fn principal(sid: Option<&str>) -> Principal {
        Principal {
            subject: "alice".into(),
            groups: vec![],
            scopes: vec![],
            issuer: "https://mcp.example".into(),
            client: None,
            audiences: vec![],
            session: sid.map(str::to_owned),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_family_is_refused_once_the_cache_turns() {
        let store = Arc::new(MemoryStore::default());
        let check = FamilyRevocations::new(store.clone(), "https://mcp.example");
        let alice = principal(Some("family-1"));
        assert_eq!(check.is_revoked(&alice).await, Ok(false));
        store.revoke_family("family-1").await.expect("revoke");
        assert_eq!(
            check.is_revoked(&alice).await,
            Ok(false),
            "the answer is cached for a moment"
        );
        tokio::time::advance(FamilyRevocations::CACHE_TTL).await;
        assert_eq!(check.is_revoked(&alice).await, Ok(true));
        assert_eq!(
            check.is_revoked(&principal(Some("family-2"))).await,
            Ok(false)
        );
        assert_eq!(check.is_revoked(&principal(None)).await, Ok(false));
        let foreign = Principal {
            issuer: "https://dex.example".into(),
            ..alice.clone()
        };
        assert_eq!(
            check.is_revoked(&foreign).await,
            Ok(false),
            "another issuer's sid is not one of our families"
        );
    }
}
