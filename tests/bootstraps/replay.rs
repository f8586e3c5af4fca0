//! `make replay` on moto: events parked in an SQS queue as Lambda's dead-letter queue and its
//! on-failure destination park them, replayed by the compiled `replay-dead-letters` through the
//! compiled notifier (behind a stand-in for Lambda's `Invoke` API that hands each invocation to
//! the bootstrap under the Runtime API emulator, as `sam local start-lambda` would).

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::aws_fixtures::{idempotency_table, sent_messages, verified_sender};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{moto_endpoint, moto_sdk_config, notifier_command, password_reset_event, serve};
use aws_config::SdkConfig;
use aws_sdk_sqs::types::MessageAttributeValue;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::StatusCode;
use serde_json::{Value, json};

const REPLAY: &str = env!("CARGO_BIN_EXE_replay-dead-letters");

/// A fresh SQS queue standing for the notifier's dead-letter queue; returns its URL.
pub async fn dead_letter_queue(config: &SdkConfig) -> String {
    let name = format!("dlq-{}", uuid::Uuid::new_v4().simple());
    let created = aws_sdk_sqs::Client::new(config).create_queue().queue_name(name).send().await.expect("create queue");
    created.queue_url.expect("queue url")
}

/// Messages in a queue, visible or being handled (SQS's approximate counts, exact on moto).
pub async fn queue_depth(config: &SdkConfig, queue_url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attributes = aws_sdk_sqs::Client::new(config)
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let count = |name: QueueAttributeName| {
        attributes.attributes().and_then(|a| a.get(&name)).and_then(|n| n.parse::<usize>().ok()).expect("a count")
    };
    count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// Lambda's `Invoke` API for two functions: `notifier`, handed to the bootstrap behind `api`, and
/// `broken`, which fails every invocation as a notifier that cannot reach SES would.
async fn invoke_api(api: Arc<RuntimeApi>) -> String {
    async fn invoke(State(api): State<Arc<RuntimeApi>>, UrlPath(function): UrlPath<String>, body: Bytes) -> Response {
        let unhandled = |payload: Value| {
            (StatusCode::OK, [("x-amz-function-error", "Unhandled")], payload.to_string()).into_response()
        };
        match function.as_str() {
            "notifier" => {
                let event: Value = serde_json::from_slice(&body).expect("the replay sends the event as JSON");
                match api.invoke(&event, Duration::from_secs(15)).await {
                    Ok(Answer::Response(payload)) => (StatusCode::OK, payload.to_string()).into_response(),
                    Ok(Answer::Error(payload)) => unhandled(payload),
                    Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error).into_response(),
                }
            }
            "broken" => unhandled(json!({"errorType": "NotifyError", "errorMessage": "SES is down"})),
            _ => (
                StatusCode::NOT_FOUND,
                [("x-amzn-errortype", "ResourceNotFoundException")],
                json!({"message": "Function not found"}).to_string(),
            )
                .into_response(),
        }
    }
    serve(Router::new().route("/2015-03-31/functions/{function}/invocations", post(invoke)).with_state(api)).await
}

/// Parks `body` in the queue as Lambda's asynchronous dead-letter queue does: the original event
/// as the body, the request id and the error as message attributes.
async fn park(sqs: &aws_sdk_sqs::Client, queue_url: &str, body: &str) {
    let string =
        |value: &str| MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap();
    let number = MessageAttributeValue::builder().data_type("Number").string_value("200").build().unwrap();
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .message_attributes("RequestID", string(&uuid::Uuid::new_v4().to_string()))
        .message_attributes("ErrorCode", number)
        .message_attributes("ErrorMessage", string("sending failed, worth retrying: ServiceUnavailable"))
        .send()
        .await
        .expect("park a message");
}

/// An on-failure destination's invocation record around `event`.
fn destination_record(event: &Value) -> String {
    json!({
        "version": "1.0", "timestamp": "2026-11-28T10:00:00.000Z",
        "requestContext": {"requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:notifier:$LATEST",
            "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "NotifyError", "errorMessage": "sending failed, worth retrying"},
    })
    .to_string()
}

/// Runs the compiled replay against the queue, with Lambda's API at `lambda` and the rest on moto.
async fn replay(queue_url: &str, function: &str, lambda: &str) -> Output {
    let run = tokio::process::Command::new(Path::new(REPLAY))
        .env("DEAD_LETTER_QUEUE_URL", queue_url)
        .env("NOTIFIER_FUNCTION", function)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ENDPOINT_URL_LAMBDA", lambda)
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .output();
    tokio::time::timeout(Duration::from_secs(60), run).await.expect("the replay ends").expect("the replay runs")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The notifier bootstrap, claiming in `table`, under its own emulator, and Lambda's API in front of it.
async fn notifier_behind_invoke(moto: &SdkConfig) -> (String, String, tokio::process::Child) {
    let (sender, table) = (verified_sender(moto).await, idempotency_table(moto).await);
    let api = Arc::new(RuntimeApi::start().await.unwrap());
    let child = notifier_command(&api, &sender, &table).spawn().unwrap();
    (sender, invoke_api(api).await, child)
}

#[tokio::test]
async fn parked_events_go_out_once_the_queue_empties_and_replaying_a_sent_one_sends_nothing() {
    let moto = moto_sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&moto);
    let queue_url = dead_letter_queue(&moto).await;
    let (sender, lambda, mut notifier) = notifier_behind_invoke(&moto).await;

    let (first, _) = password_reset_event("parked.one@example.com");
    let (second, _) = password_reset_event("parked.two@example.com");
    let (third, _) = password_reset_event("parked.three@example.com");
    park(&sqs, &queue_url, &first.to_string()).await;
    park(&sqs, &queue_url, &second.to_string()).await;
    park(&sqs, &queue_url, &destination_record(&third)).await;
    assert_eq!(queue_depth(&moto, &queue_url).await, 3);

    let output = replay(&queue_url, "notifier", &lambda).await;
    let stdout = stdout_of(&output);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("replayed 3, still failing 0, unreadable 0"), "{stdout}");
    let mut recipients: Vec<String> = sent_messages(&moto_endpoint(), &sender)
        .await
        .iter()
        .map(|m| m["destinations"]["ToAddresses"][0].as_str().unwrap().to_owned())
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["parked.one@example.com", "parked.three@example.com", "parked.two@example.com"]);
    assert_eq!(queue_depth(&moto, &queue_url).await, 0, "each handled message was deleted");
    for event in [&first, &second, &third] {
        let token = event["detail"]["token"].as_str().unwrap();
        assert!(!stdout.contains(token.rsplit('.').next().unwrap()), "a token reached the replay's log");
    }

    // Parked again (a redelivery that failed after SES had accepted it): replayed, nothing sent.
    park(&sqs, &queue_url, &first.to_string()).await;
    park(&sqs, &queue_url, &destination_record(&third)).await;
    let again = replay(&queue_url, "notifier", &lambda).await;
    assert!(again.status.success(), "{}", stdout_of(&again));
    assert!(stdout_of(&again).contains("replayed 2, still failing 0, unreadable 0"), "{}", stdout_of(&again));
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 3, "no second e-mail");
    assert_eq!(queue_depth(&moto, &queue_url).await, 0);

    notifier.kill().await.unwrap();
    let log = notifier.wait_with_output().await.unwrap();
    let outcomes: Vec<String> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "event")
        .map(|line| line["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes, ["sent", "sent", "sent", "duplicate_skipped", "duplicate_skipped"]);
}

#[tokio::test]
async fn what_the_notifier_fails_on_again_or_cannot_read_stays_in_the_queue_and_the_replay_says_so() {
    let moto = moto_sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&moto);
    let queue_url = dead_letter_queue(&moto).await;
    let (sender, lambda, _notifier) = notifier_behind_invoke(&moto).await;

    park(&sqs, &queue_url, &password_reset_event("still.failing@example.com").0.to_string()).await;
    park(&sqs, &queue_url, &destination_record(&password_reset_event("still.failing2@example.com").0)).await;
    park(&sqs, &queue_url, "not an event").await;

    let output = replay(&queue_url, "broken", &lambda).await;
    let stdout = stdout_of(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("replayed 0, still failing 2, unreadable 1"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("3 message(s) stay in the dead-letter queue"));
    assert_eq!(queue_depth(&moto, &queue_url).await, 3, "nothing was deleted");
    assert!(sent_messages(&moto_endpoint(), &sender).await.is_empty());

    // A function that does not exist: nothing is invoked, nothing deleted.
    let fresh = dead_letter_queue(&moto).await;
    park(&sqs, &fresh, &password_reset_event("nowhere@example.com").0.to_string()).await;
    let missing = replay(&fresh, "no-such-function", &lambda).await;
    assert!(!missing.status.success());
    assert!(stdout_of(&missing).contains("replayed 0, still failing 1, unreadable 0"), "{}", stdout_of(&missing));
    assert_eq!(queue_depth(&moto, &fresh).await, 1);
}

#[tokio::test]
async fn the_replay_refuses_to_start_without_a_queue_or_a_function_and_names_the_variable() {
    for (present, missing) in
        [("NOTIFIER_FUNCTION", "DEAD_LETTER_QUEUE_URL"), ("DEAD_LETTER_QUEUE_URL", "NOTIFIER_FUNCTION")]
    {
        let output = tokio::process::Command::new(Path::new(REPLAY))
            .env_remove("DEAD_LETTER_QUEUE_URL")
            .env_remove("NOTIFIER_FUNCTION")
            .env(present, "x")
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains(missing), "{missing}");
    }
}
