//! The reset-password Lambda: the API router under the Lambda runtime, publishing to EventBridge.

use std::process::ExitCode;

use medusa_reset::config::{ApiConfig, Profile};
use medusa_reset::identity::Identities;
use medusa_reset::publish::EventBridgePublisher;
use medusa_reset::ratelimit::Limiter;
use medusa_reset::seal::KmsSealer;
use medusa_reset::{api, aws, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match ApiConfig::from_env(Profile::Lambda) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("reset-password: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&config.log);
    let sdk = aws::sdk_config().await;
    let secret = match config.secret.resolve(&sdk).await {
        Ok(secret) => secret,
        Err(error) => {
            eprintln!("reset-password: configuration error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), config.events.clone());
    if let Some(key_id) = &config.token_kms_key_id {
        publisher = publisher.sealing_with(KmsSealer::new(aws_sdk_kms::Client::new(&sdk), key_id.clone()));
    }
    let store = Identities::from_settings(config.database.clone());
    let limiter = Limiter::from_settings(&config.limits, &sdk);
    let app = api::app(&config, &secret, publisher, store, limiter);
    match lambda_http::run(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
