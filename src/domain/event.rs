//! The `auth.password_reset` event: Medusa's event data, as the notifier and other subscribers read it.

use serde::{Deserialize, Serialize};

use super::metadata::Metadata;
use super::token::ResetToken;

/// The detail-type Medusa's subscribers listen for.
pub const PASSWORD_RESET: &str = "auth.password_reset";

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
}
