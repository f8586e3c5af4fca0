//! `make run`: the whole flow on one machine with embedded defaults and no AWS account. The reset
//! route listens on 127.0.0.1:9000; each event goes in-process to the notifier, whose e-mails are
//! printed, written under ./outbox/ and shown at /_dev/mail.

use std::process::ExitCode;

use medusa_reset::app::{exit, wiring};
use medusa_reset::aws::{self, SdkRoots};
use medusa_reset::config::{ApiConfig, LocalSettings, NotifierConfig, Profile};
use medusa_reset::local;
use medusa_reset::mail::OutboxMailer;
use medusa_reset::observability::logs;
use medusa_reset::publish::ChannelPublisher;

#[tokio::main]
async fn main() -> ExitCode {
    exit::code("local", Profile::Local, run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let settings = LocalSettings::from_env()?;
    let config = ApiConfig::from_env(Profile::Local)?;
    let notifier_config = NotifierConfig::from_env(Profile::Local)?;
    logs::init(&config.log);
    let mailer = OutboxMailer::new(settings.outbox.clone(), notifier_config.sender.clone())?;
    let sent = mailer.sent();
    let (publisher, events) = ChannelPublisher::new();
    tokio::spawn(local::deliver_events(events, wiring::notifier(notifier_config, mailer, None)));
    let listener =
        tokio::net::TcpListener::bind(settings.addr).await.map_err(|e| local::bind_error(settings.addr, e))?;
    wiring::announce_local(&config, &settings, listener.local_addr()?);
    // Locally the secret is an environment value, or a Secrets Manager ARN reached through AWS_ENDPOINT_URL.
    let sdk = aws::local_sdk_config(SdkRoots::from_env()).await;
    let (secret, database) = wiring::secrets(&config, &sdk).await?;
    let limiter = wiring::rate_limiter(&config.limits, &sdk);
    let app = wiring::app(&config, &secret, publisher, wiring::identity_store(database), limiter);
    let app = wiring::local_router(app, &config, &settings, sent);
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(local::shutdown_signal()).await?;
    Ok(())
}
