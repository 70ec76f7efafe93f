//! The per-address limit on requests that carry no credential, before
//! authn: a stranger without a token is refused at the door once over
//! its budget, so a flood of anonymous requests costs one hash lookup
//! each, not a challenge, a log line and a metric label set.

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::json;

use super::buckets::{Buckets, Rate};
use super::limited;
use crate::audit::EventKind;
use crate::identity::PeerAddr;
use crate::inbound::gate::{Gate, GateLayer, GateService};

/// The per-address decision.
#[derive(Debug)]
pub struct AddressLimit {
    rate: Rate,
    buckets: Buckets,
    trust_forwarded_for: bool,
    credential_headers: Vec<HeaderName>,
    limited: Family<Vec<(&'static str, String)>, Counter>,
}

impl AddressLimit {
    pub(super) fn new(
        rate: Rate,
        buckets: Buckets,
        trust_forwarded_for: bool,
        credential_headers: Vec<HeaderName>,
        limited: Family<Vec<(&'static str, String)>, Counter>,
    ) -> Self {
        Self {
            rate,
            buckets,
            trust_forwarded_for,
            credential_headers,
            limited,
        }
    }

    /// The address a request counts against: the TCP peer, or, behind a
    /// proxy the operator trusts, the last `X-Forwarded-For` entry (the
    /// earlier ones are the client's to forge).
    fn client(&self, parts: &Parts) -> String {
        let forwarded = self
            .trust_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
                    .next_back()
            })
            .flatten();
        forwarded
            .or_else(|| parts.extensions.get::<PeerAddr>().map(|p| p.0.ip()))
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// Applies the `unauthenticated` limit of [`super::RateLimitConfig`].
pub type AddressLimitLayer = GateLayer<AddressLimit>;

/// Service of [`AddressLimitLayer`].
pub type AddressLimited<S> = GateService<AddressLimit, S>;

impl Gate for AddressLimit {
    const AUDIT_AS: EventKind = EventKind::RateLimit;

    async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
        let carries_credential = self
            .credential_headers
            .iter()
            .any(|h| parts.headers.contains_key(h));
        if carries_credential {
            return Ok(());
        }
        let Err(wait) = self.buckets.take(&self.client(parts), 1) else {
            return Ok(());
        };
        self.limited
            .get_or_create(&vec![("rule", "unauthenticated".to_owned())])
            .inc();
        let refusal = limited("unauthenticated", self.rate, wait);
        let body = json!({
            "error": "too_many_requests",
            "error_description": format!("{refusal}: requests without a token are limited per address; send a bearer token"),
        });
        let mut response = Response::new(body.to_string());
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(RETRY_AFTER, HeaderValue::from(refusal.retry_after_secs));
        Err(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn gate() -> AddressLimit {
        let rate = Rate {
            per_second: 0.01,
            burst: 2,
        };
        AddressLimit::new(
            rate,
            Buckets::new(rate, 100).expect("valid"),
            false,
            vec![http::header::AUTHORIZATION],
            Family::default(),
        )
    }

    fn parts(peer: &str, token: bool) -> Parts {
        let mut builder = Request::post("/mcp");
        if token {
            builder = builder.header("authorization", "Bearer x");
        }
        let (mut parts, ()) = builder.body(()).expect("request").into_parts();
        parts
            .extensions
            .insert(PeerAddr(format!("{peer}:1234").parse().expect("addr")));
        parts
    }

    #[tokio::test]
    async fn anonymous_requests_are_limited_per_address() {
        let gate = gate();
        for _ in 0..2 {
            assert!(gate.admit(&mut parts("192.0.2.1", false)).await.is_ok());
        }
        let refusal = gate
            .admit(&mut parts("192.0.2.1", false))
            .await
            .expect_err("over");
        assert_eq!(refusal.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refusal.headers().contains_key(RETRY_AFTER));
        assert!(refusal.body().contains("send a bearer token"));
        assert!(
            gate.admit(&mut parts("192.0.2.2", false)).await.is_ok(),
            "another address"
        );
        assert!(
            gate.admit(&mut parts("192.0.2.1", true)).await.is_ok(),
            "a token goes to authn"
        );
    }
}
