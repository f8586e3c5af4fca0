//! The local stand-ins `make run` uses: the in-process bus that hands each event to the notifier,
//! whose mailer writes `.eml` files instead of calling SES (and keeps them for the mail viewer), and
//! a clean stop on Ctrl-C.

pub mod loopback;
pub mod mail_viewer;
pub mod proxy;
mod set_password;

use std::time::SystemTime;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::domain::event::AuthEvent;
use crate::mail::Mailer;
use crate::notify::{Inbound, Notifier};

/// Delivers each password-reset and password-updated event to the notifier, as the EventBridge
/// rules do on AWS; the unknown-identity events, which no rule routes by default, are only logged.
pub async fn deliver_events<M: Mailer>(mut events: UnboundedReceiver<AuthEvent>, notifier: Notifier<M>) {
    let mut sequence = 0u64;
    while let Some(event) = events.recv().await {
        sequence += 1;
        let id = format!("local-{sequence}");
        // The notifier logs the outcome; a local run has no retries to hand a failure to.
        match event {
            AuthEvent::PasswordReset(event) => {
                notifier.handle(Inbound::Local { id, event: event.into() }, SystemTime::now()).await;
            }
            AuthEvent::PasswordUpdated(event) => {
                notifier.handle(Inbound::Local { id, event: event.into() }, SystemTime::now()).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifierConfig, Profile, Vars};
    use crate::domain::event::{EventSubject, PasswordUpdatedEvent, UnknownIdentityEvent};
    use crate::mail::{Email, MailError};
    use std::sync::{Arc, Mutex};

    /// Keeps what it is asked to send.
    #[derive(Default, Clone)]
    struct Kept(Arc<Mutex<Vec<Email>>>);

    impl Mailer for Kept {
        async fn send(&self, email: &Email) -> Result<String, MailError> {
            self.0.lock().unwrap().push(email.clone());
            Ok("local".to_owned())
        }
    }

    fn about(entity_id: &str) -> EventSubject {
        EventSubject {
            entity_id: entity_id.to_owned(),
            actor_type: "customer".to_owned(),
            provider: "emailpass".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_in_process_bus_hands_a_password_updated_event_to_the_notifier_for_its_notice() {
        let config = NotifierConfig::from_vars(Profile::Local, &Vars::from_pairs(&[])).unwrap();
        let kept = Kept::default();
        let notifier = crate::app::wiring::notifier(config, kept.clone(), None);
        let (bus, events) = tokio::sync::mpsc::unbounded_channel();
        let updated = PasswordUpdatedEvent { about: about("a@example.com"), metadata: None };
        bus.send(AuthEvent::PasswordUpdated(updated)).unwrap();
        bus.send(AuthEvent::UnknownIdentity(UnknownIdentityEvent { about: about("b@example.com"), metadata: None }))
            .unwrap();
        drop(bus);
        deliver_events(events, notifier).await;
        let sent = kept.0.lock().unwrap();
        assert_eq!(sent.len(), 1, "the notice, and nothing for the unknown identity");
        assert_eq!((sent[0].to.as_str(), sent[0].subject.as_str()), ("a@example.com", "Your password was changed"));
    }
}
