//! In-process publisher: hands each event to a channel that `make run` and the tests read.

use tokio::sync::mpsc;

use super::{EventPublisher, PublishError};
use crate::domain::event::AuthEvent;

/// Sends events into an unbounded channel; publishing fails once the receiver is gone.
#[derive(Debug, Clone)]
pub struct ChannelPublisher {
    sender: mpsc::UnboundedSender<AuthEvent>,
}

impl ChannelPublisher {
    pub fn new() -> (Self, mpsc::UnboundedReceiver<AuthEvent>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender }, receiver)
    }
}

impl EventPublisher for ChannelPublisher {
    async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
        self.sender.send(event.clone()).map_err(|_| PublishError::ChannelClosed)
    }

    /// Nothing is sealed in process, so there is no work to match.
    async fn publish_unknown(&self, event: &AuthEvent, _token_len: usize) -> Result<(), PublishError> {
        self.publish(event).await
    }
}
