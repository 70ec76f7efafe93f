//! Talking MCP and the Prometheus API over one keep-alive connection.

#[allow(unused_imports)]
use super::*;

/// A target turned into what a request needs, built once.
pub(crate) struct Prepared {
    pub(crate) kind: Kind,
    pub(crate) authority: String,
    pub(crate) host: http::HeaderValue,
    pub(crate) path: String,
    /// MCP: the body around the JSON-RPC id.
    pub(crate) body_head: String,
    pub(crate) body_tail: String,
    pub(crate) headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// `McpLegacyShared`: the phase's session, opened before the clients.
    pub(crate) shared_session: Option<http::HeaderValue>,
}

impl Prepared {
    pub(crate) fn new(t: &Target) -> Result<Self, Error> {
        let uri: http::Uri = t.url.parse()?;
        let authority = uri.authority().ok_or("url without authority")?.to_string();
        let mut path = uri.path().to_string();
        if t.kind == Kind::Direct && !t.params.is_empty() {
            let qs = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(t.params.iter())
                .finish();
            path = format!("{path}?{qs}");
        }
        let mut headers = Vec::new();
        for (k, v) in &t.headers {
            headers.push((
                http::HeaderName::try_from(k.as_str())?,
                http::HeaderValue::try_from(v.as_str())?,
            ));
        }
        let (body_head, body_tail) = match t.kind {
            Kind::Direct => (String::new(), String::new()),
            Kind::McpStateless | Kind::McpLegacy | Kind::McpLegacyShared => {
                let mut params = json!({"name": t.tool, "arguments": t.arguments});
                if t.kind == Kind::McpStateless {
                    params["_meta"] = json!({
                        "io.modelcontextprotocol/protocolVersion": MODERN,
                        "io.modelcontextprotocol/clientInfo": {"name": "loadgen", "version": "1"},
                        "io.modelcontextprotocol/clientCapabilities": {},
                    });
                }
                let tail =
                    serde_json::to_string(&json!({"method": "tools/call", "params": params}))?;
                // `{"jsonrpc":"2.0","id":` + id + `,` + the rest of the object
                (
                    "{\"jsonrpc\":\"2.0\",\"id\":".to_string(),
                    format!(",{}", &tail[1..]),
                )
            }
        };
        Ok(Self {
            kind: t.kind,
            host: http::HeaderValue::try_from(authority.as_str())?,
            authority,
            path,
            body_head,
            body_tail,
            headers,
            shared_session: None,
        })
    }

    pub(crate) fn request(
        &self,
        id: u64,
        session: Option<&http::HeaderValue>,
        tool: &str,
    ) -> http::Request<Full<Bytes>> {
        let mut b = http::Request::builder()
            .uri(self.path.as_str())
            .header(http::header::HOST, self.host.clone());
        let body = match self.kind {
            Kind::Direct => {
                b = b.method(http::Method::GET);
                Bytes::new()
            }
            Kind::McpStateless | Kind::McpLegacy | Kind::McpLegacyShared => {
                b = b
                    .method(http::Method::POST)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header(http::header::ACCEPT, "application/json, text/event-stream");
                if self.kind == Kind::McpStateless {
                    b = b
                        .header("mcp-protocol-version", MODERN)
                        .header("mcp-method", "tools/call")
                        .header("mcp-name", tool);
                } else {
                    b = b.header("mcp-protocol-version", LEGACY);
                    if let Some(s) = session {
                        b = b.header("mcp-session-id", s.clone());
                    }
                }
                Bytes::from(format!("{}{}{}", self.body_head, id, self.body_tail))
            }
        };
        for (k, v) in &self.headers {
            b = b.header(k.clone(), v.clone());
        }
        b.body(Full::new(body)).expect("valid request")
    }
}

pub(crate) async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, Error> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

pub(crate) async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), Error> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok((parts, bytes))
}

/// The JSON-RPC message of an MCP answer: plain JSON, or the `data:` line of
/// an SSE stream that carries an `id`.
pub(crate) fn rpc_message(parts: &http::response::Parts, body: &[u8]) -> Result<Value, Error> {
    let sse = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !sse {
        return Ok(serde_json::from_slice(body)?);
    }
    let text = std::str::from_utf8(body)?;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data:") {
            let d = d.trim();
            if d.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(d)?;
            if v.get("id").is_some() {
                return Ok(v);
            }
        }
    }
    Err(format!("no JSON-RPC answer in the SSE stream: {}", truncate(text)).into())
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// The in-depth check of one answer (outside the timed region).
pub(crate) fn validate(
    kind: Kind,
    parts: &http::response::Parts,
    body: &[u8],
) -> Result<(), Error> {
    if parts.status != http::StatusCode::OK {
        return Err(format!(
            "HTTP {}: {}",
            parts.status,
            truncate(&String::from_utf8_lossy(body))
        )
        .into());
    }
    match kind {
        Kind::Direct => {
            let v: Value = serde_json::from_slice(body)?;
            if v["status"] != "success" {
                return Err(format!("Prometheus answered {}", truncate(&v.to_string())).into());
            }
        }
        Kind::McpStateless | Kind::McpLegacy | Kind::McpLegacyShared => {
            let v = rpc_message(parts, body)?;
            let r = v
                .get("result")
                .ok_or_else(|| format!("no result: {}", truncate(&v.to_string())))?;
            if r.get("isError").and_then(Value::as_bool) == Some(true) {
                return Err(format!("tool error: {}", truncate(&r.to_string())).into());
            }
        }
    }
    Ok(())
}

/// One simulated client: a connection, and for legacy targets a session.
pub(crate) struct Client {
    pub(crate) sender: SendRequest<Full<Bytes>>,
    pub(crate) session: Option<http::HeaderValue>,
    /// Whether `close` ends the session (not a shared one).
    pub(crate) owns_session: bool,
}

impl Client {
    pub(crate) async fn open(p: &Prepared) -> Result<Self, Error> {
        let sender = connect(&p.authority).await?;
        if p.kind == Kind::McpLegacyShared {
            return Ok(Self {
                sender,
                session: p.shared_session.clone(),
                owns_session: false,
            });
        }
        Self::open_session(p, sender).await
    }

    /// A connection that, for a legacy target, initializes a session of its own.
    pub(crate) async fn open_session(
        p: &Prepared,
        mut sender: SendRequest<Full<Bytes>>,
    ) -> Result<Self, Error> {
        let mut session = None;
        if matches!(p.kind, Kind::McpLegacy | Kind::McpLegacyShared) {
            let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": LEGACY, "capabilities": {},
                "clientInfo": {"name": "loadgen", "version": "1"}}});
            let (parts, body) = send(&mut sender, mcp_post(p, init.to_string(), None)?).await?;
            if parts.status != http::StatusCode::OK {
                return Err(format!(
                    "initialize: HTTP {}: {}",
                    parts.status,
                    String::from_utf8_lossy(&body)
                )
                .into());
            }
            let sid = parts
                .headers
                .get("mcp-session-id")
                .cloned()
                .ok_or("initialize: no Mcp-Session-Id")?;
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            let (parts, body) =
                send(&mut sender, mcp_post(p, note.to_string(), Some(&sid))?).await?;
            if !parts.status.is_success() {
                return Err(format!(
                    "initialized: HTTP {}: {}",
                    parts.status,
                    String::from_utf8_lossy(&body)
                )
                .into());
            }
            session = Some(sid);
        }
        Ok(Self {
            sender,
            session,
            owns_session: true,
        })
    }

    pub(crate) async fn close(mut self, p: &Prepared) {
        if let Some(sid) = self.session.take().filter(|_| self.owns_session) {
            let req = http::Request::builder()
                .method(http::Method::DELETE)
                .uri(p.path.as_str())
                .header(http::header::HOST, p.host.clone())
                .header("mcp-session-id", sid)
                .header("mcp-protocol-version", LEGACY)
                .body(Full::new(Bytes::new()));
            if let Ok(req) = req {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), send(&mut self.sender, req)).await;
            }
        }
    }
}

pub(crate) fn mcp_post(
    p: &Prepared,
    body: String,
    session: Option<&http::HeaderValue>,
) -> Result<http::Request<Full<Bytes>>, Error> {
    let mut b = http::Request::builder()
        .method(http::Method::POST)
        .uri(p.path.as_str())
        .header(http::header::HOST, p.host.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, text/event-stream");
    if let Some(s) = session {
        b = b
            .header("mcp-session-id", s.clone())
            .header("mcp-protocol-version", LEGACY);
    }
    for (k, v) in &p.headers {
        b = b.header(k.clone(), v.clone());
    }
    Ok(b.body(Full::new(Bytes::from(body)))?)
}
