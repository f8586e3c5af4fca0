//! The local stand-ins `make run` uses: where it listens, and the in-process bus that hands each
//! event to the notifier, whose mailer writes `.eml` files instead of calling SES.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::{ApiConfig, ConfigError, Vars, env_var};
use crate::domain::event::AuthEvent;
use crate::mail::Mailer;
use crate::notify::Notifier;

/// Where the local server listens and where e-mails go.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub addr: SocketAddr,
    pub outbox: PathBuf,
}

impl LocalSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars = Vars::new(env_var);
        let addr = vars.parse_or("LOCAL_ADDR", SocketAddr::from(([127, 0, 0, 1], 9000)))?;
        Ok(Self { addr, outbox: PathBuf::from(vars.get_or("OUTBOX_DIR", "outbox")) })
    }
}

/// Says what the server is and how to use it.
pub fn announce(config: &ApiConfig, settings: &LocalSettings, bound: SocketAddr) {
    if config.uses_development_secret {
        tracing::warn!("JWT_SECRET is not set: signing with the built-in DEVELOPMENT secret, for development only");
    }
    if config.identity_check_skipped {
        tracing::warn!(
            "no Medusa database (MEDUSA_DATABASE_URL): every well-formed identifier gets a token and an e-mail, \
             for development only; a deployed function refuses to start like this"
        );
    }
    tracing::info!(
        "listening on http://{bound}; e-mails go to {}/. Try: curl -i -X POST http://{bound}/auth/customer/emailpass/reset-password \
         -H 'content-type: application/json' -d '{{\"identifier\":\"a@example.com\"}}'",
        settings.outbox.display()
    );
}

/// Delivers each password-reset event to the notifier, as the EventBridge rule does on AWS; the
/// unknown-identity events, which no rule routes by default, are only logged.
pub async fn deliver_events<M: Mailer>(mut events: UnboundedReceiver<AuthEvent>, notifier: Notifier<M>) {
    let mut sequence = 0u64;
    while let Some(event) = events.recv().await {
        sequence += 1;
        let id = format!("local-{sequence}");
        match event {
            // The notifier logs the outcome; a local run has no retries to hand a failure to.
            AuthEvent::PasswordReset(event) => {
                let _ = notifier.handle(&id, &event).await;
            }
            AuthEvent::UnknownIdentity(event) => {
                tracing::info!(
                    event_id = id,
                    recipient = crate::domain::identifier::mask(&event.entity_id),
                    "no account: nothing to send"
                );
            }
        }
    }
}

/// Resolves on Ctrl-C so `make run` stops cleanly.
pub async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
