use http_body_util::Empty;

use super::*;

const CALL: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"execute_query","arguments":{"query":"up","time":1.5}}}"#;

fn parts() -> http::request::Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts
        .headers
        .insert("x-test", http::HeaderValue::from_static("1"));
    parts
}

/// The message is the one rmcp parses from the same bytes, with the
/// request's parts where rmcp puts them.
#[test]
fn a_plain_call_becomes_rmcps_message() {
    let ours = session_call(CALL.as_bytes())
        .expect("plain")
        .into_message(parts());
    let rmcps: ClientJsonRpcMessage = serde_json::from_str(CALL).expect("rmcp parses it");
    assert_eq!(
        serde_json::to_value(&ours).expect("json"),
        serde_json::to_value(&rmcps).expect("json")
    );
    // The same request type too (a custom request would write the same JSON).
    let ClientJsonRpcMessage::Request(ref parsed) = rmcps else {
        panic!("rmcp did not parse a request");
    };
    assert!(matches!(parsed.request, ClientRequest::CallToolRequest(_)));
    let ClientJsonRpcMessage::Request(request) = ours else {
        panic!("not a request");
    };
    let ClientRequest::CallToolRequest(call) = request.request else {
        panic!("not a tool call");
    };
    let parts = call.extensions.get::<http::request::Parts>();
    assert_eq!(
        parts.map(|p| &p.headers["x-test"]),
        Some(&http::HeaderValue::from_static("1"))
    );
    let without =
        r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"get_flags"}}"#;
    let rmcps: ClientJsonRpcMessage = serde_json::from_str(without).expect("rmcp parses it");
    let ours = session_call(without.as_bytes()).expect("plain");
    assert_eq!(
        serde_json::to_value(ours.into_message(parts_default())).expect("json"),
        serde_json::to_value(&rmcps).expect("json")
    );
}

fn parts_default() -> http::request::Parts {
    Request::new(()).into_parts().0
}

/// Anything but the plainest call is rmcp's to parse, answer or refuse.
#[test]
fn other_bodies_go_to_rmcp() {
    for body in [
        // `_meta` is kept in extensions and checked by rmcp
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":1}}}"#,
        // a response's field: rmcp refuses the message
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","result":{},"params":{"name":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"x"}}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["x"]}"#,
        r#"["2.0",1,"tools/call",{"name":"x"}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","task":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"x"}}"#,
        "not json",
    ] {
        assert!(session_call(body.as_bytes()).is_none(), "{body}");
    }
}

fn calls() -> SessionCalls {
    SessionCalls::new(
        Arc::new(LocalSessionManager::default()),
        RebindingGuard::new(&["localhost".to_owned()], &[]),
        1000,
        Some(Duration::from_secs(15)),
        CancellationToken::new(),
    )
}

fn request(edit: impl FnOnce(&mut http::HeaderMap)) -> Request<Body> {
    let mut request = Request::post("http://localhost/mcp")
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_LENGTH, "120")
        .header("mcp-protocol-version", "2025-11-25")
        .header(SESSION_ID, "abc")
        .body(Body::empty())
        .expect("request");
    edit(request.headers_mut());
    request
}

#[test]
fn only_plain_session_headers_are_admitted() {
    let calls = calls();
    assert_eq!(calls.admits(&request(|_| {})), Some(120));
    let refused: [fn(&mut http::HeaderMap); 8] = [
        |h| {
            h.remove(SESSION_ID);
        },
        // 2026-07-28 checks `_meta` and the standard headers
        |h| {
            h.insert("mcp-protocol-version", "2026-07-28".parse().expect("value"));
        },
        |h| {
            h.remove("mcp-protocol-version");
        },
        |h| {
            h.insert(header::ORIGIN, "http://localhost".parse().expect("value"));
        },
        |h| {
            h.insert(header::HOST, "evil.example".parse().expect("value"));
        },
        |h| {
            h.insert(header::CONTENT_LENGTH, "1001".parse().expect("value"));
        },
        |h| {
            h.insert(header::ACCEPT, "application/json".parse().expect("value"));
        },
        |h| {
            h.append(SESSION_ID, "def".parse().expect("value"));
        },
    ];
    for edit in refused {
        assert_eq!(calls.admits(&request(edit)), None);
    }
}

/// rmcp's place: answers 202 to everything.
struct Accepting;

impl Fallback for Accepting {
    fn handle(self: Arc<Self>, _: Request<Body>) -> ResponseFuture {
        let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
        *response.status_mut() = StatusCode::ACCEPTED;
        Box::pin(async move { Ok(response) })
    }
}

/// A session this process does not hold is rmcp's (restore or 404).
#[tokio::test]
async fn an_unknown_session_goes_to_rmcp() {
    let calls = Arc::new(calls());
    let request = request(|h| {
        h.insert(header::CONTENT_LENGTH, CALL.len().into());
    });
    let (parts, _) = request.into_parts();
    let request = Request::from_parts(parts, Body::from(CALL));
    let answer = calls.serve(request, &Arc::new(Accepting)).await;
    assert_eq!(answer.expect("infallible").status(), StatusCode::ACCEPTED);
}
