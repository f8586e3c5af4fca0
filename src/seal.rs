//! Sealing the token for the bus (opt-in): KMS `Encrypt` with an encryption context that binds the
//! ciphertext to the identifier and the token's `jti`, so whoever reads the bus, its archive or the
//! logs cannot reset passwords; only the notifier, allowed `kms:Decrypt`, can open it.

use std::collections::HashMap;

use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::domain::event::{PasswordResetEvent, SealedPasswordResetEvent};
use crate::domain::token::ResetToken;

/// Encrypts and decrypts reset tokens with one KMS key.
#[derive(Debug, Clone)]
pub struct KmsSealer {
    client: Client,
    key_id: String,
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

fn context(entity_id: &str, jti: &str) -> HashMap<String, String> {
    HashMap::from([("entity_id".to_owned(), entity_id.to_owned()), ("jti".to_owned(), jti.to_owned())])
}

impl KmsSealer {
    pub fn new(client: Client, key_id: String) -> Self {
        Self { client, key_id }
    }

    /// The event with its token replaced by the token's ciphertext.
    pub async fn seal(&self, event: &PasswordResetEvent) -> Result<SealedPasswordResetEvent, SealError> {
        let jti = event.token.jti().ok_or(SealError::NoJti)?;
        let output = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(event.token.expose().as_bytes()))
            .set_encryption_context(Some(context(&event.entity_id, &jti)))
            .send()
            .await
            .map_err(|e| SealError::Kms(DisplayErrorContext(&e).to_string()))?;
        let ciphertext = output.ciphertext_blob().ok_or_else(|| SealError::Kms("no ciphertext returned".into()))?;
        Ok(SealedPasswordResetEvent {
            entity_id: event.entity_id.clone(),
            actor_type: event.actor_type.clone(),
            provider: event.provider.clone(),
            jti,
            encrypted_token: STANDARD.encode(ciphertext.as_ref()),
            metadata: event.metadata.clone(),
        })
    }

    /// What `seal` does for a token, for an identifier without an account: encrypts `len` bytes
    /// that are no token, bound to the identifier and a fresh `jti` as a token would be, and
    /// discards the ciphertext. The same call, size and kind of context on both paths, so neither
    /// the round trip's time nor the KMS calls (as CloudTrail records them, context included) tell
    /// known and unknown identifiers apart.
    pub async fn seal_throwaway(&self, entity_id: &str, len: usize) -> Result<(), SealError> {
        let jti = uuid::Uuid::new_v4().to_string();
        self.client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(vec![0u8; len]))
            .set_encryption_context(Some(context(entity_id, &jti)))
            .send()
            .await
            .map_err(|e| SealError::Kms(DisplayErrorContext(&e).to_string()))?
            .ciphertext_blob()
            .ok_or_else(|| SealError::Kms("no ciphertext returned".into()))?;
        Ok(())
    }

    /// The event with its token decrypted, if the ciphertext belongs to this identifier and `jti`.
    pub async fn unseal(&self, sealed: &SealedPasswordResetEvent) -> Result<PasswordResetEvent, UnsealError> {
        let ciphertext =
            STANDARD.decode(&sealed.encrypted_token).map_err(|e| UnsealError::Permanent(format!("not base64: {e}")))?;
        let output = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context(&sealed.entity_id, &sealed.jti)))
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
        Ok(PasswordResetEvent {
            entity_id: sealed.entity_id.clone(),
            actor_type: sealed.actor_type.clone(),
            provider: sealed.provider.clone(),
            token,
            metadata: sealed.metadata.clone(),
        })
    }
}
