//! Streamable HTTP sessions bound to the caller that opened them.
//!
//! rmcp's session manager knows a session by its id alone: anyone holding
//! a leaked id (a log line, a proxy's trace) could post into the session,
//! read its stream (the answers to its owner's calls, another tenant's
//! data) or end it. Each session an `initialize` opens is recorded here
//! with its [`Owner`]; a request naming a session its caller does not own,
//! or one never opened here, has the id replaced by [`NO_SESSION`], which
//! names none: rmcp then answers it exactly as a request naming a session
//! that does not exist (404 under a session protocol after its own checks,
//! the header ignored under 2026-07-28), so the caller learns nothing of
//! whether the session exists. The legacy SSE transport answers another
//! caller's session as an unknown one too (`sse/mod.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderMap, HeaderValue, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use super::fast_call::McpBody;
use super::owner::Owner;
use super::session_bound::SESSION_ID;

/// The owner of every open session.
pub struct SessionOwners {
    owners: Mutex<HashMap<Arc<str>, Owner>>,
    /// rmcp's sessions: those it ended (idle, closed) are forgotten here.
    manager: Arc<LocalSessionManager>,
    /// Entries kept before the ended ones are pruned: rmcp holds at most
    /// `server.max_sessions`, so the table stays within one more than that.
    max: usize,
}

/// The session id a request naming a session it may not use is sent on
/// with: rmcp's ids are UUIDs, so it names no session, ever.
pub const NO_SESSION: HeaderValue = HeaderValue::from_static("not-a-session-of-this-caller");

/// Whose session a request names.
#[derive(Debug, PartialEq, Eq)]
pub enum Use {
    /// Its caller opened the session.
    Owned,
    /// Another caller opened it.
    Foreign,
    /// No session opened here (ended, pruned, or never one).
    Unknown,
}

impl SessionOwners {
    /// Owners of `manager`'s sessions, of which it keeps at most `max`.
    pub fn new(manager: Arc<LocalSessionManager>, max: usize) -> Self {
        Self {
            owners: Mutex::new(HashMap::new()),
            manager,
            max,
        }
    }

    /// Whether the caller `owner` may use the session `headers` name
    /// (callers should ask only when they name one, see
    /// [`super::session_bound::names_session`]).
    pub fn check(&self, headers: &HeaderMap, owner: &Owner) -> Use {
        let Some(id) = headers.get(SESSION_ID).and_then(|v| v.to_str().ok()) else {
            return Use::Unknown;
        };
        let owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        match owners.get(id) {
            Some(opener) if opener == owner => Use::Owned,
            Some(_) => Use::Foreign,
            None => Use::Unknown,
        }
    }

    /// Records `owner` as the owner of the session `response` opened, if
    /// it opened one (a session refused by the bound carries no id).
    pub async fn record(&self, response: &Response<McpBody>, owner: Owner) {
        let Some(id) = response
            .headers()
            .get(SESSION_ID)
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        let full = {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            owners.insert(id.into(), owner);
            owners.len() > self.max
        };
        if full {
            self.prune().await;
        }
    }

    /// Forgets a session its owner ended (`DELETE`).
    pub fn forget(&self, id: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.remove(id);
    }

    /// Forgets the sessions rmcp no longer has (idled out).
    async fn prune(&self) {
        let open = self.manager.sessions.read().await;
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.retain(|id, _| open.contains_key(id));
    }

    /// How many sessions have an owner recorded (for the tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http_body_util::{BodyExt as _, Empty};
    use rmcp::transport::streamable_http_server::session::SessionManager as _;

    use super::*;

    fn naming(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_ID, HeaderValue::from_str(id).expect("id"));
        headers
    }

    fn opened(id: Option<&str>) -> Response<McpBody> {
        let mut response = Response::new(Empty::new().map_err(|e| match e {}).boxed());
        if let Some(id) = id {
            *response.headers_mut() = naming(id);
        }
        response
    }

    #[tokio::test]
    async fn only_the_opener_may_use_a_session() {
        let owners = SessionOwners::new(Arc::new(LocalSessionManager::default()), 10);
        let (alice, bob) = (
            Owner::subject("https://issuer.example", "alice"),
            Owner::subject("https://issuer.example", "bob"),
        );
        owners.record(&opened(Some("s-1")), alice.clone()).await;
        assert_eq!(owners.check(&naming("s-1"), &alice), Use::Owned);
        assert_eq!(owners.check(&naming("s-1"), &bob), Use::Foreign);
        // Same subject from another issuer, or through another OAuth
        // client, is another caller.
        let elsewhere = Owner::subject("https://other.example", "alice");
        assert_eq!(owners.check(&naming("s-1"), &elsewhere), Use::Foreign);
        let other_app = alice.clone().through("another-app");
        assert_eq!(owners.check(&naming("s-1"), &other_app), Use::Foreign);
        // Nobody (authn off) owns only what nobody opened.
        assert_eq!(
            owners.check(&naming("s-1"), &Owner::anonymous()),
            Use::Foreign
        );
        // A session never opened here is nobody's.
        assert_eq!(owners.check(&naming("s-2"), &alice), Use::Unknown);
        assert_eq!(owners.check(&HeaderMap::new(), &alice), Use::Unknown);
        // An answer that opened no session records nothing.
        owners.record(&opened(None), bob.clone()).await;
        assert_eq!(owners.len(), 1);
        owners.forget("s-1");
        assert_eq!(owners.check(&naming("s-1"), &alice), Use::Unknown);
    }

    /// The table keeps only sessions rmcp still has once past its bound.
    #[tokio::test]
    async fn sessions_rmcp_ended_are_pruned() {
        let manager = Arc::new(LocalSessionManager::default());
        let owners = SessionOwners::new(manager.clone(), 2);
        let nobody = Owner::anonymous();
        let (live, _transport) = manager.create_session().await.expect("session");
        owners.record(&opened(Some(&live)), nobody.clone()).await;
        for ended in ["gone-1", "gone-2", "gone-3"] {
            owners.record(&opened(Some(ended)), nobody.clone()).await;
            assert!(owners.len() <= 3, "{}", owners.len());
        }
        assert_eq!(owners.check(&naming(&live), &nobody), Use::Owned);
        assert_eq!(owners.check(&naming("gone-1"), &nobody), Use::Unknown);
    }

    /// rmcp makes its ids as UUIDs (hex digits and `-`): the stand-in can
    /// never be one.
    #[test]
    fn the_stand_in_id_is_no_uuid() {
        let stand_in = NO_SESSION;
        let id = stand_in.to_str().expect("text");
        assert!(id.chars().any(|c| !c.is_ascii_hexdigit() && c != '-'));
    }
}
