//! Per-address rate limits of the authorization, token and registration
//! endpoints.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::oauth::OAuthServer;

/// Route layer of the token, revocation and registration endpoints: a
/// caller over its per-address budget gets 429 before the endpoint reads
/// its body or checks a credential (so guessing tokens is limited too).
pub async fn throttle(
    State(server): State<Arc<OAuthServer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let client = client_address(server.config.trust_forwarded_for, peer, request.headers());
    match limited(&server.limiter, client) {
        Some(refusal) => refusal,
        None => next.run(request).await,
    }
}

/// Refuses `client` when it is over its budget in `limiter`.
pub fn limited(limiter: &DefaultKeyedRateLimiter<IpAddr>, client: IpAddr) -> Option<Response> {
    limiter.check_key(&client).err().map(|_| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            Json(json!({"error": "too_many_requests", "error_description": "slow down: too many requests from this address"})),
        )
            .into_response()
    })
}

/// The address a request is counted against: the TCP peer, or, behind a
/// proxy the operator trusts, the last address it appended to
/// `X-Forwarded-For` (earlier entries are the client's to forge).
pub fn client_address(trust_forwarded_for: bool, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if !trust_forwarded_for {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .next_back()
        .unwrap_or_else(|| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_when_trusted_and_only_the_last_hop() {
        let peer: SocketAddr = "10.0.0.5:443".parse().expect("addr");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7".parse().expect("value"),
        );
        assert_eq!(client_address(false, peer, &headers), peer.ip());
        assert_eq!(
            client_address(true, peer, &headers).to_string(),
            "203.0.113.7"
        );
        assert_eq!(client_address(true, peer, &HeaderMap::new()), peer.ip());
    }
}
