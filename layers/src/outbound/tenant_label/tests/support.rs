//! What the layer tests share: a layer as configured, requests as the
//! server builds them, and an upstream that records what reached it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

use crate::BoxError;
use crate::body::{RequestBody, ResponseBody};
use crate::build::{BuildCtx, ToolEntry};
use crate::endpoint::UpstreamEndpoint;
use crate::identity::TenantSet;
use crate::inbound::tenancy::{Enforcement, TenancyConfig, TenancyMode};
use crate::outbound::tenant_label::{TenantLabelError, TenantLabelLayer};

pub(super) const TOOLS: &[&str] = &["execute_query", "get_targets", "get_config", "get_alerts"];

pub(super) fn ctx() -> BuildCtx {
    BuildCtx {
        tool_catalogue: TOOLS
            .iter()
            .map(|t| ToolEntry {
                name: (*t).into(),
                family: "x".into(),
            })
            .collect(),
        ..BuildCtx::default()
    }
}

pub(super) fn label_config() -> TenancyConfig {
    TenancyConfig {
        enabled: true,
        mode: TenancyMode::Static,
        tenants: vec!["a".into()],
        enforce: Enforcement::Label,
        ..TenancyConfig::default()
    }
}

pub(super) fn layer(unscoped: &[&str]) -> TenantLabelLayer {
    let config = TenancyConfig {
        label_unscoped_tools: unscoped.iter().map(|t| (*t).into()).collect(),
        ..label_config()
    };
    TenantLabelLayer::from_config(&config, &ctx())
        .expect("valid")
        .expect("label mode")
}

/// What the upstream received.
#[derive(Debug)]
pub(super) struct Seen {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub content_length: Option<String>,
}

pub(super) fn request(
    method: Method,
    uri: &str,
    form: &str,
    endpoint: &'static str,
    tenants: Option<&[&str]>,
) -> Request<RequestBody> {
    let mut builder = Request::builder().method(method).uri(uri);
    if !form.is_empty() {
        builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let mut req = builder
        .body(Full::new(Bytes::from(form.to_owned())))
        .expect("request");
    req.extensions_mut().insert(UpstreamEndpoint {
        upstream: "prom".into(),
        endpoint,
    });
    if let Some(tenants) = tenants {
        req.extensions_mut()
            .insert(TenantSet::new(tenants.iter().copied()));
    }
    req
}

fn pairs(text: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text).into_owned().collect()
}

/// Sends `req` through `layer` to an upstream answering `status` with
/// `answer`; what came back and what the upstream saw.
pub(super) async fn send(
    layer: &TenantLabelLayer,
    req: Request<RequestBody>,
    status: StatusCode,
    answer: &'static str,
) -> (
    Result<(StatusCode, String, Option<String>), BoxError>,
    Option<Seen>,
) {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let svc = layer.layer(tower::service_fn(move |req: Request<RequestBody>| {
        let record = record.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await?.to_bytes();
            *record.lock().expect("lock") = Some(Seen {
                method: parts.method.clone(),
                path: parts.uri.path().to_owned(),
                query: pairs(parts.uri.query().unwrap_or_default().as_bytes()),
                form: pairs(&body),
                content_length: parts
                    .headers
                    .get(CONTENT_LENGTH)
                    .map(|v| v.to_str().expect("ascii").to_owned()),
            });
            let mut response = Response::new(
                Full::new(Bytes::from_static(answer.as_bytes()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            );
            *response.status_mut() = status;
            Ok::<Response<ResponseBody>, BoxError>(response)
        }
    }));
    let result = match svc.oneshot(req).await {
        Ok(response) => {
            let status = response.status();
            let length = response
                .headers()
                .get(CONTENT_LENGTH)
                .map(|v| v.to_str().expect("ascii").to_owned());
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned(), length))
        }
        Err(error) => Err(error),
    };
    let seen = seen.lock().expect("lock").take();
    (result, seen)
}

pub(super) fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(super) async fn refused(
    layer: &TenantLabelLayer,
    req: Request<RequestBody>,
) -> TenantLabelError {
    let (result, seen) = send(layer, req, StatusCode::OK, "{}").await;
    assert!(
        seen.is_none(),
        "a refused request reaches nothing: {seen:?}"
    );
    let error = result.expect_err("refused");
    match error.downcast::<TenantLabelError>() {
        Ok(error) => *error,
        Err(other) => panic!("not a TenantLabelError: {other}"),
    }
}
