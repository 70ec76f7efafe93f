//! The legacy SSE session table: who opened each session, when it was last
//! used, and the bounds (`server.sse_max_sessions`, the per-session queues)
//! that keep a crowd of clients, or one that stops reading, from growing
//! memory without end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::serve::owner::Owner;

/// Messages a session buffers in each direction. Outbound: answers the
/// client has not read yet; inbound: POSTed messages rmcp has not taken.
pub const QUEUE: usize = 64;

/// How long a POST waits for room in a full inbound queue before 503.
const DELIVER_WAIT: Duration = Duration::from_secs(5);

/// Why a session could not be opened or a message not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "too many legacy SSE sessions are open ({0}, server.sse_max_sessions); retry later or use streamable HTTP"
    )]
    Full(usize),
    #[error("cannot create a session id: the system random generator failed")]
    Random,
    #[error("the session has ended: open GET /sse again")]
    Ended,
    #[error("the session is busy: its earlier messages are still queued; retry shortly")]
    Busy,
}

/// One open session.
#[derive(Debug)]
pub struct Session {
    id: String,
    owner: Owner,
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
    last_active: Mutex<Instant>,
    /// Cancelled when the session ends, whoever ends it: the client
    /// leaving, idleness, a stalled reader, rmcp quitting or shutdown.
    closed: CancellationToken,
}

impl Session {
    /// The id clients send as `?sessionId=`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether a request acting for `owner` may post into this session.
    pub fn is_owned_by(&self, owner: &Owner) -> bool {
        self.owner == *owner
    }

    /// Marks the session as used now (a POST, or a message sent).
    pub fn touch(&self) {
        *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// When the session was last used.
    pub fn last_active(&self) -> Instant {
        *self
            .last_active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The token cancelled when the session ends.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Ends the session (its stream and its rmcp service stop).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Hands one POSTed message to the session's rmcp service, waiting a
    /// little for room rather than queueing without bound.
    pub async fn deliver(&self, message: ClientJsonRpcMessage) -> Result<(), SessionError> {
        if self.closed.is_cancelled() {
            return Err(SessionError::Ended);
        }
        match tokio::time::timeout(DELIVER_WAIT, self.inbound.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SessionError::Ended),
            Err(_) => Err(SessionError::Busy),
        }
    }
}

/// What opening a session hands to the GET handler: the session, the ends
/// of its queues that the rmcp transport and the stream own, and the guard
/// that removes it from the table when the stream is dropped.
pub struct Opened {
    pub session: Arc<Session>,
    pub inbound: mpsc::Receiver<ClientJsonRpcMessage>,
    pub outbound: (
        mpsc::Sender<ServerJsonRpcMessage>,
        mpsc::Receiver<ServerJsonRpcMessage>,
    ),
    pub guard: SessionGuard,
}

/// Removes its session from the table and ends it when dropped: the GET's
/// body owns it, so a client that disconnects frees its slot.
pub struct SessionGuard {
    table: Weak<Sessions>,
    session: Arc<Session>,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.session.close();
        if let Some(table) = self.table.upgrade() {
            table.remove(self.session.id());
        }
    }
}

/// The open sessions, at most `max`.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    max: usize,
}

impl Sessions {
    /// An empty table holding at most `max` sessions.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            max,
        })
    }

    /// Opens a session for `owner` that ends with `parent` (shutdown) at
    /// the latest; refused when the table is full.
    pub fn open(
        self: &Arc<Self>,
        owner: Owner,
        parent: &CancellationToken,
    ) -> Result<Opened, SessionError> {
        let id = new_id()?;
        let (inbound_tx, inbound_rx) = mpsc::channel(QUEUE);
        let session = Arc::new(Session {
            id: id.clone(),
            owner,
            inbound: inbound_tx,
            last_active: Mutex::new(Instant::now()),
            closed: parent.child_token(),
        });
        {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            if map.len() >= self.max {
                return Err(SessionError::Full(self.max));
            }
            map.insert(id, session.clone());
        }
        Ok(Opened {
            session: session.clone(),
            inbound: inbound_rx,
            outbound: mpsc::channel(QUEUE),
            guard: SessionGuard {
                table: Arc::downgrade(self),
                session,
            },
        })
    }

    /// The open session with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// 128 random bits, URL-safe: unguessable, so a session id is no handle
/// for anyone who did not open it (and the owner check backs that up).
fn new_id() -> Result<String, SessionError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SessionError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(subject: Option<&str>) -> Owner {
        match subject {
            Some(subject) => Owner::subject("https://issuer.example", subject),
            None => Owner::anonymous(),
        }
    }

    #[test]
    fn the_table_is_bounded_and_a_dropped_guard_frees_its_slot() {
        let table = Sessions::new(2);
        let parent = CancellationToken::new();
        let a = table.open(owner(None), &parent).expect("first");
        let _b = table.open(owner(None), &parent).expect("second");
        assert!(matches!(
            table.open(owner(None), &parent),
            Err(SessionError::Full(2))
        ));
        let session = a.session.clone();
        assert!(table.get(session.id()).is_some());
        drop(a);
        assert!(session.closed().is_cancelled(), "the session ended");
        assert!(table.get(session.id()).is_none(), "and left the table");
        assert_eq!(table.len(), 1);
        table.open(owner(None), &parent).expect("room again");
    }

    #[test]
    fn ids_are_unique_and_unguessable() {
        let table = Sessions::new(10);
        let parent = CancellationToken::new();
        let a = table.open(owner(None), &parent).expect("a");
        let b = table.open(owner(None), &parent).expect("b");
        assert_ne!(a.session.id(), b.session.id());
        assert_eq!(a.session.id().len(), 22, "128 bits in base64url");
    }

    #[test]
    fn only_the_opener_owns_a_session() {
        let table = Sessions::new(1);
        let opened = table
            .open(owner(Some("alice")), &CancellationToken::new())
            .expect("open");
        assert!(opened.session.is_owned_by(&owner(Some("alice"))));
        assert!(!opened.session.is_owned_by(&owner(Some("bob"))));
        assert!(!opened.session.is_owned_by(&owner(None)));
    }

    #[tokio::test]
    async fn shutdown_ends_every_session() {
        let table = Sessions::new(2);
        let parent = CancellationToken::new();
        let opened = table.open(owner(None), &parent).expect("open");
        parent.cancel();
        assert!(opened.session.closed().is_cancelled());
        let message: ClientJsonRpcMessage =
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .expect("message");
        assert!(matches!(
            opened.session.deliver(message).await,
            Err(SessionError::Ended)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_inbound_queue_is_busy_not_unbounded() {
        let table = Sessions::new(1);
        let opened = table
            .open(owner(None), &CancellationToken::new())
            .expect("open");
        let message = || -> ClientJsonRpcMessage {
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .expect("message")
        };
        for _ in 0..QUEUE {
            opened.session.deliver(message()).await.expect("room");
        }
        assert!(matches!(
            opened.session.deliver(message()).await,
            Err(SessionError::Busy)
        ));
    }
}
