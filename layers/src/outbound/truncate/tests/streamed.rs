//! Streamed answers ([`StreamKept`]): the same bytes and record as the
//! buffered mode, handed over in pieces, holding little.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{Layer, ServiceExt};

use super::super::{PendingTruncation, StreamKept, TruncateConfig, Truncation};
use super::{Chunks, chunks, chunks_of, scan, vector_answer};
use crate::build::BuildCtx;

/// One streamed call through the layer: the response head and its body's
/// data frames, in order.
async fn streamed(
    config: &TruncateConfig,
    status: StatusCode,
    body: Chunks,
) -> (Response<()>, Vec<Result<Bytes, String>>) {
    let mut body = Some(body);
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let mut response = Response::new(body.take().expect("one call"));
        *response.status_mut() = status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, http::HeaderValue::from_static("12345"));
        async move { Ok::<_, Infallible>(response) }
    });
    let svc = config
        .build(&BuildCtx::default())
        .expect("valid config")
        .expect("enabled")
        .layer(upstream);
    let mut req = Request::new(());
    req.extensions_mut().insert(StreamKept);
    let (parts, mut body) = svc.oneshot(req).await.expect("answer").into_parts();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => frames.extend(frame.into_data().ok().map(Ok)),
            Err(error) => frames.push(Err(error.to_string())),
        }
    }
    (Response::from_parts(parts, ()), frames)
}

fn record(response: &Response<()>) -> Option<Truncation> {
    response
        .extensions()
        .get::<PendingTruncation>()
        .and_then(PendingTruncation::get)
}

#[tokio::test]
async fn a_big_answer_arrives_in_pieces_equal_to_the_buffered_one() {
    let input = vector_answer(5000);
    let config = TruncateConfig {
        max_bytes: 4 << 20,
        max_series: 3000,
        hard_ceiling_bytes: 4 << 20,
        ..Default::default()
    };
    let (response, frames) =
        streamed(&config, StatusCode::OK, chunks(input.as_bytes(), 8192)).await;
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    assert!(response.extensions().get::<Truncation>().is_none());
    let frames: Vec<Bytes> = frames.into_iter().map(|f| f.expect("data")).collect();
    assert!(frames.len() > 10, "{} frames", frames.len());
    let joined: Vec<u8> = frames.concat();
    let (whole, truncation) = scan(input.as_bytes(), 4 << 20, 3000, 8192);
    assert_eq!(joined, whole);
    assert_eq!(record(&response), Some(truncation.clone()));
    assert!(truncation.truncated && truncation.kept_items == 3000);
}

#[tokio::test]
async fn the_record_is_known_only_at_the_end() {
    let input = vector_answer(2000);
    let config = TruncateConfig {
        max_bytes: 4 << 20,
        max_series: 5000,
        hard_ceiling_bytes: 4 << 20,
        ..Default::default()
    };
    let upstream = {
        let mut body = Some(chunks(input.as_bytes(), 4096));
        tower::service_fn(move |_req: Request<()>| {
            let response = Response::new(body.take().expect("one call"));
            async move { Ok::<_, Infallible>(response) }
        })
    };
    let svc = config
        .build(&BuildCtx::default())
        .expect("valid")
        .expect("enabled")
        .layer(upstream);
    let mut req = Request::new(());
    req.extensions_mut().insert(StreamKept);
    let (parts, mut body) = svc.oneshot(req).await.expect("answer").into_parts();
    let pending = parts
        .extensions
        .get::<PendingTruncation>()
        .cloned()
        .expect("pending record");
    let first = body.frame().await.expect("a frame").expect("data");
    assert!(!first.into_data().expect("data").is_empty());
    assert_eq!(pending.get(), None, "known before the end");
    while body.frame().await.is_some() {}
    let record = pending.get().expect("known at the end");
    assert!(!record.truncated);
    assert_eq!(record.kept_items, 2000);
}

#[tokio::test]
async fn a_broken_body_ends_the_stream_with_an_error_and_no_record() {
    let input = vector_answer(3000);
    let (head, _) = input.as_bytes().split_at(input.len() / 2);
    let body = chunks_of(vec![
        Ok(Bytes::copy_from_slice(head)),
        Err("connection reset".into()),
    ]);
    let config = TruncateConfig {
        max_bytes: 4 << 20,
        max_series: 5000,
        hard_ceiling_bytes: 4 << 20,
        ..Default::default()
    };
    let (response, frames) = streamed(&config, StatusCode::OK, body).await;
    let last = frames.last().expect("frames");
    assert!(
        last.as_ref().is_err_and(|e| e.contains("broke off")),
        "{last:?}"
    );
    assert_eq!(record(&response), None);
}

#[tokio::test]
async fn errors_are_not_streamed_or_scanned() {
    let config = TruncateConfig::default();
    let body = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
    let (response, frames) =
        streamed(&config, StatusCode::BAD_REQUEST, chunks(body.as_bytes(), 7)).await;
    assert!(response.extensions().get::<PendingTruncation>().is_none());
    let joined: Vec<u8> = frames
        .into_iter()
        .map(|f| f.expect("data"))
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(joined, body.as_bytes());
}

/// What the scanner holds while streaming stays near one frame, however
/// big the budget: the kept answer is handed over as it settles.
#[test]
fn streaming_holds_a_frame_not_the_answer() {
    let input = vector_answer(40_000);
    let mut scanner = super::super::scanner::Scanner::new(64 << 20, usize::MAX);
    let mut handed = 0;
    let mut held = 0;
    for piece in input.as_bytes().chunks(64 << 10) {
        scanner.feed(piece);
        if let Some(bytes) = scanner.take_settled(super::super::stream::MIN_HANDOVER) {
            handed += bytes.len();
        }
        held = held.max(scanner.out.capacity());
    }
    let (rest, record) = scanner.finish(true);
    assert_eq!(handed + rest.len(), input.len());
    assert!(!record.truncated);
    assert!(input.len() > 4 << 20, "{}", input.len());
    assert!(held < 512 << 10, "held {held} bytes of {}", input.len());
}
