//! One `auth.password_reset` event in, one reset e-mail out, or a logged reason not to send it.
//!
//! Only failures a retry may cure (throttling, SES unavailable) are returned as errors, so that
//! Lambda retries them and finally parks the event in the dead-letter queue. Everything a retry
//! cannot fix (a malformed event, an identifier that is not an address, an expired token, a
//! rejected message) is logged and dropped.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use super::link::LinkTemplates;
use super::locale::Locale;
use super::recipient::Recipient;
use super::templates::{EmailContext, EmailTemplates};
use crate::domain::event::{PasswordResetEvent, SealedPasswordResetEvent};
use crate::domain::identifier::mask;
use crate::mail::{MailError, Mailer};
use crate::seal::{KmsSealer, UnsealError};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        message_id: String,
    },
    Dropped {
        reason: DropReason,
        cause: Option<String>,
    },
    /// Another detail-type on the same bus (e.g. `auth.password_reset_unknown`): not ours to send.
    Ignored,
}

/// Why an event was dropped without an e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    MalformedEvent,
    NotAnEmail,
    UnreadableToken,
    TokenExpired,
    NoLinkTemplate,
    RenderFailed,
    Rejected,
    /// A sealed token that cannot be opened (tampered, another key), or no key to open it with.
    Unsealable,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::MalformedEvent => "dropped_malformed_event",
            Self::NotAnEmail => "dropped_not_an_email",
            Self::UnreadableToken => "dropped_unreadable_token",
            Self::TokenExpired => "dropped_token_expired",
            Self::NoLinkTemplate => "dropped_no_link_template",
            Self::RenderFailed => "dropped_render_failed",
            Self::Rejected => "dropped_rejected",
            Self::Unsealable => "dropped_unsealable",
        }
    }
}

impl Delivery {
    fn dropped(reason: DropReason) -> Self {
        Self::Dropped { reason, cause: None }
    }
}

/// A failure worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("{0}")]
    Unseal(String),
}

/// What Lambda records for a failed invocation before it retries: the cause, never the event.
impl From<NotifyError> for lambda_runtime::Diagnostic {
    fn from(error: NotifyError) -> Self {
        Self { error_type: "NotifyError".to_owned(), error_message: error.to_string() }
    }
}

/// Everything the notifier needs, built once per cold start.
#[derive(Debug)]
pub struct Notifier<M> {
    links: LinkTemplates,
    templates: EmailTemplates,
    mailer: M,
    detail_type: String,
    sealer: Option<KmsSealer>,
}

/// The detail of an `auth.password_reset` event: Medusa's, or with the token sealed by KMS.
#[derive(Deserialize)]
#[serde(untagged)]
enum Detail {
    Plain(PasswordResetEvent),
    Sealed(SealedPasswordResetEvent),
}

impl<M: Mailer> Notifier<M> {
    pub fn new(links: LinkTemplates, templates: EmailTemplates, mailer: M, detail_type: String) -> Self {
        Self { links, templates, mailer, detail_type, sealer: None }
    }

    /// Opens sealed tokens with this KMS key (events with a plain token still work).
    pub fn unsealing_with(mut self, sealer: KmsSealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Lambda's entry point: an EventBridge event as JSON. Logs one line.
    pub async fn handle_envelope(&self, envelope: Value) -> Result<(), NotifyError> {
        let started = Instant::now();
        let envelope = match serde_json::from_value::<EventBridgeEvent<Value>>(envelope) {
            Ok(envelope) => envelope,
            Err(error) => {
                let dropped = Delivery::Dropped { reason: DropReason::MalformedEvent, cause: Some(shape_of(&error)) };
                report("unknown", None, &Ok(dropped), started);
                return Ok(());
            }
        };
        let id = envelope.id.unwrap_or_default();
        if envelope.detail_type != self.detail_type {
            report(&id, None, &Ok(Delivery::Ignored), started);
            return Ok(());
        }
        let sealed = match serde_json::from_value::<Detail>(envelope.detail) {
            Ok(Detail::Plain(event)) => return self.handle(&id, &event).await,
            Ok(Detail::Sealed(sealed)) => sealed,
            Err(error) => {
                let dropped = Delivery::Dropped { reason: DropReason::MalformedEvent, cause: Some(shape_of(&error)) };
                report(&id, None, &Ok(dropped), started);
                return Ok(());
            }
        };
        let unsealed = match &self.sealer {
            None => Err(UnsealError::Permanent("the token is sealed and no TOKEN_KMS_KEY_ID is configured".into())),
            Some(sealer) => sealer.unseal(&sealed).await,
        };
        match unsealed {
            Ok(event) => self.handle(&id, &event).await,
            Err(UnsealError::Permanent(cause)) => {
                let dropped = Delivery::Dropped { reason: DropReason::Unsealable, cause: Some(cause) };
                report(&id, Some(&sealed.entity_id), &Ok(dropped), started);
                Ok(())
            }
            Err(UnsealError::Transient(cause)) => {
                let failed = Err(NotifyError::Unseal(cause));
                report(&id, Some(&sealed.entity_id), &failed, started);
                failed.map(|_: Delivery| ())
            }
        }
    }

    /// Delivers one event and logs the outcome; `make run` calls this for each in-process event.
    pub async fn handle(&self, event_id: &str, event: &PasswordResetEvent) -> Result<(), NotifyError> {
        let started = Instant::now();
        let outcome = self.deliver(event, SystemTime::now()).await;
        report(event_id, Some(&event.entity_id), &outcome, started);
        outcome.map(|_| ())
    }

    /// Decides and sends, without logging: the core the two entry points share.
    pub async fn deliver(&self, event: &PasswordResetEvent, now: SystemTime) -> Result<Delivery, NotifyError> {
        let Ok(recipient) = Recipient::parse(&event.entity_id) else {
            return Ok(Delivery::dropped(DropReason::NotAnEmail));
        };
        let Some(expires_at) = event.token.expires_at() else {
            return Ok(Delivery::dropped(DropReason::UnreadableToken));
        };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if expires_at <= now {
            return Ok(Delivery::dropped(DropReason::TokenExpired));
        }
        let Some(link) = self.links.link(&event.actor_type, event.token.expose(), recipient.as_str()) else {
            return Ok(Delivery::dropped(DropReason::NoLinkTemplate));
        };
        let locale = event.metadata.as_ref().and_then(|m| m.get_str("locale")).and_then(Locale::parse);
        let context = EmailContext {
            link: &link,
            email: recipient.as_str(),
            actor_type: &event.actor_type,
            expires_minutes: (expires_at - now).div_ceil(60),
            metadata: event.metadata.as_ref(),
        };
        let email = match self.templates.render(locale.as_ref(), &context) {
            Ok(email) => email,
            Err(error) => {
                return Ok(Delivery::Dropped { reason: DropReason::RenderFailed, cause: Some(error.to_string()) });
            }
        };
        match self.mailer.send(&recipient, &email).await {
            Ok(message_id) => Ok(Delivery::Sent { message_id }),
            Err(MailError::Permanent(cause)) => {
                Ok(Delivery::Dropped { reason: DropReason::Rejected, cause: Some(cause) })
            }
            Err(transient) => Err(transient.into()),
        }
    }
}

/// Where a JSON error is, without serde's message, which can quote the offending value.
fn shape_of(error: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", error.classify(), error.line(), error.column())
}

/// The one log line per event: id, outcome, masked recipient, message id; never the token or link.
fn report(event_id: &str, recipient: Option<&str>, outcome: &Result<Delivery, NotifyError>, started: Instant) {
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let masked = recipient.map(mask);
    // A provider's message may quote the address; only its masked form reaches the log.
    let scrub = |cause: &str| match recipient {
        Some(raw) if !raw.is_empty() => cause.replace(raw, masked.as_deref().unwrap_or_default()),
        _ => cause.to_owned(),
    };
    let recipient = masked.as_deref();
    match outcome {
        Ok(Delivery::Sent { message_id }) => {
            tracing::info!(event_id, outcome = "sent", recipient, message_id, latency_us, "event")
        }
        Ok(Delivery::Ignored) => tracing::info!(event_id, outcome = "ignored", latency_us, "event"),
        Ok(Delivery::Dropped { reason, cause }) => {
            let cause = cause.as_deref().map(scrub);
            tracing::warn!(event_id, outcome = reason.label(), recipient, cause, latency_us, "event")
        }
        Err(error) => {
            let cause = scrub(&error.to_string());
            tracing::error!(event_id, outcome = "failed_will_retry", recipient, cause, latency_us, "event")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifierConfig, Profile, Vars};
    use crate::domain::actor::ProviderPolicy;
    use crate::domain::identifier::Identifier;
    use crate::domain::metadata::Metadata;
    use crate::domain::token::{ResetToken, SigningSecret, TokenMinter, TokenSettings};
    use crate::notify::recipient::Recipient;
    use crate::notify::templates::RenderedEmail;
    use serde_json::json;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records what it would send, or fails as told.
    #[derive(Default)]
    struct FakeMailer {
        sent: Mutex<Vec<(String, RenderedEmail)>>,
        fail: Option<fn() -> MailError>,
    }

    impl Mailer for FakeMailer {
        async fn send(&self, to: &Recipient, email: &RenderedEmail) -> Result<String, MailError> {
            if let Some(fail) = self.fail {
                return Err(fail());
            }
            self.sent.lock().unwrap().push((to.as_str().to_owned(), email.clone()));
            Ok("message-1".to_owned())
        }
    }

    const NOW: u64 = 2_000_000_000;

    fn notifier(mailer: FakeMailer) -> Notifier<FakeMailer> {
        let vars = Vars::new(|var: &str| match var {
            "MAIL_FROM" => Some("no-reply@shop.example.com".to_owned()),
            "RESET_URL_TEMPLATE_CUSTOMER" => {
                Some("https://shop.example.com/reset?token={token}&email={email}".to_owned())
            }
            _ => None,
        });
        NotifierConfig::from_vars(Profile::Lambda, &vars).unwrap().into_notifier(mailer)
    }

    /// A real token whose `exp` is `exp`: minted `lifetime` seconds before it.
    fn token(exp: u64) -> ResetToken {
        let secret = SigningSecret::parse("notifier-test-secret-0123456789abcdef").unwrap();
        let settings = TokenSettings { lifetime: Duration::from_secs(900), issuer: None, audience: None };
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let id = Identifier::parse("a@example.com").unwrap();
        TokenMinter::new(&secret, &settings)
            .mint(&id, &actor, &provider, uuid::Uuid::new_v4(), at(exp - 900))
            .unwrap()
            .token
    }

    fn event(entity_id: &str, exp: u64, metadata: Option<serde_json::Value>) -> PasswordResetEvent {
        PasswordResetEvent {
            entity_id: entity_id.to_owned(),
            actor_type: "customer".to_owned(),
            provider: "emailpass".to_owned(),
            token: token(exp),
            metadata: metadata.map(|m| Metadata::parse(m.as_object().cloned().unwrap()).unwrap()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn a_valid_event_sends_one_email_with_the_link() {
        let notifier = notifier(FakeMailer::default());
        let outcome = notifier.deliver(&event("a@example.com", NOW + 900, None), at(NOW)).await.unwrap();
        assert_eq!(outcome, Delivery::Sent { message_id: "message-1".into() });
        let sent = notifier.mailer.sent.lock().unwrap();
        let (to, email) = &sent[0];
        assert_eq!(to, "a@example.com");
        assert!(email.text.contains("https://shop.example.com/reset?token=eyJ"), "{}", email.text);
        assert!(email.text.contains("&email=a%40example.com"));
        assert!(email.text.contains("15 minutes"));
    }

    #[tokio::test]
    async fn the_locale_in_metadata_picks_the_template() {
        let notifier = notifier(FakeMailer::default());
        let localized = event("a@example.com", NOW + 900, Some(json!({"locale": "de-DE"})));
        notifier.deliver(&localized, at(NOW)).await.unwrap();
        assert_eq!(notifier.mailer.sent.lock().unwrap()[0].1.subject, "Setzen Sie Ihr Passwort zurück");
    }

    #[tokio::test]
    async fn an_expired_token_is_dropped_not_sent() {
        let notifier = notifier(FakeMailer::default());
        let outcome = notifier.deliver(&event("a@example.com", NOW, None), at(NOW)).await.unwrap();
        assert_eq!(outcome, Delivery::dropped(DropReason::TokenExpired));
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_identifier_that_is_not_an_address_is_dropped() {
        let notifier = notifier(FakeMailer::default());
        for entity_id in ["customer-42", "a@example.com\r\nBcc: x@y.z", "Eve <eve@example.com>"] {
            let outcome = notifier.deliver(&event(entity_id, NOW + 900, None), at(NOW)).await.unwrap();
            assert_eq!(outcome, Delivery::dropped(DropReason::NotAnEmail), "{entity_id:?}");
        }
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_token_or_unknown_actor_type_is_dropped() {
        let notifier = notifier(FakeMailer::default());
        let mut unreadable = event("a@example.com", NOW + 900, None);
        unreadable.token = ResetToken::new("garbage".into());
        assert_eq!(
            notifier.deliver(&unreadable, at(NOW)).await.unwrap(),
            Delivery::dropped(DropReason::UnreadableToken)
        );
        let mut admin = event("a@example.com", NOW + 900, None);
        admin.actor_type = "user".into();
        assert_eq!(notifier.deliver(&admin, at(NOW)).await.unwrap(), Delivery::dropped(DropReason::NoLinkTemplate));
    }

    #[tokio::test]
    async fn a_permanent_rejection_is_dropped_and_a_transient_failure_is_an_error() {
        let rejecting = notifier(FakeMailer {
            fail: Some(|| MailError::Permanent("MessageRejected".into())),
            ..Default::default()
        });
        let outcome = rejecting.deliver(&event("a@example.com", NOW + 900, None), at(NOW)).await.unwrap();
        assert!(matches!(outcome, Delivery::Dropped { reason: DropReason::Rejected, .. }));

        let throttled = notifier(FakeMailer {
            fail: Some(|| MailError::Transient("TooManyRequests".into())),
            ..Default::default()
        });
        assert!(throttled.deliver(&event("a@example.com", NOW + 900, None), at(NOW)).await.is_err());
    }

    #[tokio::test]
    async fn envelopes_that_do_not_parse_or_are_not_ours_are_dropped_without_error() {
        let notifier = notifier(FakeMailer::default());
        assert!(notifier.handle_envelope(json!({"nonsense": true})).await.is_ok());
        let other =
            json!({"id": "1", "detail-type": "auth.password_reset_unknown", "source": "medusa.auth", "detail": {}});
        assert!(notifier.handle_envelope(other).await.is_ok());
        let bad_detail = json!({"id": "2", "detail-type": "auth.password_reset", "source": "medusa.auth", "detail": {"entity_id": 5}});
        assert!(notifier.handle_envelope(bad_detail).await.is_ok());
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }
}
