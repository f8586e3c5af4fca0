//! The notifier Lambda: each `auth.password_reset` event from EventBridge becomes a reset e-mail via SES v2.

use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use medusa_reset::config::{NotifierConfig, Profile};
use medusa_reset::mail::SesMailer;
use medusa_reset::seal::KmsSealer;
use medusa_reset::{aws, telemetry};
use serde_json::Value;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match NotifierConfig::from_env(Profile::Lambda) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("notifier: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&config.log);
    let sdk = aws::sdk_config().await;
    let mailer =
        SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), config.sender.clone(), config.configuration_set.clone());
    let sealer = config.kms_key_id.clone().map(|key_id| KmsSealer::new(aws_sdk_kms::Client::new(&sdk), key_id));
    let mut notifier = config.into_notifier(mailer);
    if let Some(sealer) = sealer {
        notifier = notifier.unsealing_with(sealer);
    }
    let notifier = &notifier;
    let handler =
        service_fn(move |event: LambdaEvent<Value>| async move { notifier.handle_envelope(event.payload).await });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
