//! The rmcp transport of one legacy SSE session: JSON-RPC messages in from
//! the session's POSTs, out to its event stream, over bounded channels.
//! rmcp 3.9 ships no SSE server transport; with this one, rmcp runs the
//! protocol (initialize, tools, cancellation) exactly as on stdio.

use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

/// How long an answer waits for room in a full outbound queue. A client
/// that reads nothing for this long loses its session: memory stays
/// bounded by the queue, never by the client's reading speed.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

/// Why a message could not go out.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the SSE session has ended")]
    Closed,
    #[error("the client did not read its SSE stream for {0:?}: the session was dropped")]
    Stalled(Duration),
}

/// rmcp's server side of one session.
pub struct ChannelTransport {
    inbound: mpsc::Receiver<ClientJsonRpcMessage>,
    outbound: mpsc::Sender<ServerJsonRpcMessage>,
    closed: CancellationToken,
    stall_limit: Duration,
}

impl ChannelTransport {
    /// A transport reading `inbound`, writing `outbound`, that stops when
    /// `closed` is cancelled and cancels it when the client stalls.
    pub fn new(
        inbound: mpsc::Receiver<ClientJsonRpcMessage>,
        outbound: mpsc::Sender<ServerJsonRpcMessage>,
        closed: CancellationToken,
        stall_limit: Duration,
    ) -> Self {
        Self {
            inbound,
            outbound,
            closed,
            stall_limit,
        }
    }
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = TransportError;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outbound = self.outbound.clone();
        let closed = self.closed.clone();
        let limit = self.stall_limit;
        async move {
            if closed.is_cancelled() {
                return Err(TransportError::Closed);
            }
            let item = match outbound.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(_)) => return Err(TransportError::Closed),
                Err(TrySendError::Full(item)) => item,
            };
            tokio::select! {
                sent = tokio::time::timeout(limit, outbound.send(item)) => match sent {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(TransportError::Closed),
                    Err(_) => {
                        tracing::warn!(?limit, "legacy SSE client stopped reading; dropping its session");
                        closed.cancel();
                        Err(TransportError::Stalled(limit))
                    }
                },
                () = closed.cancelled() => Err(TransportError::Closed),
            }
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        tokio::select! {
            biased;
            () = self.closed.cancelled() => None,
            message = self.inbound.recv() => message,
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.closed.cancel();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{EmptyResult, RequestId, ServerResult};

    fn answer(id: i64) -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::response(
            ServerResult::EmptyResult(EmptyResult {}),
            RequestId::Number(id),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_loses_its_session() {
        let (_in_tx, in_rx) = mpsc::channel(1);
        let (out_tx, mut out_rx) = mpsc::channel(2);
        let closed = CancellationToken::new();
        let mut transport =
            ChannelTransport::new(in_rx, out_tx, closed.clone(), Duration::from_secs(1));
        transport.send(answer(1)).await.expect("room");
        transport.send(answer(2)).await.expect("room");
        let stalled = transport.send(answer(3)).await;
        assert!(
            matches!(stalled, Err(TransportError::Stalled(_))),
            "{stalled:?}"
        );
        assert!(closed.is_cancelled(), "the session ends");
        assert!(
            transport.receive().await.is_none(),
            "and rmcp's loop with it"
        );
        assert!(
            out_rx.recv().await.is_some(),
            "what was queued stays readable"
        );
    }

    #[tokio::test]
    async fn messages_flow_both_ways_until_closed() {
        let (in_tx, in_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel(4);
        let closed = CancellationToken::new();
        let mut transport = ChannelTransport::new(in_rx, out_tx, closed.clone(), STALL_LIMIT);
        let ping: ClientJsonRpcMessage =
            serde_json::from_str(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).expect("ping");
        in_tx.send(ping).await.expect("send");
        assert!(matches!(
            transport.receive().await,
            Some(ClientJsonRpcMessage::Request(_))
        ));
        transport.send(answer(7)).await.expect("send");
        let sent = serde_json::to_value(out_rx.recv().await.expect("answer")).expect("json");
        assert_eq!(sent["id"], 7);
        transport.close().await.expect("close");
        assert!(transport.receive().await.is_none());
        assert!(matches!(
            transport.send(answer(8)).await,
            Err(TransportError::Closed)
        ));
    }
}
