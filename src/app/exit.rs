//! How the binaries end: an error that stops them is written once to standard error (the Lambda's
//! log), in the log format the binary would have used, and the process exits non-zero.
//! Configuration errors name their variable and never its value.

use std::error::Error;
use std::process::ExitCode;

use crate::observability::logs::{LogFormat, LogSettings};
use crate::vars::Profile;

/// The exit code for a binary's outcome, writing the error if there is one.
pub fn code(binary: &str, profile: Profile, outcome: Result<(), Box<dyn Error + Send + Sync>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", line(binary, &error.to_string(), format(profile)));
            ExitCode::FAILURE
        }
    }
}

/// The format the logging settings would pick. Start-up may have stopped before they were read, or
/// because a logging variable is the bad one; then text, which every log viewer shows as it is.
fn format(profile: Profile) -> LogFormat {
    LogSettings::from_env(profile).map_or(LogFormat::Text, |settings| settings.format)
}

/// One line: with JSON logging, an ERROR event shaped like the others, so that a query over `level`
/// or a JSON-only log filter finds it too.
fn line(binary: &str, error: &str, format: LogFormat) -> String {
    match format {
        LogFormat::Text => format!("{binary}: {error}"),
        LogFormat::Json => serde_json::json!({
            "level": "ERROR",
            "target": binary,
            "message": format!("{binary}: {error}"),
        })
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_up_error_is_one_json_event_when_logging_is_json() {
        let line = line("notifier", "MAIL_FROM: \"x\" is not an address", LogFormat::Json);
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["level"], "ERROR");
        assert_eq!(event["target"], "notifier");
        assert_eq!(event["message"], "notifier: MAIL_FROM: \"x\" is not an address");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_start_up_error_is_plain_text_when_logging_is_text() {
        assert_eq!(line("local", "LOCAL_ADDR: in use", LogFormat::Text), "local: LOCAL_ADDR: in use");
    }
}
