//! `make run`: the reset route on 127.0.0.1:9000 with embedded defaults and no AWS account;
//! each event is printed (with its token and reset link) instead of going to EventBridge.

use std::process::ExitCode;

use medusa_reset::config::{ApiConfig, Profile};
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::{api, local, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let settings = local::LocalSettings::from_env()?;
    let config = ApiConfig::from_env(Profile::Local)?;
    telemetry::init(&config.log);
    let (publisher, events) = ChannelPublisher::new();
    tokio::spawn(local::print_events(events, settings.link_template.clone()));
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    local::announce(&config, listener.local_addr()?);
    axum::serve(listener, api::app(&config, publisher)).with_graceful_shutdown(local::shutdown_signal()).await?;
    Ok(())
}
