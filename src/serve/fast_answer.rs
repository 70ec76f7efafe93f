//! The JSON-RPC answer of a fast-path tool call, written as rmcp writes
//! it. Structured content the tool wrote as JSON text goes out as it is:
//! the result is written by rmcp's own serialization and reopened before
//! its last `}` for the `structuredContent` member.

use std::io::Write as _;

use rmcp::model::{CallToolResponse, RequestId, ServerJsonRpcMessage, ServerResult};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

use super::chunked::ChunkedWriter;
use super::fast_call::McpBody;
use crate::mcp::CallAnswer;

/// The body of the answer to call `id`: one buffer, as rmcp writes it;
/// in 64 KiB chunks when the tool wrote its structured content as JSON
/// text (only answers of megabytes do).
pub fn write_answer(id: RequestId, answer: CallAnswer) -> serde_json::Result<(McpBody, usize)> {
    let Some(structured) = answer.structured_json else {
        let message = ServerJsonRpcMessage::response(
            ServerResult::from(CallToolResponse::from(answer.result)),
            id,
        );
        let body = serde_json::to_vec(&message)?;
        let length = body.len();
        return Ok((Full::new(Bytes::from(body)).boxed(), length));
    };
    let mut body = ChunkedWriter::default();
    body.write_all(br#"{"jsonrpc":"2.0","id":"#)
        .map_err(serde_json::Error::io)?;
    serde_json::to_writer(&mut body, &id)?;
    body.write_all(br#","result":"#)
        .map_err(serde_json::Error::io)?;
    serde_json::to_writer(&mut body, &answer.result)?;
    // A result is an object with at least `content`: `{"content":[…]…}`.
    if body.pop() != Some(b'}') {
        return Err(serde_json::Error::io(std::io::Error::other(
            "a tool result was not written as an object",
        )));
    }
    body.write_all(br#","structuredContent":"#)
        .map_err(serde_json::Error::io)?;
    body.write_all(structured.as_str().as_bytes())
        .map_err(serde_json::Error::io)?;
    body.write_all(b"}}").map_err(serde_json::Error::io)?;
    let length = body.len();
    Ok((body.into_body(), length))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use rmcp::model::{CallToolResult, ContentBlock};
    use serde_json::{Value, json};

    use super::*;
    use crate::tools::json_text::JsonText;

    async fn written(id: RequestId, answer: CallAnswer) -> Value {
        let (body, length) = write_answer(id, answer).expect("written");
        let bytes = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(bytes.len(), length);
        serde_json::from_slice(&bytes).expect("JSON")
    }

    /// Structured content written as JSON text gives the answer rmcp gives
    /// for the same content as a `Value`.
    #[tokio::test]
    async fn structured_json_answers_as_rmcp_answers() {
        let structured =
            json!({"data": {"series": [{"labels": {"a": "b\"c"}, "mean": 1.5}]}, "returned": 1});
        let result = CallToolResult::success(vec![ContentBlock::text("| a | 1.5 |")]);
        for id in [RequestId::Number(7), RequestId::String("x-1".into())] {
            let mut with_value = result.clone();
            with_value.structured_content = Some(structured.clone());
            let plain = CallAnswer {
                result: with_value,
                structured_json: None,
            };
            let json = CallAnswer {
                result: result.clone(),
                structured_json: Some(JsonText::of(&structured).expect("written")),
            };
            let (want, got) = (written(id.clone(), plain).await, written(id, json).await);
            assert_eq!(got, want);
            assert_eq!(got["result"]["structuredContent"], structured);
        }
    }
}
