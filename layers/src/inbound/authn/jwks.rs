//! A cache of one issuer's signing keys.
//!
//! Keys are fetched on first use and refreshed in the background when old;
//! an unknown `kid` triggers a refetch, one at a time and at most once per
//! `min_refetch` (so a flood of forged kids cannot become a fetch storm);
//! keys that disappear from the set are kept for one refresh interval so
//! tokens signed just before a rotation stay valid; the set is bounded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::fetch::Fetch;

/// Most keys kept per issuer, current and retired together.
const MAX_KEYS: usize = 32;

/// Where the key set comes from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// A configured JWKS URL.
    Url(String),
    /// Discovered from the issuer's OpenID configuration.
    Discover { issuer: String },
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch the issuer's keys: {0}")]
    Fetch(String),
    #[error("the issuer's key document is invalid: {0}")]
    Invalid(String),
}

#[derive(Clone)]
struct CachedKey {
    key: Arc<DecodingKey>,
    /// When this key left the published set; `None` while published.
    retired: Option<Instant>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, CachedKey>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// One issuer's key cache.
pub struct JwksCache {
    source: JwksSource,
    fetcher: Arc<dyn Fetch>,
    refresh: Duration,
    min_refetch: Duration,
    state: RwLock<State>,
    single_flight: Mutex<()>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl JwksCache {
    /// A cache that fetches through `fetcher`.
    pub fn new(
        source: JwksSource,
        fetcher: Arc<dyn Fetch>,
        refresh: Duration,
        min_refetch: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            source,
            fetcher,
            refresh,
            min_refetch,
            state: RwLock::new(State::default()),
            single_flight: Mutex::new(()),
        })
    }

    /// The key for `kid`, or every key when the token names none.
    pub async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
    ) -> Result<Vec<Arc<DecodingKey>>, JwksError> {
        let (found, fresh, may_refetch) = self.lookup(kid);
        if !found.is_empty() {
            if !fresh {
                let cache = self.clone();
                tokio::spawn(async move {
                    let _ = cache.refetch(false).await;
                });
            }
            return Ok(found);
        }
        if !may_refetch {
            // Another request may be fetching the new keys right now (it
            // set `attempted`): wait for it rather than refuse a good token.
            drop(self.single_flight.lock().await);
            return Ok(self.lookup(kid).0);
        }
        self.refetch(true).await?;
        Ok(self.lookup(kid).0)
    }

    fn lookup(&self, kid: Option<&str>) -> (Vec<Arc<DecodingKey>>, bool, bool) {
        let state = match self.state.read() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let found = match kid {
            Some(kid) => state
                .keys
                .get(kid)
                .map(|k| vec![k.key.clone()])
                .unwrap_or_default(),
            None => state.keys.values().map(|k| k.key.clone()).collect(),
        };
        let fresh = state.fetched.is_some_and(|t| t.elapsed() < self.refresh);
        let may_refetch = state
            .attempted
            .is_none_or(|t| t.elapsed() >= self.min_refetch);
        (found, fresh, may_refetch)
    }

    /// Fetches the key set unless another task just did; `wait` decides
    /// whether to queue behind a fetch in flight or give up at once.
    async fn refetch(&self, wait: bool) -> Result<(), JwksError> {
        let _guard = if wait {
            self.single_flight.lock().await
        } else {
            match self.single_flight.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(()),
            }
        };
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if state
                .attempted
                .is_some_and(|t| t.elapsed() < self.min_refetch)
            {
                return Ok(());
            }
        }
        self.state
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .attempted = Some(Instant::now());
        let result = self.fetch_set().await;
        match result {
            Ok(set) => {
                self.install(set);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, "JWKS refresh failed; keeping the keys we have");
                Err(error)
            }
        }
    }

    async fn fetch_set(&self) -> Result<JwkSet, JwksError> {
        let url = match &self.source {
            JwksSource::Url(url) => url.clone(),
            JwksSource::Discover { issuer } => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let body = self
                    .fetcher
                    .fetch(&url)
                    .await
                    .map_err(|e| JwksError::Fetch(e.to_string()))?;
                let discovery: Discovery = serde_json::from_slice(&body)
                    .map_err(|e| JwksError::Invalid(format!("{url}: {e}")))?;
                if discovery.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
                    return Err(JwksError::Invalid(format!(
                        "{url} names issuer {:?}, not {issuer:?}",
                        discovery.issuer
                    )));
                }
                discovery.jwks_uri
            }
        };
        let body = self
            .fetcher
            .fetch(&url)
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| JwksError::Invalid(format!("{url}: {e}")))
    }

    fn install(&self, set: JwkSet) {
        let now = Instant::now();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut published = HashMap::new();
        for (index, jwk) in set.keys.iter().enumerate() {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                tracing::debug!(kid = ?jwk.common.key_id, "skipping an unusable JWK");
                continue;
            };
            let kid = jwk
                .common
                .key_id
                .clone()
                .unwrap_or_else(|| format!("#{index}"));
            published.insert(
                kid,
                CachedKey {
                    key: Arc::new(key),
                    retired: None,
                },
            );
        }
        let grace = self.refresh;
        for (kid, mut old) in state.keys.drain() {
            if published.contains_key(&kid) {
                continue;
            }
            let retired = *old.retired.get_or_insert(now);
            if now.duration_since(retired) < grace {
                published.insert(kid, old);
            }
        }
        while published.len() > MAX_KEYS {
            let oldest = published
                .iter()
                .filter_map(|(kid, k)| k.retired.map(|r| (r, kid.clone())))
                .min()
                .map(|(_, kid)| kid)
                .or_else(|| published.keys().next().cloned());
            if let Some(kid) = oldest {
                published.remove(&kid);
            }
        }
        state.keys = published;
        state.fetched = Some(now);
    }

    /// How many keys are cached (tests and metrics).
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
