//! The events a reset request emits: Medusa's `auth.password_reset` data, as the notifier and other
//! subscribers read it, and `auth.password_reset_unknown` for an identifier without an account.

use serde::{Deserialize, Serialize};

use super::metadata::Metadata;
use super::token::ResetToken;

/// The detail-type Medusa's subscribers listen for.
pub const PASSWORD_RESET: &str = "auth.password_reset";
/// The detail-type for a request whose identifier has no account (Medusa-database mode).
pub const PASSWORD_RESET_UNKNOWN: &str = "auth.password_reset_unknown";

/// Medusa's `auth.password_reset` data (`entity_id`, `actor_type`, `token`, `metadata`) plus `provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetEvent {
    pub entity_id: String,
    pub actor_type: String,
    pub provider: String,
    pub token: ResetToken,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `auth.password_reset` as it travels when the token is sealed for the bus: no `token`, but the
/// KMS ciphertext (base64) of it, decryptable only with the encryption context `entity_id` + `jti`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedPasswordResetEvent {
    pub entity_id: String,
    pub actor_type: String,
    pub provider: String,
    pub jti: String,
    pub encrypted_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// A reset asked for an identifier with no account: no token, so nothing to e-mail by default; an
/// operator may route it to a "no account uses this address" e-mail or a fraud signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownIdentityEvent {
    pub entity_id: String,
    pub actor_type: String,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// Any event the reset route puts on the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthEvent {
    PasswordReset(PasswordResetEvent),
    UnknownIdentity(UnknownIdentityEvent),
}

impl AuthEvent {
    /// The event's data as JSON, the EventBridge `Detail`.
    pub fn detail(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::PasswordReset(event) => serde_json::to_string(event),
            Self::UnknownIdentity(event) => serde_json::to_string(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_detail_has_the_fields_a_medusa_subscriber_reads() {
        let event = PasswordResetEvent {
            entity_id: "a@example.com".into(),
            actor_type: "customer".into(),
            provider: "emailpass".into(),
            token: ResetToken::new("t.o.k".into()),
            metadata: None,
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"entity_id": "a@example.com", "actor_type": "customer", "provider": "emailpass", "token": "t.o.k"})
        );
        assert!(!format!("{event:?}").contains("t.o.k"));
    }

    #[test]
    fn the_unknown_identity_event_carries_no_token() {
        let event = AuthEvent::UnknownIdentity(UnknownIdentityEvent {
            entity_id: "nobody@example.com".into(),
            actor_type: "customer".into(),
            provider: "emailpass".into(),
            metadata: None,
        });
        let detail: serde_json::Value = serde_json::from_str(&event.detail().unwrap()).unwrap();
        assert_eq!(
            detail,
            json!({"entity_id": "nobody@example.com", "actor_type": "customer", "provider": "emailpass"})
        );
    }
}
