//! The reset-password Lambda: the API router under the Lambda runtime, publishing to EventBridge.

use std::error::Error;
use std::process::ExitCode;

use medusa_reset::config::{ApiConfig, Profile};
use medusa_reset::identity::Identities;
use medusa_reset::publish::EventBridgePublisher;
use medusa_reset::ratelimit::Limiter;
use medusa_reset::seal::KmsSealer;
use medusa_reset::{api, aws, exit, secret, startup, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    exit::code("reset-password", run().await)
}

async fn run() -> Result<(), Box<dyn Error + Send + Sync>> {
    let config = ApiConfig::from_env(Profile::Lambda)?;
    telemetry::init(&config.log);
    let sdk = aws::sdk_config().await;
    // Both secrets at once: each is a round trip to Secrets Manager on the cold start's path.
    let (secret, database) =
        tokio::try_join!(config.secret.resolve(&sdk), secret::resolve_database(config.database.clone(), &sdk))?;
    startup::warn_about_open_doors(&config, database.as_ref());
    let mut publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), config.events.clone());
    if let Some(key_id) = &config.token_kms_key_id {
        publisher = publisher.sealing_with(KmsSealer::new(aws_sdk_kms::Client::new(&sdk), key_id.clone()));
    }
    let store = Identities::from_settings(database);
    let limiter = Limiter::from_settings(&config.limits, &sdk);
    lambda_http::run(api::app(&config, &secret, publisher, store, limiter)).await
}
