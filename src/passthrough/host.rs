//! DNS-rebinding protection for the passthrough: the `Host` a request names
//! must be one of `server.allowed_hosts`, as rmcp checks for `/mcp` (same
//! matching: case-insensitive host, the port only where the entry names
//! one; `["*"]` accepts any host). Without it, a web page whose name was
//! rebound to this server's address could read the API through the
//! victim's browser when no token is required.

use http::request::Parts;
use http::uri::Authority;

/// The allowed `Host` values; `None` accepts any.
#[derive(Clone, Debug)]
pub struct AllowedHosts(Option<Vec<(String, Option<u16>)>>);

impl AllowedHosts {
    /// From `server.allowed_hosts` (`"*"` anywhere, or an empty list, accepts
    /// any host, as rmcp does).
    pub fn new(allowed: &[String]) -> Self {
        if allowed.is_empty() || allowed.iter().any(|h| h.trim() == "*") {
            return Self(None);
        }
        Self(Some(
            allowed
                .iter()
                .map(|entry| entry.trim())
                .filter(|entry| !entry.is_empty())
                .map(|entry| match Authority::try_from(entry) {
                    Ok(authority) => (normalize(authority.host()), authority.port_u16()),
                    Err(_) => (normalize(entry), None),
                })
                .collect(),
        ))
    }

    /// Whether the request's `Host` (or HTTP/2 `:authority`) is allowed; a
    /// request naming no host, or a malformed one, is not.
    pub fn admits(&self, parts: &Parts) -> bool {
        let Some(allowed) = &self.0 else {
            return true;
        };
        let named = match parts.headers.get(http::header::HOST) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| Authority::try_from(v).ok()),
            None => parts.uri.authority().cloned(),
        };
        let Some(named) = named else {
            return false;
        };
        let host = normalize(named.host());
        allowed
            .iter()
            .any(|(h, port)| *h == host && port.is_none_or(|p| named.port_u16() == Some(p)))
    }
}

fn normalize(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(host: Option<&str>) -> Parts {
        let mut builder = http::Request::builder().uri("/prometheus/api/v1/query");
        if let Some(host) = host {
            builder = builder.header(http::header::HOST, host);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn hosts_match_like_rmcp() {
        let allowed = AllowedHosts::new(&[
            "localhost".into(),
            "127.0.0.1".into(),
            "::1".into(),
            "mcp.example.com:8443".into(),
        ]);
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1:9",
            "[::1]:8080",
            "mcp.example.com:8443",
        ] {
            assert!(allowed.admits(&parts(Some(ok))), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "mcp.example.com",
            "mcp.example.com:443",
            "bad host",
        ] {
            assert!(!allowed.admits(&parts(Some(bad))), "{bad}");
        }
        assert!(!allowed.admits(&parts(None)), "no host named");
    }

    #[test]
    fn a_star_or_nothing_accepts_any_host() {
        for list in [vec!["*".to_owned()], vec![]] {
            assert!(AllowedHosts::new(&list).admits(&parts(Some("evil.example"))));
        }
    }
}
