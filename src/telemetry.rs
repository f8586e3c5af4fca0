//! Logging set-up: JSON lines on Lambda (one per request), readable text locally.

use std::str::FromStr;

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

impl LogSettings {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(profile: Profile, vars: &Vars<F>) -> Result<Self, ConfigError> {
        let format = match vars.get("LOG_FORMAT").as_deref() {
            None if profile == Profile::Lambda => LogFormat::Json,
            None => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(_) => {
                return Err(ConfigError::new("LOG_FORMAT", "must be `json` or `text`"));
            }
        };
        // The SDK logs request details at debug level: keep it at warn unless asked.
        let spec = vars.get_or("RUST_LOG", "info,aws_config=warn,aws_smithy_runtime=warn,aws_smithy_http_client=warn");
        let filter =
            Targets::from_str(&spec).map_err(|e| ConfigError::new("RUST_LOG", format!("{e} (got `{spec}`)")))?;
        Ok(Self { format, filter })
    }
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
    let registry = tracing_subscriber::registry().with(settings.filter.clone());
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
