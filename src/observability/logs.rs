//! Logging set-up: JSON lines on Lambda (one per request), readable text locally; Lambda's own
//! logging controls win over ours, and no setting lets the runtime or the SDK log a body.
//!
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON` | `Text`) and `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `FATAL`), which
//! Lambda sets from the function's `LoggingConfig`, win over `LOG_FORMAT` and `RUST_LOG`. Whatever
//! the level, the targets of the runtime, the SDK and the HTTP stack under them are capped at
//! `info`: at debug and trace they log raw events and request bodies, which hold the token.

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::vars::{ConfigError, Profile, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The format and the filter (`RUST_LOG`, in `tracing`'s `target=level` syntax).
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: Targets,
}

/// The SDK logs request details at debug level and chatters at info: warn unless asked.
const QUIET_SDK: [&str; 3] = ["aws_config", "aws_smithy_runtime", "aws_smithy_http_client"];

/// Target prefixes (`aws_` covers every SDK crate) held at `info` or below whatever is asked.
pub const CAPPED_TARGETS: [&str; 8] =
    ["lambda_runtime", "lambda_http", "aws_", "hyper", "h2", "rustls", "tower", "axum"];

impl LogSettings {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(profile: Profile, vars: &Vars<F>) -> Result<Self, ConfigError> {
        let format = match vars.get("AWS_LAMBDA_LOG_FORMAT") {
            Some(lambda) => match lambda.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => return Err(ConfigError::new("AWS_LAMBDA_LOG_FORMAT", "must be `JSON` or `Text`")),
            },
            None => match vars.get("LOG_FORMAT").as_deref() {
                None if profile == Profile::Lambda => LogFormat::Json,
                None => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some("text") => LogFormat::Text,
                Some(_) => return Err(ConfigError::new("LOG_FORMAT", "must be `json` or `text`")),
            },
        };
        let filter = match vars.get("AWS_LAMBDA_LOG_LEVEL") {
            Some(level) => {
                let level = lambda_level(&level).ok_or_else(|| {
                    ConfigError::new("AWS_LAMBDA_LOG_LEVEL", "must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL")
                })?;
                Targets::new().with_default(level).with_targets(QUIET_SDK.map(|t| (t, level.min(LevelFilter::WARN))))
            }
            None => {
                let quiet = QUIET_SDK.map(|t| format!("{t}=warn")).join(",");
                let spec = vars.get_or("RUST_LOG", &format!("info,{quiet}"));
                Targets::from_str(&spec).map_err(|e| ConfigError::new("RUST_LOG", format!("{e} (got `{spec}`)")))?
            }
        };
        Ok(Self { format, filter })
    }
}

/// Lambda's level names; FATAL, which `tracing` lacks, is ERROR.
fn lambda_level(raw: &str) -> Option<LevelFilter> {
    match raw.to_ascii_uppercase().as_str() {
        "TRACE" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" => Some(LevelFilter::WARN),
        "ERROR" | "FATAL" => Some(LevelFilter::ERROR),
        _ => None,
    }
}

/// The second filter every event must also pass: the capped targets at `info` at most.
fn cap() -> Targets {
    Targets::new().with_default(LevelFilter::TRACE).with_targets(CAPPED_TARGETS.map(|t| (t, LevelFilter::INFO)))
}

/// Installs the global subscriber, writing to standard output; a second call (as in tests) is a no-op.
pub fn init(settings: &LogSettings) {
    let _ = tracing::subscriber::set_global_default(subscriber(settings, std::io::stdout));
}

/// The subscriber `init` installs, writing to `writer`: tests capture the real log lines with it.
pub fn subscriber<W>(settings: &LogSettings, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Two filters in a row: an event is written only if both let it through.
    let registry = tracing_subscriber::registry().with(settings.filter.clone()).with(cap());
    match settings.format {
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer),
            ),
        ),
        LogFormat::Text => {
            Box::new(registry.with(tracing_subscriber::fmt::layer().with_target(false).with_writer(writer)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    fn settings(profile: Profile, vars: &[(&str, &str)]) -> Result<LogSettings, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LogSettings::from_vars(profile, &Vars::new(move |var: &str| vars.get(var).cloned()))
    }

    /// The lines `settings` writes for one event per level on `target`.
    fn written(settings: &LogSettings, target_is_sdk: bool) -> Vec<String> {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let writer = move || Sink(sink.clone());
        let _guard = tracing::subscriber::set_default(subscriber(settings, writer));
        if target_is_sdk {
            tracing::trace!(target: "aws_smithy_runtime::client", "sdk trace");
            tracing::debug!(target: "aws_smithy_runtime::client", "sdk debug");
            tracing::info!(target: "aws_smithy_runtime::client", "sdk info");
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "{\"token\":\"t\"}", "raw event");
        } else {
            tracing::trace!("own trace");
            tracing::debug!("own debug");
            tracing::info!("own info");
            tracing::error!("own error");
        }
        let bytes = buffer.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(str::to_owned).collect()
    }

    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lambdas_log_format_wins_over_log_format() {
        let json = settings(Profile::Local, &[("AWS_LAMBDA_LOG_FORMAT", "JSON"), ("LOG_FORMAT", "text")]).unwrap();
        assert_eq!(json.format, LogFormat::Json);
        let text = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_FORMAT", "Text"), ("LOG_FORMAT", "json")]).unwrap();
        assert_eq!(text.format, LogFormat::Text);
        let error = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_FORMAT", "yaml")]).unwrap_err();
        assert_eq!(error.var, "AWS_LAMBDA_LOG_FORMAT");
    }

    #[test]
    fn lambdas_log_level_wins_over_rust_log() {
        let error_only =
            settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_LEVEL", "ERROR"), ("RUST_LOG", "trace")]).unwrap();
        let lines = written(&error_only, false);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("own error"), "{lines:?}");
        let debug = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "error")]).unwrap();
        let lines = written(&debug, false);
        assert!(lines.iter().any(|l| l.contains("own debug")) && !lines.iter().any(|l| l.contains("own trace")));
        let fatal = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).unwrap();
        assert_eq!(written(&fatal, false).len(), 1);
        let error = settings(Profile::Lambda, &[("AWS_LAMBDA_LOG_LEVEL", "verbose")]).unwrap_err();
        assert_eq!(error.var, "AWS_LAMBDA_LOG_LEVEL");
    }

    #[test]
    fn no_level_lets_the_runtime_or_the_sdk_log_below_info() {
        for vars in [
            vec![("AWS_LAMBDA_LOG_LEVEL", "TRACE")],
            vec![("RUST_LOG", "trace")],
            vec![("RUST_LOG", "aws_smithy_runtime=trace,lambda_runtime=trace")],
        ] {
            let lines = written(&settings(Profile::Lambda, &vars).unwrap(), true);
            assert!(!lines.iter().any(|l| l.contains("sdk trace") || l.contains("sdk debug")), "{vars:?}: {lines:?}");
            assert!(!lines.iter().any(|l| l.contains("token")), "{vars:?}: {lines:?}");
        }
        // The cap is a ceiling, not a floor: asked for info, the SDK's info lines are written.
        let info = settings(Profile::Lambda, &[("RUST_LOG", "aws_smithy_runtime=info")]).unwrap();
        assert!(written(&info, true).iter().any(|l| l.contains("sdk info")));
        // By default the SDK stays at warn.
        assert!(written(&settings(Profile::Lambda, &[]).unwrap(), true).is_empty());
    }
}
