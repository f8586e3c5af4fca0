//! The notifier against SES v2: moto's server for real sends and rejections, stubs for outages,
//! and the fault proxy in front of moto for SES's throttling: a send refused for the sending rate
//! is paced and sent again within the invocation while its deadline allows, one refused for the
//! daily quota is parked for Lambda's retries and the dead-letter queue. A password-updated event
//! is sent as one notice, with no link, claimed in DynamoDB by its event id.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::aws_fixtures::{sent_messages, verified_sender};
use crate::support::faults::{Fault, HttpFaultProxy};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{
    NotifierOnMoto, claim_record, moto_endpoint, moto_sdk_config, notifier_command, notifier_config,
    password_reset_event, read_event, sdk_config_for, serve, unreachable_endpoint,
};
use axum::Router;
use axum::routing::post;
use http::StatusCode;
use lambda_runtime::{Context, LambdaEvent};
use medusa_reset::domain::recipient::Recipient;
use medusa_reset::idempotency::Holder;
use medusa_reset::mail::{Email, MailError, Mailer, Sender, SesMailer};
use medusa_reset::notify::pacing::RESEND_RESERVE;
use medusa_reset::notify::{Delivery, DropReason, NOTICE_CLAIM_KEPT, Notifier};
use serde_json::{Value, json};

/// SES v2's `SendEmail`, as the fault proxy tells it by its path.
const SEND_EMAIL: &str = "/v2/email/outbound-emails";

/// SES v2 refusing a send for the account's daily quota (not accepted).
fn ses_daily_quota() -> Fault {
    Fault::aws_error(429, "TooManyRequestsException", "Daily message quota exceeded.")
}

async fn notifier_against(config: &aws_config::SdkConfig, from: &str) -> Notifier<SesMailer> {
    let notifier_config = notifier_config(from, &[]);
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(config), notifier_config.sender.clone(), None);
    medusa_reset::app::wiring::notifier(notifier_config, mailer, None)
}

/// A notifier on moto, sending from a verified sender of its own; returns it and the sender.
async fn notifier_on_moto() -> (Notifier<SesMailer>, String) {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    (notifier_against(&config, &sender).await, sender)
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
    let (notifier, sender) = notifier_on_moto().await;
    notifier.handle(sample("valid.json"), SystemTime::now()).await.outcome.expect("sent");

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
    let (notifier, sender) = notifier_on_moto().await;
    notifier.handle(sample("locale-de.json"), SystemTime::now()).await.outcome.unwrap();
    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages[0]["subject"], "Setzen Sie Ihr Passwort zurück");
}

#[tokio::test]
async fn expired_unaddressable_and_malformed_events_send_nothing_and_are_not_retried() {
    let (notifier, sender) = notifier_on_moto().await;
    for name in ["expired-token.json", "not-an-email.json", "malformed-detail.json"] {
        assert!(notifier.handle(sample(name), SystemTime::now()).await.outcome.is_ok(), "{name}");
    }
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn a_well_formed_reset_under_another_detail_type_sends_nothing() {
    let (notifier, sender) = notifier_on_moto().await;
    let mut other = sample("valid.json");
    other["detail-type"] = Value::from("auth.password_reset_unknown");
    let handled = notifier.handle(other, std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Ignored)), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
    // The very same detail under the notifier's own detail-type is sent: only the type differed.
    notifier.handle(sample("valid.json"), SystemTime::now()).await.outcome.unwrap();
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

#[tokio::test]
async fn a_token_moved_onto_another_address_is_not_mailed() {
    let (notifier, sender) = notifier_on_moto().await;
    // The sample's token is for customer@example.com; someone puts it on the bus for their own address.
    let mut moved = sample("valid.json");
    moved["detail"]["entity_id"] = Value::from("attacker@example.com");
    let handled = notifier.handle(moved, std::time::SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Dropped { reason: DropReason::ClaimsMismatch, .. })), "{handled:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
}

#[tokio::test]
async fn an_unverified_sender_is_a_permanent_rejection_not_a_retry() {
    let config = moto_sdk_config().await;
    let notifier_config = notifier_config("no-reply@unverified.example.org", &[]);
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&config), notifier_config.sender.clone(), None);
    let error = mailer.send(&email()).await.unwrap_err();
    assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
    // Through the notifier, the rejection is logged and dropped: Lambda sees success, no retry.
    let notifier = medusa_reset::app::wiring::notifier(notifier_config, mailer, None);
    assert!(notifier.handle(sample("valid.json"), SystemTime::now()).await.outcome.is_ok());
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
async fn outages_are_transient_so_lambda_retries() {
    for (status, error_type) in [
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    ] {
        let error = send_through(&ses_stub(status, error_type).await).await.unwrap_err();
        assert!(matches!(error, MailError::Transient(_)), "{error_type}: {error:?}");
    }
}

#[tokio::test]
async fn the_sending_rate_and_the_daily_quota_are_told_apart_as_ses_words_them() {
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    proxy.inject(SEND_EMAIL, Fault::ses_throttled(), 1);
    proxy.inject(SEND_EMAIL, ses_daily_quota(), 1);
    let throttled = send_through(&proxy.endpoint).await.unwrap_err();
    assert!(
        matches!(&throttled, MailError::Throttled(cause) if cause.contains("Maximum sending rate")),
        "{throttled:?}"
    );
    let quota = send_through(&proxy.endpoint).await.unwrap_err();
    assert!(matches!(&quota, MailError::DailyQuota(cause) if cause.contains("Daily message quota")), "{quota:?}");
    // Any other 429 SES answers was not accepted either: paced, as the rate is.
    let other = send_through(&ses_stub(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException").await).await;
    assert!(matches!(other, Err(MailError::Throttled(_))), "{other:?}");
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
    assert!(notifier.handle(sample("valid.json"), SystemTime::now()).await.outcome.is_err());
    assert!(started.elapsed() < Duration::from_secs(6));
}

/// A notifier as the Lambda's: SES through `ses`, claims in moto's `table`.
fn claiming_notifier(
    ses: &aws_config::SdkConfig,
    moto: &aws_config::SdkConfig,
    sender: &str,
    table: &str,
) -> Notifier<SesMailer> {
    let config = notifier_config(sender, &[("IDEMPOTENCY_TABLE", table)]);
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(ses), config.sender.clone(), None);
    let claims = medusa_reset::app::wiring::claim_store(&config.idempotency, moto);
    medusa_reset::app::wiring::notifier(config, mailer, None).claiming_with(claims)
}

/// The notifier bootstrap under `api`, every AWS call through the fault proxy in front of moto.
fn spawn_behind(proxy: &HttpFaultProxy, api: &RuntimeApi, sender: &str, table: &str) -> tokio::process::Child {
    notifier_command(api, sender, table).env("AWS_ENDPOINT_URL", &proxy.endpoint).spawn().expect("the bootstrap runs")
}

/// Stops the bootstrap; its JSON lines: the notifier's log lines and the EMF documents.
async fn lines_of(mut child: tokio::process::Child) -> Vec<Value> {
    child.kill().await.expect("the bootstrap stops");
    let output = child.wait_with_output().await.expect("its output");
    String::from_utf8_lossy(&output.stdout).lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// The notifier's one-per-event log lines.
fn event_lines(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|line| line["message"] == "event").collect()
}

/// A count metric's totals over the EMF documents, by its `outcome` ("" for a metric without one).
fn emf_counts(lines: &[Value], name: &str) -> HashMap<String, f64> {
    let mut totals = HashMap::new();
    for document in lines.iter().filter(|line| line.get("_aws").is_some() && line.get(name).is_some()) {
        let values = match &document[name] {
            Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
            value => value.as_f64().expect("a number"),
        };
        let outcome = document["outcome"].as_str().unwrap_or_default().to_owned();
        *totals.entry(outcome).or_insert(0.0) += values;
    }
    totals
}

#[tokio::test]
async fn a_send_throttled_twice_then_accepted_goes_out_once_within_the_invocation_counting_the_throttled_sends() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    proxy.inject(SEND_EMAIL, Fault::ses_throttled(), 2);
    let api = RuntimeApi::start().await.unwrap();
    let child = spawn_behind(&proxy, &api, &sender, &table);
    let (event, jti) = password_reset_event("paced@example.com");

    let answer = api.invoke(&event, Duration::from_secs(15)).await.unwrap();
    assert!(matches!(answer, Answer::Response(_)), "sent within the invocation, not left to Lambda: {answer:?}");
    assert_eq!(proxy.count(SEND_EMAIL), 3, "throttled, throttled, accepted: {:?}", proxy.seen());
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
    assert_eq!(claim_record(&moto, &table, &jti).await.expect("claimed")["state"], "done");

    let lines = lines_of(child).await;
    let events = event_lines(&lines);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "sent", "{events:?}");
    assert_eq!(emf_counts(&lines, "SesThrottledAttempts"), HashMap::from([(String::new(), 2.0)]), "{lines:?}");
    assert_eq!(emf_counts(&lines, "Emails"), HashMap::from([("sent".to_owned(), 1.0)]));
}

#[tokio::test]
async fn the_daily_quota_parks_the_event_for_lambdas_retries_with_its_own_outcome_and_no_second_send() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    proxy.inject(SEND_EMAIL, ses_daily_quota(), 5);
    let api = RuntimeApi::start().await.unwrap();
    let child = spawn_behind(&proxy, &api, &sender, &table);
    let (event, jti) = password_reset_event("quota@example.com");

    let answer = api.invoke(&event, Duration::from_secs(15)).await.unwrap();
    let Answer::Error(diagnostic) = answer else { panic!("a failed invocation, for Lambda to retry: {answer:?}") };
    let message = diagnostic["errorMessage"].as_str().unwrap();
    assert!(message.contains("daily sending quota") && message.contains("dead-letter queue"), "{message}");
    assert_eq!(proxy.count(SEND_EMAIL), 1, "no second send within the invocation: {:?}", proxy.seen());
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
    assert_eq!(claim_record(&moto, &table, &jti).await, None, "the claim is given back for the retry");

    let lines = lines_of(child).await;
    let events = event_lines(&lines);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "parked_daily_quota", "{events:?}");
    assert_eq!(events[0]["level"], "ERROR", "{events:?}");
    assert!(events[0]["cause"].as_str().unwrap().contains("make replay"), "the line says what becomes of it");
    assert_eq!(emf_counts(&lines, "Emails"), HashMap::from([("parked_daily_quota".to_owned(), 1.0)]));
    assert!(emf_counts(&lines, "SesThrottledAttempts").is_empty(), "the quota is not the sending rate");
}

#[tokio::test]
async fn throttling_that_outlasts_the_deadline_fails_the_invocation_for_lambdas_retry_with_the_claim_given_back() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    proxy.inject(SEND_EMAIL, Fault::ses_throttled(), 1_000);
    let notifier = claiming_notifier(&sdk_config_for(&proxy.endpoint).await, &moto, &sender, &table);
    let (event, jti) = password_reset_event("outlasted@example.com");
    // An invocation with 5 s left: room for waits until 3.5 s before its deadline.
    let deadline = SystemTime::now() + Duration::from_secs(5);
    let mut context = Context::default();
    context.deadline = u64::try_from(deadline.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();

    let started = Instant::now();
    let failed = notifier.handle_invocation(LambdaEvent::new(event.clone(), context)).await.unwrap_err();
    let elapsed = started.elapsed();
    let sends = proxy.count(SEND_EMAIL);
    assert!(sends >= 3, "paced within the invocation: {sends} sends");
    let cause = failed.to_string();
    assert!(cause.contains("Maximum sending rate") && cause.contains(&format!("throttled {sends} times")), "{cause}");
    assert!(elapsed + RESEND_RESERVE < Duration::from_secs(5) + Duration::from_millis(500), "{elapsed:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());
    assert_eq!(claim_record(&moto, &table, &jti).await, None, "the claim is given back for the retry");

    // Lambda's retry, once the rate allows again: sent, once.
    let retry = claiming_notifier(&moto, &moto, &sender, &table);
    let sent = retry.handle(event, SystemTime::now()).await;
    assert!(matches!(sent.outcome, Ok(Delivery::Sent { .. })), "{sent:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

/// An `auth.password_updated` event as EventBridge hands it to the notifier, with a fresh id.
fn password_updated_event(entity_id: &str, locale: &str) -> (Value, String) {
    let id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "version": "0", "id": id, "detail-type": "auth.password_updated", "source": "medusa.auth",
        "account": "123456789012", "time": "2026-11-28T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"entity_id": entity_id, "actor_type": "customer", "provider": "emailpass",
            "metadata": {"locale": locale}},
    });
    (event, id)
}

/// The claim of the notice of the event with this id: its attributes as strings, if any.
async fn notice_claim(moto: &aws_config::SdkConfig, table: &str, event_id: &str) -> Option<HashMap<String, String>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = aws_sdk_dynamodb::Client::new(moto)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("notice#{event_id}")))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item?;
    let text = |value: &AttributeValue| value.as_s().or_else(|_| value.as_n()).cloned().unwrap_or_default();
    Some(item.iter().map(|(name, value)| (name.clone(), text(value))).collect())
}

#[tokio::test]
async fn a_password_updated_event_is_sent_through_ses_as_one_notice_without_a_link_and_its_redelivery_is_skipped() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let notifier = claiming_notifier(&moto, &moto, &sender, &table);
    let (event, id) = password_updated_event("changed@example.com", "de");

    let first = notifier.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(first.outcome, Ok(Delivery::Sent { .. })), "{first:?}");
    assert_eq!(first.label(), "notice_sent");
    // Another execution environment, handed the same event again: the claim in DynamoDB holds it.
    let redelivered = claiming_notifier(&moto, &moto, &sender, &table).handle(event, SystemTime::now()).await;
    assert!(matches!(redelivered.outcome, Ok(Delivery::Duplicate { holder: Holder::Done })), "{redelivered:?}");
    assert_eq!(redelivered.label(), "notice_duplicate_skipped");

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["destinations"]["ToAddresses"], json!(["changed@example.com"]));
    assert_eq!(message["subject"], "Ihr Passwort wurde geändert");
    let body = message["body"].as_str().unwrap();
    assert!(body.contains("setzen Sie es bitte sofort erneut zurück"), "what to do if it was not them: {body}");
    assert!(!body.contains("http") && !body.contains("<a ") && !body.contains("href"), "no link: {body}");

    let claim = notice_claim(&moto, &table, &id).await.expect("claimed by the event's id");
    assert_eq!(claim["state"], "done");
    let kept_until: u64 = claim["expires_at"].parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let kept = NOTICE_CLAIM_KEPT.as_secs();
    assert!((now + kept - 60..=now + kept + 1).contains(&kept_until), "kept for 14 days: {kept_until} at {now}");
}

#[tokio::test]
async fn the_notifier_bootstrap_counts_a_notice_and_its_redelivery_under_outcomes_of_their_own() {
    let NotifierOnMoto { sender, table, .. } = NotifierOnMoto::create().await;
    let api = RuntimeApi::start().await.unwrap();
    let child = notifier_command(&api, &sender, &table).spawn().expect("the bootstrap runs");
    let (event, id) = password_updated_event("counted@example.com", "en");

    for _ in 0..2 {
        let answer = api.invoke(&event, Duration::from_secs(15)).await.unwrap();
        assert!(matches!(answer, Answer::Response(_)), "{answer:?}");
    }
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);

    let lines = lines_of(child).await;
    let events = event_lines(&lines);
    let outcomes: Vec<&Value> = events.iter().map(|line| &line["outcome"]).collect();
    assert_eq!(outcomes, ["notice_sent", "notice_duplicate_skipped"], "{events:?}");
    assert!(events.iter().all(|line| line["event_id"] == id.as_str()), "{events:?}");
    let counts = emf_counts(&lines, "Emails");
    let expected = HashMap::from([("notice_sent".to_owned(), 1.0), ("notice_duplicate_skipped".to_owned(), 1.0)]);
    assert_eq!(counts, expected, "{lines:?}");
}
