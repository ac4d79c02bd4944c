//! Reading a function's configuration from its environment. Functions read the environment
//! through a lookup closure, so the local stack can hand them the variables template.yaml
//! declares without touching the process environment.

/// A configuration problem found at cold start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required, non-empty variable.
///
/// # Errors
/// [`ConfigError::Missing`] when absent or blank.
pub fn required(lookup: &dyn Fn(&str) -> Option<String>, name: &'static str) -> Result<String, ConfigError> {
    lookup(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing(name))
}

/// An optional variable parsed with `FromStr`, or `default`.
///
/// # Errors
/// [`ConfigError::Invalid`] when present but unparsable.
pub fn parsed_or<T: std::str::FromStr>(lookup: &dyn Fn(&str) -> Option<String>, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() }),
    }
}

/// Reads the real process environment.
#[must_use]
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_blank_and_invalid_values_are_named() {
        let lookup = |name: &str| match name {
            "BLANK" => Some(" ".to_owned()),
            "NUMBER" => Some("x".to_owned()),
            _ => None,
        };
        assert_eq!(required(&lookup, "ABSENT"), Err(ConfigError::Missing("ABSENT")));
        assert_eq!(required(&lookup, "BLANK"), Err(ConfigError::Missing("BLANK")));
        assert!(matches!(parsed_or(&lookup, "NUMBER", 5u32), Err(ConfigError::Invalid { name: "NUMBER", .. })));
        assert_eq!(parsed_or(&lookup, "ABSENT", 5u32), Ok(5));
    }
}
