//! The sealed token, end to end on moto: the reset route encrypts it with KMS (bound to a keyed hash
//! of the identifier and the jti), the bus carries no plain token, and only the notifier with the
//! key opens it.

use std::time::Duration;

use crate::support::aws_fixtures::{BusToQueue, sent_messages, verified_sender};
use crate::support::{
    SECRET, TestApp, api_config, moto_endpoint, moto_sdk_config, notifier_config, read_event, verify_independently,
};
use http::StatusCode;
use medusa_reset::aws::seal::{KmsOpener, KmsSealer, SubjectKey};
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::mail::SesMailer;
use medusa_reset::notify::{Delivery, DropReason, Notifier};
use medusa_reset::publish::EventBridgePublisher;
use serde_json::Value;

/// What every test here starts from: moto, a KMS key of the test's own, and a verified sender.
struct Moto {
    config: aws_config::SdkConfig,
    key_id: String,
    sender: String,
}

impl Moto {
    async fn with_key_and_sender() -> Self {
        let config = moto_sdk_config().await;
        let created = aws_sdk_kms::Client::new(&config).create_key().send().await.expect("create key");
        let key_id = created.key_metadata().expect("metadata").key_id().to_owned();
        let sender = verified_sender(&config).await;
        Self { config, key_id, sender }
    }
}

async fn notifier(config: &aws_config::SdkConfig, sender: &str, key_id: Option<&str>) -> Notifier<SesMailer> {
    // A link that ends with the token, which the tests cut out of the e-mail.
    let notifier_config = notifier_config(
        sender,
        &[("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset-password?token={token}")],
    );
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
    let app = TestApp::new(&api_config, publisher, MemoryIdentityStore::open());
    let (response, _) = app.reset(identifier).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    events.remove(0)
}

#[tokio::test]
async fn the_bus_carries_no_plain_token_and_the_notifier_with_the_key_sends_a_working_link() {
    let Moto { config, key_id, sender } = Moto::with_key_and_sender().await;
    let event = sealed_event(&config, &key_id, "sealed@example.com").await;
    let detail = &event["detail"];
    assert!(detail.get("token").is_none(), "{detail}");
    assert!(detail["encrypted_token"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(!detail.to_string().contains("eyJ"), "no JWT anywhere in the event: {detail}");

    notifier(&config, &sender, Some(&key_id))
        .await
        .handle(event.clone(), std::time::SystemTime::now())
        .await
        .outcome
        .unwrap();
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
    let Moto { config, key_id, sender } = Moto::with_key_and_sender().await;
    let mut event = sealed_event(&config, &key_id, "victim@example.com").await;
    event["detail"]["entity_id"] = Value::from("attacker@example.com");
    let outcome =
        notifier(&config, &sender, Some(&key_id)).await.handle(event, std::time::SystemTime::now()).await.outcome;
    assert!(outcome.is_ok(), "dropped, not retried");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_sealed_token_moved_to_another_identifier_with_its_subject_still_sends_nothing() {
    let Moto { config, key_id, sender } = Moto::with_key_and_sender().await;
    let victim = sealed_event(&config, &key_id, "victim@example.com").await;
    // The attacker's own sealed event, with the victim's ciphertext, subject and jti: KMS opens it,
    // but the token inside is about the victim, not the event's address.
    let mut event = sealed_event(&config, &key_id, "attacker@example.com").await;
    for field in ["subject", "jti", "encrypted_token"] {
        event["detail"][field] = victim["detail"][field].clone();
    }
    let handled = notifier(&config, &sender, Some(&key_id)).await.handle(event, std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::ClaimsMismatch, .. })), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_notifier_without_the_key_sends_nothing() {
    let Moto { config, key_id, sender } = Moto::with_key_and_sender().await;
    let event = sealed_event(&config, &key_id, "sealed@example.com").await;
    assert!(notifier(&config, &sender, None).await.handle(event, std::time::SystemTime::now()).await.outcome.is_ok());
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_notifier_that_opens_sealed_tokens_drops_an_event_with_a_plain_token() {
    let Moto { config, key_id, sender } = Moto::with_key_and_sender().await;
    let notifier = notifier(&config, &sender, Some(&key_id)).await;
    // A well-formed plain event with a token that matches it: on a sealed bus, not the route's.
    let handled = notifier.handle(read_event("notifier/valid.json"), std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::PlainToken, .. })), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
    // The same notifier still sends the route's sealed events.
    let sealed = sealed_event(&config, &key_id, "sealed@example.com").await;
    notifier.handle(sealed, std::time::SystemTime::now()).await.outcome.unwrap();
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}
