//! The notifier Lambda: each `auth.password_reset` event from EventBridge becomes a reset e-mail via SES v2.

use std::error::Error;
use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use medusa_reset::config::{NotifierConfig, Profile};
use medusa_reset::mail::SesMailer;
use medusa_reset::seal::KmsSealer;
use medusa_reset::{aws, exit, telemetry};
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    exit::code("notifier", run().await)
}

async fn run() -> Result<(), Box<dyn Error + Send + Sync>> {
    let config = NotifierConfig::from_env(Profile::Lambda)?;
    telemetry::init(&config.log);
    let sdk = aws::sdk_config().await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let mailer = SesMailer::new(ses, config.sender.clone(), config.configuration_set.clone());
    let sealer = config.kms_key_id.clone().map(|key_id| KmsSealer::new(aws_sdk_kms::Client::new(&sdk), key_id));
    let mut notifier = config.into_notifier(mailer);
    if let Some(sealer) = sealer {
        notifier = notifier.unsealing_with(sealer);
    }
    let notifier = &notifier;
    lambda_runtime::run(service_fn(async |event: LambdaEvent<Value>| notifier.handle_envelope(event.payload).await))
        .await
}
