//! One `auth.password_reset` event in, one reset e-mail out; one `auth.password_updated` event in,
//! one notice that the password was changed out; or a logged reason not to send it.
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
//! fails is an error for Lambda to retry. A notice has no token, so it is claimed by its event's
//! EventBridge `id`, which a redelivery and a replay from the dead-letter queue keep, and its done
//! claim is kept for as long as the queue keeps events; an envelope without an id is dropped.
//!
//! The notice carries no link: it tells its reader what to do if the change was not theirs, and a
//! mail that says "your password changed" is the one a phisher would copy with a link of their own.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use either::Either;
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use serde_json::Value;

use super::link::LinkTemplates;
use super::pacing::Pacing;
use super::templates::{EmailContext, EmailKind, EmailTemplates, NoticeContext};
use super::token_check::{self, TokenProblem};
use crate::aws::seal::{KmsOpener, UnsealError};
use crate::domain::clock::{at_epoch_seconds, epoch_seconds};
use crate::domain::event::{PASSWORD_UPDATED, PasswordResetEvent, PasswordUpdatedEvent, SealedPasswordResetEvent};
use crate::domain::identifier::mask;
use crate::domain::locale::Locale;
use crate::domain::metadata::Metadata;
use crate::domain::recipient::Recipient;
use crate::idempotency::{Claim, ClaimError, ClaimKey, ClaimStore, DynamoDbClaimStore, Holder, MemoryClaimStore};
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
    /// This token's e-mail, or this event's notice, was sent, or is being sent, by another attempt.
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
    /// A notice's envelope without an `id`, the only key its claim can have: it cannot be sent
    /// once and only once.
    NoEventId,
}

impl DropReason {
    /// The outcome label for this reason when the event asked for `kind` of e-mail: a notice's
    /// begin with `notice_`, so that a dashboard tells the two apart. The token and link checks
    /// are the reset e-mail's alone, and only a notice is claimed by its envelope's id.
    pub fn label(self, kind: EmailKind) -> &'static str {
        match (self, kind) {
            (Self::MalformedEvent, EmailKind::Reset) => "dropped_malformed_event",
            (Self::MalformedEvent, EmailKind::Notice) => "notice_dropped_malformed_event",
            (Self::NotAnEmail, EmailKind::Reset) => "dropped_not_an_email",
            (Self::NotAnEmail, EmailKind::Notice) => "notice_dropped_not_an_email",
            (Self::RenderFailed, EmailKind::Reset) => "dropped_render_failed",
            (Self::RenderFailed, EmailKind::Notice) => "notice_dropped_render_failed",
            (Self::Rejected, EmailKind::Reset) => "dropped_rejected",
            (Self::Rejected, EmailKind::Notice) => "notice_dropped_rejected",
            (Self::NoEventId, _) => "notice_dropped_no_event_id",
            (Self::UnreadableToken, _) => "dropped_unreadable_token",
            (Self::TokenExpired, _) => "dropped_token_expired",
            (Self::NoLinkTemplate, _) => "dropped_no_link_template",
            (Self::Unsealable, _) => "dropped_unsealable",
            (Self::PlainToken, _) => "dropped_plain_token",
            (Self::ClaimsMismatch, _) => "dropped_claims_mismatch",
        }
    }
}

impl Delivery {
    fn dropped(reason: DropReason) -> Self {
        Self::Dropped { reason, cause: None }
    }

    /// The outcome the log line and the metric give this delivery of `kind` of e-mail.
    pub fn label(&self, kind: EmailKind) -> &'static str {
        match (self, kind) {
            (Self::Sent { .. }, EmailKind::Reset) => "sent",
            (Self::Sent { .. }, EmailKind::Notice) => "notice_sent",
            (Self::Duplicate { .. }, EmailKind::Reset) => "duplicate_skipped",
            (Self::Duplicate { .. }, EmailKind::Notice) => "notice_duplicate_skipped",
            (Self::Ignored, _) => "ignored",
            (Self::Dropped { reason, .. }, kind) => reason.label(kind),
        }
    }
}

/// One event, handled: what its log line reports.
#[derive(Debug)]
pub struct Handled {
    pub event_id: String,
    /// The e-mail the event asked for; none for an envelope that does not parse or is not ours,
    /// whose outcomes (`dropped_malformed_event`, `ignored`) are labelled as the reset e-mail's.
    pub kind: Option<EmailKind>,
    /// The event's `entity_id` as given (the log masks it), when the event had one.
    pub recipient: Option<String>,
    pub outcome: Result<Delivery, NotifyError>,
}

impl Handled {
    fn malformed(event_id: String, kind: Option<EmailKind>, error: &serde_json::Error) -> Self {
        let dropped = Delivery::Dropped { reason: DropReason::MalformedEvent, cause: Some(shape_of(error)) };
        Self { event_id, kind, recipient: None, outcome: Ok(dropped) }
    }

    /// The outcome's label, which the log line and the metric share.
    pub fn label(&self) -> &'static str {
        let kind = self.kind.unwrap_or(EmailKind::Reset);
        match &self.outcome {
            Ok(delivery) => delivery.label(kind),
            Err(error) => error.label(kind),
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
    /// the routes' own, so there is no envelope to parse, no detail-type to check and no seal.
    Local { id: String, event: LocalEvent },
}

impl From<Value> for Inbound {
    fn from(envelope: Value) -> Self {
        Self::Envelope(envelope)
    }
}

/// An event `make run`'s bus hands the notifier: a reset to e-mail, or a changed password to
/// give notice of (`event.into()` from either).
#[derive(Debug)]
pub enum LocalEvent {
    Reset(PasswordResetEvent),
    PasswordUpdated(PasswordUpdatedEvent),
}

impl From<PasswordResetEvent> for LocalEvent {
    fn from(event: PasswordResetEvent) -> Self {
        Self::Reset(event)
    }
}

impl From<PasswordUpdatedEvent> for LocalEvent {
    fn from(event: PasswordUpdatedEvent) -> Self {
        Self::PasswordUpdated(event)
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
    /// The outcome the log line and the metric give this failure of `kind` of e-mail: a spent
    /// daily quota is parked (its retries, then the dead-letter queue), any other is retried.
    pub fn label(&self, kind: EmailKind) -> &'static str {
        match (self, kind) {
            (Self::Mail(MailError::DailyQuota(_)), EmailKind::Reset) => "parked_daily_quota",
            (Self::Mail(MailError::DailyQuota(_)), EmailKind::Notice) => "notice_parked_daily_quota",
            (_, EmailKind::Reset) => "failed_will_retry",
            (_, EmailKind::Notice) => "notice_failed_will_retry",
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

/// How long a sent notice's claim is kept: the dead-letter queue's retention (the template's
/// `MessageRetentionPeriod`), so that neither a late redelivery nor `make replay` of a parked copy
/// sends it again. A reset's claim needs no such bound: its token's expiry ends it.
pub const NOTICE_CLAIM_KEPT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

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

    /// Claims each e-mail in this store before sending it (in memory, per process, unless given one).
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
            Inbound::Local { id, event: LocalEvent::Reset(event) } => {
                let outcome = self.deliver(&event, attempt).await;
                let kind = Some(EmailKind::Reset);
                Handled { event_id: id, kind, recipient: Some(event.about.entity_id), outcome }
            }
            Inbound::Local { id, event: LocalEvent::PasswordUpdated(event) } => {
                let outcome = self.deliver_notice(Some(id.as_str()), &event, attempt).await;
                let kind = Some(EmailKind::Notice);
                Handled { event_id: id, kind, recipient: Some(event.about.entity_id), outcome }
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
            Err(error) => return Handled::malformed("unknown".to_owned(), None, &error),
        };
        if envelope.detail_type == PASSWORD_UPDATED {
            return self.open_notice(envelope.id, envelope.detail, attempt).await;
        }
        let event_id = envelope.id.unwrap_or_default();
        if envelope.detail_type != self.detail_type {
            return Handled { event_id, kind: None, recipient: None, outcome: Ok(Delivery::Ignored) };
        }
        let (recipient, outcome) = match serde_json::from_value::<Detail>(envelope.detail) {
            Ok(Detail::Plain(event)) => (event.about.entity_id.clone(), self.deliver_plain(&event, attempt).await),
            Ok(Detail::Sealed(sealed)) => (sealed.about.entity_id.clone(), self.deliver_sealed(&sealed, attempt).await),
            Err(error) => return Handled::malformed(event_id, Some(EmailKind::Reset), &error),
        };
        Handled { event_id, kind: Some(EmailKind::Reset), recipient: Some(recipient), outcome }
    }

    /// An `auth.password_updated` envelope: its detail, then the notice, claimed by the envelope's id.
    async fn open_notice(&self, id: Option<String>, detail: Value, attempt: Attempt) -> Handled {
        let kind = Some(EmailKind::Notice);
        let event_id = id.clone().unwrap_or_default();
        let event = match serde_json::from_value::<PasswordUpdatedEvent>(detail) {
            Ok(event) => event,
            Err(error) => return Handled::malformed(event_id, kind, &error),
        };
        let outcome = self.deliver_notice(id.as_deref(), &event, attempt).await;
        Handled { event_id, kind, recipient: Some(event.about.entity_id), outcome }
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
        let locale = requested_locale(event.metadata.as_ref());
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
                Ok(Composed { email, key, keep_until: at_epoch_seconds(expires_at) })
            }
            Err(error) => Err(Delivery::Dropped { reason: DropReason::RenderFailed, cause: Some(error.to_string()) }),
        }
    }

    /// One `auth.password_updated` event's decision, without logging: an id to claim it by and an
    /// address to send to, then the notice in the event's locale, sent once per event id.
    async fn deliver_notice(
        &self,
        event_id: Option<&str>,
        event: &PasswordUpdatedEvent,
        attempt: Attempt,
    ) -> Result<Delivery, NotifyError> {
        let Some(key) = event_id.and_then(|id| ClaimKey::notice(id).ok()) else {
            let cause = "the envelope has no usable `id` to claim the notice by, so it could not be sent only once";
            return Ok(Delivery::Dropped { reason: DropReason::NoEventId, cause: Some(cause.to_owned()) });
        };
        let Ok(recipient) = Recipient::parse(&event.about.entity_id) else {
            return Ok(Delivery::dropped(DropReason::NotAnEmail));
        };
        let locale = requested_locale(event.metadata.as_ref());
        let actor_type = &event.about.actor_type;
        let context = NoticeContext { email: recipient.as_str(), actor_type, metadata: event.metadata.as_ref() };
        let rendered = match self.templates.render_notice(locale.as_ref(), &context) {
            Ok(rendered) => rendered,
            Err(error) => {
                return Ok(Delivery::Dropped { reason: DropReason::RenderFailed, cause: Some(error.to_string()) });
            }
        };
        let written_in = self.templates.locale_of(EmailKind::Notice, locale.as_ref());
        let email = rendered.addressed_to(recipient, actor_type, written_in);
        self.send_once(Composed { email, key, keep_until: attempt.now + NOTICE_CLAIM_KEPT }, attempt).await
    }

    /// Exactly one e-mail per claim key: claims it until the attempt's deadline, sends, then marks
    /// the claim done (kept as `Composed::keep_until` says) or, when nothing went out, gives it back.
    async fn send_once(&self, ready: Composed, attempt: Attempt) -> Result<Delivery, NotifyError> {
        let ticket = match self.claims.claim(&ready.key, attempt.deadline, attempt.now).await? {
            Claim::Claimed(ticket) => ticket,
            Claim::Held(holder) => return Ok(Delivery::Duplicate { holder }),
        };
        match self.send_paced(&ready.email, attempt.deadline).await {
            Ok(message_id) => {
                if let Err(error) = self.claims.complete(&ticket, ready.keep_until).await {
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
        Ok(facts) => match ClaimKey::reset(&facts.jti) {
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

/// The locale an event's `metadata.locale` asks for, if it is a locale at all; the templates fall
/// back from it to one they have.
fn requested_locale(metadata: Option<&Metadata>) -> Option<Locale> {
    metadata.and_then(|m| m.get_str("locale")).and_then(Locale::parse)
}

/// An event that passed `check`: what `compose` builds the e-mail from.
struct Checked {
    recipient: Recipient,
    key: ClaimKey,
    /// The token's `exp`, seconds since the epoch.
    expires_at: u64,
    /// Whole minutes until then, rounded up: what the e-mail says.
    minutes_left: u64,
}

/// An e-mail ready to claim and send: what `compose` and `deliver_notice` hand `send_once`.
struct Composed {
    email: Email,
    key: ClaimKey,
    /// How long a done claim is kept: a reset's until its token's `exp`, a notice's for
    /// `NOTICE_CLAIM_KEPT`.
    keep_until: SystemTime,
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
            locale: None,
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
        let key = ClaimKey::reset(&jti).unwrap();
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

    /// A password-updated event for `entity_id`, whose reset asked for `locale` if any.
    fn updated(entity_id: &str, actor_type: &str, locale: Option<&str>) -> PasswordUpdatedEvent {
        let metadata = json!(locale.map_or_else(|| json!({}), |locale| json!({"locale": locale})));
        PasswordUpdatedEvent {
            about: EventSubject {
                entity_id: entity_id.to_owned(),
                actor_type: actor_type.to_owned(),
                provider: "emailpass".to_owned(),
            },
            metadata: metadata.as_object().cloned().and_then(|m| Metadata::parse(m).ok()),
        }
    }

    /// The envelope EventBridge delivers a password-updated event in, with this id.
    fn notice_envelope(id: &str, event: &PasswordUpdatedEvent) -> Value {
        let detail = serde_json::to_value(event).unwrap();
        json!({"id": id, "detail-type": "auth.password_updated", "source": "medusa.auth", "detail": detail})
    }

    /// How each shipped locale tells customers what to do if the change was not theirs.
    const NOT_YOU: [(&str, &str); 8] = [
        ("en", "If you did not change your password, request a new password reset at once and contact us."),
        ("de", "Wenn Sie Ihr Passwort nicht selbst geändert haben, setzen Sie es bitte sofort erneut zurück"),
        ("fr", "Si vous n’avez pas modifié votre mot de passe, demandez immédiatement une nouvelle réinitialisation"),
        ("es", "Si no has cambiado tu contraseña, solicita de inmediato un nuevo restablecimiento"),
        ("it", "Se non hai modificato tu la password, richiedi subito una nuova reimpostazione"),
        ("nl", "Heb je je wachtwoord niet zelf gewijzigd? Vraag dan meteen een nieuwe wachtwoordreset aan"),
        ("pt-BR", "Se você não alterou sua senha, peça uma nova redefinição imediatamente"),
        ("pl", "Jeśli ta zmiana nie pochodzi od Ciebie, natychmiast poproś o\u{a0}ponowne zresetowanie hasła"),
    ];

    #[tokio::test]
    async fn a_notice_is_sent_once_per_event_id() {
        let notifier = notifier(FakeMailer::default());
        let event = updated("a@example.com", "customer", None);
        let first = notifier.handle(notice_envelope("n-1", &event), at(NOW)).await;
        assert_eq!(first.outcome.as_ref().unwrap(), &Delivery::Sent { message_id: "message-1".into() });
        assert_eq!(
            (first.kind, first.label(), first.event_id.as_str()),
            (Some(EmailKind::Notice), "notice_sent", "n-1")
        );
        assert_eq!(first.recipient.as_deref(), Some("a@example.com"));
        let sent = notifier.mailer.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].0.as_str(), sent[0].1.subject.as_str()), ("a@example.com", "Your password was changed"));
        // Another change of the same password is another event, with an id of its own.
        let second_change = notifier.handle(notice_envelope("n-2", &event), at(NOW + 60)).await;
        assert!(matches!(second_change.outcome, Ok(Delivery::Sent { .. })), "{second_change:?}");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_redelivered_notice_is_skipped_even_when_replayed_from_the_dead_letter_queue_days_later() {
        let notifier = notifier(FakeMailer::default());
        let event = updated("a@example.com", "customer", None);
        notifier.handle(notice_envelope("n-1", &event), at(NOW)).await.outcome.unwrap();
        let kept = NOTICE_CLAIM_KEPT.as_secs();
        for later in [NOW + 1, NOW + 3_600, NOW + kept - 1] {
            let again = notifier.handle(notice_envelope("n-1", &event), at(later)).await;
            assert_eq!(again.outcome.as_ref().unwrap(), &Delivery::Duplicate { holder: Holder::Done }, "at {later}");
            assert_eq!(again.label(), "notice_duplicate_skipped");
        }
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
        assert_eq!(kept, 14 * 24 * 3_600, "as long as the dead-letter queue keeps an event");
    }

    #[tokio::test]
    async fn a_notice_and_a_reset_email_never_hold_each_others_claims() {
        let notifier = notifier(FakeMailer::default());
        let reset = event("a@example.com", NOW + 900, None);
        let jti = token_check::check(&reset).unwrap().jti;
        // An envelope id that happens to be a token's jti is still another e-mail.
        notifier.handle(notice_envelope(&jti, &updated("a@example.com", "customer", None)), at(NOW)).await;
        let sent = notifier.deliver(&reset, at(NOW)).await.unwrap();
        assert!(matches!(sent, Delivery::Sent { .. }), "{sent:?}");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_locale_the_reset_asked_for_picks_the_notice_template_and_any_other_gets_the_default() {
        let notifier = notifier(FakeMailer::default());
        let cases = [
            (Some("de-DE"), "Ihr Passwort wurde geändert", "de"),
            (Some("pt"), "Sua senha foi alterada", "pt-br"),
            (Some("ja"), "Your password was changed", "en"),
            (Some("not a locale"), "Your password was changed", "en"),
            (None, "Your password was changed", "en"),
        ];
        for (i, (locale, subject, written_in)) in cases.into_iter().enumerate() {
            let event = updated("a@example.com", "customer", locale);
            notifier.handle(notice_envelope(&format!("n-{i}"), &event), at(NOW)).await.outcome.unwrap();
            let sent = notifier.mailer.sent.lock().unwrap();
            let email = &sent.last().unwrap().1;
            assert_eq!((email.subject.as_str(), email.locale.as_str()), (subject, written_in), "{locale:?}");
        }
    }

    /// Every notice in every locale, for customers and admin users, as the notifier sends it.
    async fn every_notice() -> Vec<(String, Email)> {
        let notifier = notifier(FakeMailer::default());
        for (locale, _) in NOT_YOU {
            for actor_type in ["customer", "user"] {
                let event = updated("a@example.com", actor_type, Some(locale));
                let id = format!("{locale}-{actor_type}");
                let handled = notifier.handle(Inbound::Local { id, event: event.into() }, at(NOW)).await;
                assert!(matches!(handled.outcome, Ok(Delivery::Sent { .. })), "{locale}/{actor_type}: {handled:?}");
            }
        }
        let sent = notifier.mailer.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), NOT_YOU.len() * 2, "admin users get their notice, though they have no reset link");
        sent
    }

    #[tokio::test]
    async fn no_part_of_any_notice_in_any_locale_holds_a_link() {
        for (_, email) in every_notice().await {
            let case = format!("{}/{}", email.locale, email.actor_type);
            for (part, text) in [("subject", &email.subject), ("text", &email.text), ("html", &email.html)] {
                assert!(!text.contains("http"), "{case} {part}: {text}");
                assert!(!text.contains("<a ") && !text.contains("href"), "{case} {part}: {text}");
            }
        }
    }

    #[tokio::test]
    async fn every_notice_says_what_to_do_if_the_change_was_not_the_readers() {
        let notices = every_notice().await;
        for (locale, not_you) in NOT_YOU {
            let written_in = locale.to_ascii_lowercase();
            let email =
                notices.iter().map(|(_, email)| email).find(|e| e.locale == written_in && e.actor_type == "customer");
            let email = email.unwrap_or_else(|| panic!("no {locale} notice"));
            assert!(email.text.contains(not_you), "{locale}: {}", email.text);
            let escaped = not_you.replace('’', "&#x27;");
            assert!(email.html.contains(not_you) || email.html.contains(&escaped), "{locale}: {}", email.html);
        }
    }

    #[tokio::test]
    async fn a_notice_envelope_without_an_id_cannot_be_claimed_and_is_dropped_saying_so() {
        let notifier = notifier(FakeMailer::default());
        let mut envelope = notice_envelope("n-1", &updated("a@example.com", "customer", None));
        for id in [Value::Null, json!(""), json!("a\nb")] {
            envelope["id"] = id.clone();
            let handled = notifier.handle(envelope.clone(), at(NOW)).await;
            let Ok(Delivery::Dropped { reason: DropReason::NoEventId, cause: Some(cause) }) = &handled.outcome else {
                panic!("{id}: {handled:?}");
            };
            assert!(cause.contains("`id`"), "{cause}");
            assert_eq!(handled.label(), "notice_dropped_no_event_id");
        }
        let Value::Object(mut without) = envelope else { unreachable!() };
        without.remove("id");
        let handled = notifier.handle(Value::Object(without), at(NOW)).await;
        assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::NoEventId, .. })), "{handled:?}");
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_malformed_notice_or_one_not_to_an_address_is_dropped_with_a_notice_label() {
        let notifier = notifier(FakeMailer::default());
        let with_a_token = json!({"entity_id": "a@example.com", "actor_type": "customer", "provider": "emailpass",
            "metadata": {}, "token": "t.o.k"});
        for detail in [json!({"entity_id": 5}), with_a_token] {
            let envelope =
                json!({"id": "n-1", "detail-type": "auth.password_updated", "source": "medusa.auth", "detail": detail});
            let handled = notifier.handle(envelope, at(NOW)).await;
            assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::MalformedEvent, .. })));
            assert_eq!(handled.label(), "notice_dropped_malformed_event", "{handled:?}");
        }
        for entity_id in ["customer-42", "a@example.com\r\nBcc: x@y.z", "Eve <eve@example.com>"] {
            let handled = notifier.handle(notice_envelope("n-2", &updated(entity_id, "customer", None)), at(NOW)).await;
            assert_eq!(handled.outcome.as_ref().unwrap(), &Delivery::dropped(DropReason::NotAnEmail), "{entity_id:?}");
            assert_eq!(handled.label(), "notice_dropped_not_an_email");
        }
        assert!(notifier.mailer.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_notice_that_failed_to_send_gives_its_claim_back_for_lambdas_retry_with_a_notice_label() {
        let notifier = notifier(FakeMailer { flaky: Mutex::new(1), ..Default::default() });
        let envelope = notice_envelope("n-1", &updated("a@example.com", "customer", None));
        let failed = notifier.handle(envelope.clone(), attempt(NOW, NOW + 10)).await;
        assert!(failed.outcome.is_err(), "{failed:?}");
        assert_eq!(failed.label(), "notice_failed_will_retry");
        let retry = notifier.handle(envelope, attempt(NOW + 1, NOW + 11)).await;
        assert!(matches!(retry.outcome, Ok(Delivery::Sent { .. })), "{retry:?}");
        assert_eq!(notifier.mailer.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_notices_outcomes_begin_with_notice_and_the_reset_emails_keep_theirs() {
        let (reset, notice) = (EmailKind::Reset, EmailKind::Notice);
        let sent = Delivery::Sent { message_id: "m".into() };
        let duplicate = Delivery::Duplicate { holder: Holder::Done };
        assert_eq!((sent.label(reset), sent.label(notice)), ("sent", "notice_sent"));
        assert_eq!(
            (duplicate.label(reset), duplicate.label(notice)),
            ("duplicate_skipped", "notice_duplicate_skipped")
        );
        for reason in
            [DropReason::MalformedEvent, DropReason::NotAnEmail, DropReason::RenderFailed, DropReason::Rejected]
        {
            let dropped = Delivery::dropped(reason);
            assert_eq!(dropped.label(notice), format!("notice_{}", dropped.label(reset)), "{reason:?}");
        }
        assert_eq!(Delivery::dropped(DropReason::NoEventId).label(notice), "notice_dropped_no_event_id");
        assert_eq!(Delivery::Ignored.label(notice), "ignored", "another detail-type has no kind");
        let quota = NotifyError::Mail(MailError::DailyQuota("quota".into()));
        let down = NotifyError::Mail(MailError::Transient("down".into()));
        assert_eq!((quota.label(reset), down.label(reset)), ("parked_daily_quota", "failed_will_retry"));
        assert_eq!(
            (quota.label(notice), down.label(notice)),
            ("notice_parked_daily_quota", "notice_failed_will_retry")
        );
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
