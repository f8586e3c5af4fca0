//! The sealed token, end to end on moto: the reset route encrypts it with KMS (bound to a keyed hash
//! of the identifier and the jti), the bus carries no plain token, and only the notifier with the
//! key opens it.

use std::time::Duration;

use crate::support::aws_fixtures::{BusToQueue, sent_messages, verified_sender};
use crate::support::{
    SECRET, api_config, moto_endpoint, moto_sdk_config, post_json, read_event, send, verify_independently,
};
use http::StatusCode;
use medusa_reset::aws::seal::{KmsOpener, KmsSealer, SubjectKey};
use medusa_reset::config::{NotifierConfig, Profile, Vars};
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::mail::SesMailer;
use medusa_reset::notify::{Delivery, DropReason, Notifier};
use medusa_reset::publish::EventBridgePublisher;
use serde_json::Value;

async fn kms_key(config: &aws_config::SdkConfig) -> String {
    let created = aws_sdk_kms::Client::new(config).create_key().send().await.expect("create key");
    created.key_metadata().expect("metadata").key_id().to_owned()
}

async fn notifier(config: &aws_config::SdkConfig, sender: &str, key_id: Option<&str>) -> Notifier<SesMailer> {
    let from = sender.to_owned();
    let vars = Vars::new(move |var: &str| match var {
        "MAIL_FROM" => Some(from.clone()),
        "RESET_URL_TEMPLATE_CUSTOMER" => Some("https://shop.example.com/reset-password?token={token}".into()),
        _ => None,
    });
    let notifier_config = NotifierConfig::from_vars(Profile::Lambda, &vars).unwrap();
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(config), notifier_config.sender.clone(), None);
    let notifier = medusa_reset::app::wiring::notifier(notifier_config, mailer, None);
    match key_id {
        Some(key_id) => notifier.unsealing_with(KmsOpener::new(aws_sdk_kms::Client::new(config), key_id.to_owned())),
        None => notifier,
    }
}

/// Publishes one sealed reset for `identifier` and returns the EventBridge event the rule delivered.
async fn sealed_event(config: &aws_config::SdkConfig, key_id: &str, identifier: &str) -> Value {
    let fixture = BusToQueue::create(config, "medusa.auth", "auth.password_reset").await;
    let api_config = api_config(&[("EVENT_BUS_NAME", fixture.bus_name.as_str())]);
    let secret = SigningSecret::parse(SECRET).unwrap();
    let subjects = SubjectKey::new(&secret.derive_key(SubjectKey::LABEL));
    let sealer = KmsSealer::new(aws_sdk_kms::Client::new(config), key_id.to_owned(), subjects);
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), api_config.events.clone())
        .sealing_with(sealer);
    let app = crate::support::app(&api_config, publisher, MemoryIdentityStore::open());
    let body = format!(r#"{{"identifier":"{identifier}"}}"#);
    let (response, _) = send(&app, post_json("/auth/customer/emailpass/reset-password", &body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    events.remove(0)
}

#[tokio::test]
async fn the_bus_carries_no_plain_token_and_the_notifier_with_the_key_sends_a_working_link() {
    let config = moto_sdk_config().await;
    let key_id = kms_key(&config).await;
    let event = sealed_event(&config, &key_id, "sealed@example.com").await;
    let detail = &event["detail"];
    assert!(detail.get("token").is_none(), "{detail}");
    assert!(detail["encrypted_token"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(!detail.to_string().contains("eyJ"), "no JWT anywhere in the event: {detail}");

    let sender = verified_sender(&config).await;
    notifier(&config, &sender, Some(&key_id)).await.handle_envelope(event.clone()).await.unwrap();
    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages.len(), 1);
    let html = messages[0]["body"].as_str().unwrap();
    let token = html.split("token=").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let claims = verify_independently(token, SECRET, None).unwrap();
    assert_eq!(claims["entity_id"], "sealed@example.com");
    assert_eq!(claims["jti"], detail["jti"]);
}

#[tokio::test]
async fn a_sealed_token_moved_to_another_identifier_is_dropped() {
    let config = moto_sdk_config().await;
    let key_id = kms_key(&config).await;
    let mut event = sealed_event(&config, &key_id, "victim@example.com").await;
    event["detail"]["entity_id"] = Value::from("attacker@example.com");
    let sender = verified_sender(&config).await;
    let outcome = notifier(&config, &sender, Some(&key_id)).await.handle_envelope(event).await;
    assert!(outcome.is_ok(), "dropped, not retried");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_sealed_token_moved_to_another_identifier_with_its_subject_still_sends_nothing() {
    let config = moto_sdk_config().await;
    let key_id = kms_key(&config).await;
    let victim = sealed_event(&config, &key_id, "victim@example.com").await;
    // The attacker's own sealed event, with the victim's ciphertext, subject and jti: KMS opens it,
    // but the token inside is about the victim, not the event's address.
    let mut event = sealed_event(&config, &key_id, "attacker@example.com").await;
    for field in ["subject", "jti", "encrypted_token"] {
        event["detail"][field] = victim["detail"][field].clone();
    }
    let sender = verified_sender(&config).await;
    let handled =
        notifier(&config, &sender, Some(&key_id)).await.open_envelope(event, std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::ClaimsMismatch, .. })), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_notifier_without_the_key_sends_nothing() {
    let config = moto_sdk_config().await;
    let key_id = kms_key(&config).await;
    let event = sealed_event(&config, &key_id, "sealed@example.com").await;
    let sender = verified_sender(&config).await;
    assert!(notifier(&config, &sender, None).await.handle_envelope(event).await.is_ok());
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_notifier_that_opens_sealed_tokens_drops_an_event_with_a_plain_token() {
    let config = moto_sdk_config().await;
    let key_id = kms_key(&config).await;
    let sender = verified_sender(&config).await;
    let notifier = notifier(&config, &sender, Some(&key_id)).await;
    // A well-formed plain event with a token that matches it: on a sealed bus, not the route's.
    let handled = notifier.open_envelope(read_event("notifier/valid.json"), std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::PlainToken, .. })), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
    // The same notifier still sends the route's sealed events.
    let sealed = sealed_event(&config, &key_id, "sealed@example.com").await;
    notifier.handle_envelope(sealed).await.unwrap();
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}
