//! The identity port: does the identifier have an account, and if so, record the reset token the
//! way Medusa ≥ 2.16 requires; and spend that token on a new password as Medusa's update route
//! does. Medusa's PostgreSQL on Lambda; in memory otherwise.

use std::future::Future;
use std::time::SystemTime;

use either::Either;
use uuid::Uuid;

mod memory;
mod postgres;

pub use memory::MemoryIdentityStore;
pub use postgres::{DatabaseOptions, DatabaseSettings, Endpoint, PostgresIdentityStore, SettingsError, UrlError};

/// The reset token to record for an identity.
#[derive(Debug, Clone)]
pub struct TokenRecord<'a> {
    pub entity_id: &'a str,
    pub provider: &'a str,
    pub jti: Uuid,
    pub expires_at: SystemTime,
}

/// A token recorded for a known identity; `row_id` is absent where nothing is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub row_id: Option<String>,
}

impl IssuedToken {
    /// What the unknown path withdraws when its publish fails: no row. Withdrawing it makes the
    /// calls a withdrawal of a recorded token makes and removes nothing, so a failure costs both
    /// paths the same.
    pub fn nothing() -> Self {
        Self { row_id: None }
    }
}

/// A new `auth_password_reset_token` id in Medusa's format: `authprt_` and a ULID.
pub fn new_row_id() -> String {
    format!("authprt_{}", ulid::Ulid::generate())
}

/// What looking an identifier up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An account, by an id that does not change with the spelling (Medusa's `provider_identity.id`).
    Account(String),
    /// No account has this identifier with this provider.
    NoAccount,
    /// The store does not check (no database): every identifier counts as an account.
    Unchecked,
}

/// A password change a verified token asks for. `password_hash` is `None` when the body gave no
/// password: the token is spent all the same, as Medusa's update route spends it before it reads
/// the body.
#[derive(Debug, Clone)]
pub struct PasswordChange<'a> {
    pub entity_id: &'a str,
    pub provider: &'a str,
    /// The token's `jti`; its SHA-256 finds the token's row on Medusa ≥ 2.16.
    pub jti: &'a str,
    /// What Medusa's emailpass provider stores as `provider_metadata.password`.
    pub password_hash: Option<&'a str>,
}

/// What a password change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// The token was spent and the password written, in one transaction.
    Changed,
    /// The token was spent; there was no password to write.
    Spent,
    /// No live token of this identity (never recorded, spent, expired) or no such identity:
    /// nothing written but an expired row's removal, as Medusa removes it.
    Refused,
}

/// Finds identities, records their reset tokens and spends them on new passwords.
pub trait IdentityStore: Send + Sync + 'static {
    /// Medusa's lookup of the provider identity, without recording anything.
    fn find(&self, entity_id: &str, provider: &str) -> impl Future<Output = Result<Lookup, StoreError>> + Send;

    /// For a known identity: replace its outstanding reset tokens with this one. `None`: no such identity.
    fn issue(&self, record: &TokenRecord<'_>) -> impl Future<Output = Result<Option<IssuedToken>, StoreError>> + Send;

    /// Removes a token recorded by `issue`, when its e-mail could not be set in motion. Given
    /// `IssuedToken::nothing()`, makes the same round trips and removes nothing.
    fn withdraw(&self, issued: &IssuedToken) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Spends the token's row and writes the new password in one transaction; on the schema
    /// without the token table, writes it for the identity the token names.
    fn change_password(
        &self,
        change: &PasswordChange<'_>,
    ) -> impl Future<Output = Result<ChangeOutcome, StoreError>> + Send;
}

/// Why the store could not answer. Messages never carry the connection URL or its password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the Medusa database: {0}")]
    Connect(String),
    #[error("the Medusa database did not answer within {0} ms")]
    Timeout(u64),
    #[error("a Medusa database query failed: {0}")]
    Query(String),
}

/// One store or the other, as the configuration picks at start-up (`app::wiring::identity_store`):
/// one type, so the binaries build one router either way.
impl<L: IdentityStore, R: IdentityStore> IdentityStore for Either<L, R> {
    async fn find(&self, entity_id: &str, provider: &str) -> Result<Lookup, StoreError> {
        either::for_both!(self, store => store.find(entity_id, provider).await)
    }

    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        either::for_both!(self, store => store.issue(record).await)
    }

    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        either::for_both!(self, store => store.withdraw(issued).await)
    }

    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<ChangeOutcome, StoreError> {
        either::for_both!(self, store => store.change_password(change).await)
    }
}

/// One store shared by the two routes of an execution environment (one database connection).
impl<T: IdentityStore> IdentityStore for std::sync::Arc<T> {
    async fn find(&self, entity_id: &str, provider: &str) -> Result<Lookup, StoreError> {
        self.as_ref().find(entity_id, provider).await
    }

    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        self.as_ref().issue(record).await
    }

    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        self.as_ref().withdraw(issued).await
    }

    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<ChangeOutcome, StoreError> {
        self.as_ref().change_password(change).await
    }
}
