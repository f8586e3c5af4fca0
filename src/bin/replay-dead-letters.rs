//! `make replay`: sends what waits in the notifier's dead-letter queue back through the notifier
//! (`DEAD_LETTER_QUEUE_URL`, `NOTIFIER_FUNCTION`, optionally `REPLAY_LIMIT`), deleting each message
//! the notifier handled. Exits non-zero while anything stays in the queue.

use std::error::Error;
use std::process::ExitCode;

use aws_config::BehaviorVersion;
use medusa_reset::app::{exit, wiring};
use medusa_reset::config::Profile;
use medusa_reset::observability::logs::{self, LogSettings};
use medusa_reset::ops::replay::ReplaySettings;

#[tokio::main]
async fn main() -> ExitCode {
    exit::code("replay-dead-letters", Profile::Local, run().await)
}

async fn run() -> Result<(), Box<dyn Error + Send + Sync>> {
    logs::init(&LogSettings::from_env(Profile::Local)?);
    let settings = ReplaySettings::from_env()?;
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let summary = wiring::replayer(settings, &sdk).run().await?;
    let left = summary.failed + summary.unreadable;
    println!("replayed {}, still failing {}, unreadable {}", summary.replayed, summary.failed, summary.unreadable);
    if left > 0 {
        return Err(format!("{left} message(s) stay in the dead-letter queue (see the log above)").into());
    }
    Ok(())
}
