//! Logging set-up: JSON lines on Lambda (one per request), readable text locally; Lambda's own
//! logging controls win over ours (`config::logs` reads them), and no setting lets the runtime or
//! the SDK log a body.
//!
//! Whatever the level, the targets of the runtime, the SDK and the HTTP stack under them are capped
//! at `info`: at debug and trace they log raw events and request bodies, which hold the token.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The format and the filter (`RUST_LOG`, in `tracing`'s `target=level` syntax). Read from the
/// environment in `config::logs`.
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

/// What Lambda's log level asks for: every target at `level`, the SDK's chatty ones at warn at most.
pub fn level_filter(level: LevelFilter) -> Targets {
    Targets::new().with_default(level).with_targets(QUIET_SDK.map(|t| (t, level.min(LevelFilter::WARN))))
}

/// The directives when none are given, in `RUST_LOG`'s syntax: info, the SDK's chatty targets at warn.
pub fn default_directives() -> String {
    let quiet = QUIET_SDK.map(|t| format!("{t}=warn")).join(",");
    format!("info,{quiet}")
}

/// Lambda's level names; FATAL, which `tracing` lacks, is ERROR.
pub fn lambda_level(raw: &str) -> Option<LevelFilter> {
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
    use std::str::FromStr;
    use std::sync::{Arc, Mutex};

    /// JSON lines through `filter`.
    fn settings(filter: Targets) -> LogSettings {
        LogSettings { format: LogFormat::Json, filter }
    }

    fn directives(spec: &str) -> LogSettings {
        settings(Targets::from_str(spec).unwrap())
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
    fn lambdas_level_writes_that_level_and_above_with_fatal_as_error() {
        let error_only = settings(level_filter(lambda_level("ERROR").unwrap()));
        let lines = written(&error_only, false);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("own error"), "{lines:?}");
        let lines = written(&settings(level_filter(lambda_level("debug").unwrap())), false);
        assert!(lines.iter().any(|l| l.contains("own debug")) && !lines.iter().any(|l| l.contains("own trace")));
        assert_eq!(written(&settings(level_filter(lambda_level("FATAL").unwrap())), false).len(), 1);
        assert_eq!(lambda_level("verbose"), None);
    }

    #[test]
    fn no_level_lets_the_runtime_or_the_sdk_log_below_info() {
        for (asked, settings) in [
            ("Lambda's TRACE", settings(level_filter(LevelFilter::TRACE))),
            ("trace", directives("trace")),
            ("the SDK's and runtime's trace", directives("aws_smithy_runtime=trace,lambda_runtime=trace")),
        ] {
            let lines = written(&settings, true);
            assert!(!lines.iter().any(|l| l.contains("sdk trace") || l.contains("sdk debug")), "{asked}: {lines:?}");
            assert!(!lines.iter().any(|l| l.contains("token")), "{asked}: {lines:?}");
        }
        // The cap is a ceiling, not a floor: asked for info, the SDK's info lines are written.
        assert!(written(&directives("aws_smithy_runtime=info"), true).iter().any(|l| l.contains("sdk info")));
        // By default the SDK stays at warn.
        assert!(written(&directives(&default_directives()), true).is_empty());
    }
}
