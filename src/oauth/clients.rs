//! OAuth clients: redirect-URI rules, registered clients, and Client ID
//! Metadata Documents (a client_id that is a URL we fetch, guarded).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_prometheus_layers::fetch::{FetchPolicy, SafeFetcher, is_loopback_url};
use serde::Deserialize;
use tokio::time::Instant;

use super::store::{ClientRecord, Store};

/// Largest client metadata document accepted.
const CIMD_MAX_BYTES: usize = 5 * 1024;
const CIMD_TTL: Duration = Duration::from_secs(300);
const CIMD_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// How long a registered client that was never used is kept.
const UNUSED_CLIENT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Schemes that must never receive an authorization code.
const DANGEROUS: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
];

/// Why a redirect URI is refused.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed = url::Url::parse(uri).map_err(|_| format!("{uri:?} is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{uri:?} has a fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_url(&parsed) => Ok(()),
        "http" => Err(format!(
            "{uri:?}: plain http is allowed only for loopback (127.0.0.1, [::1], localhost)"
        )),
        scheme if DANGEROUS.contains(&scheme) => {
            Err(format!("{uri:?}: the {scheme}: scheme is not allowed"))
        }
        // Private-use schemes of native apps (RFC 8252 §7.1), e.g. cursor://
        _ => Ok(()),
    }
}

/// Exact match, except that loopback http redirects match on any port
/// (RFC 8252 §7.3: native apps pick a free port at run time).
pub fn redirect_matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(presented) = url::Url::parse(presented) else {
        return false;
    };
    if presented.scheme() != "http" || !is_loopback_url(&presented) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| url::Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && r.host_str() == presented.host_str()
                && r.path() == presented.path()
                && r.query() == presented.query()
        })
}

/// Why a client cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("unknown client_id {0:?}")]
    Unknown(String),
    #[error("client metadata document {0}: {1}")]
    Metadata(String, String),
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
}

/// What callers learn of any failed fetch of a metadata document: refused,
/// timed out, redirected and every HTTP status read the same, so nobody
/// maps our network through us (the reason is logged).
const UNFETCHABLE: &str = "could not be fetched (it must be served over https from a public address, without redirects, as JSON of at most 5 KiB)";

/// The rules for fetching client ID metadata documents.
#[derive(Clone, Debug, Default)]
pub struct MetadataPolicy {
    /// Private and loopback addresses (and plain http) allowed.
    pub allow_private: bool,
    /// When not empty, the only hosts documents may live on.
    pub allowed_hosts: Vec<String>,
}

#[derive(Deserialize)]
struct MetadataDocument {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// A fetched document (or why it failed) and when.
type CachedDocument = (Instant, Result<ClientRecord, String>);

/// Registered clients and client metadata documents.
pub struct Clients {
    store: Arc<dyn Store>,
    fetcher: SafeFetcher,
    allowed_hosts: Vec<String>,
    idle_ttl: Duration,
    cache: Mutex<HashMap<String, CachedDocument>>,
}

impl Clients {
    /// Registered clients are forgotten after `idle_ttl` without use.
    pub fn new(
        store: Arc<dyn Store>,
        policy: MetadataPolicy,
        idle_ttl: Duration,
    ) -> Result<Self, String> {
        let fetcher = SafeFetcher::new(FetchPolicy {
            allow_private: policy.allow_private,
            https_only: !policy.allow_private,
            timeout: Duration::from_secs(5),
            max_bytes: CIMD_MAX_BYTES,
            ..FetchPolicy::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            store,
            fetcher,
            allowed_hosts: policy
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            idle_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Stores a newly registered client. Until it is first used it lives
    /// at most a day, so registrations nobody uses do not pile up.
    pub async fn register(&self, client: &ClientRecord) -> Result<(), ClientError> {
        let first = self.idle_ttl.min(UNUSED_CLIENT_TTL);
        Ok(self.store.put_client(client, first).await?)
    }

    /// A client by id: registered, or described by the document at the URL
    /// that is its id.
    pub async fn get(&self, client_id: &str) -> Result<ClientRecord, ClientError> {
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self.metadata_document(client_id).await;
        }
        self.store
            .client(client_id, self.idle_ttl)
            .await?
            .ok_or_else(|| ClientError::Unknown(client_id.to_owned()))
    }

    async fn metadata_document(&self, url: &str) -> Result<ClientRecord, ClientError> {
        if let Some((at, cached)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned()
        {
            let ttl = if cached.is_ok() {
                CIMD_TTL
            } else {
                CIMD_NEGATIVE_TTL
            };
            if at.elapsed() < ttl {
                return cached.map_err(|e| ClientError::Metadata(url.to_owned(), e));
            }
        }
        let result = self.fetch_document(url).await;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 1000 {
            cache.clear();
        }
        cache.insert(url.to_owned(), (Instant::now(), result.clone()));
        result.map_err(|e| ClientError::Metadata(url.to_owned(), e))
    }

    async fn fetch_document(&self, url: &str) -> Result<ClientRecord, String> {
        let parsed = url::Url::parse(url).map_err(|_| "its URL does not parse".to_owned())?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.allowed_hosts.is_empty() && !self.allowed_hosts.contains(&host) {
            return Err(format!(
                "its host {host:?} is not one this server accepts documents from"
            ));
        }
        let body = self.fetcher.get(url).await.map_err(|error| {
            tracing::info!(url, %error, "client metadata document fetch failed");
            UNFETCHABLE.to_owned()
        })?;
        // Nothing of the document's content is echoed: with private
        // addresses allowed, it could be any internal JSON.
        let document: MetadataDocument = serde_json::from_slice(&body).map_err(|error| {
            tracing::info!(url, %error, "not a client metadata document");
            "it is not a client metadata JSON document (client_id, redirect_uris, ...)".to_owned()
        })?;
        if document.client_id != url {
            return Err("its client_id is not its own URL".into());
        }
        if document.redirect_uris.is_empty() {
            return Err("it lists no redirect_uris".into());
        }
        for uri in &document.redirect_uris {
            check_redirect_uri(uri).map_err(|reason| {
                tracing::info!(url, %reason, "client metadata document redirect URI refused");
                "a redirect URI of it is not allowed (https, loopback http or an app scheme; no fragment)".to_owned()
            })?;
            if !same_origin_or_loopback(&parsed, uri) {
                return Err(
                    "a redirect URI of it is neither on the document's origin nor loopback".into(),
                );
            }
        }
        let method = document
            .token_endpoint_auth_method
            .unwrap_or_else(|| "none".into());
        if method != "none" {
            return Err(format!(
                "token_endpoint_auth_method {method:?}: documents describe public clients (none)"
            ));
        }
        Ok(ClientRecord {
            client_id: document.client_id,
            secret_hash: None,
            redirect_uris: document.redirect_uris,
            client_name: document.client_name,
            auth_method: method,
            scope: None,
        })
    }
}

/// A metadata document vouches only for redirect URIs on its own origin
/// (or loopback, where native apps listen): anyone can host a document
/// naming someone else's redirect URI otherwise.
fn same_origin_or_loopback(document: &url::Url, redirect: &str) -> bool {
    url::Url::parse(redirect).is_ok_and(|r| {
        r.origin() == document.origin() || (r.scheme() == "http" && is_loopback_url(&r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1:8765/callback",
            "http://[::1]/cb",
            "http://localhost:3000/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "https://app.example/cb#frag",
            "/relative",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn documents_vouch_only_for_their_origin_or_loopback() {
        let doc = url::Url::parse("https://app.example/client.json").expect("url");
        assert!(same_origin_or_loopback(&doc, "https://app.example/cb"));
        assert!(same_origin_or_loopback(&doc, "http://127.0.0.1:5000/cb"));
        assert!(!same_origin_or_loopback(&doc, "https://evil.example/cb"));
        assert!(!same_origin_or_loopback(
            &doc,
            "https://app.example:8443/cb"
        ));
        assert!(!same_origin_or_loopback(&doc, "cursor://app.example/cb"));
    }

    #[test]
    fn loopback_redirects_match_on_any_port_only() {
        let registered = vec![
            "http://127.0.0.1/callback".to_owned(),
            "https://app.example/cb".to_owned(),
        ];
        assert!(redirect_matches(
            &registered,
            "http://127.0.0.1:49152/callback"
        ));
        assert!(redirect_matches(&registered, "https://app.example/cb"));
        assert!(!redirect_matches(
            &registered,
            "https://app.example:8443/cb"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://127.0.0.1:49152/other"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://localhost:49152/callback"
        ));
        assert!(!redirect_matches(&registered, "https://evil.example/cb"));
    }
}
