use super::*;
use std::convert::Infallible;
use tower::ServiceExt;

/// A build context whose authn verifies `Teleport-Jwt-Assertion`.
fn verifying_teleport() -> BuildCtx {
    BuildCtx {
        verified_headers: vec![HeaderName::from_static("teleport-jwt-assertion")],
        ..BuildCtx::default()
    }
}

async fn authorization_sent(config: UpstreamAuthConfig, incoming: Option<&str>) -> Option<String> {
    let svc = config
        .build(&verifying_teleport())
        .expect("valid")
        .layer(tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(
                req.headers()
                    .get(AUTHORIZATION)
                    .map(|v| v.to_str().expect("ascii").to_owned()),
            )
        }));
    let mut req = Request::new(());
    if let Some(value) = incoming {
        req.headers_mut()
            .insert(AUTHORIZATION, HeaderValue::from_str(value).expect("valid"));
    }
    svc.oneshot(req).await.expect("infallible")
}

#[tokio::test]
async fn none_strips_any_inbound_credential() {
    let sent = authorization_sent(UpstreamAuthConfig::None, Some("Bearer caller")).await;
    assert_eq!(sent, None);
}

#[tokio::test]
async fn basic_encodes_user_and_password() {
    let config = UpstreamAuthConfig::Basic {
        username: "user".into(),
        password: Some(Secret::new("pass")),
        password_file: None,
    };
    assert_eq!(
        authorization_sent(config, None).await.as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );
}

#[tokio::test]
async fn bearer_replaces_the_callers_header() {
    let config = UpstreamAuthConfig::Bearer {
        token: Some(Secret::new("operator")),
        token_file: None,
    };
    let sent = authorization_sent(config, Some("Bearer caller")).await;
    assert_eq!(sent.as_deref(), Some("Bearer operator"));
}

#[tokio::test]
async fn bearer_from_file_is_trimmed() {
    let path = std::env::temp_dir().join(format!("upstream-auth-{}", std::process::id()));
    std::fs::write(&path, "file-token\n").expect("writable");
    let config = UpstreamAuthConfig::Bearer {
        token: None,
        token_file: Some(path.clone()),
    };
    let sent = authorization_sent(config, None).await;
    std::fs::remove_file(&path).ok();
    assert_eq!(sent.as_deref(), Some("Bearer file-token"));
}

#[tokio::test]
async fn forward_copies_only_the_named_header() {
    let config = UpstreamAuthConfig::Forward {
        header: "teleport-jwt-assertion".into(),
        to: Some("x-grafana-jwt".into()),
        prefix: None,
        forward_unverified: false,
    };
    let svc = config
        .build(&verifying_teleport())
        .expect("valid")
        .layer(tower::service_fn(|req: Request<()>| async move {
            Ok::<_, Infallible>(req.headers().clone())
        }));
    let mut inbound = http::HeaderMap::new();
    inbound.insert("teleport-jwt-assertion", HeaderValue::from_static("jwt"));
    inbound.insert("cookie", HeaderValue::from_static("session=1"));
    let inbound = Arc::new(inbound);
    let with = |verified: &'static str| {
        let mut req = Request::new(());
        req.extensions_mut().insert(InboundHeaders {
            headers: inbound.clone(),
            verified: Some(HeaderName::from_static(verified)),
        });
        req
    };
    let sent = svc
        .clone()
        .oneshot(with("teleport-jwt-assertion"))
        .await
        .expect("forwarded");
    assert_eq!(sent["x-grafana-jwt"], "jwt");
    assert!(sent.get("cookie").is_none() && sent.get("teleport-jwt-assertion").is_none());
    let err = svc
        .clone()
        .oneshot(with("authorization"))
        .await
        .expect_err("authn verified another header");
    assert!(err.to_string().contains("verified"), "{err}");
    let err = svc
        .oneshot(Request::new(()))
        .await
        .expect_err("nothing to forward");
    assert!(err.to_string().contains("teleport-jwt-assertion"), "{err}");
}

#[test]
fn bearer_needs_exactly_one_source() {
    let both = UpstreamAuthConfig::Bearer {
        token: Some(Secret::new("a")),
        token_file: Some("/nonexistent".into()),
    };
    assert!(matches!(
        both.build(&verifying_teleport()),
        Err(UpstreamAuthConfigError::Ambiguous { .. })
    ));
    let neither = UpstreamAuthConfig::Bearer {
        token: None,
        token_file: None,
    };
    assert!(neither.build(&verifying_teleport()).is_err());
}

#[test]
fn missing_file_is_reported_at_build() {
    let config = UpstreamAuthConfig::Bearer {
        token: None,
        token_file: Some("/nonexistent/token".into()),
    };
    let err = config.build(&verifying_teleport()).expect_err("unreadable");
    assert!(err.to_string().contains("/nonexistent/token"), "{err}");
}

#[test]
fn header_injection_is_refused() {
    let config = UpstreamAuthConfig::Bearer {
        token: Some(Secret::new("a\r\nX-Evil: 1")),
        token_file: None,
    };
    assert!(matches!(
        config.build(&verifying_teleport()),
        Err(UpstreamAuthConfigError::NotAHeaderValue)
    ));
}
