//! Workers, rounds and percentiles.

#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub(crate) struct WorkerOut {
    pub(crate) latencies_ns: Vec<u64>,
    pub(crate) bytes: u64,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) first: Option<Instant>,
    pub(crate) last: Option<Instant>,
}

impl WorkerOut {
    pub(crate) fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// Clients started so far in this run: each numbers its JSON-RPC ids from
/// its own base, so ids are unique within a session, also a shared one.
static CLIENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) async fn worker(
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
    let mut id: u64 = CLIENTS.fetch_add(1, Ordering::Relaxed) * 1_000_000_000 + 1;
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

pub(crate) fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

pub(crate) async fn run_phase(
    t: &Target,
    sc: &Scenario,
    round: usize,
    position: usize,
) -> Result<Phase, Error> {
    let mut prepared = Prepared::new(t)?;
    // one session for the whole phase, ended after it
    let owner = if t.kind == Kind::McpLegacyShared {
        let sender = connect(&prepared.authority).await?;
        let owner = Client::open_session(&prepared, sender).await?;
        prepared.shared_session = owner.session.clone();
        Some(owner)
    } else {
        None
    };
    let p = Arc::new(prepared);
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
    if let Some(owner) = owner {
        owner.close(&p).await;
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

pub(crate) async fn run(spec_path: &str) -> Result<(), Error> {
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
