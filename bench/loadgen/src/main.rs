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

mod mcp;
mod mint;
mod run;
mod spec;

use mcp::*;
use mint::*;
use run::*;
use spec::*;

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
