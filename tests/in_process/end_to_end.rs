//! The whole flow on moto: storefront request → token → EventBridge → (rule → SQS) → notifier → SES;
//! and the soak: the same flow under a mix of the faults a real account throws, injected at the wire.

use std::time::Duration;

use crate::support::aws_fixtures::{BusToQueue, idempotency_table, rate_limit_table, sent_messages, verified_sender};
use crate::support::behind_proxy;
use crate::support::faults::{Fault, HttpFaultProxy, TcpFaultProxy};
use crate::support::medusa_db::TestDb;
use crate::support::{
    ROUTE, SECRET, TestApp, api_config, moto_endpoint, moto_sdk_config, notifier_config, sdk_config_for,
    verify_independently,
};
use http::StatusCode;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::mail::SesMailer;
use medusa_reset::notify::Notifier;
use medusa_reset::observability::metrics::Timed;
use medusa_reset::publish::EventBridgePublisher;

#[tokio::test]
async fn a_reset_request_ends_as_an_email_whose_link_carries_a_valid_token() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let sender = verified_sender(&config).await;

    // The reset-password side, publishing to the bus.
    let api_config = api_config(&[("EVENT_BUS_NAME", fixture.bus_name.as_str())]);
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), api_config.events.clone());
    let app = TestApp::new(&api_config, publisher, MemoryIdentityStore::open());
    let body = r#"{"identifier":"shopper@example.com","metadata":{"locale":"de"}}"#;
    let (response, _) = app.post(ROUTE, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // The bus delivers to the queue; the test hands each message to the notifier as Lambda would.
    let notifier_config = notifier_config(&sender, &[]);
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(&config), notifier_config.sender.clone(), None);
    let notifier = medusa_reset::app::wiring::notifier(notifier_config, mailer, None);
    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    notifier.handle(events[0].clone(), std::time::SystemTime::now()).await.outcome.expect("the e-mail is sent");

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
    let app = TestApp::new(&api_config, publisher, MemoryIdentityStore::open());
    let (response, _) = app.reset("plain@example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["metadata"], serde_json::json!({}), "{}", events[0]);
    assert_eq!(events[0]["detail"]["entity_id"], "plain@example.com");
}

/// Resets in the soak: half for accounts, half for addresses without one.
const SOAK_REQUESTS: usize = 60;

/// The faults queued before request `i`, in a fixed mix: lost replies (EventBridge, DynamoDB's
/// transaction and the notifier's claim), throttles (SES's rate, DynamoDB), partial `PutEvents`
/// failures, and database connections reset or silently dead while "frozen".
fn inject_faults(i: usize, aws: &HttpFaultProxy, database: &TcpFaultProxy) {
    if i % 7 == 3 {
        aws.inject("AWSEvents.PutEvents", Fault::LoseReply, 1);
    }
    if i % 11 == 5 {
        aws.inject("AWSEvents.PutEvents", partial_put_events_failure(), 1);
    }
    if i % 5 == 1 {
        aws.inject("/v2/email/outbound-emails", Fault::ses_throttled(), 2);
    }
    if i % 13 == 2 {
        aws.inject("DynamoDB_20120810.PutItem", Fault::LoseReply, 1);
    }
    if i % 9 == 4 {
        aws.inject("DynamoDB_20120810.TransactWriteItems", Fault::LoseReply, 1);
    }
    if i % 17 == 6 {
        aws.inject("DynamoDB_20120810.TransactWriteItems", dynamodb_throttled(), 1);
    }
    if i % 19 == 8 {
        database.kill_silently();
    }
    if i % 23 == 10 {
        database.reset_all();
    }
}

/// Lambda's asynchronous invocation of the notifier: the first attempt and two retries, then the
/// dead-letter queue. Returns whether the event ended there.
async fn deliver_as_lambda_does(notifier: &Notifier<Timed<SesMailer>>, event: &serde_json::Value) -> bool {
    for _ in 0..3 {
        if notifier.handle(event.clone(), std::time::SystemTime::now()).await.outcome.is_ok() {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn under_a_mix_of_faults_every_accepted_reset_ends_in_one_email_or_the_dead_letter_queue() {
    let moto = moto_sdk_config().await;
    let aws = HttpFaultProxy::start(&moto_endpoint()).await;
    let through_faults = sdk_config_for(&aws.endpoint).await;
    let fixture = BusToQueue::create(&moto, "medusa.auth", "auth.password_reset").await;
    let sender = verified_sender(&moto).await;
    let (limits, claims) = (rate_limit_table(&moto).await, idempotency_table(&moto).await);
    let db = TestDb::create().await;
    let (database, url) = behind_proxy(&db).await;
    let identifier = |i: usize| {
        if i.is_multiple_of(2) { format!("known-{i}@example.com") } else { format!("nobody-{i}@example.com") }
    };
    for i in (0..SOAK_REQUESTS).step_by(2) {
        db.add_identity(&identifier(i), "emailpass").await;
    }
    let config = api_config(&[
        ("EVENT_BUS_NAME", fixture.bus_name.as_str()),
        ("RATE_LIMIT_TABLE", limits.as_str()),
        ("MEDUSA_DATABASE_URL", url.as_str()),
    ]);
    let app =
        TestApp { router: medusa_reset::app::wiring::reset_password_lambda(&config, &through_faults).await.unwrap() };

    let mut accepted = Vec::new();
    for i in 0..SOAK_REQUESTS {
        inject_faults(i, &aws, &database);
        let partial_before = partial_put_events(&aws);
        let (response, _) = app.reset(&identifier(i)).await;
        let refused_by_eventbridge = partial_put_events(&aws) > partial_before;
        match response.status() {
            StatusCode::CREATED => {
                assert!(!refused_by_eventbridge, "request {i}: 201 for an event EventBridge did not accept");
                accepted.push(identifier(i));
            }
            StatusCode::INTERNAL_SERVER_ERROR => {}
            other => panic!("request {i}: {other}"),
        }
    }

    let notifier = medusa_reset::app::wiring::notifier_lambda(
        notifier_config(&sender, &[("IDEMPOTENCY_TABLE", &claims)]),
        &through_faults,
    );
    let mut dead_letters = Vec::new();
    for event in fixture.drain(Duration::from_secs(3)).await {
        if deliver_as_lambda_does(&notifier, &event).await {
            dead_letters.push(event["detail"]["entity_id"].as_str().unwrap_or_default().to_owned());
        }
    }

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    let recipients: Vec<String> =
        messages.iter().map(|m| m["destinations"]["ToAddresses"][0].as_str().unwrap_or_default().to_owned()).collect();
    for address in &recipients {
        assert_eq!(recipients.iter().filter(|r| *r == address).count(), 1, "{address} got more than one e-mail");
        assert!(address.starts_with("known-"), "{address} has no account");
    }
    for address in accepted.iter().filter(|a| a.starts_with("known-")) {
        let mailed = recipients.contains(address);
        let parked = dead_letters.contains(address);
        assert!(mailed ^ parked, "{address}: answered 201, mailed {mailed}, in the dead-letter queue {parked}");
    }
    let known_accepted = accepted.iter().filter(|a| a.starts_with("known-")).count();
    assert!(known_accepted >= SOAK_REQUESTS / 2 - 6, "most known resets are accepted: {known_accepted}");
    println!(
        "soak: {SOAK_REQUESTS} requests, {} answered 201 ({known_accepted} for accounts), {} e-mails, {} dead letters; \
         faults applied: {}",
        accepted.len(),
        recipients.len(),
        dead_letters.len(),
        aws.seen().iter().filter(|seen| seen.fault.is_some()).count()
    );
    db.drop_database().await;
}

/// How many partial `PutEvents` failures the proxy has answered so far.
fn partial_put_events(aws: &HttpFaultProxy) -> usize {
    aws.seen().iter().filter(|seen| seen.fault == Some(partial_put_events_failure())).count()
}

/// `PutEvents` answered with HTTP 200 and `FailedEntryCount` 1, without forwarding.
fn partial_put_events_failure() -> Fault {
    let body = r#"{"FailedEntryCount":1,"Entries":[{"ErrorCode":"InternalFailure","ErrorMessage":"injected"}]}"#;
    Fault::Answer { status: 200, body: body.to_owned() }
}

/// DynamoDB throttling a request (not applied).
fn dynamodb_throttled() -> Fault {
    Fault::aws_error(
        400,
        "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        "Rate of requests exceeds the allowed throughput.",
    )
}
