//! The reset-password Lambda: the API router under the Lambda runtime, publishing to EventBridge.

use std::error::Error;
use std::process::ExitCode;

use medusa_reset::app::{exit, wiring};
use medusa_reset::aws::{self, SdkRoots};
use medusa_reset::config::{ApiConfig, Profile};
use medusa_reset::observability::logs;
use medusa_reset::observability::metrics::{Metrics, MetricsSettings};

#[tokio::main]
async fn main() -> ExitCode {
    exit::code("reset-password", Profile::Lambda, run().await)
}

async fn run() -> Result<(), Box<dyn Error + Send + Sync>> {
    let config = ApiConfig::from_env(Profile::Lambda)?;
    logs::init(&config.log);
    let metrics = Metrics::install(&MetricsSettings::from_env()?, "reset-password")?;
    let sdk = aws::sdk_config(SdkRoots::from_env()).await;
    lambda_http::run(metrics.flushing(wiring::reset_password_lambda(&config, &sdk).await?)).await
}
