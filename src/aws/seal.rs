//! Sealing the token for the bus: KMS `Encrypt` with an encryption context that binds the
//! ciphertext to its event (a keyed hash of the identifier, and the token's `jti`), so whoever reads
//! the bus, its archive or the logs cannot reset passwords; only the notifier (and the readers the
//! key policy names), allowed `kms:Decrypt`, can open it. CloudTrail records every encryption
//! context in clear, so the context carries no address: only an HMAC of it under a key derived
//! from the signing secret.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::hmac;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::event::{EventSubject, PasswordResetEvent, SealedPasswordResetEvent, UnknownIdentityEvent};
use crate::domain::token::ResetToken;

/// Seals reset tokens with one KMS key (the reset function's side).
#[derive(Debug, Clone)]
pub struct KmsSealer {
    client: Client,
    key_id: String,
    subjects: SubjectKey,
}

/// Opens sealed reset tokens with one KMS key (the notifier's side).
#[derive(Debug, Clone)]
pub struct KmsOpener {
    client: Client,
    key_id: String,
}

/// Keys the encryption context's `subject`: HMAC-SHA256, so that whoever reads CloudTrail cannot
/// test a list of addresses against it the way a plain hash would let them.
#[derive(Clone)]
pub struct SubjectKey(hmac::Key);

impl SubjectKey {
    /// The label that separates this key from every other use of the signing secret.
    pub const LABEL: &'static str = "medusa-reset/seal-subject/v1";

    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// The context's `subject` for an event: hex HMAC of actor type, provider and identifier as given.
    pub fn subject(&self, about: &EventSubject) -> String {
        let EventSubject { entity_id, actor_type, provider } = about;
        hex::encode(hmac::sign(&self.0, format!("{actor_type}\n{provider}\n{entity_id}").as_bytes()))
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the token has no jti to bind the ciphertext to")]
    NoJti,
    #[error("KMS Encrypt failed: {0}")]
    Kms(String),
}

/// Why a sealed token could not be opened. Permanent: tampered, wrong key, not ciphertext at all.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("the sealed token cannot be opened: {0}")]
    Permanent(String),
    #[error("KMS Decrypt failed, worth retrying: {0}")]
    Transient(String),
}

/// The encryption context: exactly these two keys, which the key policy's conditions name.
fn context(subject: &str, jti: &str) -> HashMap<String, String> {
    HashMap::from([("subject".to_owned(), subject.to_owned()), ("jti".to_owned(), jti.to_owned())])
}

impl KmsSealer {
    pub fn new(client: Client, key_id: String, subjects: SubjectKey) -> Self {
        Self { client, key_id, subjects }
    }

    /// The event with its token replaced by the token's ciphertext.
    pub async fn seal(&self, event: &PasswordResetEvent) -> Result<SealedPasswordResetEvent, SealError> {
        let jti = event.token.jti().ok_or(SealError::NoJti)?;
        let subject = self.subjects.subject(&event.about);
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(event.token.expose().as_bytes()))
            .set_encryption_context(Some(context(&subject, &jti)))
            .send()
            .await
            .map_err(|e| SealError::Kms(DisplayErrorContext(&e).to_string()))?;
        let ciphertext = output.ciphertext_blob().ok_or_else(|| SealError::Kms("no ciphertext returned".into()))?;
        Ok(SealedPasswordResetEvent {
            about: event.about.clone(),
            subject,
            jti,
            encrypted_token: STANDARD.encode(ciphertext.as_ref()),
            metadata: event.metadata.clone(),
        })
    }

    /// What `seal` does for a token, for an identifier without an account: encrypts `len` bytes
    /// that are no token, bound to the identifier's subject and a fresh `jti` as a token would be,
    /// and discards the ciphertext. The same call, size and kind of context on both paths, so
    /// neither the round trip's time nor the KMS calls (as CloudTrail records them, context
    /// included) tell known and unknown identifiers apart.
    pub async fn seal_throwaway(&self, event: &UnknownIdentityEvent, len: usize) -> Result<(), SealError> {
        let jti = uuid::Uuid::new_v4().to_string();
        let subject = self.subjects.subject(&event.about);
        self.client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(vec![0u8; len]))
            .set_encryption_context(Some(context(&subject, &jti)))
            .send()
            .await
            .map_err(|e| SealError::Kms(DisplayErrorContext(&e).to_string()))?
            .ciphertext_blob()
            .ok_or_else(|| SealError::Kms("no ciphertext returned".into()))?;
        Ok(())
    }
}

impl KmsOpener {
    pub fn new(client: Client, key_id: String) -> Self {
        Self { client, key_id }
    }

    /// The event with its token decrypted, if the ciphertext was sealed with this event's subject
    /// and `jti` and the token's own `jti` is the event's. That the token's address is the event's
    /// is checked after this, with the rest of its claims, before anything is sent.
    pub async fn unseal(&self, sealed: &SealedPasswordResetEvent) -> Result<PasswordResetEvent, UnsealError> {
        let ciphertext =
            STANDARD.decode(&sealed.encrypted_token).map_err(|e| UnsealError::Permanent(format!("not base64: {e}")))?;
        let output = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context(&sealed.subject, &sealed.jti)))
            .send()
            .await
            .map_err(|e| {
                let description = DisplayErrorContext(&e).to_string();
                let permanent = matches!(
                    e.as_service_error(),
                    Some(
                        DecryptError::InvalidCiphertextException(_)
                            | DecryptError::IncorrectKeyException(_)
                            | DecryptError::InvalidKeyUsageException(_)
                            | DecryptError::NotFoundException(_)
                            | DecryptError::DisabledException(_)
                    )
                );
                if permanent { UnsealError::Permanent(description) } else { UnsealError::Transient(description) }
            })?;
        let plaintext = output.plaintext().ok_or_else(|| UnsealError::Permanent("no plaintext returned".into()))?;
        let token = String::from_utf8(plaintext.as_ref().to_vec())
            .map_err(|_| UnsealError::Permanent("the plaintext is not a token".into()))?;
        let token = ResetToken::new(token);
        // The context already binds it; a token whose own jti differs was not minted for this event.
        if token.jti().as_deref() != Some(sealed.jti.as_str()) {
            return Err(UnsealError::Permanent("the token's jti does not match the event".into()));
        }
        Ok(PasswordResetEvent { about: sealed.about.clone(), token, metadata: sealed.metadata.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(actor_type: &str, provider: &str, entity_id: &str) -> EventSubject {
        EventSubject {
            entity_id: entity_id.to_owned(),
            actor_type: actor_type.to_owned(),
            provider: provider.to_owned(),
        }
    }

    #[test]
    fn the_subject_is_keyed_and_names_no_address() {
        let key = SubjectKey::new(b"seal-subject-unit-test-key");
        let subject = key.subject(&about("customer", "emailpass", "alice@example.com"));
        assert_eq!(subject.len(), 64);
        assert!(subject.chars().all(|c| c.is_ascii_hexdigit()));
        let plain = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            b"customer\nemailpass\nalice@example.com",
        ));
        assert_ne!(subject, plain, "not the unkeyed hash anyone can compute");
        let other_key = SubjectKey::new(b"another key");
        assert_ne!(other_key.subject(&about("customer", "emailpass", "alice@example.com")), subject);
        // Exact, as the token's claim is: another spelling, actor type or provider is another subject.
        for (actor, provider, entity) in [
            ("customer", "emailpass", "Alice@example.com"),
            ("user", "emailpass", "alice@example.com"),
            ("customer", "google", "alice@example.com"),
        ] {
            assert_ne!(key.subject(&about(actor, provider, entity)), subject, "{actor} {provider} {entity}");
        }
        assert!(!format!("{key:?}").contains("unit-test"));
    }

    #[test]
    fn the_context_holds_the_subject_and_the_jti_and_nothing_else() {
        let context = context("ab12", "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
        let mut keys: Vec<&str> = context.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["jti", "subject"]);
    }
}
