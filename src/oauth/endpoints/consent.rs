//! Our consent page and its form: after the provider login, a user sees
//! which application asks for access, where the answer goes, as whom and
//! for what, and approves or denies. Without it any dynamically registered
//! client (or metadata document on any host) could obtain a code for a
//! victim who merely follows a link and logs in (a confused deputy).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mcp_prometheus_layers::fetch::is_loopback_url;
use serde::Deserialize;

use super::OAuthError;
use super::authorize::redirect_error;
use super::browser::is_bound;
use super::callback::{consent_key, foreign_browser, issue_code};
use crate::oauth::OAuthServer;
use crate::oauth::crypto::hash;
use crate::oauth::store::ApprovalRequest;

/// The page's policy: nothing loads, inline style only, and the form may
/// go to us and (after our redirect) to the client's redirect URI.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/// Characters that change how text reads without being seen: bidi
/// overrides and isolates, zero-width joiners and marks. A client name
/// must not use them to look like another application.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// HTML-escapes text a client or provider chose.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() || invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Where the code will go: the host (or scheme) shown to the user, whether
/// it is this computer, and the CSP source allowing the redirect.
struct Destination {
    shown: String,
    loopback: bool,
    source: String,
}

fn destination(redirect_uri: &str) -> Destination {
    match url::Url::parse(redirect_uri) {
        Ok(url) => {
            let loopback = url.scheme() == "http" && is_loopback_url(&url);
            let host = match (url.host_str(), url.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => String::new(),
            };
            // A native app's scheme is named as such: `x-app://claude.ai/cb`
            // goes to whatever app claims `x-app:`, not to claude.ai.
            let shown = if matches!(url.scheme(), "http" | "https") {
                host
            } else {
                format!(
                    "an application on this device registered for {}: ({}://{host})",
                    url.scheme(),
                    url.scheme()
                )
            };
            let origin = url.origin();
            let source = if origin.is_tuple() {
                origin.ascii_serialization()
            } else {
                format!("{}:", url.scheme())
            };
            Destination {
                shown,
                loopback,
                source,
            }
        }
        Err(_) => Destination {
            shown: redirect_uri.to_owned(),
            loopback: false,
            source: String::new(),
        },
    }
}

/// The consent page for a login waiting under the CSRF token `csrf`.
pub fn page(server: &OAuthServer, request: &ApprovalRequest, csrf: &str) -> Response {
    let grant = &request.grant;
    let name = request
        .client_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or("An application without a name");
    let to = destination(&grant.redirect_uri);
    let where_to = if to.loopback {
        format!(
            "<p>The answer goes to an application on this computer (<code>{}</code>).</p>",
            escape(&to.shown)
        )
    } else {
        format!(
            "<p class=\"warn\"><strong>Warning:</strong> the answer goes to <strong>{}</strong>, which is not on this computer. Approve only if you trust that site and you started this login yourself.</p>",
            escape(&to.shown)
        )
    };
    let user = grant.user.email.as_deref().unwrap_or(&grant.user.subject);
    let scopes = if grant.scope.is_empty() {
        "<li>(none)</li>".to_owned()
    } else {
        grant
            .scope
            .split(' ')
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect()
    };
    let action = format!("{}/oauth/consent", server.issuer);
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Allow access to your metrics?</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.4}}
.warn{{background:#fff3cd;border:1px solid #e0a800;padding:.6em}}code{{word-break:break-all}}
button{{font-size:1em;padding:.5em 1.2em;margin-right:1em}}</style></head>
<body><h1>Allow <em>{name}</em> to read your metrics?</h1>
<p>Signed in as <strong>{user}</strong>.</p>
<p>Application: <strong>{name}</strong><br>Client ID: <code>{client_id}</code></p>
{where_to}
<p>Access to: <code>{resource}</code></p>
<p>Scopes:</p><ul>{scopes}</ul>
<form method="post" action="{action}">
<input type="hidden" name="csrf_token" value="{csrf}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>
"#,
        name = escape(name),
        user = escape(user),
        client_id = escape(&grant.client_id),
        resource = escape(&grant.resource),
        action = escape(&action),
        csrf = escape(csrf),
    );
    let policy = if to.source.is_empty() {
        CSP.to_owned()
    } else {
        // Browsers apply form-action to the redirect that answers the form.
        format!("{CSP} {}", to.source)
    } + "; frame-ancestors 'none'";
    let mut response = (StatusCode::OK, Html(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    csrf_token: Option<String>,
    decision: Option<String>,
}

/// `POST /oauth/consent`: approve or deny, once, from the browser that
/// started the login.
pub async fn decide(
    State(server): State<Arc<OAuthServer>>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ConsentForm>,
) -> Response {
    let Some(csrf) = form
        .csrf_token
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 128)
    else {
        return OAuthError::bad(
            "invalid_request",
            "csrf_token is missing: approve or deny from the consent page",
        )
        .into_response();
    };
    let request = match server.store.take_approval(&hash(csrf)).await {
        Ok(Some(request)) => request,
        Ok(None) => {
            return OAuthError::bad(
                "invalid_request",
                "unknown, used or expired consent form: start again from the application",
            )
            .into_response();
        }
        Err(error) => return OAuthError::internal(error).into_response(),
    };
    if !is_bound(&headers, &request.browser) {
        return foreign_browser();
    }
    let state = request.client_state.as_deref();
    match form.decision.as_deref() {
        Some("approve") => {
            let ttl = server.config.consent_ttl.0;
            if !ttl.is_zero()
                && let Err(error) = server
                    .store
                    .remember_consent(&consent_key(&request.grant), ttl)
                    .await
            {
                return OAuthError::internal(error).into_response();
            }
            issue_code(&server, request.grant, state, StatusCode::SEE_OTHER).await
        }
        Some("deny") => redirect_error(
            &server,
            StatusCode::SEE_OTHER,
            &request.grant.redirect_uri,
            state,
            "access_denied",
            "the user denied access",
        ),
        _ => OAuthError::bad(
            "invalid_request",
            "decision must be approve or deny; start again from the application",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script>&\"\u{7}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }

    #[test]
    fn destinations_name_the_host_and_flag_what_is_not_loopback() {
        let local = destination("http://127.0.0.1:49152/callback");
        assert!(local.loopback);
        assert_eq!(local.shown, "127.0.0.1:49152");
        assert_eq!(local.source, "http://127.0.0.1:49152");
        let remote = destination("https://app.example/cb");
        assert!(!remote.loopback);
        assert_eq!(remote.shown, "app.example");
        assert_eq!(remote.source, "https://app.example");
        let native = destination("x-app://claude.ai/oauth/callback");
        assert!(!native.loopback);
        assert_eq!(native.source, "x-app:");
        assert!(
            native.shown.contains("registered for x-app:"),
            "{}",
            native.shown
        );
        assert_eq!(escape("Claude\u{202E}\u{200B}"), "Claude");
    }
}
