//! The request half of label tenancy: every `query` or `match[]` parameter
//! of a request rewritten, wherever Prometheus reads parameters from.
//!
//! Prometheus (Go's `Request.ParseForm`) reads the URL's query string and,
//! for a POST, an `application/x-www-form-urlencoded` body, merged (body
//! values first). So both are parsed, every value of the parameter in
//! either place is rewritten, and both are re-encoded from what was parsed:
//! what the upstream decodes is exactly what was checked, whatever odd
//! encoding the caller used. Other parameters keep their values. A body
//! that is not a form (a multipart body Go would also read) is refused.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body::Body;
use url::form_urlencoded;

use super::TenantLabelError;
use super::rewrite::TenantMatcher;
use crate::body::RequestBody;
use crate::promql::ParsedQuery;

const FORM: &str = "application/x-www-form-urlencoded";

/// Which parameter a request's scope lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `query` (a PromQL expression): required.
    Query,
    /// `match[]` (series selectors): added when absent.
    Match,
}

impl Param {
    pub fn name(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Match => "match[]",
        }
    }
}

type Pairs = Vec<(String, String)>;

/// Rewrites `param` in `request`'s query string and form body.
pub fn rewrite(
    request: &mut Request<RequestBody>,
    param: Param,
    matcher: &TenantMatcher,
) -> Result<(), TenantLabelError> {
    let parsed = request.extensions().get::<ParsedQuery>().cloned();
    let body = body_bytes(request.body_mut())?;
    let is_post = request.method() == Method::POST;
    if !is_post && request.method() != Method::GET {
        return Err(TenantLabelError::Form(format!(
            "{} requests cannot be scoped (GET or POST only)",
            request.method()
        )));
    }
    let form_body = is_post && is_form(request);
    if !body.is_empty() && !form_body {
        return Err(TenantLabelError::Form(
            "a request body must be an application/x-www-form-urlencoded form of a POST".into(),
        ));
    }
    let mut query: Pairs = decode(request.uri().query().unwrap_or_default().as_bytes());
    let mut form: Pairs = decode(&body);
    let one = |value: &str| match param {
        Param::Query => {
            let parsed = parsed
                .as_ref()
                .filter(|p| &*p.text == value)
                .map(|p| &*p.expr);
            matcher.rewrite_query(value, parsed)
        }
        Param::Match => matcher.rewrite_selector(value),
    };
    let mut found = 0;
    for (name, value) in query.iter_mut().chain(form.iter_mut()) {
        if name == param.name() {
            *value = one(value).map_err(|source| TenantLabelError::Rewrite {
                param: param.name(),
                source,
            })?;
            found += 1;
        }
    }
    if found == 0 {
        match param {
            Param::Query => return Err(TenantLabelError::NoQuery),
            Param::Match if is_post => form.push((param.name().into(), matcher.selector())),
            Param::Match => query.push((param.name().into(), matcher.selector())),
        }
    }
    set_query(request, &query)?;
    let body = Bytes::from(encode(&form));
    if is_post {
        let headers = request.headers_mut();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(FORM));
        }
    }
    *request.body_mut() = RequestBody::new(body);
    Ok(())
}

/// Whether the request declares a form body (`application/x-www-form-urlencoded`,
/// parameters such as `charset` allowed).
fn is_form(request: &Request<RequestBody>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(FORM))
}

fn decode(bytes: &[u8]) -> Pairs {
    form_urlencoded::parse(bytes).into_owned().collect()
}

fn encode(pairs: &Pairs) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

/// Replaces the URI's query string with `pairs` (none: no `?`).
fn set_query(request: &mut Request<RequestBody>, pairs: &Pairs) -> Result<(), TenantLabelError> {
    let uri = request.uri();
    let path_and_query = if pairs.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), encode(pairs))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .map_err(|e| TenantLabelError::Form(format!("the scoped URL is invalid: {e}")))?,
    );
    *request.uri_mut() = Uri::from_parts(parts)
        .map_err(|e| TenantLabelError::Form(format!("the scoped URL is invalid: {e}")))?;
    Ok(())
}

/// The bytes of a request body. Outbound requests carry a `Full` body,
/// whose one frame is ready at once; anything else is refused rather than
/// waited for.
fn body_bytes(body: &mut RequestBody) -> Result<Bytes, TenantLabelError> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = BytesMut::new();
    loop {
        match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(never))) => match never {},
            Poll::Ready(None) => return Ok(out.freeze()),
            Poll::Pending => {
                return Err(TenantLabelError::Form(
                    "the request body is not ready to be read".into(),
                ));
            }
        }
    }
}
