//! `loadgen`: the load driver of `make bench` (bench/bench.py drives it).
//!
//! ```text
//! loadgen run SPEC.json                        run the scenarios of SPEC, print results JSON on stdout
//! loadgen mint OUT_DIR ISS AUD GROUPS LIFETIME  new ES256 key: OUT_DIR/jwks.json and OUT_DIR/token
//! ```
//!
//! Every simulated client owns one keep-alive HTTP/1.1 connection (hyper's
//! low-level `client::conn::http1`, `TCP_NODELAY`) and sends its requests one
//! after another; latency is `Instant` from just before the request is
//! handed to hyper until the whole body has been read. The client does the
//! same work for every kind of target: build the request from prebuilt
//! bytes, read the body, check the HTTP status; the first answer of every
//! client in every phase is also parsed and checked in depth (a Prometheus
//! `"status":"success"`, an MCP result without `isError`), outside the
//! timed region.
//!
//! Interleaving: for each scenario, `rounds` rounds; in round r the targets
//! run one after another, their order rotated by r, so "ours" and "direct"
//! alternate and share the machine's noise. Statistics across rounds
//! (medians of the per-round figures, ratios) are bench.py's job; this
//! prints one record per target per round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

const MODERN: &str = "2026-07-28";
const LEGACY: &str = "2025-11-25";

#[derive(Deserialize)]
struct Spec {
    scenarios: Vec<Scenario>,
}

#[derive(Deserialize)]
struct Scenario {
    name: String,
    rounds: usize,
    concurrency: usize,
    /// Timed requests per target per round (all clients together).
    requests: usize,
    /// Untimed requests per target per round before the timed ones.
    #[serde(default)]
    warmup: usize,
    /// A phase stops issuing requests after this long, whatever `requests` says.
    #[serde(default = "default_max_seconds")]
    max_seconds: f64,
    targets: Vec<Target>,
}

fn default_max_seconds() -> f64 {
    30.0
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    /// GET url?params against Prometheus's HTTP API.
    Direct,
    /// One stateless 2026-07-28 tools/call per request.
    McpStateless,
    /// initialize + session (2025-11-25) per client, then tools/call.
    McpLegacy,
}

#[derive(Deserialize, Clone)]
struct Target {
    name: String,
    kind: Kind,
    url: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    arguments: Value,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Serialize, Default)]
struct Phase {
    round: usize,
    position: usize,
    n: usize,
    errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
    wall_s: f64,
    rps: f64,
    median_us: f64,
    p90_us: f64,
    p99_us: f64,
    mean_us: f64,
    min_us: f64,
    max_us: f64,
    /// Mean body bytes per answer.
    bytes: f64,
}

#[derive(Serialize)]
struct ScenarioResult {
    name: String,
    concurrency: usize,
    requests: usize,
    rounds: usize,
    targets: BTreeMap<String, Vec<Phase>>,
}

/// A target turned into what a request needs, built once.
struct Prepared {
    kind: Kind,
    authority: String,
    host: http::HeaderValue,
    path: String,
    /// MCP: the body around the JSON-RPC id.
    body_head: String,
    body_tail: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Prepared {
    fn new(t: &Target) -> Result<Self, Error> {
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
            Kind::McpStateless | Kind::McpLegacy => {
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
        })
    }

    fn request(
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
            Kind::McpStateless | Kind::McpLegacy => {
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

async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, Error> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn send(
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
fn rpc_message(parts: &http::response::Parts, body: &[u8]) -> Result<Value, Error> {
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

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// The in-depth check of one answer (outside the timed region).
fn validate(kind: Kind, parts: &http::response::Parts, body: &[u8]) -> Result<(), Error> {
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
        Kind::McpStateless | Kind::McpLegacy => {
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
struct Client {
    sender: SendRequest<Full<Bytes>>,
    session: Option<http::HeaderValue>,
}

impl Client {
    async fn open(p: &Prepared) -> Result<Self, Error> {
        let mut sender = connect(&p.authority).await?;
        let mut session = None;
        if p.kind == Kind::McpLegacy {
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
        Ok(Self { sender, session })
    }

    async fn close(mut self, p: &Prepared) {
        if let Some(sid) = self.session.take() {
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

fn mcp_post(
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

#[derive(Default)]
struct WorkerOut {
    latencies_ns: Vec<u64>,
    bytes: u64,
    errors: usize,
    first_error: Option<String>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl WorkerOut {
    fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

async fn worker(
    p: Arc<Prepared>,
    tool: Arc<str>,
    warmup: usize,
    next: Arc<AtomicUsize>,
    total: usize,
    deadline_after: Duration,
    barrier: Arc<tokio::sync::Barrier>,
) -> WorkerOut {
    let mut out = WorkerOut::default();
    let mut client = match Client::open(&p).await {
        Ok(c) => Some(c),
        Err(e) => {
            out.error(format!("connect/setup: {e}"));
            None
        }
    };
    let mut id: u64 = 1;
    // untimed warm-up; the first answer is checked in depth
    for _ in 0..warmup {
        if let Some(c) = client.as_mut() {
            let req = p.request(id, c.session.as_ref(), &tool);
            id += 1;
            match send(&mut c.sender, req).await {
                Ok((parts, body)) => {
                    if let Err(e) = validate(p.kind, &parts, &body) {
                        out.error(format!("warm-up: {e}"));
                    }
                }
                Err(e) => out.error(format!("warm-up: {e}")),
            }
        }
    }
    let warm_errors = out.errors;
    barrier.wait().await;
    let start = Instant::now();
    let mut checked = false;
    loop {
        if next.fetch_add(1, Ordering::Relaxed) >= total || start.elapsed() > deadline_after {
            break;
        }
        let c = match client.as_mut() {
            Some(c) => c,
            None => match Client::open(&p).await {
                Ok(c) => client.insert(c),
                Err(e) => {
                    out.error(format!("reconnect: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let req = p.request(id, c.session.as_ref(), &tool);
        id += 1;
        let t0 = Instant::now();
        let r = send(&mut c.sender, req).await;
        let t1 = Instant::now();
        match r {
            Ok((parts, body)) if parts.status == http::StatusCode::OK => {
                out.latencies_ns.push((t1 - t0).as_nanos() as u64);
                out.bytes += body.len() as u64;
                out.first.get_or_insert(t0);
                out.last = Some(t1);
                if !checked {
                    checked = true;
                    if let Err(e) = validate(p.kind, &parts, &body) {
                        out.error(e);
                    }
                }
            }
            Ok((parts, body)) => {
                out.error(format!(
                    "HTTP {}: {}",
                    parts.status,
                    truncate(&String::from_utf8_lossy(&body))
                ));
            }
            Err(e) => {
                out.error(e);
                client = None; // the connection is gone: a new one next time
            }
        }
    }
    let _ = warm_errors;
    if let Some(c) = client {
        c.close(&p).await;
    }
    out
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

async fn run_phase(
    t: &Target,
    sc: &Scenario,
    round: usize,
    position: usize,
) -> Result<Phase, Error> {
    let p = Arc::new(Prepared::new(t)?);
    let tool: Arc<str> = Arc::from(t.tool.as_str());
    let c = sc.concurrency.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(c));
    let warm_each = sc.warmup.div_ceil(c);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..c {
        set.spawn(worker(
            p.clone(),
            tool.clone(),
            warm_each,
            next.clone(),
            sc.requests,
            Duration::from_secs_f64(sc.max_seconds),
            barrier.clone(),
        ));
    }
    let mut all = Vec::with_capacity(sc.requests);
    let mut ph = Phase {
        round,
        position,
        ..Phase::default()
    };
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    let mut bytes = 0u64;
    while let Some(r) = set.join_next().await {
        let w = r?;
        all.extend_from_slice(&w.latencies_ns);
        bytes += w.bytes;
        ph.errors += w.errors;
        if ph.first_error.is_none() {
            ph.first_error = w.first_error;
        }
        first = match (first, w.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        last = match (last, w.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    all.sort_unstable();
    ph.n = all.len();
    ph.wall_s = match (first, last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    ph.rps = if ph.wall_s > 0.0 {
        ph.n as f64 / ph.wall_s
    } else {
        0.0
    };
    ph.median_us = percentile(&all, 0.5);
    ph.p90_us = percentile(&all, 0.9);
    ph.p99_us = percentile(&all, 0.99);
    ph.min_us = all.first().map_or(f64::NAN, |&v| v as f64 / 1000.0);
    ph.max_us = all.last().map_or(f64::NAN, |&v| v as f64 / 1000.0);
    ph.mean_us = if all.is_empty() {
        f64::NAN
    } else {
        all.iter().sum::<u64>() as f64 / all.len() as f64 / 1000.0
    };
    ph.bytes = if ph.n > 0 {
        bytes as f64 / ph.n as f64
    } else {
        0.0
    };
    Ok(ph)
}

async fn run(spec_path: &str) -> Result<(), Error> {
    let spec: Spec = serde_json::from_slice(&std::fs::read(spec_path)?)?;
    let mut results = Vec::new();
    for sc in &spec.scenarios {
        let mut targets: BTreeMap<String, Vec<Phase>> = BTreeMap::new();
        let k = sc.targets.len();
        for round in 0..sc.rounds {
            for pos in 0..k {
                let t = &sc.targets[(pos + round) % k];
                let ph = run_phase(t, sc, round, pos).await?;
                eprintln!(
                    "[loadgen] {} c={} r{} {:<18} n={:<6} err={} median={:.0}us p99={:.0}us {:.0}/s {:.0}B",
                    sc.name,
                    sc.concurrency,
                    round,
                    t.name,
                    ph.n,
                    ph.errors,
                    ph.median_us,
                    ph.p99_us,
                    ph.rps,
                    ph.bytes
                );
                if let Some(e) = &ph.first_error {
                    eprintln!("[loadgen]   first error: {e}");
                }
                targets.entry(t.name.clone()).or_default().push(ph);
            }
        }
        results.push(ScenarioResult {
            name: sc.name.clone(),
            concurrency: sc.concurrency,
            requests: sc.requests,
            rounds: sc.rounds,
            targets,
        });
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({"scenarios": results}))?
    );
    Ok(())
}

/// A fresh ES256 key: its JWKS and one signed token.
fn mint(out_dir: &str, iss: &str, aud: &str, groups: &str, lifetime: u64) -> Result<(), Error> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| "key generation failed")?;
    let point = kp.public_key().as_ref(); // 0x04 || X || Y
    if point.len() != 65 {
        return Err("unexpected public key encoding".into());
    }
    let kid = "loadgen-bench";
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64.encode(&point[1..33]),
        "y": b64.encode(&point[33..65]), "kid": kid, "alg": "ES256", "use": "sig"}]});
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let groups: Vec<&str> = groups.split(',').filter(|g| !g.is_empty()).collect();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
    let claims = json!({"iss": iss, "sub": "loadgen", "aud": aud, "iat": now, "nbf": now - 5,
        "exp": now + lifetime, "groups": groups});
    let input = format!(
        "{}.{}",
        b64.encode(serde_json::to_vec(&header)?),
        b64.encode(serde_json::to_vec(&claims)?)
    );
    let sig = kp
        .sign(&rng, input.as_bytes())
        .map_err(|_| "signing failed")?;
    let token = format!("{input}.{}", b64.encode(sig.as_ref()));
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(format!("{out_dir}/jwks.json"), serde_json::to_vec(&jwks)?)?;
    std::fs::write(format!("{out_dir}/token"), token)?;
    Ok(())
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen run SPEC.json | loadgen mint OUT_DIR ISS AUD GROUPS LIFETIME_SECONDS"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("run") if args.len() == 2 => {
            let workers = std::env::var("LOADGEN_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(run(&args[1]))
        }
        Some("mint") if args.len() == 6 => {
            let lifetime = args[5].parse().unwrap_or_else(|_| usage());
            mint(&args[1], &args[2], &args[3], &args[4], lifetime)
        }
        _ => usage(),
    };
    if let Err(e) = r {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}
