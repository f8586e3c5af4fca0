//! The reset-password Lambda: the API router under the Lambda runtime, publishing to EventBridge.

use std::process::ExitCode;

use medusa_reset::config::{ApiConfig, Profile};
use medusa_reset::identity::{MedusaDatabase, MemoryStore};
use medusa_reset::publish::EventBridgePublisher;
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
    let events = aws_sdk_eventbridge::Client::new(&aws::sdk_config().await);
    let publisher = EventBridgePublisher::new(events, config.events.clone());
    let app = match config.database.clone() {
        Some(database) => api::app(&config, publisher, MedusaDatabase::new(database)),
        None => api::app(&config, publisher, MemoryStore::open()),
    };
    match lambda_http::run(app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
