//! Outbound credentials: the operator's credential for one named upstream.
//!
//! Only the operator decides where credentials go: each upstream gets its
//! own layer instance, built from that upstream's config, and whatever
//! `Authorization` header a request already carries is replaced.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Request};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

mod forward;

use crate::BoxError;
use crate::build::BuildCtx;
use crate::identity::{InboundHeaders, Probe};
use crate::refuse::RefuseOr;
use crate::secret::Secret;

/// How often a bearer token file is read again, so rotated tokens (projected
/// service-account tokens, Vault agents) are picked up without a restart.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(30);

/// The upstream credential, as written in `[[upstreams]] auth = { … }`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum UpstreamAuthConfig {
    /// Send no credential.
    #[default]
    None,
    /// HTTP basic authentication; the password inline or from a file.
    Basic {
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_file: Option<PathBuf>,
    },
    /// A bearer token, inline or from a file that is re-read periodically.
    Bearer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_file: Option<PathBuf>,
    },
    /// The caller's own credential: the inbound header `header` (e.g.
    /// `Teleport-Jwt-Assertion`) sent upstream as `to` (default: the same
    /// name) with an optional `prefix` (e.g. `"Bearer "`). `header` must be
    /// one authn verifies, unless `forward_unverified` (the upstream then
    /// alone decides who gets in).
    Forward {
        header: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        #[serde(default)]
        forward_unverified: bool,
    },
}

/// A credential config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamAuthConfigError {
    #[error("give exactly one of `{inline}` and `{file}`")]
    Ambiguous {
        inline: &'static str,
        file: &'static str,
    },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the credential contains characters not allowed in an HTTP header")]
    NotAHeaderValue,
    #[error("{0:?} is not a header name")]
    NotAHeaderName(String),
    #[error(
        "auth.{key}: {name} cannot carry a forwarded credential (request framing, hop-by-hop, routing or the tenant header); forward into Authorization or a header of your own"
    )]
    ForbiddenHeader { key: &'static str, name: String },
    #[error(
        "auth.header: {name} is not verified by [layers.authn] (verified: {verified}), so a caller could send anything in it; verify it with an issuer's `header`, or set forward_unverified = true if the upstream checks it itself"
    )]
    Unverified { name: String, verified: String },
}

/// The request had no credential to forward.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request carries no {0} header that authn verified, so there is no credential to forward to the upstream"
)]
pub struct NothingToForward(pub HeaderName);

impl UpstreamAuthConfig {
    /// Checks the config and reads any credential files once, so a missing
    /// file is reported at start-up rather than at the first tool call.
    /// Always a layer: `none` strips a caller's `Authorization`.
    pub fn build(&self, ctx: &BuildCtx) -> Result<UpstreamAuthLayer, UpstreamAuthConfigError> {
        let source = match self {
            Self::None => None,
            Self::Basic {
                username,
                password,
                password_file,
            } => {
                let password = match (password, password_file) {
                    (Some(p), None) => p.expose().to_owned(),
                    (None, Some(path)) => read_trimmed(path)?,
                    (None, None) => String::new(),
                    (Some(_), Some(_)) => {
                        return Err(UpstreamAuthConfigError::Ambiguous {
                            inline: "password",
                            file: "password_file",
                        });
                    }
                };
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Some(CredentialSource::Fixed(sensitive(&format!(
                    "Basic {encoded}"
                ))?))
            }
            Self::Bearer { token, token_file } => match (token, token_file) {
                (Some(t), None) => Some(CredentialSource::Fixed(sensitive(&format!(
                    "Bearer {}",
                    t.expose()
                ))?)),
                (None, Some(path)) => {
                    let value = bearer_from_file(path)?;
                    Some(CredentialSource::File(Arc::new(TokenFile {
                        path: path.clone(),
                        cached: RwLock::new((Instant::now(), value)),
                    })))
                }
                _ => {
                    return Err(UpstreamAuthConfigError::Ambiguous {
                        inline: "token",
                        file: "token_file",
                    });
                }
            },
            Self::Forward {
                header,
                to,
                prefix,
                forward_unverified,
            } => {
                let name = |n: &str| {
                    HeaderName::try_from(n)
                        .map_err(|_| UpstreamAuthConfigError::NotAHeaderName(n.to_owned()))
                };
                let from = name(header)?;
                let to = match to {
                    Some(to) => name(to)?,
                    None => from.clone(),
                };
                forward::check(&from, &to, *forward_unverified, ctx)?;
                Some(CredentialSource::Forward {
                    from,
                    to,
                    prefix: prefix.clone().unwrap_or_default(),
                    unverified: *forward_unverified,
                })
            }
        };
        Ok(UpstreamAuthLayer { source })
    }
}

fn read_trimmed(path: &PathBuf) -> Result<String, UpstreamAuthConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| UpstreamAuthConfigError::Unreadable {
            path: path.clone(),
            source,
        })
}

fn bearer_from_file(path: &PathBuf) -> Result<HeaderValue, UpstreamAuthConfigError> {
    sensitive(&format!("Bearer {}", read_trimmed(path)?))
}

fn sensitive(value: &str) -> Result<HeaderValue, UpstreamAuthConfigError> {
    let mut value =
        HeaderValue::from_str(value).map_err(|_| UpstreamAuthConfigError::NotAHeaderValue)?;
    value.set_sensitive(true);
    Ok(value)
}

#[derive(Debug)]
struct TokenFile {
    path: PathBuf,
    cached: RwLock<(Instant, HeaderValue)>,
}

impl TokenFile {
    /// The current header value; re-reads the file when the cached copy is
    /// old. A failed re-read keeps the last good token and logs, because a
    /// file being rewritten must not fail in-flight calls.
    fn current(&self) -> HeaderValue {
        if let Ok(guard) = self.cached.read()
            && guard.0.elapsed() < TOKEN_FILE_REFRESH
        {
            return guard.1.clone();
        }
        let mut guard = match self.cached.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if guard.0.elapsed() >= TOKEN_FILE_REFRESH {
            match bearer_from_file(&self.path) {
                Ok(value) => guard.1 = value,
                Err(error) => tracing::warn!(%error, "keeping the previous upstream token"),
            }
            guard.0 = Instant::now();
        }
        guard.1.clone()
    }
}

#[derive(Clone, Debug)]
enum CredentialSource {
    Fixed(HeaderValue),
    File(Arc<TokenFile>),
    Forward {
        from: HeaderName,
        to: HeaderName,
        prefix: String,
        /// Forward `from` even when authn did not verify it on the request.
        unverified: bool,
    },
}

/// Adds one upstream's configured credential to every request.
#[derive(Clone, Debug)]
pub struct UpstreamAuthLayer {
    source: Option<CredentialSource>,
}

impl<S> Layer<S> for UpstreamAuthLayer {
    type Service = UpstreamAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        UpstreamAuth {
            inner,
            source: self.source.clone(),
        }
    }
}

/// Service of [`UpstreamAuthLayer`].
#[derive(Clone, Debug)]
pub struct UpstreamAuth<S> {
    inner: S,
    source: Option<CredentialSource>,
}

impl<S, B> Service<Request<B>> for UpstreamAuth<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = RefuseOr<S::Future, S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let forwarded = match &self.source {
            Some(CredentialSource::Forward {
                from,
                to,
                prefix,
                unverified,
            }) => {
                let inbound = req.extensions().get::<InboundHeaders>();
                // Only the credential authn verified on this request: a
                // second, unchecked header would otherwise ride along.
                let trusted =
                    *unverified || inbound.and_then(|h| h.verified.as_ref()) == Some(from);
                let value = inbound
                    .filter(|_| trusted)
                    .and_then(|h| h.headers.get(from))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| sensitive(&format!("{prefix}{v}")).ok());
                match value {
                    Some(value) => Some((to.clone(), value)),
                    None if req.extensions().get::<Probe>().is_some() => None,
                    None => return RefuseOr::error(NothingToForward(from.clone())),
                }
            }
            _ => None,
        };
        let headers = req.headers_mut();
        headers.remove(AUTHORIZATION);
        match &self.source {
            None => {}
            Some(CredentialSource::Fixed(value)) => {
                headers.insert(AUTHORIZATION, value.clone());
            }
            Some(CredentialSource::File(file)) => {
                headers.insert(AUTHORIZATION, file.current());
            }
            Some(CredentialSource::Forward { .. }) => {
                if let Some((to, value)) = forwarded {
                    headers.insert(to, value);
                }
            }
        }
        RefuseOr::inner(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests;
