//! A string that must never be printed: credentials in config structs.

use serde::{Deserialize, Serialize, Serializer};

/// A credential from the config. Its `Debug` and `Serialize` forms are
/// redacted, so `check-config` and logs can print a config without leaking.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself: call only where it is sent or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no credential was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        let json = serde_json::to_string(&secret).expect("serializable");
        assert_eq!(json, "\"<redacted>\"");
        assert_eq!(secret.expose(), "hunter2");
    }
}
