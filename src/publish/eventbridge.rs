//! EventBridge publisher: one `PutEvents` entry per reset, a failed entry counted as a failure, the
//! invocation's X-Ray trace header on the entry so that the notifier's invocation joins its trace.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EventPublisher, PublishError};
use crate::aws::seal::KmsSealer;
use crate::domain::event::{AuthEvent, PASSWORD_UPDATED};
use crate::observability::trace;

/// Where events go: the bus, the `Source`, and the `DetailType` of each kind of event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTarget {
    pub bus_name: String,
    pub source: String,
    pub detail_type: String,
    pub unknown_detail_type: String,
}

impl EventTarget {
    fn detail_type(&self, event: &AuthEvent) -> &str {
        match event {
            AuthEvent::PasswordReset(_) => &self.detail_type,
            AuthEvent::UnknownIdentity(_) => &self.unknown_detail_type,
            AuthEvent::PasswordUpdated(_) => PASSWORD_UPDATED,
        }
    }
}

/// Puts events on an EventBridge bus with a client built once per cold start.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    target: EventTarget,
    sealer: Option<KmsSealer>,
}

impl EventBridgePublisher {
    pub fn new(client: Client, target: EventTarget) -> Self {
        Self { client, target, sealer: None }
    }

    /// Publishes reset events with their token sealed by KMS instead of in clear.
    pub fn sealing_with(mut self, sealer: KmsSealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    async fn detail(&self, event: &AuthEvent) -> Result<String, PublishError> {
        match (event, &self.sealer) {
            (AuthEvent::PasswordReset(reset), Some(sealer)) => {
                let sealed = sealer.seal(reset).await.map_err(|e| PublishError::Seal(e.to_string()))?;
                Ok(serde_json::to_string(&sealed)?)
            }
            _ => Ok(event.detail()?),
        }
    }
}

impl EventPublisher for EventBridgePublisher {
    async fn publish_unknown(&self, event: &AuthEvent, token_len: usize) -> Result<(), PublishError> {
        if let (AuthEvent::UnknownIdentity(unknown), Some(sealer)) = (event, &self.sealer) {
            // A KMS failure fails this path as it fails the known one: a 500 either way.
            sealer.seal_throwaway(unknown, token_len).await.map_err(|e| PublishError::Seal(e.to_string()))?;
        }
        self.publish(event).await
    }

    async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.target.bus_name)
            .source(&self.target.source)
            .detail_type(self.target.detail_type(event))
            .detail(self.detail(event).await?)
            .set_trace_header(trace::current())
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            // The SDK's error names the operation and cause; it never contains the request body.
            .map_err(|e| PublishError::Service(DisplayErrorContext(&e).to_string()))?;
        if output.failed_entry_count() > 0 {
            let failed = output.entries().iter().find(|e| e.error_code().is_some());
            return Err(PublishError::EntryFailed {
                code: failed.and_then(|e| e.error_code()).unwrap_or("unknown").to_owned(),
                message: failed.and_then(|e| e.error_message()).unwrap_or("no message").to_owned(),
            });
        }
        Ok(())
    }
}
