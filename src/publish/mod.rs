//! The event port: where a minted reset, and a changed password's notice, go. EventBridge on Lambda, an in-process channel locally.

use std::future::Future;

use crate::domain::event::AuthEvent;

mod channel;
mod eventbridge;

pub use channel::ChannelPublisher;
pub use eventbridge::{EventBridgePublisher, EventTarget};

/// Puts one event where subscribers will find it.
pub trait EventPublisher: Send + Sync + 'static {
    fn publish(&self, event: &AuthEvent) -> impl Future<Output = Result<(), PublishError>> + Send;

    /// Publishes the event of an identifier without an account, doing the work a known one's
    /// would: a publisher that seals tokens seals a throwaway `token_len` bytes long first, so the
    /// seal's round trip does not tell the two apart. Others only publish. No default: a wrapper
    /// (such as the metrics' `Timed`) that fell back on one would publish without the seal's work.
    fn publish_unknown(
        &self,
        event: &AuthEvent,
        token_len: usize,
    ) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// One publisher shared by the two routes of an execution environment.
impl<T: EventPublisher> EventPublisher for std::sync::Arc<T> {
    async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
        self.as_ref().publish(event).await
    }

    async fn publish_unknown(&self, event: &AuthEvent, token_len: usize) -> Result<(), PublishError> {
        self.as_ref().publish_unknown(event, token_len).await
    }
}

/// Why an event was not published. Messages carry codes and causes, never the event itself.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("EventBridge refused the entry ({code}): {message}")]
    EntryFailed { code: String, message: String },
    #[error("EventBridge call failed: {0}")]
    Service(String),
    #[error("the event could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("sealing the token failed: {0}")]
    Seal(String),
    #[error("the in-process event channel is closed")]
    ChannelClosed,
}
