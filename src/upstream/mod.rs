//! Named upstreams and typed calls to their Prometheus HTTP API.
//!
//! There is no free-form URL anywhere: a tool names one of the upstreams the
//! operator configured, so credentials only reach hosts the operator chose.

mod answer;
mod call;
mod client;
mod envelope;
mod error;
mod forward;
mod frames;
mod link;
mod registry;
mod streamed;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mcp_prometheus_layers::body::ResponseBody;
use mcp_prometheus_layers::endpoint::UpstreamEndpoint;
use mcp_prometheus_layers::identity::Probe;
use mcp_prometheus_layers::outbound::truncate::Truncation;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use envelope::guardrails_of;
use frames::Frames;

pub use answer::{ApiSuccess, Notes, RawAnswer};
pub use call::ApiCall;
pub use client::pooled_client;
pub use error::UpstreamError;
pub use forward::{Forward, GUARDRAIL_HEADER};
pub use link::{ExternalLink, ExternalUi, LinkConfigError, LinkTime};
pub use registry::{UnknownUpstream, Upstreams};
pub use streamed::{Decoded, StreamDecoder};

use crate::config::UpstreamConfig;
use crate::stack::{OutboundService, UpstreamStacks};
use error::find_timeout;
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::error_chain;
use mcp_prometheus_layers::outbound::upstream_auth::UpstreamAuthConfig;

/// One configured upstream with its outbound stacks.
pub struct Upstream {
    name: Arc<str>,
    /// Base URL without a trailing slash; may end in a path prefix.
    base: String,
    /// The tools' stack (answers cut to a budget).
    service: OutboundService,
    /// The passthrough's stack (answers streamed whole): see [`Forward`].
    passthrough: OutboundService,
    headers: HeaderMap,
    max_response_bytes: usize,
    /// Credentials are the caller's: a probe without them may get 401.
    forwards_credentials: bool,
    /// Where a person opens this upstream's queries.
    link: Option<ExternalLink>,
}

/// What a readiness probe of an upstream found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// The path that answered (`/-/ready`, or Mimir's `/ready`).
    pub endpoint: &'static str,
    pub status: Option<u16>,
    /// The upstream's own words, or why it could not be asked.
    pub message: String,
}

impl Upstream {
    /// An upstream from its config and its outbound stacks.
    pub fn new(config: &UpstreamConfig, stacks: UpstreamStacks) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            // validated at start-up; skipping is unreachable in practice
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::from_str(value.expose()),
            ) {
                headers.insert(name, value);
            }
        }
        Self {
            // Checked at start-up (validate_upstreams calls the same build).
            link: config.external_link().ok().flatten(),
            name: config.name.as_str().into(),
            base: config.url.trim_end_matches('/').to_owned(),
            service: stacks.tools,
            passthrough: stacks.passthrough,
            headers,
            max_response_bytes: config.max_response_bytes,
            forwards_credentials: matches!(config.auth, UpstreamAuthConfig::Forward { .. }),
        }
    }

    /// Where a person opens this upstream's queries, if the operator said.
    pub fn link(&self) -> Option<&ExternalLink> {
        self.link.as_ref()
    }

    /// The operator's name for this upstream.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this upstream sends the caller's own credential (`forward`):
    /// a call's scope must then keep the inbound headers.
    pub fn forwards_credentials(&self) -> bool {
        self.forwards_credentials
    }

    /// Calls a Prometheus API endpoint and decodes its `data`.
    pub async fn api<T: DeserializeOwned>(
        &self,
        call: ApiCall,
        scope: &CallScope,
    ) -> Result<ApiSuccess<T>, UpstreamError> {
        let endpoint = call.endpoint;
        let answer = self.send(call, Some(scope)).await?;
        self.decode(endpoint, answer)
    }

    /// Sends a request through the outbound stack and reads the whole body,
    /// up to the upstream's `max_response_bytes`. Without a scope the
    /// request reads no tenant data (readiness).
    pub async fn send(
        &self,
        call: ApiCall,
        scope: Option<&CallScope>,
    ) -> Result<RawAnswer, UpstreamError> {
        let endpoint = call.endpoint;
        let request = self.scoped_request(call, scope)?;
        let response = self.dispatch(request, endpoint).await?;
        self.read_whole(response, endpoint).await
    }

    /// The request for `call`, with the call's scope (tenants, credentials,
    /// budget) or, without one, marked as a probe that reads no tenant data.
    fn scoped_request(
        &self,
        call: ApiCall,
        scope: Option<&CallScope>,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let mut request = self.request(call)?;
        match scope {
            Some(scope) => scope.apply(&mut request),
            None => {
                request.extensions_mut().insert(Probe);
            }
        }
        Ok(request)
    }

    /// Sends `request` through the outbound stack: the answer's head.
    async fn dispatch(
        &self,
        request: Request<Full<Bytes>>,
        endpoint: &'static str,
    ) -> Result<http::Response<ResponseBody>, UpstreamError> {
        self.service
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| UpstreamError::from_transport(&self.name, endpoint, &e))
    }

    /// Reads an answer's whole body, up to the upstream's
    /// `max_response_bytes` unless the truncate layer already cut it.
    async fn read_whole(
        &self,
        response: http::Response<ResponseBody>,
        endpoint: &'static str,
    ) -> Result<RawAnswer, UpstreamError> {
        let status = response.status();
        let truncation = response.extensions().get::<Truncation>().cloned();
        let guardrails = guardrails_of(&response);
        let mut body = response.into_body();
        let mut buffer = Frames::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| self.body_error(endpoint, error.as_ref()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            // A JSON answer was already cut to its budget by the truncate
            // layer (which then records a `Truncation`); this cap is for
            // what it passes through.
            if truncation.is_none() && buffer.len() + data.len() > self.max_response_bytes {
                return Err(UpstreamError::TooLarge {
                    upstream: self.name.to_string(),
                    endpoint,
                    limit: self.max_response_bytes,
                });
            }
            buffer.push(data);
        }
        Ok(RawAnswer {
            status,
            body: buffer.into_bytes(),
            truncation,
            guardrails,
        })
    }

    /// A body that failed mid-read: timed out, or broke off.
    fn body_error(
        &self,
        endpoint: &'static str,
        error: &(dyn std::error::Error + 'static),
    ) -> UpstreamError {
        match find_timeout(error) {
            Some(timeout) => UpstreamError::Timeout {
                upstream: self.name.to_string(),
                endpoint,
                after: timeout.0,
            },
            None => UpstreamError::BrokenAnswer {
                upstream: self.name.to_string(),
                endpoint,
                detail: error_chain(error),
            },
        }
    }

    fn request(&self, call: ApiCall) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let query = (!call.params.is_empty()).then(|| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(call.params.iter().map(|(k, v)| (*k, v.as_str())))
                .finish()
        });
        let mut uri = format!("{}{}", self.base, call.path);
        let mut builder = Request::builder();
        let body = match (call.post, query) {
            (true, Some(form)) => {
                builder = builder.method(Method::POST).header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                Bytes::from(form)
            }
            (_, query) => {
                if let Some(query) = query {
                    uri.push('?');
                    uri.push_str(&query);
                }
                builder = builder.method(Method::GET);
                Bytes::new()
            }
        };
        let builder = builder
            .uri(&uri)
            .header(http::header::ACCEPT, "application/json");
        let mut request = self.finish(builder, body, call.endpoint)?;
        if let Some(parsed) = call.parsed {
            request.extensions_mut().insert(parsed);
        }
        Ok(request)
    }

    /// The request `builder` describes with `body`, carrying the
    /// operator's headers and the endpoint the upstream metrics label it
    /// with: the last step of every request to this upstream.
    fn finish(
        &self,
        builder: http::request::Builder,
        body: Bytes,
        endpoint: &'static str,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let mut request = builder
            .body(Full::new(body))
            .map_err(|e| UpstreamError::BadRequest {
                upstream: self.name.to_string(),
                detail: e.to_string(),
            })?;
        request.headers_mut().extend(self.headers.clone());
        request.extensions_mut().insert(UpstreamEndpoint {
            upstream: self.name.clone(),
            endpoint,
        });
        Ok(request)
    }

    /// Asks `/-/ready` under the base URL and, when that path does not exist
    /// (404), Mimir's `/ready`.
    pub async fn readiness(&self) -> Readiness {
        let mut last = None;
        for path in ["/-/ready", "/ready"] {
            match self.send(ApiCall::get(path), None).await {
                Ok(RawAnswer { status, .. }) if status == StatusCode::NOT_FOUND => {
                    last = Some(Readiness {
                        ready: false,
                        endpoint: path,
                        status: Some(404),
                        message: format!("{path} not found"),
                    });
                }
                Ok(RawAnswer { status, body, .. }) => {
                    let text = String::from_utf8_lossy(&body);
                    // With forwarded credentials a probe has none to send;
                    // an answer that asks for them proves the upstream is up.
                    let refused_for_credentials = self.forwards_credentials
                        && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
                    return Readiness {
                        ready: status.is_success() || refused_for_credentials,
                        endpoint: path,
                        status: Some(status.as_u16()),
                        message: text.trim().chars().take(200).collect(),
                    };
                }
                Err(error) => {
                    return Readiness {
                        ready: false,
                        endpoint: path,
                        status: None,
                        message: error.to_string(),
                    };
                }
            }
        }
        last.unwrap_or(Readiness {
            ready: false,
            endpoint: "/-/ready",
            status: None,
            message: "no readiness endpoint answered".into(),
        })
    }
}

#[cfg(test)]
mod tests;
