//! Logging from the environment. `AWS_LAMBDA_LOG_FORMAT` (`JSON` | `Text`) and
//! `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `FATAL`), which Lambda sets from the function's
//! `LoggingConfig`, win over `LOG_FORMAT` and `RUST_LOG`, so that the console's setting is the one
//! that holds.

use std::str::FromStr;

use tracing_subscriber::filter::Targets;

use crate::observability::logs::{LogFormat, LogSettings, default_directives, lambda_level, level_filter};
use crate::vars::{ConfigError, Lookup, Profile, Vars};

impl LogSettings {
    pub fn from_env(profile: Profile) -> Result<Self, ConfigError> {
        Self::from_vars(profile, &Vars::from_env())
    }

    /// JSON on Lambda and text locally unless a variable says otherwise.
    pub fn from_vars<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<Self, ConfigError> {
        Ok(Self { format: format(profile, vars)?, filter: filter(vars)? })
    }
}

fn format<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<LogFormat, ConfigError> {
    if let Some(lambda) = vars.get("AWS_LAMBDA_LOG_FORMAT")? {
        return match lambda.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err(ConfigError::new("AWS_LAMBDA_LOG_FORMAT", "must be `JSON` or `Text`")),
        };
    }
    match vars.get("LOG_FORMAT")?.as_deref() {
        None if profile == Profile::Lambda => Ok(LogFormat::Json),
        None => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some("text") => Ok(LogFormat::Text),
        Some(_) => Err(ConfigError::new("LOG_FORMAT", "must be `json` or `text`")),
    }
}

fn filter<L: Lookup>(vars: &Vars<L>) -> Result<Targets, ConfigError> {
    if let Some(level) = vars.get("AWS_LAMBDA_LOG_LEVEL")? {
        let level = lambda_level(&level).ok_or_else(|| {
            ConfigError::new("AWS_LAMBDA_LOG_LEVEL", "must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL")
        })?;
        return Ok(level_filter(level));
    }
    let spec = vars.get_or("RUST_LOG", &default_directives())?;
    Targets::from_str(&spec).map_err(|e| ConfigError::new("RUST_LOG", format!("{e} (got `{spec}`)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn settings(profile: Profile, pairs: &[(&str, &str)]) -> Result<LogSettings, ConfigError> {
        LogSettings::from_vars(profile, &Vars::from_pairs(pairs))
    }

    #[test]
    fn lambdas_log_format_wins_over_log_format() {
        let json = settings(Profile::Local, &[("AWS_LAMBDA_LOG_FORMAT", "JSON"), ("LOG_FORMAT", "text")]).unwrap();
        assert_eq!(json.format, LogFormat::Json);
        let text = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_FORMAT", "Text"), ("LOG_FORMAT", "json")]).unwrap();
        assert_eq!(text.format, LogFormat::Text);
        let error = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_FORMAT", "yaml")]).unwrap_err();
        assert_eq!(error.var, "AWS_LAMBDA_LOG_FORMAT");
        assert_eq!(settings(Profile::Lambda, &[]).unwrap().format, LogFormat::Json);
        assert_eq!(settings(Profile::Local, &[]).unwrap().format, LogFormat::Text);
    }

    #[test]
    fn lambdas_log_level_wins_over_rust_log() {
        let enables = |pairs: &[(&str, &str)], level: Level| {
            settings(Profile::Lambda, pairs).unwrap().filter.would_enable("medusa_reset", &level)
        };
        let error_only = [("AWS_LAMBDA_LOG_LEVEL", "ERROR"), ("RUST_LOG", "trace")];
        assert!(enables(&error_only, Level::ERROR) && !enables(&error_only, Level::WARN));
        let debug = [("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "error")];
        assert!(enables(&debug, Level::DEBUG) && !enables(&debug, Level::TRACE));
        let fatal = [("AWS_LAMBDA_LOG_LEVEL", "FATAL")];
        assert!(enables(&fatal, Level::ERROR) && !enables(&fatal, Level::WARN));
        let error = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_LEVEL", "verbose")]).unwrap_err();
        assert_eq!(error.var, "AWS_LAMBDA_LOG_LEVEL");
    }

    #[test]
    fn rust_log_is_read_and_the_sdk_stays_at_warn_without_it() {
        let default = settings(Profile::Lambda, &[]).unwrap().filter;
        assert!(default.would_enable("medusa_reset", &Level::INFO));
        assert!(!default.would_enable("aws_smithy_runtime::client", &Level::INFO));
        let asked = settings(Profile::Lambda, &[("RUST_LOG", "debug")]).unwrap().filter;
        assert!(asked.would_enable("medusa_reset", &Level::DEBUG));
        let error = settings(Profile::Lambda, &[("RUST_LOG", "info,aws=loud")]).unwrap_err();
        assert_eq!(error.var, "RUST_LOG");
    }
}
