//! Reading configuration from the environment (and an optional `.env` file).
//!
//! Every variable is read through these helpers so that a bad value stops start-up with one
//! line naming the variable, and secrets never reach a log through `Debug`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            message: message.into(),
        }
    }
}

/// Loads `.env` from the working directory if there is one. Variables already set in the
/// environment win over the file, so a file never silently overrides an operator's setting.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}

/// The variable's value, or `None` when it is unset or empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable's value, or `default` when unset.
pub fn var_or(name: &str, default: &str) -> String {
    var(name).unwrap_or_else(|| default.to_owned())
}

/// Parses the variable, or returns `default` when unset; a malformed value is an error.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// A duration given in whole seconds.
pub fn secs_or(name: &str, default_secs: u64) -> Result<Duration, ConfigError> {
    parse_or(name, default_secs).map(Duration::from_secs)
}

/// A duration given in milliseconds.
pub fn millis_or(name: &str, default_ms: u64) -> Result<Duration, ConfigError> {
    parse_or(name, default_ms).map(Duration::from_millis)
}

/// A value that must not be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Hides the password of a connection URL so it can be logged.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redacts_url_password() {
        assert_eq!(
            redact_url("postgres://admin:pw@db:5432/users"),
            "postgres://admin:***@db:5432/users"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn bad_number_names_the_variable() {
        std::env::set_var("COMMON_TEST_BAD_NUMBER", "ten");
        let err = parse_or::<u32>("COMMON_TEST_BAD_NUMBER", 1).unwrap_err();
        assert!(
            err.to_string().starts_with("COMMON_TEST_BAD_NUMBER: "),
            "{err}"
        );
    }
}
