//! In-memory identity store: without a database every identifier counts as an account and nothing
//! is recorded (Medusa 2.6–2.15 accept the token as it stands, and a password change has nowhere to
//! go); with a fixed set of identities it behaves like Medusa's tables, for unit tests.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::{ChangeOutcome, IdentityStore, IssuedToken, Lookup, PasswordChange, StoreError, TokenRecord, new_row_id};
use crate::domain::token::{jti_hash, sha256_hex};

#[derive(Debug, Default)]
pub struct MemoryIdentityStore {
    /// `None`: everyone is known and nothing is recorded, so memory cannot grow with traffic.
    known: Option<HashSet<(String, String)>>,
    /// (entity_id, provider) → (row id, token hash) of the one live token.
    live: Mutex<HashMap<(String, String), (String, String)>>,
    /// (entity_id, provider) → the password hash the update route wrote.
    passwords: Mutex<HashMap<(String, String), String>>,
}

impl MemoryIdentityStore {
    /// Every identifier is an account; nothing is stored.
    pub fn open() -> Self {
        Self::default()
    }

    /// Only these `(entity_id, provider)` pairs are accounts; their tokens are recorded.
    pub fn with_identities<'a>(identities: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let known = identities.into_iter().map(|(e, p)| (e.to_owned(), p.to_owned())).collect();
        Self { known: Some(known), ..Self::default() }
    }

    /// The hash of the live token of an identity, if any.
    pub fn live_token_hash(&self, entity_id: &str, provider: &str) -> Option<String> {
        let live = self.live.lock().ok()?;
        live.get(&(entity_id.to_owned(), provider.to_owned())).map(|(_, hash)| hash.clone())
    }

    /// The password hash the update route wrote for an identity, if any.
    pub fn password_hash(&self, entity_id: &str, provider: &str) -> Option<String> {
        let passwords = self.passwords.lock().ok()?;
        passwords.get(&(entity_id.to_owned(), provider.to_owned())).cloned()
    }
}

fn poisoned<T>(error: std::sync::PoisonError<T>) -> StoreError {
    StoreError::Query(error.to_string())
}

impl IdentityStore for MemoryIdentityStore {
    /// A known identity's id is its `provider:entity_id`: exact, as Medusa's lookup is.
    async fn find(&self, entity_id: &str, provider: &str) -> Result<Lookup, StoreError> {
        Ok(match &self.known {
            None => Lookup::Unchecked,
            Some(known) if known.contains(&(entity_id.to_owned(), provider.to_owned())) => {
                Lookup::Account(format!("{provider}:{entity_id}"))
            }
            Some(_) => Lookup::NoAccount,
        })
    }

    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        let Some(known) = &self.known else {
            return Ok(Some(IssuedToken { row_id: None }));
        };
        let key = (record.entity_id.to_owned(), record.provider.to_owned());
        if !known.contains(&key) {
            return Ok(None);
        }
        let row_id = new_row_id();
        let mut live = self.live.lock().map_err(poisoned)?;
        live.insert(key, (row_id.clone(), jti_hash(&record.jti)));
        Ok(Some(IssuedToken { row_id: Some(row_id) }))
    }

    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        let mut live = self.live.lock().map_err(poisoned)?;
        live.retain(|_, (row_id, _)| Some(row_id.as_str()) != issued.row_id.as_deref());
        Ok(())
    }

    /// The open store has no accounts to write to: every verified token changes "the" password.
    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<ChangeOutcome, StoreError> {
        if self.known.is_none() {
            return Ok(if change.password_hash.is_some() { ChangeOutcome::Changed } else { ChangeOutcome::Spent });
        }
        let key = (change.entity_id.to_owned(), change.provider.to_owned());
        let hash = sha256_hex(change.jti.as_bytes());
        let mut live = self.live.lock().map_err(poisoned)?;
        if live.get(&key).is_none_or(|(_, live_hash)| *live_hash != hash) {
            return Ok(ChangeOutcome::Refused);
        }
        live.remove(&key);
        let Some(password_hash) = change.password_hash else {
            return Ok(ChangeOutcome::Spent);
        };
        self.passwords.lock().map_err(poisoned)?.insert(key, password_hash.to_owned());
        Ok(ChangeOutcome::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use uuid::Uuid;

    fn record(entity_id: &str) -> TokenRecord<'_> {
        TokenRecord { entity_id, provider: "emailpass", jti: Uuid::new_v4(), expires_at: SystemTime::now() }
    }

    #[tokio::test]
    async fn an_open_store_knows_everyone_and_keeps_nothing() {
        let store = MemoryIdentityStore::open();
        assert_eq!(store.issue(&record("anyone@example.com")).await.unwrap(), Some(IssuedToken { row_id: None }));
        assert_eq!(store.live_token_hash("anyone@example.com", "emailpass"), None);
    }

    #[tokio::test]
    async fn a_lookup_finds_exactly_the_known_spelling_and_an_open_store_checks_nothing() {
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        assert!(matches!(store.find("a@example.com", "emailpass").await.unwrap(), Lookup::Account(_)));
        assert_eq!(store.find("A@example.com", "emailpass").await.unwrap(), Lookup::NoAccount);
        assert_eq!(store.find("a@example.com", "google").await.unwrap(), Lookup::NoAccount);
        assert_eq!(
            MemoryIdentityStore::open().find("anyone@example.com", "emailpass").await.unwrap(),
            Lookup::Unchecked
        );
    }

    #[tokio::test]
    async fn a_fixed_store_keeps_one_live_token_per_identity() {
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        assert_eq!(store.issue(&record("nobody@example.com")).await.unwrap(), None);
        let first = record("a@example.com");
        store.issue(&first).await.unwrap().unwrap();
        let second = record("a@example.com");
        let issued = store.issue(&second).await.unwrap().unwrap();
        assert_eq!(store.live_token_hash("a@example.com", "emailpass"), Some(jti_hash(&second.jti)));
        store.withdraw(&issued).await.unwrap();
        assert_eq!(store.live_token_hash("a@example.com", "emailpass"), None);
    }

    #[tokio::test]
    async fn a_live_token_is_spent_once_on_the_new_password() {
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let issued = record("a@example.com");
        store.issue(&issued).await.unwrap().unwrap();
        let jti = issued.jti.to_string();
        let change = PasswordChange {
            entity_id: "a@example.com",
            provider: "emailpass",
            jti: &jti,
            password_hash: Some("c2NyeXB0"),
        };
        assert_eq!(
            store.change_password(&PasswordChange { provider: "google", ..change.clone() }).await.unwrap(),
            ChangeOutcome::Refused
        );
        assert_eq!(store.change_password(&change).await.unwrap(), ChangeOutcome::Changed);
        assert_eq!(store.password_hash("a@example.com", "emailpass").as_deref(), Some("c2NyeXB0"));
        assert_eq!(store.change_password(&change).await.unwrap(), ChangeOutcome::Refused, "spent");
    }

    #[tokio::test]
    async fn a_body_without_a_password_spends_the_token_and_writes_nothing() {
        let store = MemoryIdentityStore::with_identities([("a@example.com", "emailpass")]);
        let issued = record("a@example.com");
        store.issue(&issued).await.unwrap().unwrap();
        let jti = issued.jti.to_string();
        let change =
            PasswordChange { entity_id: "a@example.com", provider: "emailpass", jti: &jti, password_hash: None };
        assert_eq!(store.change_password(&change).await.unwrap(), ChangeOutcome::Spent);
        assert_eq!(store.password_hash("a@example.com", "emailpass"), None);
        assert_eq!(store.change_password(&change).await.unwrap(), ChangeOutcome::Refused);
    }
}
