//! A 300 MB answer, generated on the fly: the scan is bounded in memory,
//! stops at the scan limit, and is fast enough to read it all.

use std::convert::Infallible;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, StreamBody};
use tower::{Layer, ServiceExt};

use super::super::cut::LAST_PEAK;
use super::super::{TruncateConfig, Truncation};
use super::parse;
use crate::build::BuildCtx;

const CHUNK: usize = 64 << 10;
const SERIES: &[u8] = br#"{"metric":{"__name__":"http_requests_total","instance":"host-00000000:9090","job":"api","path":"/api/v1/query\u00e9"},"value":[1700000000.123,"12345.678"]}"#;
const DIGITS_AT: usize = 60;

/// A vector answer of `total` bytes at least, made chunk by chunk as it is
/// read; nothing but the current chunk exists at any time.
struct Generated {
    series_left: u64,
    written: u64,
    first: bool,
    done: bool,
}

impl Generated {
    fn of_size(total: u64) -> Self {
        Self {
            series_left: total / (SERIES.len() as u64 + 1) + 1,
            written: 0,
            first: true,
            done: false,
        }
    }
}

impl Generated {
    /// The next chunk of the answer, or `None` at its end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut chunk = BytesMut::with_capacity(CHUNK);
        if self.first {
            chunk.put_slice(br#"{"status":"success","data":{"resultType":"vector","result":["#);
        }
        while self.series_left > 0 && chunk.len() + SERIES.len() < CHUNK {
            if !self.first {
                chunk.put_u8(b',');
            }
            self.first = false;
            let at = chunk.len() + DIGITS_AT;
            chunk.put_slice(SERIES);
            let digits = format!("{:08}", self.written % 100_000_000);
            chunk[at..at + 8].copy_from_slice(digits.as_bytes());
            self.written += 1;
            self.series_left -= 1;
        }
        if self.series_left == 0 {
            chunk.put_slice(br#"]},"warnings":["huge answer"]}"#);
            self.done = true;
        }
        Some(chunk.freeze())
    }

    /// The answer as a streaming body.
    fn into_body(mut self) -> impl Body<Data = Bytes, Error = Infallible> + Send + 'static {
        StreamBody::new(stream::iter(std::iter::from_fn(move || {
            self.next_chunk().map(|chunk| Ok(Frame::data(chunk)))
        })))
    }
}

async fn run(config: TruncateConfig, size: u64) -> (Bytes, Truncation, usize) {
    let mut body = Some(Generated::of_size(size).into_body());
    let svc = config
        .build(&BuildCtx::default())
        .expect("valid")
        .expect("enabled")
        .layer(tower::service_fn(move |_req: Request<()>| {
            let body = body.take().expect("one call");
            async move { Ok::<_, Infallible>(Response::new(body)) }
        }));
    let response = svc.oneshot(Request::new(())).await.expect("answer");
    let truncation = response
        .extensions()
        .get::<Truncation>()
        .cloned()
        .expect("extension");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (bytes, truncation, LAST_PEAK.with(|peak| peak.get()))
}

fn big_size() -> u64 {
    300 << 20
}

#[tokio::test]
async fn huge_answer_is_scanned_in_bounded_memory() {
    let size = big_size();
    let config = TruncateConfig {
        max_scan_bytes: 1 << 40,
        ..Default::default()
    };
    let started = Instant::now();
    let (bytes, truncation, peak) = run(config.clone(), size).await;
    let elapsed = started.elapsed();
    eprintln!(
        "scanned {} MB in {elapsed:?}: {:.0} MB/s, peak buffer {peak} bytes",
        truncation.bytes_seen >> 20,
        truncation.bytes_seen as f64 / 1e6 / elapsed.as_secs_f64()
    );
    let output = parse(&bytes);
    assert_eq!(
        output["data"]["result"].as_array().map(Vec::len),
        Some(truncation.kept_items)
    );
    assert_eq!(output["warnings"][0], "huge answer");
    assert!(truncation.truncated && truncation.scan_complete);
    assert!(truncation.bytes_seen >= size);
    let total = Generated::of_size(size).series_left as usize;
    assert_eq!(
        truncation.kept_items + truncation.dropped_items_at_least,
        total
    );
    assert!(bytes.len() <= config.max_bytes + 64);
    assert!(
        peak <= config.max_bytes + 2 * CHUNK + (64 << 10),
        "peak {peak}"
    );
    assert!(
        peak <= config.max_bytes + super::super::TAIL_BYTES,
        "peak {peak}"
    );
}

#[tokio::test]
async fn scan_stops_at_the_limit() {
    let config = TruncateConfig {
        max_scan_bytes: 10 << 20,
        ..Default::default()
    };
    let (bytes, truncation, peak) = run(config, big_size()).await;
    assert_eq!(truncation.bytes_seen, 10 << 20);
    assert!(!truncation.scan_complete && truncation.truncated);
    assert!(truncation.kept_items > 300);
    let seen = (10 << 20) / (SERIES.len() + 1);
    assert!(truncation.kept_items + truncation.dropped_items_at_least >= seen);
    let output = parse(&bytes);
    let kept = output["data"]["result"].as_array().map(Vec::len);
    assert_eq!(kept, Some(truncation.kept_items));
    assert!(peak <= 50_000 + super::super::TAIL_BYTES, "peak {peak}");
}

#[test]
#[ignore = "measurement only"]
fn scanner_throughput() {
    let mut answer = Generated::of_size(64 << 20);
    let chunks: Vec<Bytes> = std::iter::from_fn(|| answer.next_chunk()).collect();
    for (label, max_bytes) in [("skipping", 50_000), ("keeping", usize::MAX)] {
        let started = Instant::now();
        let mut scanner = super::Scanner::new(max_bytes, usize::MAX);
        chunks.iter().for_each(|chunk| scanner.feed(chunk));
        let (_, truncation) = scanner.finish(true);
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{label}: {:.0} MB/s",
            truncation.bytes_seen as f64 / 1e6 / secs
        );
    }
}
