//! Who a session belongs to, for both session transports (legacy SSE and
//! streamable HTTP): the caller that opened it.

use http::Extensions;
use mcp_prometheus_layers::identity::Principal;

/// Who opened a session: the authenticated principal's issuer, subject and
/// OAuth client, or nobody (authn off). Every later request naming the
/// session must come from the same one, so a leaked session id alone does
/// not let another caller act in the session, read its answers or end it.
/// The client counts: another application the same user signed in to is
/// not this session's client (a refreshed token keeps its client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(Option<Opener>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Opener {
    issuer: String,
    subject: String,
    client: Option<String>,
}

impl Owner {
    /// The owner a request acts for, from the authn layer's `Principal`
    /// in its extensions.
    pub fn of(extensions: &Extensions) -> Self {
        Self(extensions.get::<Principal>().map(|p| Opener {
            issuer: p.issuer.clone(),
            subject: p.subject.clone(),
            client: p.client.clone(),
        }))
    }

    /// An owner by issuer and subject (no client), for the tests.
    #[cfg(test)]
    pub fn subject(issuer: &str, subject: &str) -> Self {
        Self(Some(Opener {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            client: None,
        }))
    }

    /// This owner through another OAuth client, for the tests.
    #[cfg(test)]
    pub fn through(mut self, client: &str) -> Self {
        if let Some(opener) = &mut self.0 {
            opener.client = Some(client.to_owned());
        }
        self
    }

    /// Nobody: authn is off.
    #[cfg(test)]
    pub fn anonymous() -> Self {
        Self(None)
    }
}
