//! The local stand-ins `make run` uses: the in-process bus that hands each event to the notifier,
//! whose mailer writes `.eml` files instead of calling SES (and keeps them for the mail viewer), and
//! a clean stop on Ctrl-C.

pub mod loopback;
pub mod mail_viewer;
pub mod proxy;

use std::time::SystemTime;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::domain::event::AuthEvent;
use crate::mail::Mailer;
use crate::notify::{Inbound, Notifier};

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
                notifier.handle(Inbound::Local { id, event }, SystemTime::now()).await;
            }
            AuthEvent::UnknownIdentity(event) => {
                tracing::info!(
                    event_id = id,
                    recipient = crate::domain::identifier::mask(&event.about.entity_id),
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

/// Why the local server cannot listen, and what to do: Medusa's backend also defaults to port 9000.
pub fn bind_error(addr: std::net::SocketAddr, error: std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        format!(
            "{addr} is already in use (a Medusa backend listens on port 9000 by default): pick another address \
             with LOCAL_ADDR, e.g. `LOCAL_ADDR=127.0.0.1:9001 make run`"
        )
    } else {
        format!("cannot listen on {addr} (LOCAL_ADDR): {error}")
    }
}
