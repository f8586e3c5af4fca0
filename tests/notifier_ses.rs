//! The notifier against SES v2: moto's server for real sends and rejections, stubs for outages.

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use medusa_reset::config::{NotifierConfig, Profile, Vars};
use medusa_reset::domain::recipient::Recipient;
use medusa_reset::mail::{Email, MailError, Mailer, Sender, SesMailer};
use medusa_reset::notify::{Delivery, DropReason, Notifier};
use serde_json::Value;
use support::aws_fixtures::{sent_messages, verified_sender};
use support::{LINK_TEMPLATE, moto_endpoint, moto_sdk_config, read_event, sdk_config_for, serve, unreachable_endpoint};

fn notifier_config(from: &str) -> NotifierConfig {
    let from = from.to_owned();
    let vars = Vars::new(move |var: &str| match var {
        "MAIL_FROM" => Some(from.clone()),
        "RESET_URL_TEMPLATE_CUSTOMER" => Some(LINK_TEMPLATE.to_owned()),
        _ => None,
    });
    NotifierConfig::from_vars(Profile::Lambda, &vars).expect("valid notifier configuration")
}

async fn notifier_against(config: &aws_config::SdkConfig, from: &str) -> Notifier<SesMailer> {
    let notifier_config = notifier_config(from);
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(config), notifier_config.sender.clone(), None);
    medusa_reset::wiring::notifier(notifier_config, mailer, None)
}

fn sample(name: &str) -> Value {
    read_event(&format!("notifier/{name}"))
}

fn email() -> Email {
    Email {
        to: Recipient::parse("customer@example.com").unwrap(),
        subject: "Reset".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
        locale: "en".into(),
        actor_type: "customer".into(),
    }
}

#[tokio::test]
async fn a_valid_event_is_sent_through_ses_with_the_link() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    let notifier = notifier_against(&config, &sender).await;
    notifier.handle_envelope(sample("valid.json")).await.expect("sent");

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["destinations"]["ToAddresses"], serde_json::json!(["customer@example.com"]));
    assert_eq!(message["subject"], "Reset your password");
    let body = message["body"].as_str().unwrap();
    assert!(body.contains("reset-password?token=eyJ"), "{body}");
    assert!(body.contains("&amp;email=customer%40example.com"), "{body}");
}

#[tokio::test]
async fn the_german_sample_is_sent_in_german() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    notifier_against(&config, &sender).await.handle_envelope(sample("locale-de.json")).await.unwrap();
    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages[0]["subject"], "Setzen Sie Ihr Passwort zurück");
}

#[tokio::test]
async fn expired_unaddressable_and_malformed_events_send_nothing_and_are_not_retried() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    let notifier = notifier_against(&config, &sender).await;
    for name in ["expired-token.json", "not-an-email.json", "malformed-detail.json"] {
        assert!(notifier.handle_envelope(sample(name)).await.is_ok(), "{name}");
    }
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_well_formed_reset_under_another_detail_type_sends_nothing() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    let notifier = notifier_against(&config, &sender).await;
    let mut other = sample("valid.json");
    other["detail-type"] = Value::from("auth.password_reset_unknown");
    let handled = notifier.open_envelope(other, std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Ignored)), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
    // The very same detail under the notifier's own detail-type is sent: only the type differed.
    notifier.handle_envelope(sample("valid.json")).await.unwrap();
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

#[tokio::test]
async fn a_token_moved_onto_another_address_is_not_mailed() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    let notifier = notifier_against(&config, &sender).await;
    // The sample's token is for customer@example.com; someone puts it on the bus for their own address.
    let mut moved = sample("valid.json");
    moved["detail"]["entity_id"] = Value::from("attacker@example.com");
    let handled = notifier.open_envelope(moved, std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::ClaimsMismatch, .. })), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn an_unverified_sender_is_a_permanent_rejection_not_a_retry() {
    let config = moto_sdk_config().await;
    let notifier_config = notifier_config("no-reply@unverified.example.org");
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&config), notifier_config.sender.clone(), None);
    let error = mailer.send(&email()).await.unwrap_err();
    assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
    // Through the notifier, the rejection is logged and dropped: Lambda sees success, no retry.
    let notifier = medusa_reset::wiring::notifier(notifier_config, mailer, None);
    assert!(notifier.handle_envelope(sample("valid.json")).await.is_ok());
}

/// A stand-in for SES v2 answering every `SendEmail` with `status` and an error type.
async fn ses_stub(status: StatusCode, error_type: &'static str) -> String {
    let app = Router::new().route(
        "/v2/email/outbound-emails",
        post(move || async move {
            (status, [("x-amzn-errortype", error_type), ("content-type", "application/json")], r#"{"message":"stub"}"#)
        }),
    );
    serve(app).await
}

async fn send_through(endpoint: &str) -> Result<String, MailError> {
    let sender = Sender { from: "no-reply@shop.example.com".into(), reply_to: None };
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&sdk_config_for(endpoint).await), sender, None);
    mailer.send(&email()).await
}

#[tokio::test]
async fn throttling_and_outages_are_transient_so_lambda_retries() {
    for (status, error_type) in [
        (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    ] {
        let error = send_through(&ses_stub(status, error_type).await).await.unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error_type}: {error:?}");
    }
}

#[tokio::test]
async fn a_rejected_message_or_a_bad_request_is_permanent() {
    for error_type in ["MessageRejected", "BadRequestException"] {
        let error = send_through(&ses_stub(StatusCode::BAD_REQUEST, error_type).await).await.unwrap_err();
        assert!(matches!(error, MailError::Permanent(_)), "{error_type}: {error:?}");
    }
}

#[tokio::test]
async fn an_ses_that_accepts_the_connection_and_never_answers_is_a_transient_time_out() {
    let stuck = Router::new().route("/v2/email/outbound-emails", post(std::future::pending::<&'static str>));
    let endpoint = serve(stuck).await;
    let started = std::time::Instant::now();
    let error = send_through(&endpoint).await.unwrap_err();
    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(6), "within the SDK's time-outs: {:?}", started.elapsed());
}

#[tokio::test]
async fn ses_unreachable_makes_the_handler_fail_so_lambda_retries() {
    let notifier = notifier_against(&sdk_config_for(&unreachable_endpoint()).await, "no-reply@shop.example.com").await;
    let started = std::time::Instant::now();
    assert!(notifier.handle_envelope(sample("valid.json")).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(6));
}
