//! DNS-rebinding protection for the routes rmcp does not serve (legacy SSE,
//! the stateless tools/call fast path, tool calls handed to a session):
//! the same `Host` and
//! `Origin` rules rmcp applies to the streamable transport
//! (`server.allowed_hosts`, `server.allowed_origins`), which rmcp keeps
//! private. A browser page on a rebound name must not open a session on a
//! server it reaches through the user's loopback or intranet.

use http::request::Parts;
use http::{HeaderMap, Uri};

/// Why a request's `Host` or `Origin` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebindingError {
    #[error("the Host header is missing or malformed")]
    BadHost,
    #[error("the Host header {0:?} is not in server.allowed_hosts")]
    HostNotAllowed(String),
    #[error("the Origin header is malformed")]
    BadOrigin,
    #[error("the Origin header {0:?} is not in server.allowed_origins")]
    OriginNotAllowed(String),
}

/// A host or origin authority, lower-cased, IPv6 brackets removed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    fn parse(text: &str) -> Option<Self> {
        let authority = http::uri::Authority::try_from(text.trim()).ok()?;
        Some(Self {
            host: authority
                .host()
                .trim_matches(['[', ']'])
                .to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

/// An allowed origin: `scheme://host[:port]`, `…:*` for any port, or
/// `null`. Without a port any port matches (rmcp's current rule).
#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedOrigin {
    Null,
    Tuple {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
}

/// A browser origin as sent: `null` or a scheme and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Null,
    Tuple {
        scheme: String,
        authority: Authority,
    },
}

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("null") {
            return Some(Self::Null);
        }
        let uri = http::Uri::try_from(text).ok()?;
        Some(Self::Tuple {
            scheme: uri.scheme_str()?.to_ascii_lowercase(),
            authority: Authority::parse(uri.authority()?.as_str())?,
        })
    }
}

fn parse_allowed_origin(text: &str) -> Option<AllowedOrigin> {
    let text = text.trim();
    let (base, any_port) = match text.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (text, false),
    };
    match Origin::parse(base)? {
        Origin::Null if !any_port => Some(AllowedOrigin::Null),
        Origin::Null => None,
        Origin::Tuple { authority, .. } if any_port && authority.port.is_some() => None,
        Origin::Tuple { scheme, authority } => Some(AllowedOrigin::Tuple {
            scheme,
            host: authority.host,
            port: authority.port,
        }),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The `Host` and `Origin` allow-lists, parsed once.
#[derive(Debug, Clone, Default)]
pub struct RebindingGuard {
    /// `None`: any host (`allowed_hosts = ["*"]`).
    hosts: Option<Vec<Authority>>,
    origins: Vec<AllowedOrigin>,
}

impl RebindingGuard {
    /// The guard `[server]` configures; unparsable entries match nothing.
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let hosts = (!allowed_hosts.iter().any(|h| h == "*")).then(|| {
            allowed_hosts
                .iter()
                // rmcp skips empty entries: "" must not admit an empty Host
                .filter(|h| !h.trim().is_empty())
                .filter_map(|h| {
                    Authority::parse(h).or_else(|| {
                        Some(Authority {
                            host: h.trim().trim_matches(['[', ']']).to_ascii_lowercase(),
                            port: None,
                        })
                    })
                })
                .collect()
        });
        let origins = allowed_origins
            .iter()
            .filter_map(|o| parse_allowed_origin(o))
            .collect();
        Self { hosts, origins }
    }

    /// Admits a request whose `Host` is listed and whose `Origin`, if it
    /// sent one (browsers do), is listed too.
    pub fn check(&self, parts: &Parts) -> Result<(), RebindingError> {
        self.check_request(&parts.uri, &parts.headers)
    }

    /// [`Self::check`] for a request not yet split into parts.
    pub fn check_request(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), RebindingError> {
        if let Some(hosts) = &self.hosts {
            let host = host_of(uri, headers).ok_or(RebindingError::BadHost)?;
            let allowed = hosts.iter().any(|allowed| {
                allowed.host == host.host && allowed.port.is_none_or(|p| host.port == Some(p))
            });
            if !allowed {
                return Err(RebindingError::HostNotAllowed(display(&host)));
            }
        }
        self.check_origin(headers)
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), RebindingError> {
        let Some(value) = headers.get(http::header::ORIGIN) else {
            return Ok(());
        };
        let text = value.to_str().map_err(|_| RebindingError::BadOrigin)?;
        let origin = Origin::parse(text).ok_or(RebindingError::BadOrigin)?;
        let allowed = self.origins.iter().any(|allowed| match (allowed, &origin) {
            (AllowedOrigin::Null, Origin::Null) => true,
            (
                AllowedOrigin::Tuple { scheme, host, port },
                Origin::Tuple {
                    scheme: o_scheme,
                    authority,
                },
            ) => {
                scheme == o_scheme
                    && *host == authority.host
                    && port.is_none_or(|p| {
                        authority.port.or_else(|| default_port(o_scheme)) == Some(p)
                    })
            }
            _ => false,
        });
        if allowed {
            Ok(())
        } else {
            Err(RebindingError::OriginNotAllowed(text.to_owned()))
        }
    }
}

/// The request's `Host`, else the URI's authority (HTTP/2 `:authority`).
fn host_of(uri: &Uri, headers: &HeaderMap) -> Option<Authority> {
    match headers.get(http::header::HOST) {
        Some(value) => Authority::parse(value.to_str().ok()?),
        None => Authority::parse(uri.authority()?.as_str()),
    }
}

fn display(authority: &Authority) -> String {
    match authority.port {
        Some(port) => format!("{}:{port}", authority.host),
        None => authority.host.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: Option<&str>, origin: Option<&str>) -> Parts {
        let mut builder = http::Request::get("/sse");
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        if let Some(origin) = origin {
            builder = builder.header("origin", origin);
        }
        builder.body(()).expect("request").into_parts().0
    }

    fn guard() -> RebindingGuard {
        RebindingGuard::new(
            &[
                "localhost".into(),
                "127.0.0.1".into(),
                "mcp.example:8443".into(),
            ],
            &["http://localhost:*".into(), "https://app.example".into()],
        )
    }

    #[test]
    fn listed_hosts_pass_with_any_port_unless_one_is_listed() {
        let g = guard();
        assert_eq!(g.check(&parts(Some("127.0.0.1:8080"), None)), Ok(()));
        assert_eq!(g.check(&parts(Some("LOCALHOST"), None)), Ok(()));
        assert_eq!(g.check(&parts(Some("mcp.example:8443"), None)), Ok(()));
        assert!(matches!(
            g.check(&parts(Some("mcp.example:9000"), None)),
            Err(RebindingError::HostNotAllowed(_))
        ));
        assert!(matches!(
            g.check(&parts(Some("evil.example"), None)),
            Err(RebindingError::HostNotAllowed(h)) if h == "evil.example"
        ));
        assert_eq!(
            g.check(&parts(None, None)),
            Err(RebindingError::BadHost),
            "no Host at all"
        );
    }

    #[test]
    fn origins_are_checked_only_when_sent() {
        let g = guard();
        assert_eq!(
            g.check(&parts(Some("localhost"), Some("http://localhost:3000"))),
            Ok(())
        );
        assert_eq!(
            g.check(&parts(Some("localhost"), Some("https://app.example"))),
            Ok(())
        );
        assert!(matches!(
            g.check(&parts(Some("localhost"), Some("https://evil.example"))),
            Err(RebindingError::OriginNotAllowed(_))
        ));
        assert!(matches!(
            g.check(&parts(Some("localhost"), Some("null"))),
            Err(RebindingError::OriginNotAllowed(_))
        ));
        assert_eq!(
            g.check(&parts(Some("localhost"), Some("not a url"))),
            Err(RebindingError::BadOrigin)
        );
    }

    #[test]
    fn a_star_accepts_any_host_but_still_checks_origins() {
        let g = RebindingGuard::new(&["*".into()], &[]);
        assert_eq!(g.check(&parts(Some("anything.example"), None)), Ok(()));
        assert!(
            g.check(&parts(
                Some("anything.example"),
                Some("https://app.example")
            ))
            .is_err()
        );
    }

    #[test]
    fn an_empty_allowed_host_admits_nothing() {
        let guard = RebindingGuard::new(&["".to_owned(), "localhost".to_owned()], &[]);
        assert!(guard.check(&parts(Some(":38711"), None)).is_err());
        assert!(guard.check(&parts(Some("localhost:1"), None)).is_ok());
    }
}
