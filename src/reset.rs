//! The reset use case: mint a token for a parsed request and publish the `auth.password_reset` event.

use std::time::SystemTime;

use crate::domain::actor::{ActorType, AuthProvider};
use crate::domain::event::PasswordResetEvent;
use crate::domain::reset_request::ResetRequest;
use crate::domain::token::{TokenError, TokenMinter};
use crate::publish::{EventPublisher, PublishError};

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// Everything a reset needs, built once per cold start.
pub struct ResetService<P> {
    minter: TokenMinter,
    publisher: P,
}

impl<P: EventPublisher> ResetService<P> {
    pub fn new(minter: TokenMinter, publisher: P) -> Self {
        Self { minter, publisher }
    }

    /// Mints a token for the request and publishes it; the event is the only place the token goes.
    pub async fn request_reset(
        &self,
        request: ResetRequest,
        actor_type: &ActorType,
        provider: &AuthProvider,
    ) -> Result<(), ResetError> {
        let minted = self.minter.mint(&request.identifier, actor_type, provider, SystemTime::now())?;
        let event = PasswordResetEvent {
            entity_id: request.identifier.as_str().to_owned(),
            actor_type: actor_type.as_str().to_owned(),
            provider: provider.as_str().to_owned(),
            token: minted.token,
            metadata: request.metadata,
        };
        self.publisher.publish(&event).await?;
        Ok(())
    }
}
