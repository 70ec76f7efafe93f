//! The body types that travel through the outbound stack.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

use crate::BoxError;

/// Response body of every outbound service once type-erased: layers wrap the
/// client's body (timeouts, accounting) and the caller reads it as a stream.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Request body of outbound calls: Prometheus API requests are small forms.
pub type RequestBody = http_body_util::Full<Bytes>;
