//! Reading settings: the environment as `Vars`, the profile it is read for, and `ConfigError`,
//! which names a variable and never its value. A leaf: configuration and adapters both use it.

/// A configuration problem, naming the variable and never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, reason: impl ToString) -> Self {
        Self { var: var.into(), reason: reason.to_string() }
    }
}

/// Where the configuration is read: on Lambda every secret must be given; locally there are
/// development defaults so that `make run` needs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Lambda,
    Local,
}

/// Reads variables; `from_env` uses the process environment, tests pass a map.
pub struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(lookup: F) -> Self {
        Self(lookup)
    }

    /// The variable's value exactly as set, empty included.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.0)(var)
    }

    /// The variable's value, with empty treated as unset.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.is_empty())
    }

    pub fn get_or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_owned())
    }

    pub fn parse_or<T: std::str::FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e| ConfigError::new(var, format!("{e} (got `{raw}`)"))),
        }
    }
}

/// The process environment (callers run `check_utf8` first, so nothing is mangled here).
pub fn env_var(var: &str) -> Option<String> {
    std::env::var_os(var).map(|v| v.to_string_lossy().into_owned())
}

/// Refuses variables whose value is not UTF-8 rather than using a mangled value.
pub fn check_utf8(vars: &[&'static str]) -> Result<(), ConfigError> {
    for &var in vars {
        if std::env::var_os(var).is_some_and(|value| value.to_str().is_none()) {
            return Err(ConfigError::new(var, "is not valid UTF-8"));
        }
    }
    Ok(())
}
