//! Exactly one e-mail per token, on moto's DynamoDB and SES: one event delivered twice in one
//! process and at once to two notifier processes, an attempt that crashed between its claim and its
//! send, SES failing after the claim, DynamoDB down (an error for Lambda to retry, no e-mail), and
//! DynamoDB's replies lost on the way back (the fault proxy), which the SDK's retries then meet, up
//! to a claim whose every try lost its reply.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::aws_fixtures::{sent_messages, verified_sender};
use crate::support::faults::{Fault, HttpFaultProxy};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{
    NotifierOnMoto, claim_record, moto_endpoint, moto_sdk_config, notifier_command, notifier_config,
    password_reset_event, sdk_config_for, serve, unreachable_endpoint,
};
use aws_config::SdkConfig;
use axum::Router;
use axum::routing::post;
use http::StatusCode;
use medusa_reset::idempotency::Holder;
use medusa_reset::mail::SesMailer;
use medusa_reset::notify::notifier::Attempt;
use medusa_reset::notify::{Delivery, Notifier, NotifyError};
use serde_json::Value;

/// A notifier as the Lambda's, its SES at `ses` and its claims in `table` through `dynamodb`.
fn notifier(ses: &SdkConfig, dynamodb: &SdkConfig, sender: &str, table: &str) -> Notifier<SesMailer> {
    let config = notifier_config(sender, &[("IDEMPOTENCY_TABLE", table)]);
    let mailer = SesMailer::new(aws_sdk_sesv2::Client::new(ses), config.sender.clone(), None);
    let claims = medusa_reset::app::wiring::claim_store(&config.idempotency, dynamodb);
    medusa_reset::app::wiring::notifier(config, mailer, None).claiming_with(claims)
}

fn exp_of(event: &Value) -> u64 {
    let token = event["detail"]["token"].as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap();
    claims["exp"].as_u64().unwrap()
}

fn seconds(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap();
    since.as_secs() + u64::from(since.subsec_nanos() > 0)
}

#[tokio::test]
async fn one_event_delivered_twice_in_one_process_sends_one_email() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let notifier = notifier(&moto, &moto, &sender, &table);
    let (event, jti) = password_reset_event("twice@example.com");

    let first = notifier.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(first.outcome, Ok(Delivery::Sent { .. })), "{first:?}");
    let second = notifier.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(second.outcome, Ok(Delivery::Duplicate { holder: Holder::Done })), "{second:?}");
    assert!(notifier.handle(event.clone(), SystemTime::now()).await.outcome.is_ok(), "a duplicate is not retried");

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["destinations"]["ToAddresses"], serde_json::json!(["twice@example.com"]));
    // Done, and kept until the token itself expires (then TTL takes it).
    let record = claim_record(&moto, &table, &jti).await.expect("the claim is recorded");
    assert_eq!(record["state"], "done", "{record:?}");
    assert_eq!(record["expires_at"], exp_of(&event).to_string(), "{record:?}");

    // A notifier in another execution environment (its own memory, the same table) skips it too.
    let elsewhere = self::notifier(&moto, &moto, &sender, &table);
    let third = elsewhere.handle(event, SystemTime::now()).await;
    assert!(matches!(third.outcome, Ok(Delivery::Duplicate { holder: Holder::Done })), "{third:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

/// The notifier bootstrap under its own Runtime API emulator, claiming in `table` on moto.
fn spawn_notifier(api: &RuntimeApi, sender: &str, table: &str) -> tokio::process::Child {
    notifier_command(api, sender, table).spawn().unwrap()
}

/// The `outcome` of every notifier log line (`"message": "event"`) a process wrote.
async fn outcomes(mut child: tokio::process::Child) -> Vec<Value> {
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "event")
        .collect()
}

#[tokio::test]
async fn the_same_events_at_once_in_two_notifier_processes_send_one_email_each() {
    let NotifierOnMoto { sender, table, .. } = NotifierOnMoto::create().await;
    let (one, two) = (RuntimeApi::start().await.unwrap(), RuntimeApi::start().await.unwrap());
    let (first, second) = (spawn_notifier(&one, &sender, &table), spawn_notifier(&two, &sender, &table));
    for api in [&one, &two] {
        assert!(api.first_poll(Duration::from_secs(10)).await.is_some(), "the notifier started");
    }

    let events: Vec<Value> = (0..4).map(|n| password_reset_event(&format!("race{n}@example.com")).0).collect();
    for event in &events {
        // EventBridge (or a retry) hands the same event to two execution environments at once.
        let (a, b) =
            tokio::join!(one.invoke(event, Duration::from_secs(15)), two.invoke(event, Duration::from_secs(15)));
        for answer in [a.unwrap(), b.unwrap()] {
            assert!(matches!(answer, Answer::Response(_)), "neither is an error to retry: {answer:?}");
        }
    }

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    let mut recipients: Vec<&str> =
        messages.iter().map(|m| m["destinations"]["ToAddresses"][0].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, ["race0@example.com", "race1@example.com", "race2@example.com", "race3@example.com"]);

    let mut lines = outcomes(first).await;
    lines.extend(outcomes(second).await);
    let count = |outcome: &str| lines.iter().filter(|l| l["outcome"] == outcome).count();
    assert_eq!((count("sent"), count("duplicate_skipped")), (4, 4), "{lines:?}");
    for event in &events {
        let id = &event["id"];
        let pair: Vec<&Value> = lines.iter().filter(|l| l["event_id"] == *id).map(|l| &l["outcome"]).collect();
        assert_eq!(pair.len(), 2, "each process logged the event once: {lines:?}");
        assert!(pair.contains(&&Value::from("sent")) && pair.contains(&&Value::from("duplicate_skipped")), "{pair:?}");
    }
    let skipped = lines.iter().find(|l| l["outcome"] == "duplicate_skipped").unwrap();
    assert!(skipped["held"] == "done" || skipped["held"] == "in_progress", "{skipped}");
    assert!(skipped["recipient"].as_str().is_some_and(|r| r.starts_with("r***@")), "masked: {skipped}");
}

#[tokio::test]
async fn a_claim_left_by_a_crash_between_claim_and_send_lets_the_retry_send_once_it_expires() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    // An SES that takes the request and never answers: the attempt is stopped there, as a crash or
    // Lambda's time-out stops it, before SES accepted anything.
    let (reached, mut ses_reached) = tokio::sync::mpsc::unbounded_channel::<()>();
    let stuck = Router::new().route(
        "/v2/email/outbound-emails",
        post(move || {
            let reached = reached.clone();
            async move {
                let _ = reached.send(());
                std::future::pending::<&'static str>().await
            }
        }),
    );
    let stuck_ses = sdk_config_for(&serve(stuck).await).await;
    let crashing = notifier(&stuck_ses, &moto, &sender, &table);
    let (event, jti) = password_reset_event("crash@example.com");
    let now = SystemTime::now();
    let crashed = Attempt { now, deadline: now + Duration::from_secs(2) };
    let attempt = tokio::spawn({
        let event = event.clone();
        async move { crashing.handle(event, crashed).await }
    });
    tokio::time::timeout(Duration::from_secs(5), ses_reached.recv()).await.expect("the attempt reached SES");
    attempt.abort();
    let _ = attempt.await;

    let record = claim_record(&moto, &table, &jti).await.expect("the crashed attempt's claim is left");
    assert_eq!(record["state"], "in_progress", "{record:?}");
    assert_eq!(record["expires_at"], seconds(crashed.deadline).to_string(), "it ends with the attempt's deadline");

    let retry = notifier(&moto, &moto, &sender, &table);
    let early = retry.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(early.outcome, Ok(Delivery::Duplicate { holder: Holder::InProgress })), "{early:?}");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());

    // Lambda retries after the attempt's deadline: the claim has expired, so the retry sends.
    let wait = crashed.deadline.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await;
    let after = retry.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(after.outcome, Ok(Delivery::Sent { .. })), "{after:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
    let record = claim_record(&moto, &table, &jti).await.unwrap();
    assert_eq!(record["state"], "done", "{record:?}");
    assert_eq!(record["expires_at"], exp_of(&event).to_string(), "kept until the token expires: {record:?}");
}

/// An SES stand-in that answers every `SendEmail` 503 and counts the requests.
async fn unavailable_ses(requests: Arc<AtomicUsize>) -> String {
    let app = Router::new().route(
        "/v2/email/outbound-emails",
        post(move || {
            requests.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("x-amzn-errortype", "ServiceUnavailable"), ("content-type", "application/json")],
                    r#"{"message":"stub"}"#,
                )
            }
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn ses_failing_after_the_claim_is_tried_once_and_gives_the_claim_back_so_the_retry_sends() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let requests = Arc::new(AtomicUsize::new(0));
    let down = sdk_config_for(&unavailable_ses(requests.clone()).await).await;
    assert!(down.retry_config().is_some_and(|r| r.max_attempts() > 1), "the shared configuration retries");
    let (event, jti) = password_reset_event("flaky@example.com");

    let failing = notifier(&down, &moto, &sender, &table);
    let handled = failing.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(handled.outcome, Err(NotifyError::Mail(_))), "an error, for Lambda to retry: {handled:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one SDK attempt: retries are Lambda's");
    assert_eq!(claim_record(&moto, &table, &jti).await, None, "the claim was given back");

    // Lambda's retry, long before the failed attempt's deadline.
    let retry = notifier(&moto, &moto, &sender, &table);
    let sent = retry.handle(event, SystemTime::now()).await;
    assert!(matches!(sent.outcome, Ok(Delivery::Sent { .. })), "{sent:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

#[tokio::test]
async fn dynamodb_down_is_an_error_and_nothing_is_sent_without_a_claim() {
    let moto = moto_sdk_config().await;
    let sender = verified_sender(&moto).await;
    let unreachable = sdk_config_for(&unreachable_endpoint()).await;
    let (event, _) = password_reset_event("nodb@example.com");

    let notifier = notifier(&moto, &unreachable, &sender, "claims");
    let handled = notifier.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(handled.outcome, Err(NotifyError::Claim(_))), "{handled:?}");

    // The bootstrap: SES on moto, DynamoDB at an address where nothing listens.
    let api = RuntimeApi::start().await.unwrap();
    let child = notifier_command(&api, &sender, "claims")
        .env("AWS_ENDPOINT_URL_DYNAMODB", unreachable_endpoint())
        .spawn()
        .unwrap();
    let answer = api.invoke(&event, Duration::from_secs(15)).await.unwrap();
    let Answer::Error(diagnostic) = answer else { panic!("expected an error for Lambda to retry: {answer:?}") };
    assert_eq!(diagnostic["errorType"], "NotifyError", "{diagnostic}");
    assert!(diagnostic["errorMessage"].as_str().unwrap().contains("idempotency store"), "{diagnostic}");

    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty(), "no e-mail without a claim");
    let lines = outcomes(child).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "failed_will_retry", "{lines:?}");
}

const PUT_ITEM: &str = "DynamoDB_20120810.PutItem";
const DELETE_ITEM: &str = "DynamoDB_20120810.DeleteItem";

#[tokio::test]
async fn a_lost_reply_to_the_claim_is_this_attempts_own_claim_and_the_email_goes_out_once() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    // The claim reaches DynamoDB and is written, but its reply is lost: the SDK sends it again,
    // and the retry meets the record its own first try wrote.
    proxy.inject(PUT_ITEM, Fault::LoseReply, 1);
    let notifier = notifier(&moto, &sdk_config_for(&proxy.endpoint).await, &sender, &table);
    let (event, jti) = password_reset_event("lost-claim@example.com");

    let handled = notifier.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(handled.outcome, Ok(Delivery::Sent { .. })), "not a duplicate of itself: {handled:?}");
    assert_eq!(proxy.count(PUT_ITEM), 3, "the claim, the SDK's retry of it, marking done: {:?}", proxy.seen());
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
    let record = claim_record(&moto, &table, &jti).await.expect("the claim is recorded");
    assert_eq!(record["state"], "done", "{record:?}");

    // A redelivery is still a duplicate: the owner is per attempt, not per process.
    let again = notifier.handle(event, SystemTime::now()).await;
    assert!(matches!(again.outcome, Ok(Delivery::Duplicate { holder: Holder::Done })), "{again:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

#[tokio::test]
async fn a_claim_whose_every_try_loses_its_reply_fails_and_leaves_nothing_held_so_an_early_retry_sends() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    // The first try is written, and the SDK's two retries meet it; every reply is lost.
    proxy.inject(PUT_ITEM, Fault::LoseReply, 3);
    let notifier = notifier(&moto, &sdk_config_for(&proxy.endpoint).await, &sender, &table);
    let (event, jti) = password_reset_event("undecided@example.com");

    let failed = notifier.handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(failed.outcome, Err(NotifyError::Claim(_))), "undecided: for Lambda to retry: {failed:?}");
    assert_eq!(proxy.count(PUT_ITEM), 3, "{:?}", proxy.seen());
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty(), "no claim, no send");
    assert_eq!(claim_record(&moto, &table, &jti).await, None, "what landed was given back");

    // A redelivery long before the failed attempt's deadline is not held up by it.
    let retry = notifier.handle(event, SystemTime::now()).await;
    assert!(matches!(retry.outcome, Ok(Delivery::Sent { .. })), "{retry:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
}

#[tokio::test]
async fn lost_replies_to_marking_done_and_to_giving_the_claim_back_change_nothing() {
    let NotifierOnMoto { moto, sender, table } = NotifierOnMoto::create().await;
    let proxy = HttpFaultProxy::start(&moto_endpoint()).await;
    let dynamodb = sdk_config_for(&proxy.endpoint).await;

    // Marking done: the claim goes through, the `done` write lands and its reply is lost.
    proxy.inject(PUT_ITEM, None, 1);
    proxy.inject(PUT_ITEM, Fault::LoseReply, 1);
    let (event, jti) = password_reset_event("lost-done@example.com");
    let sent = notifier(&moto, &dynamodb, &sender, &table).handle(event, SystemTime::now()).await;
    assert!(matches!(sent.outcome, Ok(Delivery::Sent { .. })), "{sent:?}");
    assert_eq!(proxy.count(PUT_ITEM), 3, "{:?}", proxy.seen());
    assert_eq!(claim_record(&moto, &table, &jti).await.expect("recorded")["state"], "done");

    // Giving back: SES fails, the delete lands and its reply is lost; the SDK's retry finds nothing.
    let requests = Arc::new(AtomicUsize::new(0));
    let down = sdk_config_for(&unavailable_ses(requests).await).await;
    proxy.inject(DELETE_ITEM, Fault::LoseReply, 1);
    let (event, jti) = password_reset_event("lost-release@example.com");
    let failed = notifier(&down, &dynamodb, &sender, &table).handle(event.clone(), SystemTime::now()).await;
    assert!(matches!(failed.outcome, Err(NotifyError::Mail(_))), "SES's failure, not the store's: {failed:?}");
    assert_eq!(proxy.count(DELETE_ITEM), 2, "{:?}", proxy.seen());
    assert_eq!(claim_record(&moto, &table, &jti).await, None, "given back");
    let retry = notifier(&moto, &moto, &sender, &table).handle(event, SystemTime::now()).await;
    assert!(matches!(retry.outcome, Ok(Delivery::Sent { .. })), "{retry:?}");
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 2, "one for each reset");
}
