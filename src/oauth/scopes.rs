//! Which scopes a token carries: only what the client asked for, what we
//! advertise, and what the client registered (when it registered a scope).
//! A client cannot grant itself `admin:all` by asking for it.

/// The scopes we grant, in the operator's order.
#[derive(Clone, Debug)]
pub struct Scopes {
    advertised: Vec<String>,
}

impl Scopes {
    /// `oauth.scopes`.
    pub fn new(advertised: &[String]) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for scope in advertised {
            if !scope.is_empty() && !unique.contains(scope) {
                unique.push(scope.clone());
            }
        }
        Self { advertised: unique }
    }

    /// What `scopes_supported` lists.
    pub fn advertised(&self) -> &[String] {
        &self.advertised
    }

    /// The granted scope string: requested ∩ advertised ∩ registered, in
    /// the advertised order. No request means everything the client may
    /// have (RFC 6749 §3.3's default).
    pub fn grant(&self, requested: Option<&str>, registered: Option<&str>) -> String {
        let requested: Option<Vec<&str>> = requested.map(|r| r.split_ascii_whitespace().collect());
        let registered: Option<Vec<&str>> =
            registered.map(|r| r.split_ascii_whitespace().collect());
        self.advertised
            .iter()
            .map(String::as_str)
            .filter(|s| requested.as_ref().is_none_or(|r| r.contains(s)))
            .filter(|s| registered.as_ref().is_none_or(|r| r.contains(s)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes() -> Scopes {
        Scopes::new(&["openid", "groups", "prometheus:read", "groups"].map(String::from))
    }

    #[test]
    fn a_token_never_carries_more_than_advertised_requested_and_registered() {
        let s = scopes();
        assert_eq!(s.advertised(), ["openid", "groups", "prometheus:read"]);
        assert_eq!(
            s.grant(Some("openid admin:all prometheus:write groups"), None),
            "openid groups"
        );
        assert_eq!(s.grant(None, None), "openid groups prometheus:read");
        assert_eq!(s.grant(None, Some("groups admin:all")), "groups");
        assert_eq!(
            s.grant(Some("openid prometheus:read"), Some("prometheus:read")),
            "prometheus:read"
        );
        assert_eq!(s.grant(Some(""), None), "");
        assert_eq!(s.grant(Some("admin:all"), None), "");
    }
}
