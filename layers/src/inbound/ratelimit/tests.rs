use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

use super::*;

fn ctx() -> BuildCtx {
    BuildCtx {
        authn_enabled: true,
        issuers: vec!["https://dex".into()],
        bare_group_issuers: vec!["https://dex".into()],
        verified_headers: vec![http::header::AUTHORIZATION],
        ..BuildCtx::default()
    }
}

fn layers(toml_text: &str) -> RateLimitLayers {
    #[derive(Deserialize)]
    struct Wrapper {
        ratelimit: RateLimitConfig,
    }
    toml::from_str::<Wrapper>(toml_text)
        .expect("toml")
        .ratelimit
        .build(&ctx())
        .expect("valid")
        .expect("on")
}

const DEV: &str = r#"
[ratelimit]
enabled = true
[[ratelimit.rules]]
name = "team-dev"
groups = ["team-dev"]
per_second = 0.01
burst = 2
[[ratelimit.rules]]
groups = ["shared"]
per_second = 0.01
burst = 1
per = "tenant"
"#;

fn principal(subject: &str, groups: &[&str]) -> Principal {
    Principal {
        subject: subject.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        scopes: vec![],
        issuer: "https://dex".into(),
        client: None,
        audiences: vec![],
        session: None,
    }
}

#[test]
fn each_subject_has_its_own_bucket() {
    let limits = layers(DEV).by_caller.limits();
    let alice = principal("alice", &["team-dev"]);
    let bob = principal("bob", &["team-dev"]);
    assert!(limits.check(Some(&alice), None, None).is_ok());
    assert!(limits.check(Some(&alice), None, None).is_ok());
    let refused = limits.check(Some(&alice), None, None).expect_err("over");
    assert_eq!(refused.rule, "team-dev");
    assert!(refused.to_string().contains("bursts of 2"), "{refused}");
    assert!(refused.retry_after_secs >= 1);
    assert!(
        limits.check(Some(&bob), None, None).is_ok(),
        "bob is unaffected"
    );
    assert!(
        limits
            .check(Some(&principal("carol", &["sales"])), None, None)
            .is_ok(),
        "no rule, no default: not limited"
    );
}

#[test]
fn per_tenant_buckets_are_shared_by_the_tenant_set() {
    let limits = layers(DEV).by_caller.limits();
    let tenants = TenantSet::new(["t1"]);
    let a = principal("a", &["shared"]);
    let b = principal("b", &["shared"]);
    assert!(limits.check(Some(&a), Some(&tenants), None).is_ok());
    let refused = limits
        .check(Some(&b), Some(&tenants), None)
        .expect_err("shared");
    assert_eq!(refused.rule, "rules[1]");
    assert!(
        limits
            .check(Some(&b), Some(&TenantSet::new(["t2"])), None)
            .is_ok()
    );
}

#[test]
fn the_default_catches_the_rest_and_bad_rates_are_refused() {
    let with_default = format!("{DEV}[ratelimit.default]\nper_second = 0.01\nburst = 1\n");
    let limits = layers(&with_default).by_caller.limits();
    let carol = principal("carol", &[]);
    assert!(limits.check(Some(&carol), None, None).is_ok());
    assert_eq!(
        limits
            .check(Some(&carol), None, None)
            .expect_err("over")
            .rule,
        "default"
    );
    #[derive(Deserialize)]
    struct Wrapper {
        ratelimit: RateLimitConfig,
    }
    let bad = DEV.replace("per_second = 0.01\nburst = 2", "per_second = 0\nburst = 2");
    let config = toml::from_str::<Wrapper>(&bad).expect("toml").ratelimit;
    let err = config.build(&ctx()).expect_err("zero rate").to_string();
    assert!(
        err.contains("rules[0]") && err.contains("per_second"),
        "{err}"
    );
}

fn call(id: u32) -> Request<Full<Bytes>> {
    let body =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"x"}}}}"#);
    Request::post("/mcp")
        .body(Full::new(Bytes::from(body)))
        .expect("request")
}

#[tokio::test]
async fn over_the_limit_a_tool_call_gets_429_and_others_pass() {
    let layer = layers(DEV).by_caller;
    let service = layer.layer(tower::service_fn(
        |request: Request<Full<Bytes>>| async move {
            let body = request
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            Ok::<_, Infallible>(Response::new(String::from_utf8_lossy(&body).into_owned()))
        },
    ));
    let send = |request: Request<Full<Bytes>>, who: Principal| {
        let service = service.clone();
        let mut request = request;
        request.extensions_mut().insert(who);
        service.oneshot(request)
    };
    let alice = principal("alice", &["team-dev"]);
    for id in 0..2 {
        let response = send(call(id), alice.clone()).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.body().contains("tools/call"),
            "the body reaches the service whole"
        );
    }
    let response = send(call(9), alice.clone()).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(http::header::RETRY_AFTER));
    let body: serde_json::Value = serde_json::from_str(response.body()).expect("json-rpc");
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["data"]["rule"], "team-dev");
    let ping = Request::post("/mcp")
        .body(Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        )))
        .expect("request");
    let response = send(ping, alice.clone()).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "only tool calls count");
    let bob = principal("bob", &["team-dev"]);
    let response = send(call(1), bob).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "bob is unaffected");
}

#[tokio::test]
async fn a_body_longer_than_the_limit_is_refused_unbuffered() {
    let ctx = BuildCtx {
        max_body_bytes: 2048,
        ..ctx()
    };
    #[derive(Deserialize)]
    struct Wrapper {
        ratelimit: RateLimitConfig,
    }
    let layer = toml::from_str::<Wrapper>(DEV)
        .expect("toml")
        .ratelimit
        .build(&ctx)
        .expect("valid")
        .expect("on")
        .by_caller;
    let service = layer.layer(tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new("reached".to_owned()))
    }));
    let big = Request::post("/mcp")
        .body(Full::new(Bytes::from(vec![b' '; 4096])))
        .expect("request");
    let response = service.oneshot(big).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        response.body().contains("2048 bytes"),
        "{}",
        response.body()
    );
}

#[tokio::test]
async fn a_catalog_read_over_the_limit_gets_429_and_an_audit_line_of_its_own() {
    let dir = std::env::temp_dir().join(format!(
        "ratelimit-read-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("audit.jsonl");
    let audit = crate::audit::AuditConfig {
        enabled: true,
        sink: crate::audit::SinkKind::File,
        path: Some(path.clone()),
        ..Default::default()
    }
    .build()
    .expect("audit")
    .expect("on");
    let layer = layers(DEV).by_caller.audited(Some(audit));
    let service = layer.layer(tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(String::from("read")))
    }));
    let read = |id: u32, uri: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"resources/read","params":{{"uri":"{uri}"}}}}"#
        );
        let mut request = Request::post("/mcp")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        request
            .extensions_mut()
            .insert(principal("alice", &["team-dev"]));
        service.clone().oneshot(request)
    };
    let catalog = "prometheus://upstreams/local/metrics";
    for id in 0..2 {
        let response = read(id, catalog).await.expect("infallible");
        assert_eq!(response.body(), "read", "within the burst of 2");
    }
    let free = read(5, "prometheus://docs/promql-cheatsheet")
        .await
        .expect("infallible");
    assert_eq!(free.body(), "read", "a static resource costs nothing");
    let refused = read(9, catalog).await.expect("infallible");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = serde_json::from_str(refused.body()).expect("json-rpc");
    assert_eq!(body["id"], 9);
    let text = std::fs::read_to_string(&path).expect("audit file");
    let line: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a line")).expect("json");
    assert_eq!(line["event"], "resource_read");
    assert_eq!(line["outcome"], "limited");
    assert_eq!(line["arguments"]["uri"], catalog);
    let _ = std::fs::remove_dir_all(dir);
}
