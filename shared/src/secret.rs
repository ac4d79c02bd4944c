//! Secret values that cannot leak through `Debug`, `Display` or logs.

use serde::{Deserialize, Serialize};

/// A string that must never be logged. `Debug` prints `[REDACTED]`; there is no `Display`.
/// Read it with [`SecretString::expose`] only where it goes on the wire.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is empty or only whitespace.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = SecretString::new("hunter2-very-secret");
        let rendered = format!("{secret:?} {:?}", Some(&secret));
        assert!(!rendered.contains("hunter2"), "{rendered}");
        assert!(rendered.contains("[REDACTED]"));
    }
}
