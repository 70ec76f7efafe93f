//! No panic reaches a caller as a dropped connection or a hung call: in
//! an inbound stack it becomes a 500 (tower-http's `CatchPanic`, outermost
//! on every route family), in a tool call an `isError` result (`src/mcp.rs`).
//! Either way the caller gets a correlation id that is also logged with the
//! panic's message, and a counter goes up.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use http::{HeaderValue, Response, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tower_http::catch_panic::ResponseForPanic;

pub use mcp_prometheus_layers::correlation::correlation_id;

/// The text of a panic payload (`panic!` with a literal or a format).
pub fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Labels of `mcp_prometheus_panics_total`: where it happened, a closed set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PanicLabels {
    /// `http` (an inbound layer or handler) or `tool`.
    pub place: &'static str,
}

/// Panics caught, by place.
pub type Panics = Family<PanicLabels, Counter>;

/// Runs `call`; a panic inside it becomes `Err(correlation id)`, logged
/// with `what` and counted at `place`, and the process keeps serving.
pub async fn guard<F: Future>(
    call: F,
    panics: &Panics,
    place: &'static str,
    what: &str,
) -> Result<F::Output, String> {
    AssertUnwindSafe(call).catch_unwind().await.map_err(|payload| {
        let id = correlation_id();
        tracing::error!(correlation_id = %id, place, what, panic = panic_text(payload.as_ref()), "caught a panic");
        panics.get_or_create(&PanicLabels { place }).inc();
        id
    })
}

/// Answers a panic inside an inbound stack: 500, in the JSON error shape,
/// with the correlation id.
#[derive(Clone)]
pub struct PanicResponder {
    pub panics: Panics,
}

impl ResponseForPanic for PanicResponder {
    type ResponseBody = String;

    fn response_for_panic(&mut self, err: Box<dyn Any + Send + 'static>) -> Response<String> {
        let id = correlation_id();
        tracing::error!(correlation_id = %id, panic = panic_text(err.as_ref()), "a request handler panicked");
        self.panics
            .get_or_create(&PanicLabels { place: "http" })
            .inc();
        let body = serde_json::json!({
            "error": "internal_error",
            "error_description": format!("internal error (correlation id {id}); the server keeps running, retry or report the id"),
        });
        let mut response = Response::new(body.to_string());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer, ServiceExt};
    use tower_http::catch_panic::CatchPanicLayer;

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_with_an_id_and_counted() {
        let panics = Panics::default();
        let service = CatchPanicLayer::custom(PanicResponder {
            panics: panics.clone(),
        })
        .layer(tower::service_fn(|_req: http::Request<()>| async {
            if true {
                panic!("boom");
            }
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let response = service
            .oneshot(http::Request::new(()))
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            panics.get_or_create(&PanicLabels { place: "http" }).get(),
            1
        );
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_with_an_id_and_counted() {
        let panics = Panics::default();
        let failed = guard(
            async {
                let text = "now\u{2212}1h";
                // What the old time parser did: slice inside a character.
                text.split_at(4).1.len()
            },
            &panics,
            "tool",
            "execute_query",
        )
        .await;
        let id = failed.expect_err("caught");
        assert_eq!(id.len(), 16);
        assert_eq!(
            panics.get_or_create(&PanicLabels { place: "tool" }).get(),
            1
        );
        let fine = guard(async { 7 }, &panics, "tool", "x").await;
        assert_eq!(fine, Ok(7));
    }

    #[test]
    fn panic_texts() {
        assert_eq!(panic_text(&"x"), "x");
        assert_eq!(panic_text(&String::from("y")), "y");
        assert_eq!(panic_text(&7), "(no message)");
    }
}
