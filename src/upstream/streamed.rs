//! A success answer decoded while it arrives: the truncate layer hands the
//! kept bytes over as they settle ([`StreamKept`]) and a [`StreamDecoder`]
//! reads them, so a 30 MB range answer is summarized in flight instead of
//! being held whole and read after.

use bytes::Bytes;
use http_body_util::BodyExt;
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::outbound::truncate::{PendingTruncation, StreamKept};
use serde::de::DeserializeOwned;

use super::envelope::guardrails_of;
use super::{ApiCall, ApiSuccess, Notes, RawAnswer, Upstream, UpstreamError};

/// What a decoder made of a whole success answer.
pub enum Decoded<T> {
    /// The answer's `data`, with the envelope's `warnings` and `infos`.
    Data {
        data: T,
        warnings: Vec<String>,
        infos: Vec<String>,
    },
    /// Not the shape the decoder reads in flight: the whole body, to be
    /// decoded as any answer is.
    Whole(Bytes),
}

/// Reads a 2xx JSON answer piece by piece.
pub trait StreamDecoder {
    /// What the answer's `data` becomes.
    type Output: DeserializeOwned;
    /// The next bytes of the answer; an error says why they are not the
    /// JSON expected.
    fn feed(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// The answer ended.
    fn finish(self) -> Result<Decoded<Self::Output>, String>;
}

impl Upstream {
    /// Calls a Prometheus API endpoint and decodes its answer with
    /// `decoder` while it arrives. Answers the truncate layer does not
    /// stream (errors, other content types) are read whole and decoded as
    /// by [`Upstream::api`].
    pub async fn api_streamed<D: StreamDecoder>(
        &self,
        call: ApiCall,
        scope: &CallScope,
        mut decoder: D,
    ) -> Result<ApiSuccess<D::Output>, UpstreamError> {
        let endpoint = call.endpoint;
        let mut request = self.scoped_request(call, Some(scope))?;
        request.extensions_mut().insert(StreamKept);
        let response = self.dispatch(request, endpoint).await?;
        let Some(pending) = response.extensions().get::<PendingTruncation>().cloned() else {
            let answer = self.read_whole(response, endpoint).await?;
            return self.decode(endpoint, answer);
        };
        let status = response.status();
        let guardrails = guardrails_of(&response);
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| self.body_error(endpoint, error.as_ref()))?;
            if let Ok(data) = frame.into_data() {
                decoder
                    .feed(&data)
                    .map_err(|detail| self.invalid_json(endpoint, detail))?;
            }
        }
        let truncation = pending.get();
        match decoder
            .finish()
            .map_err(|detail| self.invalid_json(endpoint, detail))?
        {
            Decoded::Data {
                data,
                warnings,
                infos,
            } => Ok(ApiSuccess {
                data,
                notes: Notes {
                    warnings,
                    infos,
                    truncation,
                    guardrails,
                },
            }),
            Decoded::Whole(body) => self.decode(
                endpoint,
                RawAnswer {
                    status,
                    body,
                    truncation,
                    guardrails,
                },
            ),
        }
    }
}
