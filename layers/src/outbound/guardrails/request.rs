//! The parts of an upstream request the guardrails judge: which query API
//! it calls, its PromQL (`query`, or the `match[]` selectors), and a range
//! query's window and step, read from the query string and, for a POST,
//! from its form body.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request};
use http_body::Body;
use http_body_util::Full;

use crate::duration::{duration_from_seconds, parse_duration};
use crate::endpoint::UpstreamEndpoint;
use crate::promql::{self, Expr, ParsedQuery};

/// The APIs whose requests carry PromQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    Query,
    QueryRange,
    Exemplars,
    /// Series, label names and label values: PromQL only in `match[]`.
    Matchers,
}

impl Api {
    /// The API of a request: from the endpoint label its builder set (tools
    /// and passthrough both set it), else from the path's end.
    fn of<B>(request: &Request<B>) -> Option<Self> {
        let endpoint = request
            .extensions()
            .get::<UpstreamEndpoint>()
            .map(|e| e.endpoint);
        let path = endpoint.unwrap_or_else(|| request.uri().path());
        let tail = &path[path.rfind("/api/v1/")?..];
        match tail {
            "/api/v1/query" => Some(Self::Query),
            "/api/v1/query_range" => Some(Self::QueryRange),
            "/api/v1/query_exemplars" => Some(Self::Exemplars),
            "/api/v1/series" | "/api/v1/labels" => Some(Self::Matchers),
            _ if tail.starts_with("/api/v1/label/") && tail.ends_with("/values") => {
                Some(Self::Matchers)
            }
            _ => None,
        }
    }
}

/// What the rules look at.
pub(super) struct QueryRequest {
    pub api: Api,
    /// The parsed `query` or `match[]` texts; texts that do not parse are
    /// left out (Prometheus answers them; the tools refused them earlier).
    pub exprs: Vec<Arc<Expr>>,
    /// A range query's `end - start`, when both parse.
    pub window: Option<Duration>,
    /// A range query's `step`, when it parses.
    pub step: Option<Duration>,
    /// What could not be read (a text that does not parse here, a range
    /// parameter that is not a time): judged unjudgeable, not passed.
    pub unreadable: Vec<String>,
}

/// Reads the query of `request`, or `None` when it calls no query API or
/// carries no PromQL that parses. A POST's form body is read in place and
/// put back unchanged.
pub(super) fn read(request: &mut Request<Full<Bytes>>) -> Option<QueryRequest> {
    let api = Api::of(request)?;
    let url_params: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    // Prometheus reads the first value, a POST form's before the URL's
    // (Go's FormValue): the rules read the same one.
    let mut params: Vec<(String, String)> = Vec::new();
    if request.method() == Method::POST && is_form(request) {
        let form = take_body(request.body_mut());
        params.extend(url::form_urlencoded::parse(&form).into_owned());
        *request.body_mut() = Full::new(form);
    }
    params.extend(url_params);
    let parsed = request.extensions().get::<ParsedQuery>();
    let texts = params.iter().filter(|(key, _)| match api {
        Api::Matchers => key == "match[]",
        _ => key == "query",
    });
    let mut unreadable = Vec::new();
    let mut exprs: Vec<Arc<Expr>> = Vec::new();
    for (key, text) in texts {
        match parsed {
            Some(p) if *p.text == **text => exprs.push(p.expr.clone()),
            _ => match promql::parse(text) {
                Ok(expr) => exprs.push(Arc::new(expr)),
                Err(error) => unreadable.push(format!("{key}: {}", error.message)),
            },
        }
    }
    if exprs.is_empty() && unreadable.is_empty() {
        return None;
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, v)| v.as_str())
    };
    let (window, step) = if api == Api::QueryRange {
        let mut read = |name: &str, value: Option<f64>| {
            if param(name).is_some() && value.is_none() {
                unreadable.push(format!(
                    "{name}: {:?} is not a time this server reads",
                    param(name).unwrap_or_default()
                ));
            }
            value
        };
        let start = read("start", param("start").and_then(timestamp));
        let end = read("end", param("end").and_then(timestamp));
        let window = start
            .zip(end)
            .and_then(|(start, end)| duration_from_seconds(end - start));
        let step = param("step").and_then(|s| {
            parse_duration(s)
                .ok()
                .or_else(|| s.trim().parse::<f64>().ok().and_then(duration_from_seconds))
        });
        (window, step)
    } else {
        (None, None)
    };
    Some(QueryRequest {
        api,
        exprs,
        window,
        step,
        unreadable,
    })
}

fn is_form<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The bytes of a `Full` body. `Full` yields its one frame on the first
/// poll without waiting, so no runtime is needed; the request's body type
/// is `Full` precisely because outbound requests are small forms.
fn take_body(body: &mut Full<Bytes>) -> Bytes {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

/// A Prometheus timestamp: Unix seconds (with fraction) or RFC 3339.
fn timestamp(text: &str) -> Option<f64> {
    if let Ok(seconds) = text.trim().parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let time = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    Some(time.timestamp() as f64 + f64::from(time.timestamp_subsec_millis()) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> Request<Full<Bytes>> {
        Request::get(uri)
            .body(Full::new(Bytes::new()))
            .expect("request")
    }

    #[test]
    fn range_queries_read_window_and_step_in_every_form() {
        let mut request = get(
            "http://p/prometheus/api/v1/query_range?query=up&start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00.500Z&step=1m",
        );
        let got = read(&mut request).expect("a query");
        assert_eq!(got.api, Api::QueryRange);
        assert_eq!(got.window, Some(Duration::from_millis(86_400_500)));
        assert_eq!(got.step, Some(Duration::from_secs(60)));
        let mut request = get("/api/v1/query_range?query=up&start=100&end=40&step=15");
        let got = read(&mut request).expect("a query");
        assert_eq!(
            got.window, None,
            "end before start is Prometheus's to refuse"
        );
    }

    #[test]
    fn forms_are_read_and_put_back() {
        let form = "query=sum(rate(x%5B5m%5D))&time=1";
        let mut request = Request::post("/api/v1/query")
            .header(
                CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(Full::new(Bytes::from(form)))
            .expect("request");
        let got = read(&mut request).expect("a query");
        assert_eq!(got.exprs[0].to_string(), "sum(rate(x[5m]))");
        assert_eq!(take_body(request.body_mut()), form.as_bytes());
    }

    #[test]
    fn only_query_apis_are_read_and_broken_promql_is_kept_as_unreadable() {
        assert!(read(&mut get("/api/v1/targets?query=up")).is_none());
        let broken = read(&mut get("/api/v1/query?query=sum(")).expect("judged, not skipped");
        assert!(broken.exprs.is_empty() && broken.unreadable.len() == 1);
        let got = read(&mut get(
            "/api/v1/label/job/values?match[]=up&match[]=%7B__name__%3D~%22.%2B%22%7D",
        ))
        .expect("matchers");
        assert_eq!(got.api, Api::Matchers);
        assert_eq!(got.exprs.len(), 2);
    }
}
