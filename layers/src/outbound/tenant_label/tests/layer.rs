//! Requests through the layer: what reaches the upstream (GET query
//! strings, POST forms, `match[]`), and what is refused before anything
//! is sent.

use http::header::CONTENT_TYPE;
use http::{Method, StatusCode};

use super::support::{layer, refused, request, send, value};
use crate::endpoint::UpstreamEndpoint;
use crate::outbound::tenant_label::TenantLabelError;
use crate::promql::ParsedQuery;

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
