//! The idempotency port: one reset e-mail per token, however often its event arrives. Before
//! sending, the notifier claims the reset (keyed by the token's `jti`); the claim is in progress
//! until the invocation's deadline, so an attempt that crashed does not block Lambda's retry, and
//! done, until the token itself expires, once SES accepted the message. DynamoDB on Lambda (one
//! record seen by every execution environment and every retry), in memory for `make run` and tests.
//! Records end in whole epoch seconds, rounded up: a claim must not end before the deadline it
//! stands for.

use std::future::Future;
use std::time::SystemTime;

use either::Either;

mod dynamodb;
mod memory;

pub use dynamodb::DynamoDbClaimStore;
pub use memory::MemoryClaimStore;

/// One reset as the store keys it: `reset#` and its token's `jti`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResetKey(String);

/// A `jti` that cannot key a claim: empty, longer than any the route mints, or with control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token's jti is empty, longer than {MAX_JTI_LEN} bytes or holds control characters")]
pub struct InvalidJti;

/// The route mints UUIDs (36 bytes); the bound keeps a made-up token from writing large keys.
const MAX_JTI_LEN: usize = 128;

impl ResetKey {
    pub fn parse(jti: &str) -> Result<Self, InvalidJti> {
        if jti.is_empty() || jti.len() > MAX_JTI_LEN || jti.chars().any(char::is_control) {
            return Err(InvalidJti);
        }
        Ok(Self(format!("reset#{jti}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who holds a reset another attempt claimed.
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
    key: ResetKey,
    /// Random per claim, so that releasing cannot delete a claim another attempt has since taken.
    owner: String,
}

impl Ticket {
    fn new(key: &ResetKey) -> Self {
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

/// Claims resets so that each is sent once.
pub trait ClaimStore: Send + Sync + 'static {
    /// Claims `key` until `until` (the attempt's deadline), unless a record that has not expired
    /// by `now` holds it. An expired record, done or not, counts as absent, as TTL would make it.
    fn claim(
        &self,
        key: &ResetKey,
        until: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<Claim, ClaimError>> + Send;

    /// Records the reset as sent, kept until `keep_until` (the token's expiry): after that a
    /// redelivery is refused as an expired token anyway.
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
    async fn claim(&self, key: &ResetKey, until: SystemTime, now: SystemTime) -> Result<Claim, ClaimError> {
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
    fn a_jti_keys_a_claim_and_an_empty_long_or_control_one_does_not() {
        let key = ResetKey::parse("6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        assert_eq!(key.as_str(), "reset#6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
        for bad in [String::new(), "x".repeat(MAX_JTI_LEN + 1), "a\nb".to_owned(), "a\u{0}".to_owned()] {
            assert_eq!(ResetKey::parse(&bad), Err(InvalidJti), "{bad:?}");
        }
        assert!(ResetKey::parse(&"x".repeat(MAX_JTI_LEN)).is_ok());
    }

    #[test]
    fn a_record_this_ticket_wrote_is_its_claim_and_any_other_holds_the_reset() {
        let ticket = Ticket::new(&ResetKey::parse("j").unwrap());
        let own = ticket.owner.clone();
        assert_eq!(Claim::over(ticket.clone(), Some(&own), false), Claim::Claimed(ticket.clone()));
        assert_eq!(Claim::over(ticket.clone(), Some("another"), false), Claim::Held(Holder::InProgress));
        assert_eq!(Claim::over(ticket.clone(), Some("another"), true), Claim::Held(Holder::Done));
        assert_eq!(Claim::over(ticket, None, false), Claim::Held(Holder::InProgress), "no owner is not ours");
    }
}
