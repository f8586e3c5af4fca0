//! The update use case: spend a reset token on a new password, as Medusa's update route does, and
//! announce the change with `auth.password_updated` so that the notifier can tell the owner.
//!
//! The client IP's update counter is checked before anything else: tokens cannot be guessed, but
//! every request that carries a password costs a scrypt hash, so a flood is turned away first. The
//! token is checked next (signature, expiry, claims), the password hashed off the async runtime,
//! and the token's row spent in the same transaction that writes the hash.

pub mod verify;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::domain::actor::{ActorType, AuthProvider};
use crate::domain::event::{AuthEvent, EventSubject, PasswordUpdatedEvent};
use crate::domain::metadata::Metadata;
use crate::domain::password::{HashError, PasswordHasher};
use crate::domain::update_request::NewPassword;
use crate::identity::{ChangeOutcome, IdentityStore, PasswordChange, StoreError};
use crate::publish::EventPublisher;
use crate::ratelimit::{LimitError, RateLimiter, Subject, Verdict};
use crate::reset::within_limit;

pub use self::verify::{InvalidToken, TokenVerifier, VerifiedToken};

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// Missing, malformed, expired, forged, spent, or for another actor type or identity: Medusa's
    /// 401 "Invalid token".
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The body had no password; the token is spent, as Medusa spends it: its 401 "Unauthorized".
    #[error("the body has no password: the token was spent and nothing written")]
    NoPassword,
    #[error("too many updates from this client")]
    TooManyRequests { retry_after: Duration },
    #[error(transparent)]
    RateLimit(#[from] LimitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error("the hashing task failed: {0}")]
    HashTask(String),
}

/// What a successful update did; the client sees Medusa's 200 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The password was changed and its notice put on the bus.
    Changed,
    /// The password was changed, but the notice could not be published (logged as an error).
    ChangedUnannounced,
}

impl UpdateOutcome {
    /// The outcome the request log and the metric give this request.
    pub fn label(self) -> &'static str {
        match self {
            Self::Changed => "password_changed",
            Self::ChangedUnannounced => "password_changed_unannounced",
        }
    }
}

/// Everything an update needs, built once per cold start.
pub struct UpdateService<P, S, L> {
    verifier: TokenVerifier,
    hasher: Arc<PasswordHasher>,
    publisher: P,
    store: S,
    limiter: L,
}

/// The request as the route parsed it: the path's actor type and provider, the `Authorization`
/// header as it came, and the new password when the body had one.
pub struct UpdateRequest<'a> {
    pub actor_type: &'a ActorType,
    pub provider: &'a AuthProvider,
    pub authorization: Option<&'a [u8]>,
    pub password: Option<NewPassword>,
}

impl<P: EventPublisher, S: IdentityStore, L: RateLimiter> UpdateService<P, S, L> {
    pub fn new(verifier: TokenVerifier, hasher: PasswordHasher, publisher: P, store: S, limiter: L) -> Self {
        Self { verifier, hasher: Arc::new(hasher), publisher, store, limiter }
    }

    /// Counts the request against `client_ip`, then changes the password the token allows.
    pub async fn update_password(
        &self,
        request: UpdateRequest<'_>,
        client_ip: &str,
    ) -> Result<UpdateOutcome, UpdateError> {
        let subject = Subject::for_update(client_ip);
        // The client's count stays whatever follows: failures must not become free requests.
        let verdict = within_limit(self.limiter.check(&subject, SystemTime::now())).await?;
        if let Verdict::IpLimited { retry_after } = verdict {
            return Err(UpdateError::TooManyRequests { retry_after });
        }
        let token = self.verifier.verify(request.authorization, request.actor_type, SystemTime::now())?;
        let password_hash = match request.password {
            Some(password) => Some(self.hash(password).await?),
            None => None,
        };
        let change = PasswordChange {
            entity_id: &token.entity_id,
            provider: request.provider.as_str(),
            jti: &token.jti,
            password_hash: password_hash.as_deref(),
        };
        match self.store.change_password(&change).await? {
            ChangeOutcome::Refused => Err(InvalidToken.into()),
            ChangeOutcome::Spent => Err(UpdateError::NoPassword),
            ChangeOutcome::Changed => Ok(self.announce(&token, request.actor_type, request.provider).await),
        }
    }

    /// scrypt is CPU work of tens of milliseconds: on the blocking pool, so the runtime keeps
    /// answering other requests (`make run`) and its timers.
    async fn hash(&self, password: NewPassword) -> Result<String, UpdateError> {
        let hasher = Arc::clone(&self.hasher);
        tokio::task::spawn_blocking(move || hasher.hash(password.as_bytes()))
            .await
            .map_err(|e| UpdateError::HashTask(e.to_string()))?
            .map_err(UpdateError::from)
    }

    /// The password is changed whatever becomes of the notice, so a failed publish is logged and
    /// the answer stays Medusa's 200: a 500 would send the user back with a spent token.
    async fn announce(&self, token: &VerifiedToken, actor_type: &ActorType, provider: &AuthProvider) -> UpdateOutcome {
        let about = EventSubject {
            entity_id: token.entity_id.clone(),
            actor_type: actor_type.as_str().to_owned(),
            provider: provider.as_str().to_owned(),
        };
        // One short tag is always within metadata's bounds.
        let metadata = token.locale.as_ref().and_then(|locale| {
            let fields = serde_json::Map::from_iter([("locale".to_owned(), locale.as_str().into())]);
            Metadata::parse(fields).ok()
        });
        let event = AuthEvent::PasswordUpdated(PasswordUpdatedEvent { about, metadata });
        match self.publisher.publish(&event).await {
            Ok(()) => UpdateOutcome::Changed,
            Err(error) => {
                tracing::error!(%error, "the password was changed, but its notice could not be published");
                UpdateOutcome::ChangedUnannounced
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ProviderPolicy;
    use crate::domain::identifier::Identifier;
    use crate::domain::password::HashParams;
    use crate::domain::token::{SigningSecret, TokenMinter, TokenSettings, TokenSubject};
    use crate::identity::{MemoryIdentityStore, TokenRecord};
    use crate::publish::ChannelPublisher;
    use crate::ratelimit::{Limit, Limits, MemoryRateLimiter};

    const SECRET: &str = "unit-test-secret-0123456789abcdef0123";
    const EMAIL: &str = "a@example.com";

    fn secret() -> SigningSecret {
        SigningSecret::parse(SECRET).unwrap()
    }

    /// A token of `EMAIL`'s, recorded in `store` as the reset route records it.
    async fn token_in(store: &MemoryIdentityStore) -> String {
        let (actor_type, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let settings = TokenSettings { lifetime: Duration::from_secs(900), issuer: None, audience: None };
        let identifier = Identifier::parse(EMAIL).unwrap();
        let subject =
            TokenSubject { identifier: &identifier, actor_type: &actor_type, provider: &provider, locale: None };
        let minted =
            TokenMinter::new(&secret(), &settings).mint(&subject, uuid::Uuid::new_v4(), SystemTime::now()).unwrap();
        let record = TokenRecord {
            entity_id: EMAIL,
            provider: "emailpass",
            jti: minted.jti,
            expires_at: SystemTime::now() + Duration::from_secs(900),
        };
        store.issue(&record).await.unwrap();
        format!("Bearer {}", minted.token.expose())
    }

    fn service(
        publisher: ChannelPublisher,
        store: Arc<MemoryIdentityStore>,
        update_per_ip: u32,
    ) -> UpdateService<ChannelPublisher, Arc<MemoryIdentityStore>, MemoryRateLimiter> {
        let limits = Limits {
            update_per_ip: Limit { max: update_per_ip, window: Duration::from_secs(60) },
            ..Limits::default()
        };
        // logN 10 keeps a debug build's hash quick; the format is the same.
        let hasher = PasswordHasher::new(HashParams::new(10, 8, 1).unwrap());
        UpdateService::new(TokenVerifier::new(&secret()), hasher, publisher, store, MemoryRateLimiter::new(limits))
    }

    async fn update(
        service: &UpdateService<ChannelPublisher, Arc<MemoryIdentityStore>, MemoryRateLimiter>,
        bearer: &str,
    ) -> Result<UpdateOutcome, UpdateError> {
        let (actor_type, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let password = NewPassword::from_body(&serde_json::json!({"password": "new one"}));
        let request = UpdateRequest {
            actor_type: &actor_type,
            provider: &provider,
            authorization: Some(bearer.as_bytes()),
            password,
        };
        service.update_password(request, "198.51.100.7").await
    }

    #[tokio::test]
    async fn a_notice_that_cannot_be_published_leaves_the_change_made_and_says_so() {
        let store = Arc::new(MemoryIdentityStore::with_identities([(EMAIL, "emailpass")]));
        let (publisher, events) = ChannelPublisher::new();
        drop(events);
        let service = service(publisher, store.clone(), 10);
        let bearer = token_in(&store).await;
        assert_eq!(update(&service, &bearer).await.unwrap(), UpdateOutcome::ChangedUnannounced);
        assert!(store.password_hash(EMAIL, "emailpass").is_some(), "the password changed all the same");
        assert_eq!(UpdateOutcome::ChangedUnannounced.label(), "password_changed_unannounced");
    }

    #[tokio::test]
    async fn a_client_over_its_limit_is_refused_before_its_token_is_read() {
        let store = Arc::new(MemoryIdentityStore::with_identities([(EMAIL, "emailpass")]));
        let (publisher, _events) = ChannelPublisher::new();
        let service = service(publisher, store.clone(), 1);
        assert!(matches!(update(&service, "Bearer forged").await, Err(UpdateError::InvalidToken(_))));
        let bearer = token_in(&store).await;
        assert!(matches!(update(&service, &bearer).await, Err(UpdateError::TooManyRequests { .. })));
        assert_eq!(store.password_hash(EMAIL, "emailpass"), None, "the valid token was never used");
        assert!(store.live_token_hash(EMAIL, "emailpass").is_some(), "and is still live");
    }
}
