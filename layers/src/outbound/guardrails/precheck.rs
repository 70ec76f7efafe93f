//! The series pre-check of rule `max_series_per_selector`: a selector that
//! names a metric and nothing else is only as cheap as the metric is small,
//! which only the upstream knows. So the layer asks it, `count(<selector>)`
//! as an instant query through the inner stack (the caller's tenants, the
//! upstream's credentials, metrics, timeout: it counts what this caller
//! would read), and keeps the answer a while per (upstream, tenants,
//! forwarded credential, selector) in a bounded cache.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Extensions, HeaderMap, Method, Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::BoxError;
use crate::endpoint::UpstreamEndpoint;
use crate::identity::{InboundHeaders, TenantSet};
use crate::outbound::truncate::TruncateBudget;
use crate::promql::ParsedQuery;

/// The largest pre-check answer read (one sample per tenant).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the upstream said about a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Estimate {
    Series(u64),
    /// Why there is no count; the query goes on unchecked.
    Failed(String),
}

/// Whose view a count is: the same selector counts differently per
/// upstream, tenant set and (for a `forward` upstream) caller credential.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key {
    upstream: String,
    tenants: String,
    /// SHA-256 of the forwarded credential, never the credential itself.
    credential: Option<Vec<u8>>,
    selector: String,
}

/// The parts of the caller's request a pre-check is made from.
pub(super) struct Template {
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
}

impl Template {
    pub fn of<B>(request: &Request<B>) -> Self {
        Self {
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            extensions: request.extensions().clone(),
        }
    }

    /// The cache key of `selector` for this caller.
    pub fn key(&self, selector: &str) -> Key {
        let credential = self.extensions.get::<InboundHeaders>().and_then(|inbound| {
            let value = inbound.headers.get(inbound.verified.as_ref()?)?;
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
            Some(digest.as_ref().to_vec())
        });
        Key {
            upstream: self
                .extensions
                .get::<UpstreamEndpoint>()
                .map(|e| e.upstream.to_string())
                .unwrap_or_default(),
            tenants: self
                .extensions
                .get::<TenantSet>()
                .map(TenantSet::header_value)
                .unwrap_or_default(),
            credential,
            selector: selector.to_owned(),
        }
    }

    /// `GET <base>/api/v1/query?query=count(<selector>)` with the caller's
    /// headers and scope (tenants, trace, forwarded headers), without its
    /// truncation budget or parsed query, labelled `/api/v1/query`.
    pub fn request(&self, selector: &str, timeout: Duration) -> Option<Request<Full<Bytes>>> {
        let path = self.uri.path();
        let base = &path[..path.rfind("/api/v1/")?];
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &format!("count({selector})"))
            .append_pair("timeout", &timeout.as_secs_f64().to_string())
            .finish();
        let mut uri = Uri::builder().path_and_query(format!("{base}/api/v1/query?{query}"));
        if let (Some(scheme), Some(authority)) = (self.uri.scheme(), self.uri.authority()) {
            uri = uri.scheme(scheme.clone()).authority(authority.clone());
        }
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(uri.build().ok()?)
            .body(Full::new(Bytes::new()))
            .ok()?;
        let mut headers = self.headers.clone();
        headers.remove(CONTENT_TYPE);
        headers.remove(CONTENT_LENGTH);
        *request.headers_mut() = headers;
        let mut extensions = self.extensions.clone();
        extensions.remove::<TruncateBudget>();
        extensions.remove::<ParsedQuery>();
        if let Some(endpoint) = extensions.get_mut::<UpstreamEndpoint>() {
            endpoint.endpoint = "/api/v1/query";
        }
        *request.extensions_mut() = extensions;
        Some(request)
    }
}

/// Sends a pre-check through `service` and reads the count: the sum of the
/// samples (one per tenant under federation), 0 for an empty result.
pub(super) async fn count<S, B>(service: S, request: Request<Full<Bytes>>) -> Result<u64, String>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let response = service
        .oneshot(request)
        .await
        .map_err(|e| crate::error_chain(e.into().as_ref()))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "HTTP {status}: {}",
            text.trim().chars().take(200).collect::<String>()
        ));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    let result = answer
        .pointer("/data/result")
        .and_then(serde_json::Value::as_array)
        .ok_or("no data.result in the answer")?;
    let mut total = 0.0_f64;
    for sample in result {
        total += sample
            .pointer("/value/1")
            .and_then(serde_json::Value::as_str)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or("a sample of the count is not a number")?;
    }
    Ok(total as u64)
}

/// Pre-check answers by [`Key`], each kept for `ttl`; at most `max`
/// entries (expired ones go first, then the oldest).
pub(super) struct Cache {
    entries: Mutex<HashMap<Key, (Instant, Estimate)>>,
    ttl: Duration,
    max: usize,
}

impl Cache {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    pub fn get(&self, key: &Key) -> Option<Estimate> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, estimate)| estimate.clone())
    }

    pub fn put(&self, key: Key, estimate: Estimate) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.max
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (Instant::now(), estimate));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
