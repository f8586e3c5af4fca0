//! `make invoke EVENT=events/…`: one sample event through a release `bootstrap` under the Runtime
//! API emulator, printing the function's answer: what `sam local invoke` does, without Docker.
//!
//! The function is the event's folder name (`events/reset-password/valid.json` → `reset-password`);
//! its binary is the one `cargo build --release --bins` put in the release folder this example was
//! built into, or `BOOTSTRAP`. The binary inherits this process's environment. Under moto
//! (`MOTO_ENDPOINT`, as `make invoke` runs it), the notifier's `MAIL_FROM` domain is verified first,
//! as it would be in SES.

// Shared with the tests, which use more of it than this file does.
#[allow(dead_code)]
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use runtime_api::{Answer, RuntimeApi};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("invoke: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let event_path = std::env::args().nth(1).ok_or("usage: invoke EVENT_FILE")?;
    let event = serde_json::from_slice(&std::fs::read(&event_path)?)?;
    let function = Path::new(&event_path)
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .ok_or("the event file must sit in events/<function>/")?
        .to_owned();
    let binary = match std::env::var_os("BOOTSTRAP") {
        Some(binary) => PathBuf::from(binary),
        None => release_dir()?.join(&function),
    };
    if function == "notifier" {
        verify_sender_in_moto().await?;
    }
    let api = RuntimeApi::start().await?;
    let mut child = api.command(&binary, &function).spawn().map_err(|e| format!("{}: {e}", binary.display()))?;
    let answer = tokio::select! {
        answer = api.invoke(&event, Duration::from_secs(30)) => answer?,
        status = child.wait() => return Err(format!("{function} exited during start-up: {}", status?).into()),
    };
    child.kill().await?;
    let (label, value, ok) = match answer {
        Answer::Response(value) => ("response", value, true),
        Answer::Error(value) => ("error", value, false),
    };
    println!("{label}:\n{}", serde_json::to_string_pretty(&value)?);
    Ok(ok)
}

/// The folder `cargo build --release` puts the bootstraps in, wherever the target folder is
/// (`CARGO_TARGET_DIR`, `build.target-dir`): Cargo builds this example into its `examples/`.
fn release_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let release = exe.parent().and_then(Path::parent);
    Ok(release.ok_or_else(|| format!("{} is not in a target folder's examples/", exe.display()))?.to_path_buf())
}

async fn verify_sender_in_moto() -> Result<(), Box<dyn std::error::Error>> {
    let (Ok(endpoint), Ok(from)) = (std::env::var("MOTO_ENDPOINT"), std::env::var("MAIL_FROM")) else {
        return Ok(());
    };
    let domain = from.rsplit('@').next().unwrap_or_default().trim_end_matches('>').to_owned();
    let config = medusa_reset::aws::defaults().endpoint_url(endpoint).load().await;
    aws_sdk_sesv2::Client::new(&config).create_email_identity().email_identity(domain).send().await?;
    Ok(())
}
