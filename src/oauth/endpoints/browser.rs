//! Browser binding: /oauth/authorize sets a short-lived cookie that only
//! the browser which started a login holds; the callback and the consent
//! form refuse without it. Someone who sends a victim their own callback URL
//! (login CSRF) or the victim's into their own browser (session swapping)
//! gets an error page, never a code.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::oauth::crypto::{CryptoError, constant_time_eq, hash, random_token};
use crate::oauth::{LOGIN_TTL, OAuthServer};

/// Every binding cookie's name starts so; a random tag follows, so two
/// logins in one browser do not overwrite each other.
const PREFIX: &str = "mcp_login_";

/// Binding cookies of a request looked at, at most.
const MAX_COOKIES: usize = 64;

/// A new binding: the `Set-Cookie` value and the hash the login keeps.
pub struct Binding {
    pub set_cookie: HeaderValue,
    pub hash: String,
}

/// Path the cookie is scoped to: our OAuth endpoints under the issuer's path.
fn cookie_path(server: &OAuthServer) -> String {
    let path = url::Url::parse(&server.issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    format!("{path}/oauth")
}

/// A fresh cookie for a login starting now.
pub fn bind(server: &OAuthServer) -> Result<Binding, CryptoError> {
    let value = random_token(32)?;
    let tag = random_token(6)?;
    let secure = if server.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{PREFIX}{tag}={value}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        cookie_path(server),
        LOGIN_TTL.as_secs()
    );
    let set_cookie = HeaderValue::from_str(&cookie).map_err(|_| CryptoError::Random)?;
    Ok(Binding {
        set_cookie,
        hash: hash(&value),
    })
}

/// Whether the request carries the binding cookie whose hash is `expected`.
pub fn is_bound(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.starts_with(PREFIX))
        .take(MAX_COOKIES)
        .any(|(_, value)| constant_time_eq(&hash(value.trim()), expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::COOKIE,
            HeaderValue::from_str(cookie).expect("value"),
        );
        map
    }

    #[test]
    fn only_the_matching_cookie_binds() {
        let expected = hash("secret-a");
        assert!(is_bound(
            &headers("other=1; mcp_login_x=secret-b; mcp_login_y=secret-a"),
            &expected
        ));
        assert!(!is_bound(&headers("mcp_login_x=secret-b"), &expected));
        assert!(
            !is_bound(&headers("session=secret-a"), &expected),
            "a cookie of another name does not count"
        );
        assert!(!is_bound(&HeaderMap::new(), &expected));
        assert!(!is_bound(&headers("mcp_login_x"), &expected));
    }
}
