//! Tests of the truncation layer: answer shapes of every Prometheus endpoint,
//! chunk boundaries, budgets, errors, and a 300 MB stream.

mod big;
mod fuzz;
mod layer;
mod shapes;
mod streamed;

use bytes::Bytes;
use futures_util::stream;
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::{Value, json};

use super::Truncation;
use super::scanner::Scanner;
use crate::BoxError;

/// Scans `input` in chunks of `chunk` bytes, straight through the scanner.
fn scan(input: &[u8], max_bytes: usize, max_items: usize, chunk: usize) -> (Bytes, Truncation) {
    let mut scanner = Scanner::new(max_bytes, max_items);
    for piece in input.chunks(chunk.max(1)) {
        scanner.feed(piece);
    }
    scanner.finish(true)
}

/// [`scan`] handing over settled bytes after every chunk, as a streamed
/// answer does: the pieces joined, and the record.
fn scan_streamed(
    input: &[u8],
    max_bytes: usize,
    max_items: usize,
    chunk: usize,
) -> (Bytes, Truncation) {
    let mut scanner = Scanner::new(max_bytes, max_items);
    let mut joined = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        scanner.feed(piece);
        if let Some(settled) = scanner.take_settled(1) {
            joined.extend_from_slice(&settled);
        }
    }
    let (rest, truncation) = scanner.finish(true);
    joined.extend_from_slice(&rest);
    (Bytes::from(joined), truncation)
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

fn series(i: usize) -> Value {
    json!({
        "metric": {"__name__": "http_requests_total", "instance": format!("host-{i}:9090"), "job": "api"},
        "value": [1_700_000_000.5 + i as f64, format!("{i}.25")]
    })
}

/// A Prometheus envelope, members in Prometheus' order.
fn envelope(data: &Value, warnings: bool) -> String {
    let tail = if warnings {
        r#","warnings":["PromQL info: metric might not be a counter"]"#
    } else {
        ""
    };
    format!(r#"{{"status":"success","data":{data}{tail}}}"#)
}

fn vector_answer(n: usize) -> String {
    let result: Vec<Value> = (0..n).map(series).collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":{}}},"warnings":["w1","w2"]}}"#,
        Value::Array(result)
    )
}

/// A response body sending the given pieces (data or an error), then
/// ending.
type Chunks = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, BoxError>>>>;

/// `pieces` as a body.
fn chunks_of(pieces: Vec<Result<Bytes, BoxError>>) -> Chunks {
    let frames: Vec<_> = pieces.into_iter().map(|p| p.map(Frame::data)).collect();
    StreamBody::new(stream::iter(frames))
}

/// `body` as a body of `chunk`-byte frames.
fn chunks(body: &[u8], chunk: usize) -> Chunks {
    chunks_of(
        body.chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect(),
    )
}

#[test]
fn merged_records_keep_anything_cut_from_either() {
    let cut = Truncation {
        truncated: true,
        kept_items: 2,
        dropped_items_at_least: 5,
        bytes_seen: 100,
        scan_complete: false,
        reason: Some(super::TruncationReason::Items),
    };
    let whole = Truncation {
        truncated: false,
        kept_items: 3,
        dropped_items_at_least: 0,
        bytes_seen: 50,
        scan_complete: true,
        reason: None,
    };
    assert_eq!(
        whole.clone().merge(cut.clone()),
        Truncation {
            truncated: true,
            kept_items: 5,
            dropped_items_at_least: 5,
            bytes_seen: 150,
            scan_complete: false,
            reason: Some(super::TruncationReason::Items),
        }
    );
    assert!(!whole.clone().merge(whole).truncated);
}
