//! The per-address limit before authn, on requests that present no valid
//! credential: a request without one draws from its address's bucket up
//! front; a request whose credential authn refuses (401) draws afterwards,
//! and once the bucket is empty the address's next requests are refused
//! at the door until it refills: those without a token when anonymous
//! requests emptied it, every one when refused tokens did (guessing tokens
//! is what that slows; a valid token from the same NAT waits too). A
//! flood of anonymous or
//! garbage-token requests thus costs one hash lookup each, not a token
//! verification, a challenge and an audit line. IPv6 addresses count by
//! their /64 (one host's whole range is one client).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;
use tower::{Layer, Service};

use super::buckets::{Buckets, Rate};
use super::{Limited, limited};
use crate::audit::{AuditEvent, AuditLog, EventKind};
use crate::identity::PeerAddr;

/// The per-address decision.
#[derive(Debug)]
pub struct AddressLimit {
    rate: Rate,
    buckets: Buckets,
    /// Addresses whose bucket is empty: until when, and whether refused
    /// credentials emptied it (then even a token waits: guessing tokens is
    /// what is being slowed).
    blocked: DashMap<String, (Instant, bool)>,
    max_keys: usize,
    trust_forwarded_for: bool,
    credential_headers: Vec<HeaderName>,
    limited: Family<Vec<(&'static str, String)>, Counter>,
}

impl AddressLimit {
    pub(super) fn new(
        rate: Rate,
        buckets: Buckets,
        max_keys: usize,
        trust_forwarded_for: bool,
        credential_headers: Vec<HeaderName>,
        limited: Family<Vec<(&'static str, String)>, Counter>,
    ) -> Self {
        Self {
            rate,
            buckets,
            blocked: DashMap::new(),
            max_keys,
            trust_forwarded_for,
            credential_headers,
            limited,
        }
    }

    /// The client a request counts against: the TCP peer, or, behind a
    /// proxy the operator trusts, the last `X-Forwarded-For` entry, which
    /// that proxy wrote (an earlier one is the client's to forge; an
    /// unreadable last one means the peer).
    fn client(&self, headers: &HeaderMap, peer: Option<&PeerAddr>) -> String {
        let forwarded = self
            .trust_forwarded_for
            .then(|| {
                let last = headers.get_all("x-forwarded-for").iter().next_back()?;
                let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
                entry.parse::<IpAddr>().ok()
            })
            .flatten();
        match forwarded.or_else(|| peer.map(|p| p.0.ip())) {
            Some(IpAddr::V6(ip)) if ip.to_ipv4_mapped().is_none() => {
                let [a, b, c, d, ..] = ip.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            Some(IpAddr::V6(ip)) => ip.to_canonical().to_string(),
            Some(ip) => ip.to_string(),
            None => "unknown".to_owned(),
        }
    }

    fn refuse(&self, wait: Duration) -> (Limited, Response<String>) {
        self.limited
            .get_or_create(&vec![("rule", "unauthenticated".to_owned())])
            .inc();
        let refusal = limited("unauthenticated", self.rate, wait);
        let body = json!({
            "error": "too_many_requests",
            "error_description": format!("{refusal}: requests without a valid token are limited per address; send a valid bearer token"),
        });
        let mut response = Response::new(body.to_string());
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(RETRY_AFTER, HeaderValue::from(refusal.retry_after_secs));
        (refusal, response)
    }

    /// `Err(wait)` while `client` is blocked for this kind of request.
    fn blocked(&self, client: &str, credential: bool) -> Result<(), Duration> {
        let now = Instant::now();
        match self.blocked.get(client).map(|entry| *entry) {
            Some((until, _)) if until <= now => {
                self.blocked.remove(client);
                Ok(())
            }
            Some((until, by_tokens)) if by_tokens || !credential => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Takes a token for `client`; when there is none, blocks it for as
    /// long as the bucket takes to give one (so its further requests are
    /// refused before anything else, and audited once, not each).
    fn charge(&self, client: &str, by_tokens: bool) -> Result<(), Duration> {
        let wait = self.buckets.take(client, 1).err();
        let Some(wait) = wait else { return Ok(()) };
        if self.blocked.len() >= self.max_keys {
            let now = Instant::now();
            self.blocked.retain(|_, (until, _)| *until > now);
        }
        if self.blocked.len() < self.max_keys {
            self.blocked
                .insert(client.to_owned(), (Instant::now() + wait, by_tokens));
        }
        Err(wait)
    }
}

/// Applies the `unauthenticated` limit of [`super::RateLimitConfig`].
#[derive(Clone, Debug)]
pub struct AddressLimitLayer {
    limit: Arc<AddressLimit>,
    audit: Option<AuditLog>,
}

impl AddressLimitLayer {
    pub(super) fn new(limit: AddressLimit) -> Self {
        Self {
            limit: Arc::new(limit),
            audit: None,
        }
    }

    /// The same limit, writing refusals to `audit`.
    pub fn audited(self, audit: Option<AuditLog>) -> Self {
        Self { audit, ..self }
    }
}

impl<S> Layer<S> for AddressLimitLayer {
    type Service = AddressLimited<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AddressLimited {
            inner,
            layer: self.clone(),
        }
    }
}

/// Service of [`AddressLimitLayer`].
#[derive(Clone, Debug)]
pub struct AddressLimited<S> {
    inner: S,
    layer: AddressLimitLayer,
}

impl<S, B, ResB> Service<Request<B>> for AddressLimited<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
    ResB: From<String> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let limit = &layer.limit;
            let client = limit.client(req.headers(), req.extensions().get::<PeerAddr>());
            let credential = limit
                .credential_headers
                .iter()
                .any(|h| req.headers().contains_key(h));
            if let Err(wait) = limit.blocked(&client, credential) {
                return Ok(limit.refuse(wait).1.map(ResB::from));
            }
            if !credential && let Err(wait) = limit.charge(&client, false) {
                let (refusal, response) = limit.refuse(wait);
                if let Some(audit) = &layer.audit {
                    let mut event =
                        AuditEvent::new(EventKind::RateLimit, "limited", req.extensions());
                    event.reason = Some(format!("{refusal} (address {client} blocked)"));
                    audit.record(&event);
                }
                return Ok(response.map(ResB::from));
            }
            let extensions = layer.audit.as_ref().map(|_| req.extensions().clone());
            let response = inner.call(req).await?;
            if credential
                && response.status() == StatusCode::UNAUTHORIZED
                && let Err(wait) = limit.charge(&client, true)
                && let (Some(audit), Some(extensions)) = (&layer.audit, extensions)
            {
                let mut event = AuditEvent::new(EventKind::RateLimit, "limited", &extensions);
                event.reason = Some(format!(
                    "{} (address {client} blocked after refused tokens)",
                    limited("unauthenticated", limit.rate, wait)
                ));
                audit.record(&event);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests;
