//! The fast path's gate: what it answers itself, and that everything else
//! reaches rmcp with the body it was sent.

use std::sync::Mutex;

use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use super::*;
use crate::app::App;
use crate::config::Config;

/// What reached the inner service (rmcp's place): the body bytes.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Bytes>>>);

impl Recorder {
    fn seen(&self) -> Vec<Bytes> {
        self.0.lock().expect("lock").clone()
    }
}

impl Fallback for Recorder {
    fn handle(self: Arc<Self>, request: Request<Body>) -> ResponseFuture {
        let seen = self.0.clone();
        Box::pin(async move {
            let body = request
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            seen.lock().expect("lock").push(body);
            Ok(respond(
                StatusCode::IM_A_TEAPOT,
                "text/plain",
                b"rmcp".to_vec(),
            ))
        })
    }
}

/// The route as served: rmcp's place taken by a recorder.
struct Route {
    fast: Arc<FastPath>,
    recorder: Arc<Recorder>,
}

async fn fast_call() -> (Route, Recorder) {
    let mut config = Config::parse(crate::config::STANDALONE_TOML).expect("parses");
    config.server.allowed_hosts = vec!["mcp.example.com".into()];
    // an upstream nobody listens on: these calls must not need one
    config.upstreams[0].url = "http://127.0.0.1:9".parse().expect("url");
    let app = App::build(config, None).await.expect("builds");
    let fast = FastPath::new(
        app.mcp.clone(),
        RebindingGuard::new(&app.config.server.allowed_hosts, &[]),
        4096,
    );
    let recorder = Recorder::default();
    let route = Route {
        fast: Arc::new(fast),
        recorder: Arc::new(recorder.clone()),
    };
    (route, recorder)
}

fn call_body(name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
    "name": name, "arguments": {"query": "up"},
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    }}})
}

fn request(body: &Value, edit: impl FnOnce(&mut HeaderMap)) -> Request<Body> {
    let bytes = serde_json::to_vec(body).expect("json");
    let name = body["params"]["name"].as_str().unwrap_or("").to_owned();
    let mut request = Request::post("/mcp")
        .header("host", "mcp.example.com")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .header("content-length", bytes.len())
        .body(Body::from(bytes))
        .expect("request");
    edit(request.headers_mut());
    request
}

async fn send(route: Route, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = route
        .fast
        .serve(request, &route.recorder)
        .await
        .expect("infallible");
    let status = response.status();
    (
        status,
        response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes(),
    )
}

#[tokio::test]
async fn a_plain_call_is_answered_without_rmcp() {
    let (service, recorder) = fast_call().await;
    let (status, body) = send(service, request(&call_body("nope"), |_| {})).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["isError"], true);
    assert_eq!(answer["result"]["resultType"], "complete");
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .expect("text");
    assert!(text.contains("unknown tool \"nope\""), "{text}");
    assert!(recorder.seen().is_empty(), "rmcp saw the call");
}

#[tokio::test]
async fn unusual_headers_go_to_rmcp_with_the_same_body() {
    type Edit = fn(&mut HeaderMap);
    let cases: [(&str, Edit); 14] = [
        ("a session", |h| {
            h.insert("mcp-session-id", "s".parse().expect("v"));
        }),
        ("an Origin", |h| {
            h.insert("origin", "https://mcp.example.com".parse().expect("v"));
        }),
        ("an Mcp-Param header", |h| {
            h.insert("mcp-param-query", "up".parse().expect("v"));
        }),
        ("an older version", |h| {
            h.insert("mcp-protocol-version", "2025-11-25".parse().expect("v"));
        }),
        ("another method header", |h| {
            h.insert("mcp-method", "tools/list".parse().expect("v"));
        }),
        ("a second method header", |h| {
            h.append("mcp-method", "tools/call".parse().expect("v"));
        }),
        ("another tool in Mcp-Name", |h| {
            h.insert("mcp-name", "other".parse().expect("v"));
        }),
        ("no Mcp-Name", |h| {
            h.remove("mcp-name");
        }),
        ("JSON only accepted", |h| {
            h.insert("accept", "application/json".parse().expect("v"));
        }),
        ("weighted Accept", |h| {
            h.insert(
                "accept",
                "application/json;q=0, text/event-stream"
                    .parse()
                    .expect("v"),
            );
        }),
        ("a foreign Host", |h| {
            h.insert("host", "evil.example.com".parse().expect("v"));
        }),
        ("a quote in Accept", |h| {
            h.insert(
                "accept",
                "x\"y, application/json, text/event-stream"
                    .parse()
                    .expect("v"),
            );
        }),
        ("a base64 Mcp-Name", |h| {
            h.insert("mcp-name", "=?base64?bm9wZQ==?=".parse().expect("v"));
        }),
        ("another content type", |h| {
            h.insert("content-type", "text/plain".parse().expect("v"));
        }),
    ];
    for (why, edit) in cases {
        let (service, recorder) = fast_call().await;
        let body = call_body("nope");
        let (status, _) = send(service, request(&body, edit)).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT, "{why}: not sent to rmcp");
        assert_eq!(
            recorder.seen(),
            vec![Bytes::from(serde_json::to_vec(&body).expect("json"))],
            "{why}"
        );
    }
}

#[tokio::test]
async fn unusual_bodies_go_to_rmcp_with_the_same_bytes() {
    let meta = call_body("x")["params"]["_meta"].clone();
    let cases = [
        (
            "a task field",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "nope", "task": {}, "_meta": meta}}),
        ),
        (
            "no _meta",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "nope"}}),
        ),
        (
            "an older _meta version",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "nope", "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2025-11-25",
                "io.modelcontextprotocol/clientCapabilities": {}}}}),
        ),
        (
            "capabilities not an object",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "nope", "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": "all"}}}),
        ),
        (
            "JSON-RPC 1.0",
            json!({"jsonrpc": "1.0", "id": 1, "method": "tools/call",
            "params": {"name": "nope", "_meta": meta}}),
        ),
        (
            "another method",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"name": "nope", "_meta": meta}}),
        ),
        (
            "a notification",
            json!({"jsonrpc": "2.0", "method": "tools/call",
            "params": {"name": "nope", "_meta": meta}}),
        ),
        (
            "an extra top-level field",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "extra": true, "params": {"name": "nope", "_meta": meta}}),
        ),
        (
            "arguments not an object",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "nope", "arguments": [1], "_meta": meta}}),
        ),
        // shapes serde's derive would take and rmcp (and the rate limit) do not
        (
            "the message as an array",
            json!(["2.0", 1, "tools/call", {"name": "nope", "_meta": meta}]),
        ),
        (
            "params as an array",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": ["nope", {}, meta]}),
        ),
        (
            "the method as a one-key map",
            json!({"jsonrpc": "2.0", "id": 1, "method": {"tools/call": null},
            "params": {"name": "nope", "_meta": meta}}),
        ),
        (
            "jsonrpc as a one-key map",
            json!({"jsonrpc": {"2.0": null}, "id": 1, "method": "tools/call",
            "params": {"name": "nope", "_meta": meta}}),
        ),
    ];
    for (why, body) in cases {
        let (service, recorder) = fast_call().await;
        let (status, _) = send(service, request(&body, |_| {})).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT, "{why}: not sent to rmcp");
        assert_eq!(
            recorder.seen(),
            vec![Bytes::from(serde_json::to_vec(&body).expect("json"))],
            "{why}"
        );
    }
    // not JSON at all, and a duplicate key
    for raw in [&b"{not json"[..], br#"{"jsonrpc":"2.0","id":1,"id":2}"#] {
        let (service, recorder) = fast_call().await;
        let mut request = request(&call_body("nope"), |_| {});
        request
            .headers_mut()
            .insert("content-length", raw.len().into());
        *request.body_mut() = Body::from(raw);
        let (status, _) = send(service, request).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(recorder.seen(), vec![Bytes::from_static(raw)]);
    }
}

#[tokio::test]
async fn bodies_without_length_or_over_the_limit_are_not_read_here() {
    let body = call_body("nope");
    let (service, recorder) = fast_call().await;
    let (status, _) = send(
        service,
        request(&body, |h| {
            h.remove("content-length");
        }),
    )
    .await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT, "no length: rmcp's");
    assert_eq!(recorder.seen().len(), 1);

    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "nope", "arguments": {"query": "x".repeat(5000)},
        "_meta": body["params"]["_meta"]}});
    let (service, recorder) = fast_call().await;
    let (status, _) = send(service, request(&big, |_| {})).await;
    assert_eq!(
        status,
        StatusCode::IM_A_TEAPOT,
        "over the limit: rmcp's (it refuses)"
    );
    assert_eq!(recorder.seen().len(), 1);
}

#[tokio::test]
async fn a_body_shorter_than_declared_is_refused_without_a_call() {
    let (service, recorder) = fast_call().await;
    let mut request = request(&call_body("nope"), |_| {});
    request.headers_mut().insert("content-length", 4000.into());
    let (status, body) = send(service, request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "rmcp's status");
    assert!(String::from_utf8_lossy(&body).starts_with("Failed to read request body"));
    assert!(recorder.seen().is_empty());
}

#[test]
fn accept_needs_both_types_unweighted() {
    let headers = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().expect("v"));
        h
    };
    assert!(accepts_json_and_sse(&headers(
        "application/json, text/event-stream"
    )));
    assert!(accepts_json_and_sse(&headers(
        "TEXT/EVENT-STREAM,application/JSON"
    )));
    assert!(!accepts_json_and_sse(&headers("application/json")));
    assert!(!accepts_json_and_sse(&headers("*/*")));
    assert!(!accepts_json_and_sse(&headers(
        "application/json;q=1, text/event-stream"
    )));
    assert!(!accepts_json_and_sse(&HeaderMap::new()));
}

#[tokio::test]
async fn an_encoded_tool_name_is_left_to_rmcp_to_decode() {
    // the header and the body agree as text, but rmcp decodes the header
    let (service, recorder) = fast_call().await;
    let body = call_body("=?base64?bm9wZQ==?=");
    let (status, _) = send(service, request(&body, |_| {})).await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
    assert_eq!(recorder.seen().len(), 1);
}

#[test]
fn no_tool_marks_an_argument_for_a_header() {
    // rmcp requires an `Mcp-Param-*` header for an argument marked
    // `x-mcp-header`; the fast path does not check that, so none may exist.
    let tools = crate::tools::registry::tool_list("");
    let text = serde_json::to_string(&tools).expect("json");
    assert!(
        !text.contains("x-mcp-header"),
        "a tool schema uses x-mcp-header"
    );
    assert!(tools.len() > 10);
}
