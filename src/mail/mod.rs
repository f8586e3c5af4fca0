//! The mail port: sends one rendered e-mail. SES v2 on Lambda, an `.eml` outbox locally.

use std::future::Future;

use crate::notify::recipient::Recipient;
use crate::notify::templates::RenderedEmail;

mod outbox;
mod ses;

pub use outbox::OutboxMailer;
pub use ses::SesMailer;

/// Who the e-mail is from; the same for every implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `no-reply@shop.example.com` or `Shop <no-reply@shop.example.com>`.
    pub from: String,
    pub reply_to: Option<String>,
}

/// Sends e-mail; returns the provider's message id.
pub trait Mailer: Send + Sync + 'static {
    fn send(&self, to: &Recipient, email: &RenderedEmail) -> impl Future<Output = Result<String, MailError>> + Send;
}

/// Permanent failures are dropped after logging; transient ones are returned so Lambda retries.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the message was refused: {0}")]
    Permanent(String),
    #[error("sending failed, worth retrying: {0}")]
    Transient(String),
}
