//! The legacy SSE routes through the whole MCP router (inbound stack
//! included), driven with `oneshot`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_prometheus_layers::identity::Principal;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::app::App;
use crate::config::{Config, Transport};

async fn app(edit: impl FnOnce(&mut Config)) -> App {
    let mut config = Config::parse(crate::config::STANDALONE_TOML).expect("parses");
    config.server.transport = Transport::Sse;
    edit(&mut config);
    App::build(config, None).await.expect("builds")
}

fn router(app: &App, shutdown: &CancellationToken) -> Router {
    crate::serve::http::router(app, shutdown.clone())
}

fn principal(subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        groups: vec![],
        scopes: vec![],
        issuer: "https://issuer.example".into(),
        client: None,
        audiences: vec![],
        session: None,
    }
}

/// Reads the events of an SSE body, skipping comments.
struct Events(Body, String);

impl Events {
    /// The next `(event, data)`, or `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.1.find("\n\n") {
                let block: String = self.1.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !event.is_empty() || !data.is_empty() {
                    return Some((event, data));
                }
                continue;
            }
            let frame = self.0.frame().await?.expect("body frame");
            if let Ok(bytes) = frame.into_data() {
                self.1.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    async fn message(&mut self) -> serde_json::Value {
        let (event, data) = self.next().await.expect("an event");
        assert_eq!(event, "message", "{data}");
        serde_json::from_str(&data).expect("JSON-RPC")
    }
}

/// `GET /sse` as `who`: the response status and, on 200, the session's
/// endpoint and its events.
async fn open(router: &Router, who: Option<&str>) -> (StatusCode, Option<(String, Events)>) {
    let mut request = Request::get("/sse")
        .header("host", "localhost:8080")
        .header("accept", "text/event-stream")
        .body(Body::empty())
        .expect("request");
    if let Some(who) = who {
        request.extensions_mut().insert(principal(who));
    }
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut events = Events(response.into_body(), String::new());
    let (event, endpoint) = events.next().await.expect("endpoint event");
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/message?sessionId="), "{endpoint}");
    (status, Some((endpoint, events)))
}

/// `POST endpoint` with `body` as `who`: status and body.
async fn post(
    router: &Router,
    endpoint: &str,
    body: &str,
    who: Option<&str>,
) -> (StatusCode, String) {
    let mut request = Request::post(endpoint)
        .header("host", "localhost:8080")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request");
    if let Some(who) = who {
        request.extensions_mut().insert(principal(who));
    }
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

#[tokio::test]
async fn answers_go_out_on_the_stream() {
    let app = app(|_| {}).await;
    let router = router(&app, &CancellationToken::new());
    let (_, opened) = open(&router, None).await;
    let (endpoint, mut events) = opened.expect("opened");
    assert_eq!(
        post(&router, &endpoint, INITIALIZE, None).await.0,
        StatusCode::ACCEPTED
    );
    let answer = events.message().await;
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["serverInfo"]["name"], "mcp-prometheus");
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(
        post(&router, &endpoint, INITIALIZED, None).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(&router, &endpoint, LIST, None).await.0,
        StatusCode::ACCEPTED
    );
    let tools = events.message().await;
    assert_eq!(tools["id"], 2);
    assert_eq!(
        tools["result"]["tools"].as_array().map(Vec::len),
        Some(crate::tools::registry::TOOL_NAMES.len()),
        "{tools}"
    );
}

#[tokio::test]
async fn unknown_or_missing_session_is_404_naming_get_sse() {
    let app = app(|_| {}).await;
    let router = router(&app, &CancellationToken::new());
    for endpoint in ["/message?sessionId=nope", "/message", "/message?sessionId="] {
        let (status, body) = post(&router, endpoint, INITIALIZE, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON-RPC error");
        assert_eq!(body["jsonrpc"], "2.0");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("GET /sse"), "{message}");
    }
}

#[tokio::test]
async fn another_principal_is_refused_as_unknown_and_the_session_untouched() {
    let app = app(|_| {}).await;
    let router = router(&app, &CancellationToken::new());
    let (endpoint, mut events) = open(&router, Some("alice")).await.1.expect("opened");
    let unknown = post(&router, "/message?sessionId=nope", INITIALIZE, Some("bob")).await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    for who in [Some("bob"), None] {
        // the same answer as no session at all: the id tells nothing
        let refused = post(&router, &endpoint, INITIALIZE, who).await;
        assert_eq!(refused, unknown, "{who:?}");
    }
    let (status, _) = post(&router, &endpoint, INITIALIZE, Some("alice")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        events.message().await["id"],
        1,
        "the owner's first message is still the session's first"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_saying_why() {
    let app = app(|config| config.layers.limits.max_body_bytes = 1024).await;
    let router = router(&app, &CancellationToken::new());
    let (endpoint, _events) = open(&router, None).await.1.expect("opened");
    let big = format!(
        r#"{{"jsonrpc":"2.0","method":"x","params":"{}"}}"#,
        "x".repeat(2000)
    );
    let cases = [
        ("{not json", StatusCode::BAD_REQUEST, -32700, "not JSON"),
        ("[]", StatusCode::BAD_REQUEST, -32600, "batches"),
        (
            r#"{"hello":1}"#,
            StatusCode::BAD_REQUEST,
            -32600,
            "JSON-RPC",
        ),
        (&big, StatusCode::PAYLOAD_TOO_LARGE, -32600, "1024 bytes"),
    ];
    for (body, want, code, needle) in cases {
        let (status, answer) = post(&router, &endpoint, body, None).await;
        assert_eq!(status, want, "{answer}");
        if status == StatusCode::PAYLOAD_TOO_LARGE && !answer.contains("jsonrpc") {
            continue; // the limits layer answered first, from Content-Length
        }
        let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let message = answer["error"]["message"].as_str().expect("message");
        assert!(message.contains(needle), "{message}");
    }
}

#[tokio::test]
async fn sessions_over_the_bound_get_503_until_one_leaves() {
    let app = app(|config| config.server.sse_max_sessions = 1).await;
    let router = router(&app, &CancellationToken::new());
    let first = open(&router, None).await.1.expect("first");
    let request = Request::get("/sse")
        .header("host", "localhost")
        .body(Body::empty())
        .expect("request");
    let refused = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key(http::header::RETRY_AFTER));
    let body = refused
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("sse_max_sessions"));
    let (endpoint, events) = first;
    drop(events); // the client disconnects
    assert_eq!(
        post(&router, &endpoint, INITIALIZE, None).await.0,
        StatusCode::NOT_FOUND,
        "its session is gone"
    );
    assert_eq!(open(&router, None).await.0, StatusCode::OK, "room again");
}

#[tokio::test]
async fn foreign_host_and_origin_are_refused_on_both_routes() {
    let app = app(|_| {}).await;
    let router = router(&app, &CancellationToken::new());
    let (endpoint, _events) = open(&router, None).await.1.expect("opened");
    for (host, origin) in [
        ("evil.example", None),
        ("localhost", Some("https://evil.example")),
    ] {
        let mut get = Request::get("/sse").header("host", host);
        let mut message = Request::post(&endpoint).header("host", host);
        if let Some(origin) = origin {
            get = get.header("origin", origin);
            message = message.header("origin", origin);
        }
        for request in [get, message] {
            let response = router
                .clone()
                .oneshot(request.body(Body::from(INITIALIZE)).expect("request"))
                .await
                .expect("infallible");
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{host} {origin:?}"
            );
        }
    }
}

#[tokio::test]
async fn idle_sessions_and_shutdown_end_the_stream() {
    let app = app(|config| config.server.sse_idle_timeout.0 = Duration::from_secs(1)).await;
    let shutdown = CancellationToken::new();
    let router = router(&app, &shutdown);
    let (endpoint, mut events) = open(&router, None).await.1.expect("opened");
    let ended = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(matches!(ended, Ok(None)), "the idle stream ends");
    assert_eq!(
        post(&router, &endpoint, INITIALIZE, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, mut events) = open(&router, None).await.1.expect("opened");
    shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(matches!(ended, Ok(None)), "shutdown ends the stream");
}

#[tokio::test]
async fn transports_choose_the_routes() {
    let initialize = || {
        Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(INITIALIZE))
            .expect("request")
    };
    let sse_only = app(|_| {}).await;
    let router = router(&sse_only, &CancellationToken::new());
    let response = router
        .clone()
        .oneshot(initialize())
        .await
        .expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no /mcp under sse"
    );

    let streamable = app(|config| config.server.transport = Transport::StreamableHttp).await;
    let router = self::router(&streamable, &CancellationToken::new());
    assert_eq!(
        open(&router, None).await.0,
        StatusCode::NOT_FOUND,
        "no /sse by default"
    );

    let both = app(|config| {
        config.server.transport = Transport::StreamableHttp;
        config.server.legacy_sse = true;
    })
    .await;
    let router = self::router(&both, &CancellationToken::new());
    assert_eq!(open(&router, None).await.0, StatusCode::OK);
    let response = router
        .clone()
        .oneshot(initialize())
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}
