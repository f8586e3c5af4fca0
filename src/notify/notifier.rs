//! One `auth.password_reset` event in, one reset e-mail out, or a logged reason not to send it.
//!
//! Only failures a retry may cure (SES unavailable or throttled, its daily quota used up) are
//! returned as errors, so that Lambda retries them and finally parks the event in the dead-letter
//! queue. A send SES throttled for its sending rate was not accepted, so it is first sent again
//! within the invocation, paced, while the deadline allows. Everything a retry cannot fix (a
//! malformed event, an identifier that is not an address, an expired token, a rejected message) is
//! logged and dropped. The bus is not trusted to carry only the route's events:
//! a token whose claims are about another event is dropped, and with sealing on, so is a plain one.
//!
//! Exactly one e-mail per token: before sending, the reset is claimed by its token's `jti` until the
//! invocation's deadline, and marked done once SES accepted the message; a redelivered event whose
//! claim is done or still in progress is skipped as a duplicate. No claim, no send: a store that
//! fails is an error for Lambda to retry.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use either::Either;
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::Value;

use super::link::LinkTemplates;
use super::locale::Locale;
use super::pacing::Pacing;
use super::templates::{EmailContext, EmailTemplates};
use super::token_check::{self, TokenProblem};
use crate::aws::seal::{KmsOpener, UnsealError};
use crate::domain::clock::{at_epoch_seconds, epoch_seconds};
use crate::domain::event::{PasswordResetEvent, SealedPasswordResetEvent};
use crate::domain::identifier::mask;
use crate::domain::recipient::Recipient;
use crate::idempotency::{Claim, ClaimError, ClaimStore, DynamoDbClaimStore, Holder, MemoryClaimStore, ResetKey};
use crate::mail::{Email, MailError, Mailer};

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
    /// This token's e-mail was sent, or is being sent, by another attempt.
    Duplicate {
        holder: Holder,
    },
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
    /// A plain token while tokens are sealed (`TOKEN_KMS_KEY_ID`): not from the reset route.
    PlainToken,
    /// The token's claims are about another address, actor type, provider or purpose.
    ClaimsMismatch,
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
            Self::PlainToken => "dropped_plain_token",
            Self::ClaimsMismatch => "dropped_claims_mismatch",
        }
    }
}

impl Delivery {
    fn dropped(reason: DropReason) -> Self {
        Self::Dropped { reason, cause: None }
    }

    /// The outcome the log line and the metric give this delivery.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::Ignored => "ignored",
            Self::Duplicate { .. } => "duplicate_skipped",
            Self::Dropped { reason, .. } => reason.label(),
        }
    }
}

/// One event, handled: what its log line reports.
#[derive(Debug)]
pub struct Handled {
    pub event_id: String,
    /// The event's `entity_id` as given (the log masks it), when the event had one.
    pub recipient: Option<String>,
    pub outcome: Result<Delivery, NotifyError>,
}

impl Handled {
    fn malformed(event_id: String, error: &serde_json::Error) -> Self {
        let dropped = Delivery::Dropped { reason: DropReason::MalformedEvent, cause: Some(shape_of(error)) };
        Self { event_id, recipient: None, outcome: Ok(dropped) }
    }

    /// The outcome's label, which the log line and the metric share.
    pub fn label(&self) -> &'static str {
        match &self.outcome {
            Ok(delivery) => delivery.label(),
            Err(error) => error.label(),
        }
    }

    /// The one log line per event (id, outcome, masked recipient, message id; never the token or
    /// link), and the outcome's metric.
    fn report(&self, started: Instant) {
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let (event_id, outcome) = (self.event_id.as_str(), self.label());
        crate::observability::metrics::email(outcome);
        let masked = self.recipient.as_deref().map(mask);
        let recipient = masked.as_deref();
        let cause_of = |cause: &str| scrub(cause, self.recipient.as_deref());
        match &self.outcome {
            Ok(Delivery::Sent { message_id }) => {
                tracing::info!(event_id, outcome, recipient, message_id, latency_us, "event")
            }
            Ok(Delivery::Ignored) => tracing::info!(event_id, outcome, latency_us, "event"),
            Ok(Delivery::Duplicate { holder }) => {
                let held = holder.label();
                tracing::info!(event_id, outcome, recipient, held, latency_us, "event")
            }
            Ok(Delivery::Dropped { cause, .. }) => {
                let cause = cause.as_deref().map(cause_of);
                tracing::warn!(event_id, outcome, recipient, cause, latency_us, "event")
            }
            // A spent daily quota's cause says that it is parked: Lambda's retries, then the dead-letter queue.
            Err(error) => {
                let cause = cause_of(&error.to_string());
                tracing::error!(event_id, outcome, recipient, cause, latency_us, "event")
            }
        }
    }
}

/// What [`Notifier::handle`] is given.
#[derive(Debug)]
pub enum Inbound {
    /// An EventBridge event as JSON, as the bus delivers it (and as tests write it).
    Envelope(Value),
    /// An event from `make run`'s in-process bus, with the id the bus gave it: already typed and
    /// the route's own, so there is no envelope to parse, no detail-type to check and no seal.
    Local { id: String, event: PasswordResetEvent },
}

impl From<Value> for Inbound {
    fn from(envelope: Value) -> Self {
        Self::Envelope(envelope)
    }
}

/// A failure worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("{0}")]
    Unseal(String),
    #[error(transparent)]
    Claim(#[from] ClaimError),
}

impl NotifyError {
    /// The outcome the log line and the metric give this failure: a spent daily quota is parked
    /// (its retries, then the dead-letter queue), any other is retried.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Mail(MailError::DailyQuota(_)) => "parked_daily_quota",
            _ => "failed_will_retry",
        }
    }
}

/// A failed invocation as Lambda records it before it retries (and keeps with the event in the
/// dead-letter queue): the cause, with the recipient's address masked as in the log line, never
/// the event.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FailedInvocation(String);

impl From<FailedInvocation> for lambda_runtime::Diagnostic {
    fn from(failed: FailedInvocation) -> Self {
        Self { error_type: "NotifyError".to_owned(), error_message: failed.0 }
    }
}

/// Everything the notifier needs, built once per cold start.
#[derive(Debug)]
pub struct Notifier<M> {
    links: LinkTemplates,
    templates: EmailTemplates,
    mailer: M,
    detail_type: String,
    opener: Option<KmsOpener>,
    claims: Either<DynamoDbClaimStore, MemoryClaimStore>,
}

/// How long an attempt without a Lambda deadline (`make run`, tests) holds its claim: longer than
/// the slowest attempt (KMS, DynamoDB, one SES attempt, DynamoDB again, each at most 1.5 s), and the
/// template's notifier timeout.
pub const UNBOUNDED_ATTEMPT: Duration = Duration::from_secs(10);

/// One delivery attempt: the time it decides at, and the deadline its claim ends with, after
/// which Lambda has stopped the attempt and a retry may claim the reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub now: SystemTime,
    pub deadline: SystemTime,
}

impl Attempt {
    /// An invocation's attempt, ending with its deadline (Lambda's milliseconds since the epoch);
    /// one whose deadline is missing or past gets the local bound.
    pub fn until_deadline_ms(deadline_ms: u64, now: SystemTime) -> Self {
        let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        if deadline > now { Self { now, deadline } } else { Self::from(now) }
    }
}

/// An attempt starting `now`, bounded by `UNBOUNDED_ATTEMPT`.
impl From<SystemTime> for Attempt {
    fn from(now: SystemTime) -> Self {
        Self { now, deadline: now + UNBOUNDED_ATTEMPT }
    }
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
        Self { links, templates, mailer, detail_type, opener: None, claims: Either::Right(MemoryClaimStore::default()) }
    }

    /// Claims each reset in this store before sending it (in memory, per process, unless given one).
    pub fn claiming_with(mut self, claims: Either<DynamoDbClaimStore, MemoryClaimStore>) -> Self {
        self.claims = claims;
        self
    }

    /// Opens sealed tokens with this KMS key. The reset route then seals every token, so an event
    /// with a plain one did not come from it and is dropped.
    pub fn unsealing_with(mut self, opener: KmsOpener) -> Self {
        self.opener = Some(opener);
        self
    }

    /// Lambda's entry point: the invocation's EventBridge event, claimed until its deadline. Logs
    /// one line; a failure is what Lambda records before it retries.
    pub async fn handle_invocation(&self, invocation: LambdaEvent<Value>) -> Result<(), FailedInvocation> {
        let attempt = Attempt::until_deadline_ms(invocation.context.deadline, SystemTime::now());
        let handled = self.handle(invocation.payload, attempt).await;
        let recipient = handled.recipient.as_deref();
        handled.outcome.map(|_| ()).map_err(|error| FailedInvocation(scrub(&error.to_string(), recipient)))
    }

    /// Every other caller's entry point (`make run`'s bus, tests): one event, decided and sent as
    /// `attempt` allows. Logs one line, and returns what it logged.
    pub async fn handle(&self, inbound: impl Into<Inbound>, attempt: impl Into<Attempt>) -> Handled {
        let started = Instant::now();
        let attempt = attempt.into();
        let handled = match inbound.into() {
            Inbound::Envelope(envelope) => self.open(envelope, attempt).await,
            Inbound::Local { id, event } => {
                let outcome = self.deliver(&event, attempt).await;
                Handled { event_id: id, recipient: Some(event.about.entity_id), outcome }
            }
        };
        handled.report(started);
        handled
    }

    /// Opens one EventBridge event (its detail-type, its detail, the seal on its token) and
    /// delivers what it holds.
    async fn open(&self, envelope: Value, attempt: Attempt) -> Handled {
        let envelope = match serde_json::from_value::<EventBridgeEvent<Value>>(envelope) {
            Ok(envelope) => envelope,
            Err(error) => return Handled::malformed("unknown".to_owned(), &error),
        };
        let event_id = envelope.id.unwrap_or_default();
        if envelope.detail_type != self.detail_type {
            return Handled { event_id, recipient: None, outcome: Ok(Delivery::Ignored) };
        }
        let (recipient, outcome) = match serde_json::from_value::<Detail>(envelope.detail) {
            Ok(Detail::Plain(event)) => (event.about.entity_id.clone(), self.deliver_plain(&event, attempt).await),
            Ok(Detail::Sealed(sealed)) => (sealed.about.entity_id.clone(), self.deliver_sealed(&sealed, attempt).await),
            Err(error) => return Handled::malformed(event_id, &error),
        };
        Handled { event_id, recipient: Some(recipient), outcome }
    }

    /// A plain token is the route's only while tokens are not sealed.
    async fn deliver_plain(&self, event: &PasswordResetEvent, attempt: Attempt) -> Result<Delivery, NotifyError> {
        match self.opener {
            Some(_) => Ok(Delivery::Dropped {
                reason: DropReason::PlainToken,
                cause: Some("a plain token while TOKEN_KMS_KEY_ID says tokens are sealed".to_owned()),
            }),
            None => self.deliver(event, attempt).await,
        }
    }

    /// A sealed token, opened with KMS: a seal that cannot be opened is dropped, a KMS that cannot
    /// be reached is retried.
    async fn deliver_sealed(
        &self,
        sealed: &SealedPasswordResetEvent,
        attempt: Attempt,
    ) -> Result<Delivery, NotifyError> {
        let unsealed = match &self.opener {
            None => Err(UnsealError::Permanent("the token is sealed and no TOKEN_KMS_KEY_ID is configured".into())),
            Some(opener) => opener.unseal(sealed).await,
        };
        match unsealed {
            Ok(event) => self.deliver(&event, attempt).await,
            Err(UnsealError::Permanent(cause)) => {
                Ok(Delivery::Dropped { reason: DropReason::Unsealable, cause: Some(cause) })
            }
            Err(UnsealError::Transient(cause)) => Err(NotifyError::Unseal(cause)),
        }
    }

    /// One event's decision, without logging: check, compose, send once.
    async fn deliver(&self, event: &PasswordResetEvent, attempt: impl Into<Attempt>) -> Result<Delivery, NotifyError> {
        let attempt = attempt.into();
        match check(event, attempt.now).and_then(|checked| self.compose(event, checked)) {
            Ok(ready) => self.send_once(ready, attempt).await,
            Err(dropped) => Ok(dropped),
        }
    }

    /// The e-mail a checked event asks for: its actor type's link, in its locale's templates.
    fn compose(&self, event: &PasswordResetEvent, checked: Checked) -> Result<Composed, Delivery> {
        let Checked { recipient, key, expires_at, minutes_left } = checked;
        let Some(link) = self.links.link(&event.about.actor_type, event.token.expose(), recipient.as_str()) else {
            return Err(Delivery::dropped(DropReason::NoLinkTemplate));
        };
        let locale = event.metadata.as_ref().and_then(|m| m.get_str("locale")).and_then(Locale::parse);
        let context = EmailContext {
            link: &link,
            email: recipient.as_str(),
            actor_type: &event.about.actor_type,
            expires_minutes: minutes_left,
            metadata: event.metadata.as_ref(),
        };
        match self.templates.render(locale.as_ref(), &context) {
            Ok(rendered) => {
                let locale = self.templates.locale_for(locale.as_ref());
                let email = rendered.addressed_to(recipient, &event.about.actor_type, locale);
                Ok(Composed { email, key, expires_at })
            }
            Err(error) => Err(Delivery::Dropped { reason: DropReason::RenderFailed, cause: Some(error.to_string()) }),
        }
    }

    /// Exactly one e-mail per token: claims the reset until the attempt's deadline, sends, then
    /// marks the claim done (kept until the token expires) or, when nothing went out, gives it back.
    async fn send_once(&self, ready: Composed, attempt: Attempt) -> Result<Delivery, NotifyError> {
        let ticket = match self.claims.claim(&ready.key, attempt.deadline, attempt.now).await? {
            Claim::Claimed(ticket) => ticket,
            Claim::Held(holder) => return Ok(Delivery::Duplicate { holder }),
        };
        match self.send_paced(&ready.email, attempt.deadline).await {
            Ok(message_id) => {
                let keep_until = at_epoch_seconds(ready.expires_at);
                if let Err(error) = self.claims.complete(&ticket, keep_until).await {
                    // Failing the invocation now would make Lambda's retry send it a second time.
                    tracing::warn!(
                        cause = %error,
                        "sent, but the claim could not be marked done: it holds only until this attempt's deadline"
                    );
                }
                Ok(Delivery::Sent { message_id })
            }
            Err(error) => {
                // Nothing went out: the claim must not keep Lambda's retry (or a redelivery) from sending.
                if let Err(release) = self.claims.release(&ticket).await {
                    tracing::warn!(cause = %release, "the claim could not be released: a retry sends once it expires");
                }
                match error {
                    MailError::Permanent(cause) => {
                        Ok(Delivery::Dropped { reason: DropReason::Rejected, cause: Some(cause) })
                    }
                    retry => Err(retry.into()),
                }
            }
        }
    }

    /// Sends, and while SES throttles the send (refused for the account's sending rate, so not
    /// accepted) sends it again after a jittered, growing wait, for as long as the attempt's
    /// deadline leaves room. Each send is one SDK attempt, so a send that may have gone out (a
    /// time-out, a 5xx) is never repeated here; neither is one refused for the daily quota, which
    /// no wait within an invocation can cure.
    async fn send_paced(&self, email: &Email, deadline: SystemTime) -> Result<String, MailError> {
        let mut pacing = Pacing::until(deadline);
        let mut sends: u32 = 1;
        loop {
            match self.mailer.send(email).await {
                Err(MailError::Throttled(cause)) => {
                    crate::observability::metrics::ses_throttled();
                    let Some(wait) = pacing.next_wait() else {
                        return Err(MailError::Throttled(format!(
                            "{cause} (throttled {sends} times; the attempt's deadline leaves no room for another send)"
                        )));
                    };
                    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    tracing::debug!(sends, wait_ms, "SES throttled the send: sending it again after the wait");
                    tokio::time::sleep(wait).await;
                    sends += 1;
                }
                done => return done,
            }
        }
    }
}

/// Every check on the event itself, none of which needs a claim or sends anything: an address to
/// send to, and a token about this very event that has not expired at `at`. Otherwise the drop
/// that says why not.
fn check(event: &PasswordResetEvent, at: SystemTime) -> Result<Checked, Delivery> {
    let Ok(recipient) = Recipient::parse(&event.about.entity_id) else {
        return Err(Delivery::dropped(DropReason::NotAnEmail));
    };
    // The signature cannot be checked here (no secret), but a token about another event can be told.
    let (expires_at, key) = match token_check::check(event) {
        Ok(facts) => match ResetKey::parse(&facts.jti) {
            Ok(key) => (facts.expires_at, key),
            Err(_) => return Err(Delivery::dropped(DropReason::UnreadableToken)),
        },
        Err(TokenProblem::Unreadable) => return Err(Delivery::dropped(DropReason::UnreadableToken)),
        Err(TokenProblem::Disagrees(claim)) => {
            let cause = format!("the token's `{claim}` claim is not the event's");
            return Err(Delivery::Dropped { reason: DropReason::ClaimsMismatch, cause: Some(cause) });
        }
    };
    let now = epoch_seconds(at);
    if expires_at <= now {
        return Err(Delivery::dropped(DropReason::TokenExpired));
    }
    Ok(Checked { recipient, key, expires_at, minutes_left: (expires_at - now).div_ceil(60) })
}

/// An event that passed `check`: what `compose` builds the e-mail from.
struct Checked {
    recipient: Recipient,
    key: ResetKey,
    /// The token's `exp`, seconds since the epoch.
    expires_at: u64,
    /// Whole minutes until then, rounded up: what the e-mail says.
    minutes_left: u64,
}

/// An e-mail ready to claim and send: what `compose` hands `send_once`.
struct Composed {
    email: Email,
    key: ResetKey,
    /// The token's `exp`, seconds since the epoch: how long a done claim is kept.
    expires_at: u64,
}

/// Where a JSON error is, without serde's message, which can quote the offending value.
fn shape_of(error: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", error.classify(), error.line(), error.column())
}

/// A cause with the recipient's address masked: a provider's message may quote the address.
fn scrub(cause: &str, recipient: Option<&str>) -> String {
    match recipient {
        Some(raw) if !raw.is_empty() => cause.replace(raw, &mask(raw)),
        _ => cause.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NotifierConfig, Profile, Vars};
    use crate::domain::event::EventSubject;
    use crate::domain::metadata::Metadata;
    use crate::domain::token::{RESET_PURPOSE, ResetClaims, ResetToken};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records what it would send, or fails as told.
    #[derive(Default)]
    struct FakeMailer {
        sent: Mutex<Vec<(String, Email)>>,
        fail: Option<fn() -> MailError>,
        /// Fails this many calls transiently before it sends.
        flaky: Mutex<usize>,
        /// Throttles this many calls (for the sending rate) before it sends.
        throttled: Mutex<usize>,
        /// Every call, whatever came of it.
        calls: Mutex<usize>,
    }

    impl Mailer for FakeMailer {
        async fn send(&self, email: &Email) -> Result<String, MailError> {
            *self.calls.lock().unwrap() += 1;
            let mut throttled = self.throttled.lock().unwrap();
            if *throttled > 0 {
                *throttled -= 1;
                return Err(MailError::Throttled("TooManyRequestsException: Maximum sending rate exceeded.".into()));
            }
            drop(throttled);
            if let Some(fail) = self.fail {
                return Err(fail());
            }
            let mut flaky = self.flaky.lock().unwrap();
            if *flaky > 0 {
                *flaky -= 1;
                return Err(MailError::Transient("Throttling".into()));
            }
            self.sent.lock().unwrap().push((email.to.as_str().to_owned(), email.clone()));
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
        crate::app::wiring::notifier(NotifierConfig::from_vars(Profile::Lambda, &vars).unwrap(), mailer, None)
    }

    /// A token signed as the reset route signs them, with the claims given; the notifier never
    /// sees the secret, so any secret will do.
    fn signed(claims: &ResetClaims) -> ResetToken {
        let key = EncodingKey::from_secret(b"notifier-test-secret-0123456789abcdef");
        ResetToken::new(jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap())
    }

    /// The claims the reset route would give a token for this identifier and actor type.
    fn claims(entity_id: &str, actor_type: &str, exp: u64) -> ResetClaims {
        ResetClaims {
            entity_id: entity_id.to_owned(),
            provider: "emailpass".to_owned(),
            actor_type: actor_type.to_owned(),
            purpose: RESET_PURPOSE.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: exp.saturating_sub(900),
            exp,
            iss: None,
            aud: None,
        }
    }

    /// An event whose token matches it, expiring at `exp`.
    fn event(entity_id: &str, exp: u64, metadata: Option<serde_json::Value>) -> PasswordResetEvent {
        PasswordResetEvent {
            about: EventSubject {
                entity_id: entity_id.to_owned(),
                actor_type: "customer".to_owned(),
                provider: "emailpass".to_owned(),
            },
            token: signed(&claims(entity_id, "customer", exp)),
            metadata: metadata.map(|m| Metadata::parse(m.as_object().cloned().unwrap()).unwrap()),
        }
    }

    fn at(secs: u64) -> SystemTime {
        at_epoch_seconds(secs)
    }

    fn envelope(detail_type: &str, detail: serde_json::Value) -> Value {
        json!({"id": "e-1", "detail-type": detail_type, "source": "medusa.auth", "detail": detail})
    }

    #[tokio::test]
    async fn a_failed_invocation_tells_lambda_the_cause_with_the_address_masked() {
        let quoting = || MailError::Transient("Throttling: too many messages to victim@example.com".into());
        let notifier = notifier(FakeMailer { fail: Some(quoting), ..FakeMailer::default() });
        let now = epoch_seconds(SystemTime::now());
        let detail = serde_json::to_value(event("victim@example.com", now + 900, None)).unwrap();
        let invocation = LambdaEvent::new(envelope("auth.password_reset", detail), lambda_runtime::Context::default());
        let failed = notifier.handle_invocation(invocation).await.unwrap_err();
        let diagnostic = lambda_runtime::Diagnostic::from(failed);
        assert_eq!(diagnostic.error_type, "NotifyError");
        assert!(diagnostic.error_message.contains("v***@example.com"), "{}", diagnostic.error_message);
        assert!(!diagnostic.error_message.contains("victim@"), "{}", diagnostic.error_message);
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
    async fn an_unreadable_token_or_an_actor_type_without_a_link_is_dropped() {
        let notifier = notifier(FakeMailer::default());
        let mut unreadable = event("a@example.com", NOW + 900, None);
        unreadable.token = ResetToken::new("garbage".into());
        assert_eq!(
            notifier.deliver(&unreadable, at(NOW)).await.unwrap(),
            Delivery::dropped(DropReason::UnreadableToken)
        );
        let mut admin = event("a@example.com", NOW + 900, None);
        admin.about.actor_type = "user".into();
        admin.token = signed(&claims("a@example.com", "user", NOW + 900));
        assert_eq!(notifier.deliver(&admin, at(NOW)).await.unwrap(), Delivery::dropped(DropReason::NoLinkTemplate));
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    fn attempt(now: u64, deadline: u64) -> Attempt {
        Attempt { now: at(now), deadline: at(deadline) }
    }

    #[tokio::test]
    async fn a_redelivered_event_is_skipped_as_a_duplicate_and_sends_nothing_more() {
        let notifier = notifier(FakeMailer::default());
        let reset = event("a@example.com", NOW + 900, None);
        let first = notifier.deliver(&reset, attempt(NOW, NOW + 10)).await.unwrap();
        assert!(matches!(first, Delivery::Sent { .. }), "{first:?}");
        // Long after the first attempt's deadline, and just before the token expires: still done.
        for later in [NOW + 1, NOW + 60, NOW + 899] {
            let again = notifier.deliver(&reset, attempt(later, later + 10)).await.unwrap();
            assert_eq!(again, Delivery::Duplicate { holder: Holder::Done }, "at {later}");
        }
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
        // Another token for the same address is another reset.
        let other = notifier.deliver(&event("a@example.com", NOW + 900, None), at(NOW)).await.unwrap();
        assert!(matches!(other, Delivery::Sent { .. }), "{other:?}");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_claim_in_progress_skips_the_event_until_its_deadline_then_the_retry_sends() {
        let notifier = notifier(FakeMailer::default());
        let event = event("a@example.com", NOW + 900, None);
        // An attempt that claimed and then crashed before SES, with its deadline at NOW + 10.
        let jti = token_check::check(&event).unwrap().jti;
        let key = ResetKey::parse(&jti).unwrap();
        assert!(matches!(notifier.claims.claim(&key, at(NOW + 10), at(NOW)).await.unwrap(), Claim::Claimed(_)));
        let during = notifier.deliver(&event, attempt(NOW + 9, NOW + 19)).await.unwrap();
        assert_eq!(during, Delivery::Duplicate { holder: Holder::InProgress });
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
        let after = notifier.deliver(&event, attempt(NOW + 10, NOW + 20)).await.unwrap();
        assert!(matches!(after, Delivery::Sent { .. }), "{after:?}");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_transient_failure_gives_the_claim_back_so_the_retry_sends_once() {
        let notifier = notifier(FakeMailer { flaky: Mutex::new(1), ..Default::default() });
        let event = event("a@example.com", NOW + 900, None);
        assert!(notifier.deliver(&event, attempt(NOW, NOW + 10)).await.is_err());
        // Lambda's retry, well before the failed attempt's deadline: the claim was given back.
        let retry = notifier.deliver(&event, attempt(NOW + 1, NOW + 11)).await.unwrap();
        assert!(matches!(retry, Delivery::Sent { .. }), "{retry:?}");
        let redelivered = notifier.deliver(&event, attempt(NOW + 2, NOW + 12)).await.unwrap();
        assert_eq!(redelivered, Delivery::Duplicate { holder: Holder::Done });
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
    }

    /// An attempt from the wall clock's now, as pacing reads the deadline against it.
    fn live_attempt(deadline_in: Duration) -> (PasswordResetEvent, Attempt) {
        let now = SystemTime::now();
        let secs = epoch_seconds(now);
        (event("a@example.com", secs + 900, None), Attempt { now, deadline: now + deadline_in })
    }

    #[tokio::test]
    async fn a_send_throttled_for_the_rate_is_sent_again_within_the_attempt_once_and_only_once() {
        let notifier = notifier(FakeMailer { throttled: Mutex::new(2), ..Default::default() });
        let (event, attempt) = live_attempt(Duration::from_secs(10));
        let outcome = notifier.deliver(&event, attempt).await.unwrap();
        assert!(matches!(outcome, Delivery::Sent { .. }), "{outcome:?}");
        assert_eq!(*notifier.mailer.calls.lock().unwrap(), 3, "two throttled sends, then the one SES took");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
        let again = notifier.deliver(&event, attempt).await.unwrap();
        assert_eq!(again, Delivery::Duplicate { holder: Holder::Done });
    }

    #[tokio::test]
    async fn throttling_past_the_deadline_is_left_to_lambda_with_the_claim_given_back() {
        let notifier = notifier(FakeMailer { throttled: Mutex::new(usize::MAX), ..Default::default() });
        // Room for waits in the first half second only.
        let deadline_in = super::super::pacing::RESEND_RESERVE + Duration::from_millis(500);
        let (event, attempt) = live_attempt(deadline_in);
        let started = Instant::now();
        let Err(NotifyError::Mail(MailError::Throttled(cause))) = notifier.deliver(&event, attempt).await else {
            panic!("expected a throttled send for Lambda to retry");
        };
        let calls = *notifier.mailer.calls.lock().unwrap();
        assert!(calls >= 2 && cause.contains(&format!("throttled {calls} times")), "{calls}: {cause}");
        assert!(started.elapsed() < Duration::from_millis(700), "{:?}", started.elapsed());
        // Given back: a retry, here at once, may send.
        *notifier.mailer.throttled.lock().unwrap() = 0;
        assert!(matches!(notifier.deliver(&event, attempt).await.unwrap(), Delivery::Sent { .. }));
    }

    #[tokio::test]
    async fn the_daily_quota_is_not_sent_again_within_the_attempt_and_gives_the_claim_back() {
        let quota = || MailError::DailyQuota("TooManyRequestsException: Daily message quota exceeded.".into());
        let notifier = notifier(FakeMailer { fail: Some(quota), ..Default::default() });
        let (event, attempt) = live_attempt(Duration::from_secs(10));
        let outcome = notifier.deliver(&event, attempt).await;
        assert!(matches!(outcome, Err(NotifyError::Mail(MailError::DailyQuota(_)))), "{outcome:?}");
        assert_eq!(*notifier.mailer.calls.lock().unwrap(), 1);
        let retry = notifier.deliver(&event, attempt).await;
        assert!(matches!(retry, Err(NotifyError::Mail(MailError::DailyQuota(_)))), "not held as a duplicate");
        assert_eq!(*notifier.mailer.calls.lock().unwrap(), 2);
    }

    #[test]
    fn an_invocation_claims_until_its_deadline_and_without_one_for_the_local_bound() {
        let now = at(NOW);
        let given = Attempt::until_deadline_ms(NOW * 1_000 + 2_500, now);
        assert_eq!(given.deadline, UNIX_EPOCH + Duration::from_millis(NOW * 1_000 + 2_500));
        for missing in [0, NOW * 1_000] {
            assert_eq!(Attempt::until_deadline_ms(missing, now).deadline, now + UNBOUNDED_ATTEMPT, "{missing}");
        }
        assert_eq!(Attempt::from(now), Attempt { now, deadline: now + UNBOUNDED_ATTEMPT });
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
    async fn a_token_whose_claims_are_about_another_event_is_dropped_not_sent() {
        let notifier = notifier(FakeMailer::default());
        let mut lifted = event("a@example.com", NOW + 900, None);
        lifted.token = signed(&claims("victim@example.com", "customer", NOW + 900));
        let mut other_actor = event("a@example.com", NOW + 900, None);
        other_actor.token = signed(&claims("a@example.com", "user", NOW + 900));
        let mut other_provider = event("a@example.com", NOW + 900, None);
        other_provider.token =
            signed(&ResetClaims { provider: "google".into(), ..claims("a@example.com", "customer", NOW + 900) });
        let mut not_a_reset = event("a@example.com", NOW + 900, None);
        not_a_reset.token =
            signed(&ResetClaims { purpose: "verify".into(), ..claims("a@example.com", "customer", NOW + 900) });
        for (event, claim) in
            [(lifted, "entity_id"), (other_actor, "actor_type"), (other_provider, "provider"), (not_a_reset, "purpose")]
        {
            let outcome = notifier.deliver(&event, at(NOW)).await.unwrap();
            let Delivery::Dropped { reason: DropReason::ClaimsMismatch, cause: Some(cause) } = &outcome else {
                panic!("{claim}: {outcome:?}");
            };
            assert!(cause.contains(claim), "{cause}");
            assert!(!cause.contains("example.com"), "the cause names the claim, not its value: {cause}");
        }
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    fn sealing(notifier: Notifier<FakeMailer>) -> Notifier<FakeMailer> {
        // Never called here: a plain-token event is dropped before any KMS call.
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .build();
        notifier.unsealing_with(KmsOpener::new(aws_sdk_kms::Client::from_conf(config), "key".into()))
    }

    #[tokio::test]
    async fn with_sealing_on_an_event_with_a_plain_token_is_dropped() {
        let notifier = sealing(notifier(FakeMailer::default()));
        let detail = serde_json::to_value(event("a@example.com", NOW + 900, None)).unwrap();
        let handled = notifier.handle(envelope("auth.password_reset", detail), at(NOW)).await;
        assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::PlainToken, .. })), "{handled:?}");
        assert_eq!(handled.recipient.as_deref(), Some("a@example.com"));
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_well_formed_reset_under_another_detail_type_is_ignored() {
        let notifier = notifier(FakeMailer::default());
        let detail = serde_json::to_value(event("a@example.com", NOW + 900, None)).unwrap();
        let other = notifier.handle(envelope("auth.password_reset_unknown", detail.clone()), at(NOW)).await;
        assert!(matches!(other.outcome, Ok(Delivery::Ignored)), "{other:?}");
        assert_eq!(other.event_id, "e-1");
        assert!(notifier.mailer.sent.lock().unwrap().is_empty(), "nothing sent for another detail-type");
        // The same detail under the detail-type the notifier serves is sent: it was well-formed.
        let ours = notifier.handle(envelope("auth.password_reset", detail), at(NOW)).await;
        assert!(matches!(ours.outcome, Ok(Delivery::Sent { .. })), "{ours:?}");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn envelopes_or_details_that_do_not_parse_are_dropped_as_malformed() {
        let notifier = notifier(FakeMailer::default());
        let not_an_envelope = notifier.handle(json!({"nonsense": true}), at(NOW)).await;
        let bad_detail = notifier.handle(envelope("auth.password_reset", json!({"entity_id": 5})), at(NOW)).await;
        for handled in [not_an_envelope, bad_detail] {
            assert!(
                matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::MalformedEvent, .. })),
                "{handled:?}"
            );
        }
        assert!(notifier.handle(json!({"nonsense": true}), at(NOW)).await.outcome.is_ok(), "not retried");
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_sealed_event_without_a_key_to_open_it_is_dropped_as_unsealable() {
        let notifier = notifier(FakeMailer::default());
        let sealed = json!({"entity_id": "a@example.com", "actor_type": "customer", "provider": "emailpass",
            "subject": "ab12", "jti": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "encrypted_token": "AQID"});
        let handled = notifier.handle(envelope("auth.password_reset", sealed), at(NOW)).await;
        assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::Unsealable, .. })), "{handled:?}");
        assert_eq!(handled.recipient.as_deref(), Some("a@example.com"));
    }

    /// One generated case of the decision table: who the event is for, what its token says, and
    /// what the mailer does.
    #[derive(Debug, Clone)]
    struct Case {
        entity_id: String,
        addressable: bool,
        actor_type: &'static str,
        readable: bool,
        /// The one claim the token gets wrong, if any.
        wrong_claim: Option<&'static str>,
        expires_in: i64,
        mailer: Option<bool>,
    }

    fn case() -> impl Strategy<Value = Case> {
        let address = ("[a-z]{1,8}(\\.[a-z]{1,4})?", "[a-z]{1,8}", "(com|de|co\\.uk)")
            .prop_map(|(local, host, tld)| (format!("{local}@{host}.{tld}"), true));
        let not_address = prop_oneof![
            Just("customer-42".to_owned()),
            Just("a@example.com\r\nBcc: x@example.com".to_owned()),
            Just("Eve <eve@example.com>".to_owned()),
            Just("a@example.com, b@example.com".to_owned()),
            Just("root@localhost".to_owned()),
        ]
        .prop_map(|raw| (raw, false));
        (
            prop_oneof![3 => address, 1 => not_address],
            prop_oneof![3 => Just("customer"), 1 => Just("user")],
            prop::bool::weighted(0.85),
            prop_oneof![
                4 => Just(None),
                1 => prop::sample::select(vec!["entity_id", "actor_type", "provider", "purpose"]).prop_map(Some),
            ],
            -1_000i64..2_000,
            prop_oneof![3 => Just(None), 1 => Just(Some(true)), 1 => Just(Some(false))],
        )
            .prop_map(|((entity_id, addressable), actor_type, readable, wrong_claim, expires_in, mailer)| {
                Case { entity_id, addressable, actor_type, readable, wrong_claim, expires_in, mailer }
            })
    }

    /// What the notifier must do with a case, decided independently of its code.
    fn expected(case: &Case) -> Result<Option<DropReason>, ()> {
        if !case.addressable {
            return Ok(Some(DropReason::NotAnEmail));
        }
        if !case.readable {
            return Ok(Some(DropReason::UnreadableToken));
        }
        if case.wrong_claim.is_some() {
            return Ok(Some(DropReason::ClaimsMismatch));
        }
        if case.expires_in <= 0 {
            return Ok(Some(DropReason::TokenExpired));
        }
        if case.actor_type != "customer" {
            return Ok(Some(DropReason::NoLinkTemplate));
        }
        match case.mailer {
            None => Ok(None),
            Some(true) => Ok(Some(DropReason::Rejected)),
            Some(false) => Err(()),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn the_notifier_sends_exactly_when_every_check_passes_and_only_to_the_event_address(case in case()) {
            let mailer = FakeMailer {
                fail: match case.mailer {
                    None => None,
                    Some(true) => Some(|| MailError::Permanent("MessageRejected".into())),
                    Some(false) => Some(|| MailError::Transient("Throttling".into())),
                },
                ..Default::default()
            };
            let notifier = notifier(mailer);
            let exp = NOW.saturating_add_signed(case.expires_in);
            let token = if case.readable {
                let mut claims = claims(&case.entity_id, case.actor_type, exp);
                match case.wrong_claim {
                    Some("entity_id") => claims.entity_id = format!("x{}", case.entity_id),
                    Some("actor_type") => claims.actor_type = format!("{}x", case.actor_type),
                    Some("provider") => claims.provider = "google".to_owned(),
                    Some(_) => claims.purpose = "verify".to_owned(),
                    None => {}
                }
                signed(&claims)
            } else {
                ResetToken::new("not-a-jwt".into())
            };
            let about = EventSubject {
                entity_id: case.entity_id.clone(),
                actor_type: case.actor_type.to_owned(),
                provider: "emailpass".to_owned(),
            };
            let event = PasswordResetEvent {
                about,
                token: token.clone(),
                metadata: None,
            };
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let outcome = runtime.block_on(notifier.deliver(&event, at(NOW)));
            let sent = notifier.mailer.sent.lock().unwrap();
            match (expected(&case), outcome) {
                (Ok(None), Ok(Delivery::Sent { .. })) => {
                    prop_assert_eq!(sent.len(), 1);
                    prop_assert_eq!(&sent[0].0, &case.entity_id);
                    prop_assert!(sent[0].1.text.contains(token.expose()), "the link carries the event's token");
                }
                (Ok(Some(reason)), Ok(Delivery::Dropped { reason: got, .. })) => {
                    prop_assert_eq!(reason, got);
                    prop_assert!(sent.is_empty());
                }
                (Err(()), Err(_)) => prop_assert!(sent.is_empty()),
                (want, got) => prop_assert!(false, "expected {:?}, got {:?}", want, got),
            }
        }
    }
}
