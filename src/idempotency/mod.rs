//! The idempotency port: one e-mail per reset token and one notice per password change, however
//! often their events arrive. Before sending, the notifier claims the e-mail (a reset by its token's
//! `jti`, a notice by its EventBridge event's `id`); the claim is in progress until the invocation's
//! deadline, so an attempt that crashed does not block Lambda's retry, and done once SES accepted
//! the message, for as long as the same event may still come back (until the token expires; a
//! notice for as long as the dead-letter queue keeps it). DynamoDB on Lambda (one record seen by
//! every execution environment and every retry), in memory for `make run` and tests. Records end in
//! whole epoch seconds, rounded up: a claim must not end before the deadline it stands for.

use std::future::Future;
use std::time::SystemTime;

use either::Either;

mod dynamodb;
mod memory;

pub use dynamodb::DynamoDbClaimStore;
pub use memory::MemoryClaimStore;

/// One e-mail as the store keys it: `reset#` and its token's `jti` for a reset e-mail, `notice#`
/// and the EventBridge event's `id` for a password-changed notice. The prefixes keep the two apart
/// in one table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey(String);

/// An id that cannot key a claim: empty, longer than any the route mints or EventBridge assigns,
/// or with control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {0} is empty, longer than {MAX_ID_LEN} bytes or holds control characters")]
pub struct InvalidClaimId(&'static str);

/// The route's `jti`s and EventBridge's event ids are UUIDs (36 bytes); the bound keeps a made-up
/// token or envelope from writing large keys.
const MAX_ID_LEN: usize = 128;

impl ClaimKey {
    /// The reset e-mail of the token with this `jti`.
    pub fn reset(jti: &str) -> Result<Self, InvalidClaimId> {
        Self::prefixed("reset", jti, "token's jti")
    }

    /// The password-changed notice of the EventBridge event with this `id`: a redelivered or
    /// replayed event keeps its id, while each change the update route publishes gets a new one.
    pub fn notice(event_id: &str) -> Result<Self, InvalidClaimId> {
        Self::prefixed("notice", event_id, "event's id")
    }

    fn prefixed(prefix: &str, id: &str, what: &'static str) -> Result<Self, InvalidClaimId> {
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(InvalidClaimId(what));
        }
        Ok(Self(format!("{prefix}#{id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who holds an e-mail another attempt claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// SES accepted its e-mail.
    Done,
    /// An attempt whose deadline has not passed is sending it.
    InProgress,
}

impl Holder {
    pub fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::InProgress => "in_progress",
        }
    }
}

/// The proof that a claim is this attempt's: what `complete` and `release` act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    key: ClaimKey,
    /// Random per claim, so that releasing cannot delete a claim another attempt has since taken.
    owner: String,
}

impl Ticket {
    fn new(key: &ClaimKey) -> Self {
        Self { key: key.clone(), owner: uuid::Uuid::new_v4().to_string() }
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This attempt's to send; then `complete` (sent) or `release` (not sent) it.
    Claimed(Ticket),
    /// Another attempt's: sent already, or being sent.
    Held(Holder),
}

impl Claim {
    /// What a claim that met a live record holds: the record's `owner` and whether it is done.
    /// A record this very ticket wrote is this attempt's claim, not a duplicate: the store's client
    /// retried a write whose first try landed and whose reply was lost, and the retry met it.
    fn over(ticket: Ticket, owner: Option<&str>, done: bool) -> Self {
        if owner == Some(ticket.owner.as_str()) {
            return Self::Claimed(ticket);
        }
        Self::Held(if done { Holder::Done } else { Holder::InProgress })
    }
}

/// Claims e-mails so that each is sent once.
pub trait ClaimStore: Send + Sync + 'static {
    /// Claims `key` until `until` (the attempt's deadline), unless a record that has not expired
    /// by `now` holds it. An expired record, done or not, counts as absent, as TTL would make it.
    fn claim(
        &self,
        key: &ClaimKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<Claim, ClaimError>> + Send;

    /// Records the e-mail as sent, kept until `keep_until`: a reset's until its token expires (a
    /// later redelivery is refused as an expired token anyway), a notice's for as long as its event
    /// may come back.
    fn complete(&self, ticket: &Ticket, keep_until: SystemTime) -> impl Future<Output = Result<(), ClaimError>> + Send;

    /// Gives up a claim that sent nothing, so that the retry can send; a claim no longer this
    /// ticket's, or no longer in progress, is left as it is.
    fn release(&self, ticket: &Ticket) -> impl Future<Output = Result<(), ClaimError>> + Send;
}

/// The store could not decide. The notifier then fails the invocation (Lambda retries) rather
/// than send without a claim.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency store failed: {0}")]
pub struct ClaimError(pub String);

/// One store or the other, as the configuration picks at start-up (`app::wiring::claim_store`):
/// one type, so the notifier is one type either way.
impl<L: ClaimStore, R: ClaimStore> ClaimStore for Either<L, R> {
    async fn claim(&self, key: &ClaimKey, until: SystemTime, now: SystemTime) -> Result<Claim, ClaimError> {
        either::for_both!(self, store => store.claim(key, until, now).await)
    }

    async fn complete(&self, ticket: &Ticket, keep_until: SystemTime) -> Result<(), ClaimError> {
        either::for_both!(self, store => store.complete(ticket, keep_until).await)
    }

    async fn release(&self, ticket: &Ticket) -> Result<(), ClaimError> {
        either::for_both!(self, store => store.release(ticket).await)
    }
}

/// The DynamoDB table that holds the claims (`IDEMPOTENCY_TABLE`, read in `config::notifier`); in
/// memory without one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdempotencySettings {
    pub table: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_or_an_event_id_keys_a_claim_and_an_empty_long_or_control_one_does_not() {
        let id = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
        assert_eq!(ClaimKey::reset(id).unwrap().as_str(), "reset#6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
        assert_eq!(ClaimKey::notice(id).unwrap().as_str(), "notice#6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
        assert_ne!(ClaimKey::reset(id), ClaimKey::notice(id), "a notice never holds a reset's claim");
        for bad in [String::new(), "x".repeat(MAX_ID_LEN + 1), "a\nb".to_owned(), "a\u{0}".to_owned()] {
            assert_eq!(ClaimKey::reset(&bad), Err(InvalidClaimId("token's jti")), "{bad:?}");
            assert_eq!(ClaimKey::notice(&bad), Err(InvalidClaimId("event's id")), "{bad:?}");
        }
        assert!(ClaimKey::reset(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(ClaimKey::notice(&"x".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn a_record_this_ticket_wrote_is_its_claim_and_any_other_holds_the_reset() {
        let ticket = Ticket::new(&ClaimKey::reset("j").unwrap());
        let own = ticket.owner.clone();
        assert_eq!(Claim::over(ticket.clone(), Some(&own), false), Claim::Claimed(ticket.clone()));
        assert_eq!(Claim::over(ticket.clone(), Some("another"), false), Claim::Held(Holder::InProgress));
        assert_eq!(Claim::over(ticket.clone(), Some("another"), true), Claim::Held(Holder::Done));
        assert_eq!(Claim::over(ticket, None, false), Claim::Held(Holder::InProgress), "no owner is not ours");
    }
}
