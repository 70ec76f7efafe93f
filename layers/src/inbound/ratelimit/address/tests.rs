use std::convert::Infallible;

use http::Request;
use tower::ServiceExt;

use super::*;

fn layer() -> AddressLimitLayer {
    let rate = Rate {
        per_second: 0.01,
        burst: 2,
    };
    AddressLimitLayer::new(AddressLimit::new(
        rate,
        Buckets::new(rate, 100).expect("valid"),
        100,
        false,
        vec![http::header::AUTHORIZATION],
        Family::default(),
    ))
}

/// An inner service that accepts only the token `good`.
fn authn()
-> impl Service<Request<()>, Response = Response<String>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    tower::service_fn(|req: Request<()>| async move {
        let good = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == "Bearer good");
        let mut response = Response::new(String::new());
        if !good {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
        }
        Ok::<_, Infallible>(response)
    })
}

async fn send(layer: &AddressLimitLayer, peer: &str, token: Option<&str>) -> StatusCode {
    let mut builder = Request::post("/mcp");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = builder.body(()).expect("request");
    request
        .extensions_mut()
        .insert(PeerAddr(peer.parse().expect("addr")));
    layer
        .layer(authn())
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
}

#[tokio::test]
async fn anonymous_requests_are_limited_per_address() {
    let layer = layer();
    for _ in 0..2 {
        assert_eq!(
            send(&layer, "192.0.2.1:1", None).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send(&layer, "192.0.2.1:1", None).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&layer, "192.0.2.2:1", None).await,
        StatusCode::UNAUTHORIZED,
        "another address"
    );
    assert_eq!(
        send(&layer, "192.0.2.1:1", Some("good")).await,
        StatusCode::OK,
        "a valid token passes"
    );
}

#[tokio::test]
async fn garbage_tokens_are_charged_and_then_refused_at_the_door() {
    let layer = layer();
    for _ in 0..3 {
        assert_eq!(
            send(&layer, "192.0.2.9:1", Some("junk")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        send(&layer, "192.0.2.9:1", Some("junk")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the bucket is empty: blocked before authn"
    );
    assert_eq!(
        send(&layer, "192.0.2.10:1", Some("good")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_ipv6_host_counts_as_its_slash_64() {
    let layer = layer();
    assert_eq!(
        send(&layer, "[2001:db8:1:2::1]:1", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&layer, "[2001:db8:1:2::99]:1", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&layer, "[2001:db8:1:2:ffff::7]:1", None).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rotating within the /64 is one client"
    );
    assert_eq!(
        send(&layer, "[2001:db8:1:3::1]:1", None).await,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn only_the_proxys_own_forwarded_entry_counts() {
    let rate = Rate {
        per_second: 1.0,
        burst: 1,
    };
    let limit = AddressLimit::new(
        rate,
        Buckets::new(rate, 10).expect("valid"),
        10,
        true,
        vec![],
        Family::default(),
    );
    let peer = PeerAddr("10.0.0.1:80".parse().expect("addr"));
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
    );
    assert_eq!(limit.client(&headers, Some(&peer)), "203.0.113.7");
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_static("6.6.6.6, 203.0.113.7:5678"),
    );
    assert_eq!(
        limit.client(&headers, Some(&peer)),
        "10.0.0.1",
        "unreadable: the peer, not the forged entry"
    );
}
