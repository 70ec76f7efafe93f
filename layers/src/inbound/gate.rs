//! The one service shape of the inbound gates (authn, audience, tenancy):
//! look at a request's head, then either record a decision in its
//! extensions and pass it on, or answer it with a refusal. Each gate writes
//! only its decision ([`Gate::admit`]); the tower plumbing lives here once.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use mcp_prometheus_layers::inbound::gate::{Gate, GateLayer};
//! use tower::{Layer, ServiceExt};
//!
//! /// Lets through only requests that carry an `x-ticket` header.
//! struct Ticket;
//! impl Gate for Ticket {
//!     async fn admit(&self, parts: &mut http::request::Parts) -> Result<(), Response<String>> {
//!         if parts.headers.contains_key("x-ticket") {
//!             return Ok(());
//!         }
//!         let mut refusal = Response::new("no ticket".to_owned());
//!         *refusal.status_mut() = StatusCode::FORBIDDEN;
//!         Err(refusal)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = GateLayer::new(Ticket).layer(tower::service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(String::from("inside")))
//! }));
//! let response = service.oneshot(Request::new(())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! # });
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{Request, Response};
use tower::{Layer, Service};

use crate::audit::{AuditEvent, AuditLog, EventKind};

/// A decision about each request, made before the inner service sees it.
pub trait Gate: Send + Sync + 'static {
    /// What the audit log calls this gate's refusals.
    const AUDIT_AS: EventKind = EventKind::Authz;

    /// `Ok`: pass the request on (the gate may have added its decision to
    /// `parts.extensions`); `Err`: answer with this refusal instead.
    fn admit(&self, parts: &mut Parts)
    -> impl Future<Output = Result<(), Response<String>>> + Send;
}

/// Puts a [`Gate`] in front of a service.
pub struct GateLayer<G> {
    gate: Arc<G>,
    audit: Option<AuditLog>,
}

impl<G> GateLayer<G> {
    /// A layer deciding with `gate`.
    pub fn new(gate: G) -> Self {
        Self {
            gate: Arc::new(gate),
            audit: None,
        }
    }

    /// The same gate, writing each refusal to `audit` (when on).
    pub fn audited(self, audit: Option<AuditLog>) -> Self {
        Self { audit, ..self }
    }

    /// The gate's decision logic.
    pub fn gate(&self) -> &G {
        &self.gate
    }
}

impl<G> Clone for GateLayer<G> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
            audit: self.audit.clone(),
        }
    }
}

impl<G> fmt::Debug for GateLayer<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateLayer")
            .field("gate", &std::any::type_name::<G>())
            .finish()
    }
}

impl<G, S> Layer<S> for GateLayer<G> {
    type Service = GateService<G, S>;
    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            gate: self.gate.clone(),
            audit: self.audit.clone(),
            inner,
        }
    }
}

/// Service of [`GateLayer`].
pub struct GateService<G, S> {
    gate: Arc<G>,
    audit: Option<AuditLog>,
    inner: S,
}

impl<G, S: Clone> Clone for GateService<G, S> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
            audit: self.audit.clone(),
            inner: self.inner.clone(),
        }
    }
}

/// The future of a [`GateService`]: the gate's decision may wait (a key
/// fetch, a tenant lookup), so it is boxed once per request.
pub type ResponseFuture<ResB> =
    Pin<Box<dyn Future<Output = Result<Response<ResB>, Infallible>> + Send>>;

impl<G, S, B, ResB> Service<Request<B>> for GateService<G, S>
where
    G: Gate,
    S: Service<Request<B>, Response = Response<ResB>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResB: From<String> + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = Infallible;
    type Future = ResponseFuture<ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        let audit = self.audit.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            match gate.admit(&mut parts).await {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(refusal) => {
                    if let Some(audit) = audit {
                        audit.record(&refusal_event(G::AUDIT_AS, &parts, &refusal));
                    }
                    Ok(refusal.map(ResB::from))
                }
            }
        })
    }
}

/// The longest refusal reason written to the audit log.
const MAX_REASON_BYTES: usize = 512;

/// The audit line of a refusal: `limited` for a 429, else `denied`, with
/// the reason the caller was told (`error_description` of our JSON
/// refusals, else the body).
fn refusal_event(kind: EventKind, parts: &Parts, refusal: &Response<String>) -> AuditEvent {
    let outcome = if refusal.status() == http::StatusCode::TOO_MANY_REQUESTS {
        "limited"
    } else {
        "denied"
    };
    let mut event = AuditEvent::new(kind, outcome, &parts.extensions);
    let described = serde_json::from_str::<serde_json::Value>(refusal.body())
        .ok()
        .and_then(|v| v.get("error_description")?.as_str().map(str::to_owned));
    let mut reason = described.unwrap_or_else(|| refusal.body().clone());
    // A refusal may quote the caller's input (an unverified issuer): a
    // line stays small whatever was sent.
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    event.reason = Some(reason);
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use tower::ServiceExt;

    /// Marks requests with a header, refuses the rest.
    struct Mark;
    impl Gate for Mark {
        async fn admit(&self, parts: &mut Parts) -> Result<(), Response<String>> {
            if parts.headers.contains_key("x-pass") {
                parts.extensions.insert(7_u8);
                return Ok(());
            }
            let mut refusal = Response::new("refused".to_owned());
            *refusal.status_mut() = StatusCode::FORBIDDEN;
            Err(refusal)
        }
    }

    async fn call(req: Request<()>) -> Response<String> {
        let service =
            GateLayer::new(Mark).layer(tower::service_fn(|req: Request<()>| async move {
                let seen = req.extensions().get::<u8>().copied();
                Ok::<_, Infallible>(Response::new(format!("inner saw {seen:?}")))
            }));
        service.oneshot(req).await.expect("infallible")
    }

    #[tokio::test]
    async fn admitted_requests_carry_the_decision_inside() {
        let req = Request::builder()
            .header("x-pass", "1")
            .body(())
            .expect("request");
        let response = call(req).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), "inner saw Some(7)");
    }

    #[tokio::test]
    async fn refused_requests_never_reach_the_inner_service() {
        let response = call(Request::new(())).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.body(), "refused");
    }
}
