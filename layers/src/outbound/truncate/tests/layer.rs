//! The layer as a tower service: budgets, pass-through, errors.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{Layer, ServiceExt};

use super::super::{
    TruncateBudget, TruncateConfig, TruncateConfigError, Truncation, TruncationReason,
};
use super::{Chunks, chunks, chunks_of, parse, vector_answer};
use crate::BoxError;
use crate::build::BuildCtx;

/// Sends one request through the layer in front of an upstream answering
/// `status`, `content_type` and `body`.
async fn call(
    config: &TruncateConfig,
    budget: Option<TruncateBudget>,
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Chunks,
) -> Result<(Response<()>, Bytes), BoxError> {
    let mut body = Some(body);
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let mut response = Response::new(body.take().expect("one call"));
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            let value = http::HeaderValue::from_static(content_type);
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
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
    if let Some(budget) = budget {
        req.extensions_mut().insert(budget);
    }
    let (parts, body) = svc.oneshot(req).await?.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok((Response::from_parts(parts, ()), bytes))
}

/// [`call`] without a budget, which must answer.
async fn answered(
    config: &TruncateConfig,
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Chunks,
) -> (Response<()>, Bytes) {
    call(config, None, status, content_type, body)
        .await
        .expect("answer")
}

async fn json_call(
    config: &TruncateConfig,
    budget: Option<TruncateBudget>,
    body: &str,
) -> (Bytes, Truncation) {
    let (response, bytes) = call(
        config,
        budget,
        StatusCode::OK,
        Some("application/json"),
        chunks(body.as_bytes(), 4096),
    )
    .await
    .expect("answer");
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    let truncation = response
        .extensions()
        .get::<Truncation>()
        .cloned()
        .expect("extension");
    (bytes, truncation)
}

/// A vector answer of `series` series through the layer: the kept bytes,
/// them parsed, the original parsed, and the layer's record.
async fn vector_through(
    config: TruncateConfig,
    series: usize,
) -> (Bytes, Value, Value, Truncation) {
    let input = vector_answer(series);
    let (bytes, truncation) = json_call(&config, None, &input).await;
    let (output, input) = (parse(&bytes), parse(input.as_bytes()));
    (bytes, output, input, truncation)
}

#[tokio::test]
async fn thousand_series_keep_ten() {
    let config = TruncateConfig {
        max_series: 10,
        ..Default::default()
    };
    let (_, output, input, truncation) = vector_through(config, 1000).await;
    let result = output["data"]["result"].as_array().expect("result");
    assert_eq!(result.len(), 10);
    assert_eq!(
        result[..],
        input["data"]["result"].as_array().expect("input")[..10]
    );
    assert_eq!(output["data"]["resultType"], "vector");
    assert_eq!(output["warnings"], input["warnings"]);
    assert_eq!(output["status"], "success");
    assert_eq!(
        truncation,
        Truncation {
            truncated: true,
            kept_items: 10,
            dropped_items_at_least: 990,
            bytes_seen: input.to_string().len() as u64,
            scan_complete: true,
            reason: Some(TruncationReason::Items),
        }
    );
}

#[tokio::test]
async fn byte_budget_keeps_a_prefix() {
    let config = TruncateConfig {
        max_bytes: 2048,
        ..Default::default()
    };
    let (bytes, output, input, truncation) = vector_through(config, 1000).await;
    let tail = r#","warnings":["w1","w2"]"#.len();
    assert!(bytes.len() <= 2048 + tail, "{}", bytes.len());
    assert!(
        bytes.len() > 2048 - 200,
        "budget barely used: {}",
        bytes.len()
    );
    let result = output["data"]["result"].as_array().expect("result");
    assert_eq!(
        result[..],
        input["data"]["result"].as_array().expect("input")[..result.len()]
    );
    assert_eq!(output["warnings"], input["warnings"]);
    assert_eq!(truncation.kept_items, result.len());
    assert_eq!(
        truncation.kept_items + truncation.dropped_items_at_least,
        1000
    );
    assert_eq!(truncation.reason, Some(TruncationReason::Bytes));
}

#[tokio::test]
async fn small_answer_is_byte_identical() {
    let input = vector_answer(3);
    let (bytes, truncation) = json_call(&TruncateConfig::default(), None, &input).await;
    assert_eq!(bytes, input.as_bytes());
    assert!(!truncation.truncated);
    assert_eq!(
        (truncation.kept_items, truncation.dropped_items_at_least),
        (3, 0)
    );
    assert!(truncation.scan_complete);
}

#[tokio::test]
async fn error_status_passes_through() {
    let input = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
    let (response, bytes) = answered(
        &TruncateConfig::default(),
        StatusCode::BAD_REQUEST,
        Some("application/json"),
        chunks(input.as_bytes(), 7),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bytes, input.as_bytes());
    assert!(response.extensions().get::<Truncation>().is_none());
}

#[tokio::test]
async fn other_answers_are_cut_at_the_hard_ceiling() {
    let config = TruncateConfig {
        max_bytes: 1024,
        hard_ceiling_bytes: 2000,
        max_scan_bytes: 2000,
        ..Default::default()
    };
    let page = vec![b'x'; 10_000];
    let (response, bytes) = answered(
        &config,
        StatusCode::BAD_GATEWAY,
        Some("text/html"),
        chunks(&page, 300),
    )
    .await;
    assert_eq!(bytes.len(), 2000);
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    let (_, bytes) = answered(
        &config,
        StatusCode::OK,
        Some("text/plain"),
        chunks(&page, 10_000),
    )
    .await;
    assert_eq!(bytes.len(), 2000);
}

/// Switched off there is no layer at all: the stack has nothing to pass
/// through (what `enabled = false` meant inside the layer before).
#[test]
fn disabled_builds_no_layer() {
    let config = TruncateConfig {
        enabled: false,
        ..Default::default()
    };
    assert!(
        config
            .build(&BuildCtx::default())
            .is_ok_and(|l| l.is_none())
    );
}

#[tokio::test]
async fn invalid_json_is_passed_as_kept() {
    for input in [
        "<html>oops</html>",
        r#"{"status":"success","data":[1,2}"#,
        r#"{"a":1}}"#,
        "",
        r#"{"data":["abc"#,
    ] {
        let (bytes, _) = json_call(&TruncateConfig::default(), None, input).await;
        assert_eq!(bytes, input.as_bytes(), "{input}");
        assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err());
    }
    let huge_garbage = "<".repeat(100_000);
    let (bytes, truncation) = json_call(&TruncateConfig::default(), None, &huge_garbage).await;
    assert_eq!(bytes.len(), 50_000);
    assert!(truncation.truncated && !truncation.scan_complete);
    let deep = "[".repeat(100_000);
    let (bytes, _) = json_call(&TruncateConfig::default(), None, &deep).await;
    assert!(bytes.len() <= 50_000);
}

#[tokio::test]
async fn body_error_fails_the_call() {
    let mut pieces: Vec<Result<Bytes, BoxError>> = vector_answer(100)
        .as_bytes()
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    pieces.insert(3, Err("upstream reset".into()));
    let body = chunks_of(pieces);
    let err = call(&TruncateConfig::default(), None, StatusCode::OK, None, body)
        .await
        .expect_err("error must propagate");
    assert_eq!(
        crate::error_chain(err.as_ref()),
        "the answer broke off: upstream reset"
    );
}

#[tokio::test]
async fn unlimited_only_when_allowed_and_still_capped() {
    let input = vector_answer(2000);
    let unlimited = Some(TruncateBudget {
        unlimited: true,
        ..Default::default()
    });
    let refused = json_call(&TruncateConfig::default(), unlimited, &input).await;
    assert_eq!(
        refused,
        json_call(&TruncateConfig::default(), None, &input).await
    );
    assert!(refused.0.len() <= 50_000 + 64 && refused.1.truncated);
    let config = TruncateConfig {
        allow_unlimited: true,
        hard_ceiling_bytes: 100_000,
        ..Default::default()
    };
    let (bytes, truncation) = json_call(&config, unlimited, &input).await;
    assert_eq!(truncation.reason, Some(TruncationReason::Bytes));
    assert!(
        bytes.len() <= 100_000 + 64 && bytes.len() > 99_000,
        "{}",
        bytes.len()
    );
    assert!(truncation.kept_items > 500);
    let config = TruncateConfig {
        allow_unlimited: true,
        ..Default::default()
    };
    let (bytes, truncation) = json_call(&config, unlimited, &input).await;
    assert!(!truncation.truncated);
    assert_eq!(bytes, input.as_bytes());
}

#[tokio::test]
async fn budget_extension_is_clamped() {
    let input = vector_answer(2000);
    let config = TruncateConfig {
        hard_ceiling_bytes: 60_000,
        ..Default::default()
    };
    let budget = Some(TruncateBudget {
        max_bytes: Some(10_000_000),
        max_items: Some(5000),
        unlimited: false,
    });
    let (bytes, _) = json_call(&config, budget, &input).await;
    assert!(bytes.len() <= 60_000 + 64);
    let budget = Some(TruncateBudget {
        max_bytes: Some(1),
        max_items: Some(3),
        unlimited: false,
    });
    let (bytes, truncation) = json_call(&config, budget, &input).await;
    assert_eq!(truncation.kept_items, 3);
    assert_eq!(
        parse(&bytes)["data"]["result"].as_array().map(Vec::len),
        Some(3)
    );
}

#[test]
fn config_is_validated() {
    let ok = TruncateConfig::default();
    assert!(ok.build(&BuildCtx::default()).is_ok_and(|l| l.is_some()));
    let small = TruncateConfig {
        max_bytes: 100,
        ..Default::default()
    };
    assert_eq!(
        small.build(&BuildCtx::default()).err(),
        Some(TruncateConfigError::MaxBytesTooSmall(100))
    );
    let none = TruncateConfig {
        max_series: 0,
        ..Default::default()
    };
    assert_eq!(
        none.build(&BuildCtx::default()).err(),
        Some(TruncateConfigError::NoSeries)
    );
    let low = TruncateConfig {
        hard_ceiling_bytes: 10_000,
        ..Default::default()
    };
    assert!(matches!(
        low.build(&BuildCtx::default()),
        Err(TruncateConfigError::CeilingBelowBudget { .. })
    ));
    let scan = TruncateConfig {
        max_scan_bytes: 1000,
        ..Default::default()
    };
    assert!(matches!(
        scan.build(&BuildCtx::default()),
        Err(TruncateConfigError::ScanBelowCeiling { .. })
    ));
    let parsed: TruncateConfig =
        serde_json::from_str(r#"{"max_series": 7}"#).expect("partial config");
    assert_eq!(
        parsed,
        TruncateConfig {
            max_series: 7,
            ..Default::default()
        }
    );
    assert!(serde_json::from_str::<TruncateConfig>(r#"{"max_seris": 7}"#).is_err());
}
