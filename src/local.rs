//! The local stand-ins `make run` uses: where it listens, and what it does with each event.

use std::net::SocketAddr;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::{ApiConfig, ConfigError, Vars, env_var};
use crate::domain::event::PasswordResetEvent;

/// Where the local server listens and how it shows reset links.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub addr: SocketAddr,
    pub link_template: String,
}

impl LocalSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars = Vars::new(env_var);
        let addr = vars.parse_or("LOCAL_ADDR", SocketAddr::from(([127, 0, 0, 1], 9000)))?;
        let link_template =
            vars.get_or("RESET_URL_TEMPLATE", "http://localhost:8000/reset-password?token={token}&email={email}");
        Ok(Self { addr, link_template })
    }
}

/// Prints what the server is and how to use it.
pub fn announce(config: &ApiConfig, bound: SocketAddr) {
    if config.uses_development_secret {
        tracing::warn!("JWT_SECRET is not set: signing with the built-in DEVELOPMENT secret, for development only");
    }
    tracing::info!(
        "listening on http://{bound}; try: curl -i -X POST http://{bound}/auth/customer/emailpass/reset-password \
         -H 'content-type: application/json' -d '{{\"identifier\":\"a@example.com\"}}'"
    );
}

/// Prints each event as EventBridge would carry it, with the reset link the token implies.
pub async fn print_events(mut events: UnboundedReceiver<PasswordResetEvent>, link_template: String) {
    while let Some(event) = events.recv().await {
        let detail = serde_json::to_string_pretty(&event).unwrap_or_default();
        let link = link_template
            .replace("{token}", &utf8_percent_encode(event.token.expose(), NON_ALPHANUMERIC).to_string())
            .replace("{email}", &utf8_percent_encode(&event.entity_id, NON_ALPHANUMERIC).to_string());
        println!(
            "--- auth.password_reset (development only: this output shows the token)\n{detail}\nreset link: {link}\n"
        );
    }
}

/// Resolves on Ctrl-C so `make run` stops cleanly.
pub async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
