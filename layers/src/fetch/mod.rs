//! A guarded HTTP GET for small documents whose URL comes from a config or a
//! protocol (OIDC discovery, JWKS): timeout, size cap, no redirects, custom
//! CA, and private or loopback addresses refused unless explicitly allowed —
//! checked on the addresses actually connected to, so DNS cannot smuggle an
//! internal host past the check.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

mod address;
pub use address::is_internal;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use tower::Service;

use crate::BoxError;
use crate::tls::{TlsConfig, TlsSetupError, client_config};

/// What a [`SafeFetcher`] may do.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Allow loopback, private, link-local and other internal addresses.
    pub allow_private: bool,
    /// Refuse `http://` URLs.
    pub https_only: bool,
    pub timeout: Duration,
    pub max_bytes: usize,
    pub tls: TlsConfig,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            https_only: false,
            timeout: Duration::from_secs(10),
            max_bytes: 256 * 1024,
            tls: TlsConfig::default(),
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not an allowed URL: {1}")]
    BadUrl(String, &'static str),
    #[error(
        "{0} is a private, loopback or link-local address; set allow_private_urls = true to allow it"
    )]
    PrivateAddress(String),
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{0} answered with a redirect; redirects are not followed")]
    Redirect(String),
    #[error("{0} answered more than {1} bytes")]
    TooLarge(String, usize),
    #[error("{0} did not answer within {1:?}")]
    Timeout(String, Duration),
    #[error("cannot fetch {0}: {1}")]
    Transport(String, String),
}

/// Whether a URL names a loopback host (`localhost`, 127.0.0.0/8, `[::1]`).
pub fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A DNS resolver that drops internal addresses unless allowed.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || !is_internal(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves to no allowed (public) address"),
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

type GuardedClient =
    Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Full<Bytes>>;

/// Fetches small documents under a [`FetchPolicy`].
#[derive(Clone, Debug)]
pub struct SafeFetcher {
    client: GuardedClient,
    policy: FetchPolicy,
}

impl SafeFetcher {
    /// Builds the client (TLS roots are read once, here).
    pub fn new(policy: FetchPolicy) -> Result<Self, TlsSetupError> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver {
            allow_private: policy.allow_private,
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(policy.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config(&policy.tls)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Self { client, policy })
    }

    /// Checks a URL against the policy before anything is sent.
    fn check(&self, url: &str) -> Result<url::Url, FetchError> {
        let parsed =
            url::Url::parse(url).map_err(|_| FetchError::BadUrl(url.into(), "not a URL"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if !self.policy.https_only => {}
            _ => {
                return Err(FetchError::BadUrl(
                    url.into(),
                    "only https (or http where allowed) URLs",
                ));
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(FetchError::BadUrl(
                url.into(),
                "credentials in URLs are refused",
            ));
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::BadUrl(url.into(), "no host")),
        };
        if let Some(ip) = literal
            && !self.policy.allow_private
            && is_internal(ip)
        {
            return Err(FetchError::PrivateAddress(ip.to_string()));
        }
        Ok(parsed)
    }

    /// Sends any request under the policy (no redirect is followed: a
    /// redirect comes back as the response) and reads the body up to the
    /// size cap, all within the timeout.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, FetchError> {
        let url = request.uri().to_string();
        let parsed = self.check(&url)?;
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(concat!(
                "mcp-prometheus/",
                env!("CARGO_PKG_VERSION")
            )));
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let limit = self.policy.max_bytes;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let detail = crate::error_chain(&e);
                if detail.contains("no allowed (public) address") {
                    FetchError::PrivateAddress(parsed.host_str().unwrap_or_default().to_owned())
                } else {
                    FetchError::Transport(url.clone(), detail)
                }
            })?;
            let (parts, mut body) = response.into_parts();
            let mut buffer = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| FetchError::Transport(url.clone(), e.to_string()))?;
                if let Ok(data) = frame.into_data() {
                    if buffer.len() + data.len() > limit {
                        return Err(FetchError::TooLarge(url.clone(), limit));
                    }
                    buffer.extend_from_slice(&data);
                }
            }
            Ok(http::Response::from_parts(parts, buffer.to_vec()))
        };
        tokio::time::timeout(self.policy.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout(url.clone(), self.policy.timeout))?
    }

    /// GETs `url` and returns its body; anything but 200 is an error.
    pub async fn get(&self, url: &str) -> Result<Bytes, FetchError> {
        let request = Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| FetchError::Transport(url.into(), e.to_string()))?;
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(url.into()));
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status {
                url: url.into(),
                status: status.as_u16(),
            });
        }
        Ok(Bytes::from(response.into_body()))
    }
}

/// Anything that can fetch a document: the real [`SafeFetcher`], or a
/// stand-in in tests.
pub trait Fetch: Send + Sync + 'static {
    /// GETs `url`.
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, BoxError>> + Send + 'a>>;
}

impl Fetch for SafeFetcher {
    fn fetch<'a>(
        &'a self,
        url: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, BoxError>> + Send + 'a>> {
        Box::pin(async move { self.get(url).await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(status: u16, body: &'static str, location: Option<&'static str>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let extra = location
                    .map(|l| format!("location: {l}\r\n"))
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        format!("http://{addr}/doc")
    }

    fn fetcher(allow_private: bool, max_bytes: usize) -> SafeFetcher {
        SafeFetcher::new(FetchPolicy {
            allow_private,
            max_bytes,
            timeout: Duration::from_secs(2),
            ..FetchPolicy::default()
        })
        .expect("builds")
    }

    #[tokio::test]
    async fn loopback_needs_the_switch() {
        let url = serve(200, "{}", None).await;
        let refused = fetcher(false, 1024).get(&url).await.expect_err("private");
        assert!(
            matches!(refused, FetchError::PrivateAddress(_)),
            "{refused}"
        );
        let localhost = url.replace("127.0.0.1", "localhost");
        let refused = fetcher(false, 1024)
            .get(&localhost)
            .await
            .expect_err("private via DNS");
        assert!(
            matches!(refused, FetchError::PrivateAddress(_)),
            "{refused}"
        );
        assert_eq!(fetcher(true, 1024).get(&url).await.expect("allowed"), "{}");
    }

    #[tokio::test]
    async fn redirects_and_oversized_bodies_are_refused() {
        let url = serve(302, "", Some("http://example.com/")).await;
        let err = fetcher(true, 1024).get(&url).await.expect_err("redirect");
        assert!(matches!(err, FetchError::Redirect(_)), "{err}");
        let url = serve(200, "0123456789", None).await;
        let err = fetcher(true, 5).get(&url).await.expect_err("too large");
        assert!(matches!(err, FetchError::TooLarge(_, 5)), "{err}");
    }

    #[tokio::test]
    async fn https_only_refuses_http() {
        let fetcher = SafeFetcher::new(FetchPolicy {
            https_only: true,
            allow_private: true,
            ..FetchPolicy::default()
        })
        .expect("builds");
        let err = fetcher.get("http://127.0.0.1:1/x").await.expect_err("http");
        assert!(matches!(err, FetchError::BadUrl(..)), "{err}");
    }
}
