//! The whole flow on moto: storefront request → token → EventBridge → (rule → SQS) → notifier → SES.

mod support;

use std::time::Duration;

use http::StatusCode;
use medusa_reset::config::{NotifierConfig, Profile, Vars};
use medusa_reset::identity::MemoryStore;
use medusa_reset::mail::SesMailer;
use medusa_reset::publish::EventBridgePublisher;
use support::aws_fixtures::{BusToQueue, sent_messages, verified_sender};
use support::{SECRET, api_config, moto_endpoint, moto_sdk_config, post_json, send, verify_independently};

#[tokio::test]
async fn a_reset_request_ends_as_an_email_whose_link_carries_a_valid_token() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let sender = verified_sender(&config).await;

    // The reset-password side, publishing to the bus.
    let api_config = api_config(&[("EVENT_BUS_NAME", fixture.bus_name.as_str())]);
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), api_config.events.clone());
    let app = support::app(&api_config, publisher, MemoryStore::open());
    let body = r#"{"identifier":"shopper@example.com","metadata":{"locale":"de"}}"#;
    let (response, _) = send(&app, post_json("/auth/customer/emailpass/reset-password", body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The bus delivers to the queue; the test hands each message to the notifier as Lambda would.
    let from = sender.clone();
    let vars = Vars::new(move |var: &str| match var {
        "MAIL_FROM" => Some(from.clone()),
        "RESET_URL_TEMPLATE_CUSTOMER" => {
            Some("https://shop.example.com/reset-password?token={token}&email={email}".into())
        }
        _ => None,
    });
    let notifier_config = NotifierConfig::from_vars(Profile::Lambda, &vars).unwrap();
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&config), notifier_config.sender.clone(), None);
    let notifier = medusa_reset::wiring::notifier(notifier_config, mailer, None);
    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    notifier.handle_envelope(events[0].clone()).await.expect("the e-mail is sent");

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message["destinations"]["ToAddresses"][0], "shopper@example.com");
    assert_eq!(message["subject"], "Setzen Sie Ihr Passwort zurück");
    let html = message["body"].as_str().unwrap();
    let token = html.split("token=").nth(1).and_then(|rest| rest.split("&amp;").next()).expect("a link with a token");
    assert!(html.contains("&amp;email=shopper%40example.com"), "{html}");

    let claims = verify_independently(token, SECRET, None).expect("the linked token verifies");
    assert_eq!(claims["entity_id"], "shopper@example.com");
    assert_eq!(claims["actor_type"], "customer");
    assert_eq!(claims["provider"], "emailpass");
    assert_eq!(claims["purpose"], "reset");
}

/// A Medusa-style subscriber reads `data.metadata.locale` without checking that `metadata` exists:
/// as from Medusa 2.16+, the event carries `{}` when the request had none.
#[tokio::test]
async fn a_request_without_metadata_puts_an_event_with_an_empty_metadata_object_on_the_bus() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let api_config = api_config(&[("EVENT_BUS_NAME", fixture.bus_name.as_str())]);
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), api_config.events.clone());
    let app = support::app(&api_config, publisher, MemoryStore::open());
    let (response, _) =
        send(&app, post_json("/auth/customer/emailpass/reset-password", r#"{"identifier":"plain@example.com"}"#)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["metadata"], serde_json::json!({}), "{}", events[0]);
    assert_eq!(events[0]["detail"]["entity_id"], "plain@example.com");
}
