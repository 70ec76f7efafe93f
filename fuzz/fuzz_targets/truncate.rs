//! The truncate layer over an arbitrary upstream body (split in arbitrary
//! chunks): an answer within the budget plus the tail, never a panic.
#![no_main]

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use mcp_prometheus_layers::build::BuildCtx;
use mcp_prometheus_layers::outbound::truncate::TruncateConfig;
use tower::{Layer, ServiceExt};

fuzz_target!(|body: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let config = TruncateConfig {
        max_bytes: 2048,
        max_series: 20,
        hard_ceiling_bytes: 8192,
        max_scan_bytes: 1 << 20,
        ..TruncateConfig::default()
    };
    let layer = config
        .build(&BuildCtx::default())
        .expect("valid")
        .expect("enabled");
    let body = Bytes::copy_from_slice(body);
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let mut response = Response::new(Full::new(body.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        async move { Ok::<_, Infallible>(response) }
    });
    runtime.block_on(async {
        let response = layer.layer(upstream).oneshot(Request::new(())).await.expect("answer");
        let kept = response.into_body().collect().await.expect("body").to_bytes();
        assert!(kept.len() <= 8192, "{} bytes kept", kept.len());
    });
});
