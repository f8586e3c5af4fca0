//! The reset use case: mint a token, record it for a known identity, and publish the event.
//!
//! Known and unknown identifiers take the same steps (a lookup, the rate limits, mint, one store
//! call, one publish) so that neither the answer nor its timing tells them apart; only what is
//! published differs. The per-identifier limits count against the account the lookup found, so
//! requests for spellings without an account cannot use up a real account's share. Recording a
//! token still costs the database a little more than finding nothing, so every answer, a failure's
//! too, is held back until a configured floor has passed: both paths then take the floor, not their
//! own time. With sealing on, the unknown path has the publisher seal a throwaway of the token's
//! size, so the KMS round trip is made on both paths too; when publishing fails, the known path
//! withdraws its row and the unknown path withdraws nothing by the same store call.

pub mod budget;

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use uuid::Uuid;

use crate::domain::actor::{ActorType, AuthProvider};
use crate::domain::clock::at_epoch_seconds;
use crate::domain::event::{AuthEvent, EventSubject, PasswordResetEvent, UnknownIdentityEvent};
use crate::domain::locale::Locale;
use crate::domain::reset_request::ResetRequest;
use crate::domain::token::{TokenError, TokenMinter, TokenSubject};
use crate::identity::{IdentityStore, IssuedToken, Lookup, StoreError, TokenRecord};
use crate::publish::{EventPublisher, PublishError};
use crate::ratelimit::{IdentityKey, LimitError, RateLimiter, Share, Subject, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    RateLimit(#[from] LimitError),
    /// The client IP is over its limit.
    #[error("too many requests from this client")]
    TooManyRequests { retry_after: Duration },
}

/// The longest a rate-limit check, or a give-back, may take. A remote limiter may make several
/// calls for one (DynamoDB's retries a conflicting transaction; a give-back is a call per counter),
/// each within the SDK's operation time-out; held to one such time-out as a whole, each is one
/// figure in the time budget.
pub const RATE_LIMIT_TIME_LIMIT: Duration = crate::aws::OPERATION_TIMEOUT;

/// What a successful request did; the client sees the same 201 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetOutcome {
    TokenPublished,
    UnknownIdentity,
    /// The identifier had its share of tokens for now: nothing minted, nothing published.
    RateLimited,
}

impl ResetOutcome {
    /// The outcome the request log and the metric give this request.
    pub fn label(self) -> &'static str {
        match self {
            Self::TokenPublished => "token_published",
            Self::UnknownIdentity => "unknown_identity",
            Self::RateLimited => "rate_limited_identifier",
        }
    }
}

/// Everything a reset needs, built once per cold start.
pub struct ResetService<P, S, L> {
    minter: TokenMinter,
    publisher: P,
    store: S,
    limiter: L,
    /// Keys the rate limits' identity hash; derived from the signing secret, so no new setting.
    identity_key: IdentityKey,
    floor: Duration,
}

impl<P: EventPublisher, S: IdentityStore, L: RateLimiter> ResetService<P, S, L> {
    pub fn new(minter: TokenMinter, publisher: P, store: S, limiter: L, floor: Duration) -> Self {
        let identity_key = IdentityKey::new(&minter.derive_key(IdentityKey::LABEL));
        Self { minter, publisher, store, limiter, identity_key, floor }
    }

    /// Looks the identifier up, checks the rate limits against what it found (failing closed),
    /// then resets. `client_ip` is the caller's address. Whatever the outcome, the answer takes at
    /// least the floor: a failure that came sooner on one path than on the other would tell them
    /// apart as surely as a success would.
    pub async fn request_reset(
        &self,
        request: ResetRequest,
        actor_type: &ActorType,
        provider: &AuthProvider,
        client_ip: &str,
    ) -> Result<ResetOutcome, ResetError> {
        let started = Instant::now();
        let result = self.limited_reset(request, actor_type, provider, client_ip).await;
        if !self.floor.is_zero() {
            wait_until(started + self.floor).await;
        }
        result
    }

    async fn limited_reset(
        &self,
        request: ResetRequest,
        actor_type: &ActorType,
        provider: &AuthProvider,
        client_ip: &str,
    ) -> Result<ResetOutcome, ResetError> {
        let identifier = request.identifier.as_str();
        // Both paths look up, so the lookup's time tells nothing; the issue below looks up again
        // inside its transaction, so an account deleted in between gets no token.
        let lookup = self.store.find(identifier, provider.as_str()).await?;
        let share = match &lookup {
            Lookup::Account(id) => Share::Account(id),
            Lookup::NoAccount => Share::NoAccount(identifier),
            Lookup::Unchecked => Share::Identifier(identifier),
        };
        let subject = Subject::new(&self.identity_key, client_ip, actor_type.as_str(), provider.as_str(), share);
        let checked_at = SystemTime::now();
        let verdict = match within_limit(self.limiter.check(&subject, checked_at)).await {
            Ok(verdict) => verdict,
            Err(error) => {
                // A check that failed may still have counted (its reply lost, or cut by the time
                // limit): the give-back takes back whatever this request counted, and nothing more.
                self.give_back(&subject, checked_at).await;
                return Err(error.into());
            }
        };
        match verdict {
            Verdict::IpLimited { retry_after } => Err(ResetError::TooManyRequests { retry_after }),
            Verdict::IdentifierLimited => Ok(ResetOutcome::RateLimited),
            Verdict::Allowed => {
                let result = self.reset(request, actor_type, provider).await;
                if result.is_err() {
                    // The user saw a 500 and will retry: the failed attempt must not use up their share.
                    self.give_back(&subject, checked_at).await;
                }
                result
            }
        }
    }

    /// Gives the identifier's counts back after a failure; a give-back that fails is logged, and
    /// the original failure stays the answer.
    async fn give_back(&self, subject: &Subject, checked_at: SystemTime) {
        if let Err(release) = within_limit(self.limiter.release(subject, checked_at)).await {
            tracing::error!(error = %release, "could not give back the rate-limit count after a failure");
        }
    }

    /// Takes back what `issue` recorded, after a failed publish; a failure is logged.
    async fn withdraw(&self, issued: &IssuedToken) {
        if let Err(withdraw) = self.store.withdraw(issued).await {
            tracing::error!(error = %withdraw, "could not withdraw the reset token after a failed publish");
        }
    }

    async fn reset(
        &self,
        request: ResetRequest,
        actor_type: &ActorType,
        provider: &AuthProvider,
    ) -> Result<ResetOutcome, ResetError> {
        let now = SystemTime::now();
        let locale = request.metadata.as_ref().and_then(|metadata| metadata.get_str("locale")).and_then(Locale::parse);
        let subject = TokenSubject { identifier: &request.identifier, actor_type, provider, locale: locale.as_ref() };
        let minted = self.minter.mint(&subject, Uuid::new_v4(), now)?;
        let record = TokenRecord {
            entity_id: request.identifier.as_str(),
            provider: provider.as_str(),
            jti: minted.jti,
            expires_at: at_epoch_seconds(minted.expires_at),
        };
        let about = EventSubject::new(&request.identifier, actor_type, provider);
        let Some(issued) = self.store.issue(&record).await? else {
            let event = AuthEvent::UnknownIdentity(UnknownIdentityEvent { about, metadata: request.metadata });
            // The minted token stays here; only its length goes, for a sealing publisher's throwaway.
            if let Err(error) = self.publisher.publish_unknown(&event, minted.token.expose().len()).await {
                // The known path withdraws its row here: the same call, withdrawing nothing.
                self.withdraw(&IssuedToken::nothing()).await;
                return Err(error.into());
            }
            return Ok(ResetOutcome::UnknownIdentity);
        };
        let event =
            AuthEvent::PasswordReset(PasswordResetEvent { about, token: minted.token, metadata: request.metadata });
        if let Err(error) = self.publisher.publish(&event).await {
            // No usable token without its e-mail: take the row back.
            self.withdraw(&issued).await;
            return Err(error.into());
        }
        Ok(ResetOutcome::TokenPublished)
    }
}

/// A rate-limiter call held to `RATE_LIMIT_TIME_LIMIT`; running over is the limiter failing.
pub(crate) async fn within_limit<T>(call: impl Future<Output = Result<T, LimitError>>) -> Result<T, LimitError> {
    tokio::time::timeout(RATE_LIMIT_TIME_LIMIT, call)
        .await
        .unwrap_or_else(|_| Err(LimitError(format!("no answer within {} ms", RATE_LIMIT_TIME_LIMIT.as_millis()))))
}

/// Waits until `deadline` to well under a millisecond. tokio's timer alone would not do: it wakes
/// on whole milliseconds counted from when the task parked, so the sub-millisecond length of the
/// work before it would still show in the answer's timing. The last stretch sleeps on a blocking
/// thread, whose sleep is precise.
async fn wait_until(deadline: Instant) {
    const COARSE_MARGIN: Duration = Duration::from_millis(2);
    if let Some(coarse) = deadline.checked_sub(COARSE_MARGIN) {
        tokio::time::sleep_until(coarse).await;
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    if !remaining.is_zero() {
        // If the blocking pool fails the sleep, answering slightly early is the lesser harm.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(remaining)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiConfig;
    use crate::domain::actor::ProviderPolicy;
    use crate::domain::token::SigningSecret;
    use crate::domain::token::jti_hash;
    use crate::identity::MemoryIdentityStore;
    use crate::publish::ChannelPublisher;
    use crate::ratelimit::{Limits, MemoryRateLimiter};
    use tokio::sync::mpsc::UnboundedReceiver;

    type Service = ResetService<ChannelPublisher, MemoryIdentityStore, MemoryRateLimiter>;

    fn minter() -> TokenMinter {
        let config = ApiConfig::for_tests();
        TokenMinter::new(&SigningSecret::parse("unit-test-secret-0123456789abcdef0123").unwrap(), &config.token)
    }

    fn service(store: MemoryIdentityStore) -> (Service, UnboundedReceiver<AuthEvent>) {
        let (publisher, events) = ChannelPublisher::new();
        let limiter = MemoryRateLimiter::new(Limits::default());
        (ResetService::new(minter(), publisher, store, limiter, Duration::ZERO), events)
    }

    fn request(identifier: &str) -> ResetRequest {
        ResetRequest::from_json(serde_json::json!({ "identifier": identifier })).unwrap()
    }

    async fn reset(service: &Service, identifier: &str) -> Result<ResetOutcome, ResetError> {
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        service.request_reset(request(identifier), &actor, &provider, "198.51.100.1").await
    }

    #[tokio::test]
    async fn a_known_identity_gets_a_recorded_token_and_its_event() {
        let (service, mut events) = service(MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]));
        assert_eq!(reset(&service, "a@example.com").await.unwrap(), ResetOutcome::TokenPublished);
        let Ok(AuthEvent::PasswordReset(event)) = events.try_recv() else { panic!("a password reset event") };
        let claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<crate::domain::token::ResetClaims>(event.token.expose())
                .unwrap();
        let jti = Uuid::parse_str(&claims.jti).unwrap();
        assert_eq!(service.store.live_token_hash("a@example.com", "emailpass"), Some(jti_hash(&jti)));
    }

    #[tokio::test]
    async fn an_unknown_identity_gets_no_token_only_the_unknown_event() {
        let (service, mut events) = service(MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]));
        assert_eq!(reset(&service, "nobody@example.com").await.unwrap(), ResetOutcome::UnknownIdentity);
        assert!(
            matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(e)) if e.about.entity_id == "nobody@example.com")
        );
        assert!(events.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_successful_answer_waits_for_the_floor_whichever_the_path() {
        let (publisher, _events) = ChannelPublisher::new();
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let floor = Duration::from_millis(50);
        let limiter = MemoryRateLimiter::new(Limits::default());
        let service = ResetService::new(minter(), publisher, store, limiter, floor);
        for identifier in ["a@example.com", "nobody@example.com"] {
            let started = Instant::now();
            reset(&service, identifier).await.unwrap();
            let elapsed = started.elapsed();
            // Never early; a loaded machine may run late, so the upper bound only catches a hang.
            assert!(elapsed >= floor, "{identifier} answered before the floor: {elapsed:?}");
            assert!(elapsed < floor + Duration::from_secs(1), "{identifier}: {elapsed:?}");
        }
    }

    #[tokio::test]
    async fn a_rate_limited_identifier_gets_nothing_minted_or_published() {
        let (service, mut events) = service(MemoryIdentityStore::open());
        assert_eq!(reset(&service, "a@example.com").await.unwrap(), ResetOutcome::TokenPublished);
        assert!(events.try_recv().is_ok());
        assert_eq!(reset(&service, "a@example.com").await.unwrap(), ResetOutcome::RateLimited);
        assert!(events.try_recv().is_err());
    }

    /// Fails its first `failures` publishes, then hands events on.
    struct FlakyPublisher {
        failures: std::sync::atomic::AtomicUsize,
        inner: ChannelPublisher,
    }

    impl EventPublisher for FlakyPublisher {
        async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
            use std::sync::atomic::Ordering;
            if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                return Err(PublishError::Service("stub outage".into()));
            }
            self.inner.publish(event).await
        }

        async fn publish_unknown(&self, event: &AuthEvent, _token_len: usize) -> Result<(), PublishError> {
            self.publish(event).await
        }
    }

    async fn reset_with<P: EventPublisher, L: RateLimiter>(
        service: &ResetService<P, MemoryIdentityStore, L>,
        identifier: &str,
    ) -> Result<ResetOutcome, ResetError> {
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        service.request_reset(request(identifier), &actor, &provider, "198.51.100.1").await
    }

    #[tokio::test]
    async fn a_failed_reset_gives_the_identifiers_count_back_so_the_retry_is_served() {
        let (inner, mut events) = ChannelPublisher::new();
        let publisher = FlakyPublisher { failures: 1.into(), inner };
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let limiter = MemoryRateLimiter::new(Limits::default());
        let service = ResetService::new(minter(), publisher, store, limiter, Duration::ZERO);
        assert!(matches!(reset_with(&service, "a@example.com").await, Err(ResetError::Publish(_))));
        assert!(events.try_recv().is_err());
        assert_eq!(reset_with(&service, "a@example.com").await.unwrap(), ResetOutcome::TokenPublished, "the retry");
        assert!(matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(_))));
        assert_eq!(reset_with(&service, "a@example.com").await.unwrap(), ResetOutcome::RateLimited, "then counted");
    }

    /// Allows everything and cannot give anything back.
    struct UnreleasingLimiter;

    impl RateLimiter for UnreleasingLimiter {
        async fn check(&self, _: &Subject, _: SystemTime) -> Result<Verdict, LimitError> {
            Ok(Verdict::Allowed)
        }

        async fn release(&self, _: &Subject, _: SystemTime) -> Result<(), LimitError> {
            Err(LimitError("table unavailable".into()))
        }
    }

    #[tokio::test]
    async fn a_give_back_that_fails_leaves_the_original_failure_as_the_answer() {
        let (publisher, events) = ChannelPublisher::new();
        drop(events);
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let service = ResetService::new(minter(), publisher, store, UnreleasingLimiter, Duration::ZERO);
        assert!(matches!(reset_with(&service, "a@example.com").await, Err(ResetError::Publish(_))));
    }

    #[tokio::test]
    async fn spellings_of_one_address_share_its_limit_but_the_token_keeps_the_spelling_given() {
        let (service, mut events) = service(MemoryIdentityStore::open());
        assert_eq!(reset(&service, "Victim@Example.com").await.unwrap(), ResetOutcome::TokenPublished);
        let Ok(AuthEvent::PasswordReset(event)) = events.try_recv() else { panic!("a password reset event") };
        assert_eq!(event.about.entity_id, "Victim@Example.com");
        let claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<crate::domain::token::ResetClaims>(event.token.expose())
                .unwrap();
        assert_eq!(claims.entity_id, "Victim@Example.com");
        assert_eq!(reset(&service, "victim@EXAMPLE.COM").await.unwrap(), ResetOutcome::RateLimited);
        assert!(events.try_recv().is_err());
    }

    #[tokio::test]
    async fn requests_for_spellings_without_an_account_leave_the_accounts_share_alone() {
        let (service, mut events) = service(MemoryIdentityStore::with_identities([("alice@example.com", "emailpass")]));
        for spelling in ["ALICE@example.com", "alice@EXAMPLE.com", "Alice@Example.com", "ALICE@EXAMPLE.COM"] {
            assert_ne!(reset(&service, spelling).await.unwrap(), ResetOutcome::TokenPublished, "{spelling:?}");
        }
        assert_eq!(reset(&service, "alice@example.com").await.unwrap(), ResetOutcome::TokenPublished);
        let tokens = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|event| matches!(event, AuthEvent::PasswordReset(_)))
            .count();
        assert_eq!(tokens, 1);
        // Her share is hers: a second request within the minute is held back as before.
        assert_eq!(reset(&service, "alice@example.com").await.unwrap(), ResetOutcome::RateLimited);
    }

    #[tokio::test]
    async fn an_unknown_spelling_is_limited_on_its_exact_key_so_a_second_spelling_tells_nothing() {
        let (service, _events) = service(MemoryIdentityStore::with_identities([("alice@example.com", "emailpass")]));
        // Another spelling first, then the address itself: both allowed whether or not the address
        // has an account, so that neither answer's work tells the two apart.
        assert_eq!(reset(&service, "NOBODY@example.com").await.unwrap(), ResetOutcome::UnknownIdentity);
        assert_eq!(reset(&service, "nobody@example.com").await.unwrap(), ResetOutcome::UnknownIdentity);
        assert_eq!(reset(&service, "ALICE@example.com").await.unwrap(), ResetOutcome::UnknownIdentity);
        assert_eq!(reset(&service, "alice@example.com").await.unwrap(), ResetOutcome::TokenPublished);
        // The same spelling again is limited on either path.
        assert_eq!(reset(&service, "nobody@example.com").await.unwrap(), ResetOutcome::RateLimited);
        assert_eq!(reset(&service, "alice@example.com").await.unwrap(), ResetOutcome::RateLimited);
    }

    /// Never answers.
    struct StuckLimiter;

    impl RateLimiter for StuckLimiter {
        async fn check(&self, _: &Subject, _: SystemTime) -> Result<Verdict, LimitError> {
            std::future::pending().await
        }

        async fn release(&self, _: &Subject, _: SystemTime) -> Result<(), LimitError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_rate_limiter_that_never_answers_fails_the_request_within_the_check_and_give_back_limits() {
        let (publisher, mut events) = ChannelPublisher::new();
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let service = ResetService::new(minter(), publisher, store, StuckLimiter, Duration::ZERO);
        let started = Instant::now();
        assert!(matches!(reset_with(&service, "a@example.com").await, Err(ResetError::RateLimit(_))));
        let elapsed = started.elapsed();
        // The check is cut, then the give-back is tried (the check may have counted) and cut too.
        assert!(elapsed >= 2 * RATE_LIMIT_TIME_LIMIT, "{elapsed:?}");
        assert!(elapsed < 2 * RATE_LIMIT_TIME_LIMIT + Duration::from_secs(1), "{elapsed:?}");
        assert!(events.try_recv().is_err());
    }

    /// Answers the check, then never answers the give-back.
    struct StuckGiveBack;

    impl RateLimiter for StuckGiveBack {
        async fn check(&self, _: &Subject, _: SystemTime) -> Result<Verdict, LimitError> {
            Ok(Verdict::Allowed)
        }

        async fn release(&self, _: &Subject, _: SystemTime) -> Result<(), LimitError> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_give_back_that_never_answers_is_cut_and_the_failure_stands() {
        let (publisher, events) = ChannelPublisher::new();
        drop(events);
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let service = ResetService::new(minter(), publisher, store, StuckGiveBack, Duration::ZERO);
        let started = Instant::now();
        assert!(matches!(reset_with(&service, "a@example.com").await, Err(ResetError::Publish(_))));
        let elapsed = started.elapsed();
        assert!(elapsed >= RATE_LIMIT_TIME_LIMIT, "the give-back was tried: {elapsed:?}");
        assert!(elapsed < RATE_LIMIT_TIME_LIMIT + Duration::from_secs(1), "{elapsed:?}");
    }

    /// Records the token lengths it is given for unknown identifiers, and the tokens it publishes.
    #[derive(Default)]
    struct LengthRecorder {
        throwaway_lengths: std::sync::Mutex<Vec<usize>>,
        token_lengths: std::sync::Mutex<Vec<usize>>,
    }

    impl EventPublisher for LengthRecorder {
        async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
            if let AuthEvent::PasswordReset(reset) = event {
                self.token_lengths.lock().unwrap().push(reset.token.expose().len());
            }
            Ok(())
        }

        async fn publish_unknown(&self, _: &AuthEvent, token_len: usize) -> Result<(), PublishError> {
            self.throwaway_lengths.lock().unwrap().push(token_len);
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_unknown_path_hands_the_publisher_the_length_a_known_token_has() {
        let recorder = std::sync::Arc::new(LengthRecorder::default());
        let store = MemoryIdentityStore::with_identities([("known@example.com", "emailpass")]);
        let limiter = MemoryRateLimiter::new(Limits::default());
        let service = ResetService::new(minter(), recorder.clone(), store, limiter, Duration::ZERO);
        // Identifiers of one length: their tokens have one length.
        assert_eq!(reset_with(&service, "known@example.com").await.unwrap(), ResetOutcome::TokenPublished);
        assert_eq!(reset_with(&service, "other@example.com").await.unwrap(), ResetOutcome::UnknownIdentity);
        assert_eq!(
            reset_with(&service, "a-much-longer-unknown@example.com").await.unwrap(),
            ResetOutcome::UnknownIdentity
        );
        let known = recorder.token_lengths.lock().unwrap().clone();
        let throwaways = recorder.throwaway_lengths.lock().unwrap().clone();
        assert_eq!(known.len(), 1);
        assert_eq!(throwaways.len(), 2);
        assert_eq!(throwaways[0], known[0]);
        assert!(throwaways[1] > known[0], "the length follows the identifier: {throwaways:?}");
    }

    #[tokio::test]
    async fn a_failed_publish_withdraws_the_token() {
        let (service, events) = service(MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]));
        drop(events);
        assert!(matches!(reset(&service, "a@example.com").await, Err(ResetError::Publish(_))));
        assert_eq!(service.store.live_token_hash("a@example.com", "emailpass"), None);
    }
}
