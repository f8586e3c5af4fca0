//! Reading settings: the environment as `Vars`, the profile it is read for, and `ConfigError`,
//! which names a variable and never its value. A leaf: configuration and adapters both use it.

use std::ffi::OsString;

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

/// Where `Vars` finds a variable's value.
pub trait Lookup {
    /// The value exactly as set, empty included; an error names a variable whose value cannot be read.
    fn lookup(&self, var: &str) -> Result<Option<String>, ConfigError>;

    /// Whether the variable is set at all, to anything, even a value `lookup` refuses.
    fn is_set(&self, var: &str) -> bool {
        self.lookup(var).map_or(true, |value| value.is_some())
    }
}

/// A closure over a map: tests' and benchmarks' settings, which are always readable.
impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn lookup(&self, var: &str) -> Result<Option<String>, ConfigError> {
        Ok(self(var))
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Environment;

impl Lookup for Environment {
    fn lookup(&self, var: &str) -> Result<Option<String>, ConfigError> {
        utf8(var, std::env::var_os(var))
    }
}

/// A value that is not UTF-8 is refused rather than used mangled, whichever variable it is.
fn utf8(var: &str, value: Option<OsString>) -> Result<Option<String>, ConfigError> {
    value.map(|value| value.into_string().map_err(|_| ConfigError::new(var, "is not valid UTF-8"))).transpose()
}

/// Variables given as pairs in code, for unit tests.
#[derive(Debug, Clone, Default)]
pub struct Pairs(Vec<(String, String)>);

impl Lookup for Pairs {
    fn lookup(&self, var: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.0.iter().find(|(name, _)| name == var).map(|(_, value)| value.clone()))
    }
}

/// Reads variables: `from_env` the process environment, `from_pairs` and `new` what a test gives.
pub struct Vars<L>(L);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(lookup: F) -> Self {
        Self(lookup)
    }
}

impl Vars<Environment> {
    pub fn from_env() -> Self {
        Self(Environment)
    }
}

impl Vars<Pairs> {
    /// The variables `pairs` names, the first pair for a name winning; every other one unset.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(Pairs(pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()))
    }
}

impl<L: Lookup> Vars<L> {
    /// The variable's value exactly as set, empty included.
    pub fn raw(&self, var: &str) -> Result<Option<String>, ConfigError> {
        self.0.lookup(var)
    }

    /// The variable's value, with empty treated as unset.
    pub fn get(&self, var: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.raw(var)?.filter(|v| !v.is_empty()))
    }

    pub fn get_or(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(var)?.unwrap_or_else(|| default.to_owned()))
    }

    /// The variable's value parsed, `None` when unset or empty.
    pub fn parse<T: std::str::FromStr>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let Some(raw) = self.get(var)? else {
            return Ok(None);
        };
        raw.trim().parse().map(Some).map_err(|e| ConfigError::new(var, format!("{e} (got `{raw}`)")))
    }

    pub fn parse_or<T: std::str::FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.parse(var)?.unwrap_or(default))
    }

    /// Whether the variable is set at all, empty or not UTF-8 included.
    pub fn is_set(&self, var: &str) -> bool {
        self.0.is_set(var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn a_value_that_is_not_utf8_is_refused_naming_its_variable_and_counts_as_set() {
        use std::os::unix::ffi::OsStringExt;
        let mangled = OsString::from_vec(b"caf\xe9".to_vec());
        let error = utf8("AUTH_CORS", Some(mangled)).unwrap_err();
        assert_eq!(error.to_string(), "AUTH_CORS: is not valid UTF-8");
        assert_eq!(utf8("AUTH_CORS", Some("café".into())), Ok(Some("café".to_owned())));
        assert_eq!(utf8("AUTH_CORS", None), Ok(None));
        struct Refusing;
        impl Lookup for Refusing {
            fn lookup(&self, var: &str) -> Result<Option<String>, ConfigError> {
                Err(ConfigError::new(var, "is not valid UTF-8"))
            }
        }
        assert!(Vars(Refusing).is_set("SSL_CERT_FILE"));
        assert_eq!(Vars(Refusing).get("SSL_CERT_FILE").unwrap_err().var, "SSL_CERT_FILE");
    }

    #[test]
    fn pairs_read_as_the_environment_would_with_empty_as_unset() {
        let vars = Vars::from_pairs(&[("A", "1"), ("EMPTY", ""), ("A", "2")]);
        assert_eq!(vars.get("A"), Ok(Some("1".to_owned())));
        assert_eq!(vars.raw("EMPTY"), Ok(Some(String::new())));
        assert_eq!(vars.get("EMPTY"), Ok(None));
        assert!(vars.is_set("EMPTY") && !vars.is_set("UNSET"));
        assert_eq!(vars.parse_or("A", 0_u32), Ok(1));
        assert_eq!(vars.parse_or("UNSET", 7_u32), Ok(7));
    }
}
