//! The streamable HTTP MCP route as one tower service: rmcp behind the
//! stateless fast path, a session `DELETE` answered 204.
//!
//! One service, not an axum `MethodRouter` of several: axum clones a
//! method router (every method's boxed service, rmcp's with its config's
//! host and origin lists) for each request it routes, some 30k
//! instructions of an `up` call (bench/instructions.py). Here a request
//! costs two `Arc` clones.
//!
//! A request without a session id may open one: its answer goes through
//! [`SessionBound`] (`server.max_sessions`) and the session is recorded
//! with its opener ([`SessionOwners`]). A request naming one its caller did
//! not open goes on naming no session; one naming its own may be a plain
//! tool call the session takes directly ([`SessionCalls`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use http::{Method, Request, Response, StatusCode};

use super::fast_call::{Fallback, FastPath, McpBody, ResponseFuture};
use super::owner::Owner;
use super::session_bound::{SESSION_ID, SessionBound, names_session};
use super::session_call::SessionCalls;
use super::session_owners::{NO_SESSION, SessionOwners, Use};

/// What a route that keeps sessions needs: their bound, the tool calls
/// they take directly and who opened each.
pub struct SessionRoutes {
    pub bound: SessionBound,
    pub calls: SessionCalls,
    pub owners: SessionOwners,
}

/// `server.mcp_path`: every method, to rmcp or to the fast path.
pub struct McpRoute<F> {
    rmcp: Arc<F>,
    /// `None` when answers are SSE streams (`json_response = false`): the
    /// fast path writes JSON only.
    fast: Option<Arc<FastPath>>,
    /// `None` without sessions (`stateful_sessions = false`).
    sessions: Option<Arc<SessionBound>>,
    /// Tool calls in a session; `None` without sessions.
    session_calls: Option<Arc<SessionCalls>>,
    /// Who opened each session; `None` without sessions.
    owners: Option<Arc<SessionOwners>>,
}

impl<F> Clone for McpRoute<F> {
    fn clone(&self) -> Self {
        Self {
            rmcp: self.rmcp.clone(),
            fast: self.fast.clone(),
            sessions: self.sessions.clone(),
            session_calls: self.session_calls.clone(),
            owners: self.owners.clone(),
        }
    }
}

impl<F: Fallback> McpRoute<F> {
    /// rmcp's service, with the fast path in front when there is one and
    /// the bound on its sessions and the session call path when it keeps
    /// any.
    pub fn new(rmcp: F, fast: Option<FastPath>, sessions: Option<SessionRoutes>) -> Self {
        let (bound, calls, owners) = match sessions {
            Some(SessionRoutes {
                bound,
                calls,
                owners,
            }) => (Some(bound), Some(calls), Some(owners)),
            None => (None, None, None),
        };
        Self {
            rmcp: Arc::new(rmcp),
            fast: fast.map(Arc::new),
            sessions: bound.map(Arc::new),
            session_calls: calls.map(Arc::new),
            owners: owners.map(Arc::new),
        }
    }
}

impl<F: Fallback> tower::Service<Request<Body>> for McpRoute<F> {
    type Response = Response<McpBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> ResponseFuture {
        // The caller, when sessions are kept: it may use only the sessions
        // it opened, and owns the one it opens.
        let owner = self
            .owners
            .as_ref()
            .map(|owners| (owners.clone(), Owner::of(request.extensions())));
        if let Some((owners, owner)) = &owner
            && names_session(request.headers())
        {
            let named = owners.check(request.headers(), owner);
            if named == Use::Foreign {
                tracing::warn!("a request named a session another caller opened: sent on as none");
            }
            // An unknown id may still be one rmcp holds but nobody was told
            // of (its `initialize` answer was dropped): nobody's to use.
            if named != Use::Owned {
                request.headers_mut().insert(SESSION_ID, NO_SESSION);
            }
        }
        if request.method() == Method::DELETE {
            let id = request.headers().get(SESSION_ID).cloned();
            let ended = self.rmcp.clone().handle(request);
            return Box::pin(async move {
                let response = session_ended(ended.await?);
                if let (Some((owners, _)), Some(id)) = (owner, id)
                    && response.status().is_success()
                    && let Ok(id) = id.to_str()
                {
                    owners.forget(id);
                }
                Ok(response)
            });
        }
        if names_session(request.headers()) {
            return match &self.session_calls {
                Some(calls) => calls.serve(request, &self.rmcp),
                None => self.rmcp.clone().handle(request),
            };
        }
        // Only a request without a session can open one.
        let bound = self.sessions.clone();
        let answer = match &self.fast {
            Some(fast) => fast.serve(request, &self.rmcp),
            None => self.rmcp.clone().handle(request),
        };
        match (bound, owner) {
            (Some(bound), Some((owners, owner))) => Box::pin(async move {
                let response = bound.admit(answer.await?).await;
                owners.record(&response, owner).await;
                Ok(response)
            }),
            _ => answer,
        }
    }
}

/// rmcp answers a session DELETE with 202, which the official Python SDK
/// logs as "Session termination failed: 202" on every close; the session
/// is gone, so say 204 (the body is empty).
fn session_ended(mut response: Response<McpBody>) -> Response<McpBody> {
    if response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Empty};
    use tower::ServiceExt as _;

    use super::*;

    /// rmcp's place: answers 202 to everything.
    struct Accepting;

    impl Fallback for Accepting {
        fn handle(self: Arc<Self>, _: Request<Body>) -> ResponseFuture {
            let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
            *response.status_mut() = StatusCode::ACCEPTED;
            Box::pin(async move { Ok(response) })
        }
    }

    async fn status(method: Method) -> StatusCode {
        let request = Request::builder()
            .method(method)
            .uri("/mcp")
            .body(Body::empty())
            .expect("request");
        let route = McpRoute::new(Accepting, None, None);
        route.oneshot(request).await.expect("infallible").status()
    }

    #[tokio::test]
    async fn a_session_delete_is_answered_204_and_other_202s_stay() {
        assert_eq!(status(Method::DELETE).await, StatusCode::NO_CONTENT);
        assert_eq!(status(Method::POST).await, StatusCode::ACCEPTED);
        assert_eq!(status(Method::GET).await, StatusCode::ACCEPTED);
    }
}
