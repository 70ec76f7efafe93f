//! Requests through the layer: what reaches the upstream, what is refused
//! (and then nothing reaches it), and how the config is checked.

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
use crate::identity::{Probe, TenantSet};
use crate::inbound::tenancy::{Enforcement, TenancyConfig, TenancyMode};
use crate::outbound::tenant_label::{TenantLabelConfigError, TenantLabelError, TenantLabelLayer};
use crate::promql::ParsedQuery;

const TOOLS: &[&str] = &["execute_query", "get_targets", "get_config", "get_alerts"];

fn ctx() -> BuildCtx {
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

fn label_config() -> TenancyConfig {
    TenancyConfig {
        enabled: true,
        mode: TenancyMode::Static,
        tenants: vec!["a".into()],
        enforce: Enforcement::Label,
        ..TenancyConfig::default()
    }
}

fn layer(unscoped: &[&str]) -> TenantLabelLayer {
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

fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn refused(layer: &TenantLabelLayer, req: Request<RequestBody>) -> TenantLabelError {
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

#[tokio::test]
async fn a_get_query_is_scoped_and_other_parameters_kept() {
    let req = request(
        Method::GET,
        "http://p/prom/api/v1/query?query=demo%7Btenant%3D%22b%22%7D&time=1.5&query=up+%2B+1",
        "",
        "/api/v1/query",
        Some(&["a"]),
    );
    let (result, seen) = send(&layer(&[]), req, StatusCode::OK, "{}").await;
    result.expect("passed");
    let seen = seen.expect("sent");
    assert_eq!(seen.path, "/prom/api/v1/query");
    assert_eq!(
        value(&seen.query, "query"),
        [r#"demo{tenant="a",tenant="b"}"#, r#"up{tenant="a"} + 1"#],
        "every value of the parameter"
    );
    assert_eq!(value(&seen.query, "time"), ["1.5"]);
}

#[tokio::test]
async fn a_post_form_and_its_url_are_both_scoped() {
    let form = "query=sum(demo)&timeout=5s&match%5B%5D=x";
    let req = request(
        Method::POST,
        "http://p/api/v1/query_range?query=other",
        form,
        "/api/v1/query_range",
        Some(&["a", "b"]),
    );
    let (result, seen) = send(&layer(&[]), req, StatusCode::OK, "{}").await;
    result.expect("passed");
    let seen = seen.expect("sent");
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        value(&seen.form, "query"),
        [r#"sum(demo{tenant=~"^(?:a|b)$"})"#]
    );
    assert_eq!(
        value(&seen.query, "query"),
        [r#"other{tenant=~"^(?:a|b)$"}"#]
    );
    assert_eq!(value(&seen.form, "timeout"), ["5s"]);
    assert_eq!(
        value(&seen.form, "match[]"),
        ["x"],
        "not a parameter of this endpoint"
    );
    let sent_len = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(seen.form.iter())
        .finish()
        .len();
    assert_eq!(seen.content_length, Some(sent_len.to_string()));
}

#[tokio::test]
async fn a_tools_parse_is_used_only_for_its_own_text() {
    let mut req = request(
        Method::POST,
        "http://p/api/v1/query",
        "query=up",
        "/api/v1/query",
        Some(&["a"]),
    );
    req.extensions_mut()
        .insert(ParsedQuery::parse("other").expect("valid"));
    let (_, seen) = send(&layer(&[]), req, StatusCode::OK, "{}").await;
    assert_eq!(
        value(&seen.expect("sent").form, "query"),
        [r#"up{tenant="a"}"#]
    );
    let mut req = request(
        Method::POST,
        "http://p/api/v1/query",
        "query=up",
        "/api/v1/query",
        Some(&["a"]),
    );
    req.extensions_mut()
        .insert(ParsedQuery::parse("up").expect("valid"));
    let (_, seen) = send(&layer(&[]), req, StatusCode::OK, "{}").await;
    assert_eq!(
        value(&seen.expect("sent").form, "query"),
        [r#"up{tenant="a"}"#]
    );
}

#[tokio::test]
async fn match_is_scoped_or_added() {
    let cases = [
        (Method::GET, "http://p/api/v1/labels", "", "/api/v1/labels"),
        (Method::POST, "http://p/api/v1/series", "", "/api/v1/series"),
        (
            Method::GET,
            "http://p/api/v1/label/job/values?start=1",
            "",
            "/api/v1/label/:name/values",
        ),
        (
            Method::GET,
            "http://p/api/v1/label/job/values",
            "",
            "/api/v1/label/{name}/values",
        ),
    ];
    for (method, uri, form, endpoint) in cases {
        let post = method == Method::POST;
        let req = request(method, uri, form, endpoint, Some(&["a"]));
        let (result, seen) = send(&layer(&[]), req, StatusCode::OK, "{}").await;
        result.expect("passed");
        let seen = seen.expect("sent");
        let added = if post { &seen.form } else { &seen.query };
        assert_eq!(value(added, "match[]"), [r#"{tenant="a"}"#], "{uri}");
    }
    let req = request(
        Method::POST,
        "http://p/api/v1/series?match[]=up",
        "match%5B%5D=demo&match[]=%7B__name__%3D~%22.%2B%22%7D&start=1",
        "/api/v1/series",
        Some(&["a"]),
    );
    let (_, seen) = send(&layer(&[]), req, StatusCode::OK, "{}").await;
    let seen = seen.expect("sent");
    assert_eq!(value(&seen.query, "match[]"), [r#"up{tenant="a"}"#]);
    assert_eq!(
        value(&seen.form, "match[]"),
        [r#"demo{tenant="a"}"#, r#"{__name__=~".+",tenant="a"}"#]
    );
    assert_eq!(value(&seen.form, "start"), ["1"]);
}

#[tokio::test]
async fn fails_closed() {
    let l = layer(&[]);
    let q = "http://p/api/v1/query?query=up";
    let err = refused(&l, request(Method::GET, q, "", "/api/v1/query", None)).await;
    assert!(matches!(err, TenantLabelError::Missing), "{err}");
    let err = refused(&l, request(Method::GET, q, "", "/api/v1/query", Some(&[]))).await;
    assert!(matches!(err, TenantLabelError::Empty), "{err}");
    let err = refused(
        &l,
        request(Method::GET, q, "", "/api/v1/query", Some(&["a|b"])),
    )
    .await;
    assert!(matches!(err, TenantLabelError::Invalid(_)), "{err}");
    let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let err = refused(
        &l,
        request(Method::GET, q, "", "/api/v1/query", Some(&many)),
    )
    .await;
    assert!(
        matches!(err, TenantLabelError::TooMany { count: 17, max: 16 }),
        "{err}"
    );
    let mut no_endpoint = request(Method::GET, q, "", "/api/v1/query", Some(&["a"]));
    no_endpoint.extensions_mut().remove::<UpstreamEndpoint>();
    let err = refused(&l, no_endpoint).await;
    assert!(matches!(err, TenantLabelError::NoEndpoint), "{err}");
    for (uri, endpoint) in [
        (
            "http://p/api/v1/admin/tsdb/snapshot",
            "/api/v1/admin/tsdb/snapshot",
        ),
        ("http://p/api/v1/targets?query=up", "/api/v1/query"),
        ("http://p/api/v1/write", "/api/v1/write"),
    ] {
        let err = refused(&l, request(Method::GET, uri, "", endpoint, Some(&["a"]))).await;
        assert!(
            matches!(err, TenantLabelError::UnknownEndpoint { .. }),
            "{uri}: {err}"
        );
    }
    let err = refused(
        &l,
        request(
            Method::GET,
            "http://p/api/v1/query",
            "",
            "/api/v1/query",
            Some(&["a"]),
        ),
    )
    .await;
    assert!(matches!(err, TenantLabelError::NoQuery), "{err}");
    let err = refused(
        &l,
        request(
            Method::GET,
            "http://p/api/v1/query?query=up{",
            "",
            "/api/v1/query",
            Some(&["a"]),
        ),
    )
    .await;
    assert!(
        err.to_string().starts_with("query: invalid PromQL"),
        "{err}"
    );
    let mut multipart = request(
        Method::POST,
        "http://p/api/v1/query",
        "query=up",
        "/api/v1/query",
        Some(&["a"]),
    );
    multipart.headers_mut().insert(
        CONTENT_TYPE,
        "multipart/form-data; boundary=x".parse().expect("value"),
    );
    let err = refused(&l, multipart).await;
    assert!(matches!(err, TenantLabelError::Form(_)), "{err}");
    let get_with_body = request(
        Method::GET,
        "http://p/api/v1/query?query=up",
        "query=x",
        "/api/v1/query",
        Some(&["a"]),
    );
    let err = refused(&l, get_with_body).await;
    assert!(matches!(err, TenantLabelError::Form(_)), "{err}");
}

#[tokio::test]
async fn a_probe_passes_without_tenants() {
    let mut probe = request(Method::GET, "http://p/-/ready", "", "/-/ready", None);
    probe.extensions_mut().insert(Probe);
    let (result, seen) = send(&layer(&[]), probe, StatusCode::OK, "ready").await;
    assert_eq!(result.expect("passed").1, "ready");
    assert!(seen.is_some());
}

#[tokio::test]
async fn unscoped_endpoints_are_refused_unless_opted_in() {
    let req = || {
        request(
            Method::GET,
            "http://p/api/v1/targets?state=active",
            "",
            "/api/v1/targets",
            Some(&["a"]),
        )
    };
    let err = refused(&layer(&[]), req()).await;
    let text = err.to_string();
    assert!(
        text.contains("get_targets")
            && text.contains("/api/v1/targets")
            && text.contains("layers.tenancy.label_unscoped_tools = [\"get_targets\"]"),
        "{text}"
    );
    let (result, seen) = send(&layer(&["get_targets"]), req(), StatusCode::OK, "{}").await;
    result.expect("opted in");
    assert_eq!(value(&seen.expect("sent").query, "state"), ["active"]);
    let config = || {
        request(
            Method::GET,
            "http://p/api/v1/status/config",
            "",
            "/api/v1/status/config",
            Some(&["a"]),
        )
    };
    assert!(matches!(
        refused(&layer(&["get_targets"]), config()).await,
        TenantLabelError::Unscoped {
            tool: "get_config",
            ..
        }
    ));
    let build = request(
        Method::GET,
        "http://p/api/v1/status/buildinfo",
        "",
        "/api/v1/status/buildinfo",
        Some(&["a"]),
    );
    send(&layer(&[]), build, StatusCode::OK, "{}")
        .await
        .0
        .expect("harmless");
}

#[test]
fn config_is_checked() {
    let build = |config: &TenancyConfig| {
        TenantLabelLayer::from_config(config, &ctx()).map(|l| l.map(|l| l.label().to_owned()))
    };
    assert_eq!(build(&label_config()), Ok(Some("tenant".into())));
    assert_eq!(
        build(&TenancyConfig::default()),
        Ok(None),
        "header mode by default"
    );
    let header_with = TenancyConfig {
        label: Some("team".into()),
        ..TenancyConfig::default()
    };
    assert_eq!(
        build(&header_with),
        Err(TenantLabelConfigError::HeaderMode { key: "label" })
    );
    let header_with = TenancyConfig {
        label_unscoped_tools: vec!["get_targets".into()],
        ..TenancyConfig::default()
    };
    assert_eq!(
        build(&header_with),
        Err(TenantLabelConfigError::HeaderMode {
            key: "label_unscoped_tools"
        })
    );
    for off in [
        TenancyConfig {
            enabled: false,
            ..label_config()
        },
        TenancyConfig {
            mode: TenancyMode::None,
            ..label_config()
        },
    ] {
        assert_eq!(build(&off), Err(TenantLabelConfigError::NoTenancy));
    }
    for bad in ["", "1x", "a-b", "__name__", "__tenant", "ténant", "a b"] {
        let config = TenancyConfig {
            label: Some(bad.into()),
            ..label_config()
        };
        assert_eq!(
            build(&config),
            Err(TenantLabelConfigError::BadLabel(bad.into())),
            "{bad:?}"
        );
    }
    let config = TenancyConfig {
        label: Some("org_1".into()),
        ..label_config()
    };
    assert_eq!(build(&config), Ok(Some("org_1".into())));
    let config = TenancyConfig {
        label_unscoped_tools: vec!["get_everything".into()],
        ..label_config()
    };
    let err = build(&config).expect_err("unknown");
    assert!(
        err.to_string().contains("get_everything") && err.to_string().contains("execute_query"),
        "{err}"
    );
    let config = TenancyConfig {
        label_unscoped_tools: vec!["execute_query".into()],
        ..label_config()
    };
    let err = build(&config).expect_err("always scoped");
    assert!(
        matches!(err, TenantLabelConfigError::AlwaysScoped { .. })
            && err.to_string().contains("get_targets"),
        "{err}"
    );
}
