//! The authenticated Prometheus API passthrough (`[passthrough]`, off by
//! default): `<prefix>/api/v1/<read API>` forwarded to one upstream, for
//! clients that speak the Prometheus HTTP API rather than MCP (Grafana,
//! promtool-like scripts, client libraries).
//!
//! Why it is safe to open: the route sits behind the MCP route's inbound
//! stack (authn, audience, tenancy and whatever else guards `/mcp`), and
//! the request goes out through the same outbound stack as a tool's call
//! (tenant header, upstream credentials, metrics, timeout), minus only the
//! truncation. Only the read APIs in [`paths::APIS`] are served, each
//! mapped to the tool that reads the same data ([`tool_for_path`]), and the
//! upstream request is rebuilt from checked parts: no caller header but
//! `Accept` travels (see `upstream::Forward`).

mod guard;
mod host;
mod paths;
mod refusal;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE};
use http::{Method, request::Parts};
use http_body_util::{BodyExt, Limited};
use mcp_prometheus_layers::call_scope::CallScope;
use mcp_prometheus_layers::outbound::tenant_header::SCOPE_ORG_ID;
use serde::{Deserialize, Serialize};

use guard::{Draft, authorize};
use host::AllowedHosts;
use mcp_prometheus_layers::audit::AuditLog;
pub use paths::tool_for_path;
use refusal::Refusal;

use crate::config::Config;
use crate::upstream::{Forward, GUARDRAIL_HEADER, Upstream, Upstreams};

/// Longest query string forwarded; longer parameters belong in a POST form.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Paths of our own that the prefix may not cover or sit under (besides
/// `server.mcp_path`).
const RESERVED: &[&str] = &["/oauth", "/.well-known", "/sse", "/message"];

/// `[passthrough]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassthroughConfig {
    pub enabled: bool,
    /// Where the API is served: `<prefix>/api/v1/query` and so on.
    pub prefix: String,
    /// The upstream it forwards to; the default upstream (the first) when
    /// unset, as for tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

impl Default for PassthroughConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            prefix: "/prometheus".into(),
            upstream: None,
        }
    }
}

/// A `[passthrough]` table that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PassthroughConfigError {
    #[error("passthrough.prefix: {prefix:?} {why}")]
    Prefix { prefix: String, why: &'static str },
    #[error(
        "passthrough.prefix: {prefix:?} overlaps {taken}, which serves {owner}; choose another prefix"
    )]
    Collides {
        prefix: String,
        taken: String,
        owner: &'static str,
    },
    #[error("passthrough.upstream: unknown upstream {name:?}; configured upstreams are {known}")]
    UnknownUpstream { name: String, known: String },
    #[error("passthrough: there is no [[upstreams]] entry to forward to")]
    NoUpstream,
}

/// A checked `[passthrough]`: where it is served and the upstream's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassthroughSettings {
    pub prefix: String,
    pub upstream: String,
}

impl PassthroughConfig {
    /// Checks the table against the rest of the config (the one place it
    /// is checked: start-up and `check-config` both call this); `None`
    /// when switched off.
    pub fn build(
        &self,
        config: &Config,
    ) -> Result<Option<PassthroughSettings>, PassthroughConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        check_prefix(&self.prefix)?;
        let mcp = (config.server.mcp_path.as_str(), "the MCP endpoint");
        let reserved = RESERVED
            .iter()
            .map(|path| (*path, "the server's own routes"));
        for (taken, owner) in std::iter::once(mcp).chain(reserved) {
            if overlaps(&self.prefix, taken) {
                return Err(PassthroughConfigError::Collides {
                    prefix: self.prefix.clone(),
                    taken: taken.to_owned(),
                    owner,
                });
            }
        }
        let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        let upstream = match &self.upstream {
            None => names.first().ok_or(PassthroughConfigError::NoUpstream)?,
            Some(name) => names.iter().find(|n| *n == name).ok_or_else(|| {
                PassthroughConfigError::UnknownUpstream {
                    name: name.clone(),
                    known: names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?,
        };
        Ok(Some(PassthroughSettings {
            prefix: self.prefix.clone(),
            upstream: (*upstream).to_owned(),
        }))
    }
}

/// A prefix is `/` and segments of unreserved URL characters: nothing a
/// router reads as a pattern (`{`, `*`, `:`), nothing decoded (`%`), no
/// `.`/`..` segment and no trailing slash.
fn check_prefix(prefix: &str) -> Result<(), PassthroughConfigError> {
    let refuse = |why| {
        Err(PassthroughConfigError::Prefix {
            prefix: prefix.to_owned(),
            why,
        })
    };
    let Some(rest) = prefix.strip_prefix('/') else {
        return refuse("must start with '/'");
    };
    if rest.is_empty() || rest.ends_with('/') {
        return refuse("must name a path below '/', without a trailing slash");
    }
    for segment in rest.split('/') {
        let plain = segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
        if segment.is_empty() || segment == "." || segment == ".." || !plain {
            return refuse(
                "must be '/'-separated segments of letters, digits, '-', '.', '_' and '~' (no empty, '.' or '..' segment)",
            );
        }
    }
    Ok(())
}

/// Whether one path is the other or lies under it.
fn overlaps(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer.trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/'))
    };
    under(a, b) || under(b, a)
}

/// The running passthrough: its prefix, upstream, hosts and body bound.
#[derive(Clone)]
pub struct Passthrough {
    prefix: Arc<str>,
    upstream: Arc<Upstream>,
    /// `server.allowed_hosts`, checked here as rmcp checks it for `/mcp`.
    hosts: AllowedHosts,
    /// The inbound body bound (`layers.limits.max_body_bytes`), applied here
    /// too: the limits layer trusts a declared length, and may be off.
    max_body_bytes: usize,
    /// Where each request's audit line goes, when `[audit]` is on.
    audit: Option<AuditLog>,
}

impl Passthrough {
    /// The same passthrough, writing an audit line per request.
    pub fn audited(self, audit: Option<AuditLog>) -> Self {
        Self { audit, ..self }
    }

    /// The passthrough of checked `settings` over the running upstreams,
    /// with `config`'s allowed hosts and body bound.
    pub fn new(
        settings: PassthroughSettings,
        upstreams: &Upstreams,
        config: &Config,
    ) -> Result<Self, PassthroughConfigError> {
        let upstream = upstreams.get(Some(&settings.upstream)).map_err(|e| {
            PassthroughConfigError::UnknownUpstream {
                name: e.name,
                known: e.known,
            }
        })?;
        Ok(Self {
            prefix: settings.prefix.into(),
            upstream: upstream.clone(),
            hosts: AllowedHosts::new(&config.server.allowed_hosts),
            max_body_bytes: config.layers.limits.max_body_bytes,
            audit: None,
        })
    }

    /// The route label of its inbound metrics: the prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Everything under the prefix, every method: the handler answers what
    /// is not served itself (a Prometheus-shaped 404 or 405), so the caller
    /// learns what is.
    pub fn router(&self) -> Router {
        let prefix = &self.prefix;
        Router::new()
            .route(prefix, any(handle))
            .route(&format!("{prefix}/"), any(handle))
            .route(&format!("{prefix}/{{*rest}}"), any(handle))
            .with_state(self.clone())
    }

    /// Checks the request, forwards it and streams the answer back.
    async fn serve(&self, request: Request, draft: &mut Draft) -> Result<Response, Refusal> {
        let (parts, body) = request.into_parts();
        if !self.hosts.admits(&parts) {
            return Err(Refusal::Host);
        }
        let raw_path = parts.uri.path();
        let path = raw_path.strip_prefix(&*self.prefix).unwrap_or(raw_path);
        let resolved = paths::resolve(path).map_err(Refusal::NotServed)?;
        let api = resolved.api;
        if !api.allows(&parts.method) {
            return Err(Refusal::Method {
                method: parts.method.clone(),
                path: path.to_owned(),
                allow: api.allow(),
            });
        }
        let query = parts.uri.query().map(str::to_owned);
        if let Some(len) = query
            .as_ref()
            .map(String::len)
            .filter(|n| *n > MAX_QUERY_BYTES)
        {
            return Err(Refusal::QueryTooLong(len));
        }
        // The tool policy decides on the tool that reads the same data;
        // fail closed should the two tables ever disagree.
        let tool = tool_for_path(path)
            .ok_or_else(|| Refusal::NotServed(paths::PathError::NotServed(path.to_owned())))?;
        draft.tool = Some(tool);
        authorize(&parts, tool)?;
        let scope = self.scope(&parts)?;
        draft.scope(&scope);
        let form = match parts.method {
            Method::POST => Some(self.form(&parts, body).await?),
            _ => None,
        };
        if self.audit.is_some() {
            draft.parameters(query.as_deref().unwrap_or_default().as_bytes());
            draft.parameters(form.as_deref().unwrap_or_default());
        }
        let forward = Forward {
            method: parts.method.clone(),
            endpoint: api.path,
            path: resolved.upstream_path,
            query,
            accept: parts.headers.get(ACCEPT).cloned(),
            form,
        };
        let answer = self.upstream.forward(forward, &scope).await?;
        let (head, body) = answer.into_parts();
        let mut response = Response::new(Body::new(body));
        *response.status_mut() = head.status;
        // Only what describes the body: no hop-by-hop header, no
        // Set-Cookie, nothing else of the upstream's.
        for name in [CONTENT_TYPE, CONTENT_ENCODING, GUARDRAIL_HEADER] {
            if let Some(value) = head.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }

    /// The call's scope: the caller's tenants (from tenancy), narrowed by a
    /// caller's `X-Scope-OrgID` exactly as a tool's `org_id` is: a subset
    /// of the allowed tenants, never more.
    fn scope(&self, parts: &Parts) -> Result<CallScope, Refusal> {
        let scope = CallScope::from_parts(parts, self.upstream.forwards_credentials());
        let mut values = parts.headers.get_all(&SCOPE_ORG_ID).iter();
        let org_id = match (values.next(), values.next()) {
            (None, _) => None,
            (Some(value), None) => Some(value.to_str().map_err(|_| Refusal::OrgIdHeader)?),
            (Some(_), Some(_)) => return Err(Refusal::OrgIdHeader),
        };
        scope.narrow(org_id).map_err(Refusal::Tenant)
    }

    /// A POST's body: a form (or nothing), within the body bound.
    async fn form(&self, parts: &Parts, body: Body) -> Result<Bytes, Refusal> {
        let bytes = Limited::new(body, self.max_body_bytes)
            .collect()
            .await
            .map_err(|error| {
                if error
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    Refusal::BodyTooLarge(self.max_body_bytes)
                } else {
                    Refusal::BrokenBody(error.to_string())
                }
            })?
            .to_bytes();
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let essence = content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .unwrap_or("")
            .trim();
        if bytes.is_empty() || essence.eq_ignore_ascii_case(FORM) {
            Ok(bytes)
        } else {
            Err(Refusal::NotAForm(
                content_type.unwrap_or_else(|| "none".into()),
            ))
        }
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn handle(State(passthrough): State<Passthrough>, request: Request) -> Response {
    let Some(audit) = passthrough.audit.clone() else {
        let mut unused = Draft::default();
        return match passthrough.serve(request, &mut unused).await {
            Ok(response) => response,
            Err(refusal) => refusal.response(),
        };
    };
    let started = std::time::Instant::now();
    let extensions = request.extensions().clone();
    let mut draft = Draft::default();
    let result = passthrough.serve(request, &mut draft).await;
    let (outcome, reason) = match &result {
        Ok(_) => ("ok", None),
        Err(refusal) => (refusal.outcome(), Some(refusal.to_string())),
    };
    let upstream = passthrough.upstream.name().to_owned();
    draft.record(
        &audit,
        &extensions,
        &upstream,
        outcome,
        reason,
        started.elapsed(),
    );
    result.unwrap_or_else(|refusal| refusal.response())
}

#[cfg(test)]
mod tests;
