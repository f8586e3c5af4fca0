//! Replaying the notifier's dead-letter queue (`make replay`): each parked event is read, handed to
//! the notifier function again with a synchronous `Invoke` (so that its answer is known), and
//! deleted from the queue once the function handled it; a message the function fails on again stays
//! for the next replay. Only the notifier is invoked: putting the event back on the bus would hand
//! it to every other rule's target too. The notifier's claims make replaying an event whose e-mail
//! already went out harmless: it is skipped as a duplicate.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sqs::types::Message;
use serde_json::Value;

/// Messages are hidden from other readers this long while one is replayed: longer than the
/// notifier's timeout, so a message is never invoked twice at once by two replays.
const VISIBILITY: Duration = Duration::from_secs(60);
/// A long poll: an empty answer then means the queue is empty, not that one server had none.
const WAIT: Duration = Duration::from_secs(1);

/// What to replay: the queue and the notifier function. Read from the environment in `config::replay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySettings {
    /// `DEAD_LETTER_QUEUE_URL`: the stack's `NotifierDeadLetterQueueUrl` output.
    pub queue_url: String,
    /// `NOTIFIER_FUNCTION`: the notifier's name or ARN.
    pub function: String,
    /// `REPLAY_LIMIT`: at most this many messages (all of them when unset).
    pub limit: Option<usize>,
}

/// The event a dead-letter message carries: the body itself, as Lambda's asynchronous DLQ and an
/// EventBridge target's DLQ park it, or the `requestPayload` of an on-failure destination's
/// invocation record. `None` for anything else.
pub fn parked_event(body: &str) -> Option<Value> {
    let parked: Value = serde_json::from_str(body).ok()?;
    match (parked.get("requestContext"), parked.get("requestPayload")) {
        (Some(_), Some(payload)) => payload.is_object().then(|| payload.clone()),
        _ => parked.is_object().then_some(parked),
    }
}

/// How a replay went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Handled by the notifier (sent, skipped as a duplicate, or dropped) and deleted.
    pub replayed: usize,
    /// The notifier failed again, or could not be invoked: still in the queue.
    pub failed: usize,
    /// Not an event: still in the queue, for a person to look at.
    pub unreadable: usize,
}

/// A replay that had to stop: the queue could not be read, or a replayed message not deleted.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the dead-letter queue failed: {0}")]
    Receive(String),
    #[error("a replayed message could not be deleted (a later replay would hand it over again): {0}")]
    Delete(String),
}

/// What became of one message.
enum Outcome {
    Replayed,
    Failed,
    Unreadable,
}

/// Reads the queue, invokes the notifier, deletes what it handled.
#[derive(Debug, Clone)]
pub struct Replayer {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    settings: ReplaySettings,
}

impl Replayer {
    pub fn new(sqs: aws_sdk_sqs::Client, lambda: aws_sdk_lambda::Client, settings: ReplaySettings) -> Self {
        Self { sqs, lambda, settings }
    }

    /// Replays until the queue is empty, the limit is reached, or a message the notifier failed on
    /// comes round again.
    pub async fn run(&self) -> Result<Summary, ReplayError> {
        let mut summary = Summary::default();
        let mut seen = HashSet::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.settings.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(i32::try_from(VISIBILITY.as_secs()).unwrap_or(i32::MAX))
                .wait_time_seconds(i32::try_from(WAIT.as_secs()).unwrap_or(0))
                .send()
                .await
                .map_err(|e| ReplayError::Receive(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
            if received.messages().is_empty() {
                return Ok(summary);
            }
            for message in received.messages() {
                let done = summary.replayed + summary.failed + summary.unreadable;
                let id = message.message_id().unwrap_or_default();
                if self.settings.limit.is_some_and(|limit| done >= limit) || !seen.insert(id.to_owned()) {
                    return Ok(summary);
                }
                match self.replay(message).await? {
                    Outcome::Replayed => summary.replayed += 1,
                    Outcome::Failed => summary.failed += 1,
                    Outcome::Unreadable => summary.unreadable += 1,
                }
            }
        }
    }

    /// Hands one message's event to the notifier and deletes the message if it was handled. The
    /// log names the message and the event, never what the event holds (its token).
    async fn replay(&self, message: &Message) -> Result<Outcome, ReplayError> {
        let message_id = message.message_id().unwrap_or_default();
        let Some(event) = message.body().and_then(parked_event) else {
            tracing::warn!(message_id, outcome = "unreadable", "not an event: left in the queue");
            return Ok(Outcome::Unreadable);
        };
        let event_id = event.get("id").and_then(Value::as_str).unwrap_or("unknown").to_owned();
        let invoked = self
            .lambda
            .invoke()
            .function_name(&self.settings.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(event.to_string()))
            .send()
            .await;
        match invoked {
            Ok(output) if output.function_error().is_none() => {
                self.sqs
                    .delete_message()
                    .queue_url(&self.settings.queue_url)
                    .set_receipt_handle(message.receipt_handle().map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| ReplayError::Delete(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
                tracing::info!(message_id, event_id, outcome = "replayed", "handled by the notifier and deleted");
                Ok(Outcome::Replayed)
            }
            Ok(output) => {
                let error = output.function_error().unwrap_or_default();
                tracing::warn!(message_id, event_id, outcome = "still_failing", error, "the notifier failed again");
                Ok(Outcome::Failed)
            }
            Err(error) => {
                let cause = DisplayErrorContext(&error).to_string();
                tracing::warn!(message_id, event_id, outcome = "not_invoked", cause, "the notifier was not invoked");
                Ok(Outcome::Failed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_parked_event_is_the_body_or_an_invocation_records_request_payload() {
        let event =
            json!({"id": "e-1", "detail-type": "auth.password_reset", "detail": {"entity_id": "a@example.com"}});
        assert_eq!(parked_event(&event.to_string()), Some(event.clone()));
        let record = json!({"version": "1.0", "timestamp": "2026-11-28T10:00:00.000Z",
            "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:us-east-1:1:function:n:$LATEST",
                "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "NotifyError"}});
        assert_eq!(parked_event(&record.to_string()), Some(event));
        for unreadable in ["", "not json", "[1,2]", "\"a string\"", r#"{"requestContext": {}, "requestPayload": 1}"#] {
            assert_eq!(parked_event(unreadable), None, "{unreadable}");
        }
    }
}
