//! Tenant IDs as Mimir accepts them, so nothing a caller sends can inject a
//! header or smuggle a second tenant into `X-Scope-OrgID`.

/// Mimir's limit on one tenant ID.
pub const MAX_TENANT_ID_BYTES: usize = 150;

/// Why a string is not a tenant ID.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantIdError {
    #[error("a tenant ID must not be empty")]
    Empty,
    #[error("a tenant ID is at most {MAX_TENANT_ID_BYTES} bytes; {0:?}… is longer")]
    TooLong(String),
    #[error(
        "tenant ID {0:?} has a character Mimir does not allow: use letters, digits and ! - _ . * ' ( )"
    )]
    BadCharacter(String),
    #[error("{0:?} is not a tenant ID")]
    Reserved(String),
}

/// Checks one tenant ID against Mimir's rules.
pub fn validate(id: &str) -> Result<(), TenantIdError> {
    if id.is_empty() {
        return Err(TenantIdError::Empty);
    }
    if id.len() > MAX_TENANT_ID_BYTES {
        let head: String = id.chars().take(20).collect();
        return Err(TenantIdError::TooLong(head));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "!-_.*'()".contains(c);
    if !id.chars().all(allowed) {
        return Err(TenantIdError::BadCharacter(id.to_owned()));
    }
    if id == "." || id == ".." || id == "__mimir_cluster" {
        return Err(TenantIdError::Reserved(id.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_mimir_tenants() {
        for ok in ["team-a", "prod_eu.1", "a!b*c'(d)", &"x".repeat(150)] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_injection_and_federation() {
        assert_eq!(validate(""), Err(TenantIdError::Empty));
        assert!(matches!(
            validate(&"x".repeat(151)),
            Err(TenantIdError::TooLong(_))
        ));
        for bad in ["a|b", "a\r\nX-Evil: 1", "a b", "tenant/1", "ténant", "a,b"] {
            assert!(
                matches!(validate(bad), Err(TenantIdError::BadCharacter(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(validate(".."), Err(TenantIdError::Reserved(_))));
    }
}
