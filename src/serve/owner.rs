//! Who a session belongs to, for both session transports (legacy SSE and
//! streamable HTTP): the caller that opened it.

use http::Extensions;
use mcp_prometheus_layers::identity::Principal;

/// Who opened a session: the authenticated principal's issuer and subject,
/// or nobody (authn off). Every later request naming the session must come
/// from the same one, so a leaked session id alone does not let another
/// caller act in the session, read its answers or end it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(Option<(String, String)>);

impl Owner {
    /// The owner a request acts for, from the authn layer's `Principal`
    /// in its extensions.
    pub fn of(extensions: &Extensions) -> Self {
        Self(
            extensions
                .get::<Principal>()
                .map(|p| (p.issuer.clone(), p.subject.clone())),
        )
    }

    /// An owner by issuer and subject, for the tests.
    #[cfg(test)]
    pub fn subject(issuer: &str, subject: &str) -> Self {
        Self(Some((issuer.to_owned(), subject.to_owned())))
    }

    /// Nobody: authn is off.
    #[cfg(test)]
    pub fn anonymous() -> Self {
        Self(None)
    }
}
