//! The notifier Lambda: each `auth.password_reset` event from EventBridge becomes a reset e-mail via SES v2.

use std::error::Error;
use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use medusa_reset::app::{exit, wiring};
use medusa_reset::aws::{self, SdkRoots};
use medusa_reset::config::{NotifierConfig, Profile};
use medusa_reset::observability::logs;
use medusa_reset::observability::metrics::{Metrics, MetricsSettings};
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    exit::code("notifier", Profile::Lambda, run().await)
}

async fn run() -> Result<(), Box<dyn Error + Send + Sync>> {
    let config = NotifierConfig::from_env(Profile::Lambda)?;
    logs::init(&config.log);
    let metrics = Metrics::install(&MetricsSettings::from_env()?, "notifier")?;
    let sdk = aws::sdk_config(SdkRoots::from_env()).await;
    let notifier = &wiring::notifier_lambda(config, &sdk);
    lambda_runtime::run(service_fn(async |event: LambdaEvent<Value>| {
        // Boxed: the SDK's futures nest deep enough that the handler's, inlined, passes the
        // compiler's depth limit for working out the layout of `main`'s.
        let outcome = Box::pin(notifier.handle_invocation(event)).await;
        metrics.flush();
        outcome
    }))
    .await
}
