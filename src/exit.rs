//! How the binaries end: an error that stops them is printed once to standard error (the Lambda's
//! log) after the binary's name, and the process exits non-zero. Configuration errors name their
//! variable and never its value.

use std::error::Error;
use std::process::ExitCode;

/// The exit code for a binary's outcome, printing the error if there is one.
pub fn code(binary: &str, outcome: Result<(), Box<dyn Error + Send + Sync>>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{binary}: {error}");
            ExitCode::FAILURE
        }
    }
}
