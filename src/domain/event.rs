//! The events the routes emit: Medusa's `auth.password_reset` data, as the notifier and other
//! subscribers read it, `auth.password_reset_unknown` for an identifier without an account, and
//! `auth.password_updated` once the update route has changed a password.

use serde::{Deserialize, Serialize, Serializer};

use super::actor::{ActorType, AuthProvider};
use super::identifier::Identifier;
use super::metadata::Metadata;
use super::token::ResetToken;

/// The detail-type Medusa's subscribers listen for.
pub const PASSWORD_RESET: &str = "auth.password_reset";
/// The detail-type for a request whose identifier has no account (Medusa-database mode).
pub const PASSWORD_RESET_UNKNOWN: &str = "auth.password_reset_unknown";
/// The detail-type for a password the update route changed.
pub const PASSWORD_UPDATED: &str = "auth.password_updated";

/// Whose reset an event is about: the identifier as typed, and the actor type and provider the
/// allow-list paired, the first three fields of every event. The route builds it from its parsed
/// types (`new`); the fields stay text because the notifier reads events off the bus, where a
/// malformed one must still be read to be dropped with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSubject {
    pub entity_id: String,
    pub actor_type: String,
    pub provider: String,
}

impl EventSubject {
    pub fn new(identifier: &Identifier, actor_type: &ActorType, provider: &AuthProvider) -> Self {
        Self {
            entity_id: identifier.as_str().to_owned(),
            actor_type: actor_type.as_str().to_owned(),
            provider: provider.as_str().to_owned(),
        }
    }
}

/// Medusa's `auth.password_reset` data (`entity_id`, `actor_type`, `token`, `metadata`) plus `provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetEvent {
    #[serde(flatten)]
    pub about: EventSubject,
    pub token: ResetToken,
    /// `None` when the request had none; on the bus it is `{}` all the same, as Medusa 2.16+ sends it.
    #[serde(default, serialize_with = "always_an_object")]
    pub metadata: Option<Metadata>,
}

/// `auth.password_reset` as it travels when the token is sealed for the bus: no `token`, but the
/// KMS ciphertext (base64) of it, decryptable only with the encryption context `subject` + `jti`.
/// Unknown fields are refused even beside the flattened `about`: serde refuses whatever the
/// flattened struct leaves over (a test below holds it to that).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedPasswordResetEvent {
    #[serde(flatten)]
    pub about: EventSubject,
    /// A keyed hash of `about`: what the encryption context, and so CloudTrail, holds in place of
    /// the address.
    pub subject: String,
    pub jti: String,
    pub encrypted_token: String,
    /// `None` when the request had none; on the bus it is `{}` all the same, as Medusa 2.16+ sends it.
    #[serde(default, serialize_with = "always_an_object")]
    pub metadata: Option<Metadata>,
}

/// A reset asked for an identifier with no account: no token, so nothing to e-mail by default; an
/// operator may route it to a "no account uses this address" e-mail or a fraud signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnknownIdentityEvent {
    #[serde(flatten)]
    pub about: EventSubject,
    /// `None` when the request had none; on the bus it is `{}` all the same, as Medusa 2.16+ sends it.
    #[serde(default, serialize_with = "always_an_object")]
    pub metadata: Option<Metadata>,
}

/// A password was changed with a reset token: whose, and in `metadata` the `locale` the reset
/// request asked for when its token carried one (`{}` otherwise), so the notice speaks the same
/// language as the reset e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordUpdatedEvent {
    #[serde(flatten)]
    pub about: EventSubject,
    #[serde(default, serialize_with = "always_an_object")]
    pub metadata: Option<Metadata>,
}

/// Medusa 2.16+ always sends `metadata`, `{}` when the request had none, and subscribers written
/// for it read `data.metadata.locale` without checking that `metadata` is there.
fn always_an_object<S: Serializer>(metadata: &Option<Metadata>, serializer: S) -> Result<S::Ok, S::Error> {
    match metadata {
        Some(metadata) => metadata.serialize(serializer),
        None => serde_json::Map::new().serialize(serializer),
    }
}

/// Any event the reset route puts on the bus.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthEvent {
    PasswordReset(PasswordResetEvent),
    UnknownIdentity(UnknownIdentityEvent),
    PasswordUpdated(PasswordUpdatedEvent),
}

impl AuthEvent {
    /// The event's data as JSON, the EventBridge `Detail`.
    pub fn detail(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::PasswordReset(event) => serde_json::to_string(event),
            Self::UnknownIdentity(event) => serde_json::to_string(event),
            Self::PasswordUpdated(event) => serde_json::to_string(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ProviderPolicy;
    use serde_json::json;

    fn metadata(value: serde_json::Value) -> Metadata {
        Metadata::parse(value.as_object().cloned().unwrap()).unwrap()
    }

    fn about(entity_id: &str) -> EventSubject {
        let (actor_type, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        EventSubject::new(&Identifier::parse(entity_id).unwrap(), &actor_type, &provider)
    }

    #[test]
    fn the_detail_has_the_fields_a_medusa_subscriber_reads_with_metadata_always_an_object() {
        let mut event = PasswordResetEvent {
            about: about("a@example.com"),
            token: ResetToken::new("t.o.k".into()),
            metadata: None,
        };
        let detail = AuthEvent::PasswordReset(event.clone()).detail().unwrap();
        assert_eq!(
            detail,
            r#"{"entity_id":"a@example.com","actor_type":"customer","provider":"emailpass","token":"t.o.k","metadata":{}}"#
        );
        assert!(!format!("{event:?}").contains("t.o.k"));
        event.metadata = Some(metadata(json!({"locale": "de"})));
        assert_eq!(serde_json::to_value(&event).unwrap()["metadata"], json!({"locale": "de"}));
    }

    #[test]
    fn the_unknown_identity_event_carries_no_token_and_metadata_always() {
        let event =
            AuthEvent::UnknownIdentity(UnknownIdentityEvent { about: about("nobody@example.com"), metadata: None });
        assert_eq!(
            event.detail().unwrap(),
            r#"{"entity_id":"nobody@example.com","actor_type":"customer","provider":"emailpass","metadata":{}}"#
        );
    }

    #[test]
    fn the_password_updated_event_names_whose_password_changed_and_carries_no_secret() {
        let event = AuthEvent::PasswordUpdated(PasswordUpdatedEvent { about: about("a@example.com"), metadata: None });
        assert_eq!(
            event.detail().unwrap(),
            r#"{"entity_id":"a@example.com","actor_type":"customer","provider":"emailpass","metadata":{}}"#
        );
        let read: PasswordUpdatedEvent = serde_json::from_str(&event.detail().unwrap()).unwrap();
        assert_eq!(read.metadata, Some(metadata(json!({}))));
        let with_a_token = json!({"entity_id": "a@example.com", "actor_type": "customer",
            "provider": "emailpass", "metadata": {}, "token": "t.o.k"});
        assert!(serde_json::from_value::<PasswordUpdatedEvent>(with_a_token).is_err());
    }

    fn sealed() -> SealedPasswordResetEvent {
        SealedPasswordResetEvent {
            about: about("a@example.com"),
            subject: "ab12".into(),
            jti: "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".into(),
            encrypted_token: "AQID".into(),
            metadata: None,
        }
    }

    #[test]
    fn the_sealed_event_carries_metadata_always_too() {
        assert_eq!(
            serde_json::to_string(&sealed()).unwrap(),
            r#"{"entity_id":"a@example.com","actor_type":"customer","provider":"emailpass","subject":"ab12","#
                .to_owned()
                + r#""jti":"6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f","encrypted_token":"AQID","metadata":{}}"#
        );
    }

    #[test]
    fn the_sealed_event_reads_back_and_refuses_a_field_it_does_not_know() {
        let mut detail = serde_json::to_value(sealed()).unwrap();
        let read: SealedPasswordResetEvent = serde_json::from_value(detail.clone()).unwrap();
        assert_eq!(read, SealedPasswordResetEvent { metadata: Some(metadata(json!({}))), ..sealed() });
        detail["token"] = json!("t.o.k");
        assert!(serde_json::from_value::<SealedPasswordResetEvent>(detail).is_err());
    }

    #[test]
    fn an_event_without_metadata_still_reads_and_an_empty_one_reads_back_as_empty() {
        let without: PasswordResetEvent = serde_json::from_value(
            json!({"entity_id": "a@example.com", "actor_type": "customer", "provider": "emailpass", "token": "t"}),
        )
        .unwrap();
        assert_eq!(without.about, about("a@example.com"));
        assert_eq!(without.metadata, None);
        let empty: PasswordResetEvent = serde_json::from_value(json!({"entity_id": "a@example.com",
            "actor_type": "customer", "provider": "emailpass", "token": "t", "metadata": {}}))
        .unwrap();
        assert_eq!(empty.metadata, Some(metadata(json!({}))));
    }
}
