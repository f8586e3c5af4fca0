//! The mail port: sends one e-mail. SES v2 on Lambda, an `.eml` outbox (and `make run`'s viewer) locally.

use std::future::Future;

use crate::domain::recipient::Recipient;

mod outbox;
mod ses;

pub use outbox::{OutboxMailer, SentMail, Stored};
pub use ses::SesMailer;

/// Who the e-mail is from; the same for every implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// `no-reply@shop.example.com` or `Shop <no-reply@shop.example.com>`.
    pub from: String,
    pub reply_to: Option<String>,
}

/// One e-mail to send: its recipient, its three parts, and whom it was written for (the locale
/// its words are in and the actor type), which `make run`'s viewer lists.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub to: Recipient,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The locale the words are in, e.g. `pt-br`.
    pub locale: String,
    /// `customer`, `user`, …
    pub actor_type: String,
}

// The body carries the reset link, which is as good as the token: never in Debug output.
impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("locale", &self.locale)
            .field("actor_type", &self.actor_type)
            .finish_non_exhaustive()
    }
}

/// Sends e-mail; returns the provider's message id.
pub trait Mailer: Send + Sync + 'static {
    fn send(&self, email: &Email) -> impl Future<Output = Result<String, MailError>> + Send;
}

/// Permanent failures are dropped after logging; the others are returned so Lambda retries. Of
/// those, only `Throttled` is known not to have been accepted, and so is safe to send again at once.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the message was refused: {0}")]
    Permanent(String),
    /// Failed in a way that may or may not have sent it (a 5xx, a time-out): only a later attempt,
    /// after the claim is given back, tries again.
    #[error("sending failed, worth retrying: {0}")]
    Transient(String),
    /// Refused for the account's sending rate ("Maximum sending rate exceeded"): not accepted.
    #[error("SES throttled the send (not accepted): {0}")]
    Throttled(String),
    /// Refused for the account's 24-hour quota ("Daily message quota exceeded"): not accepted, and
    /// nothing will be until the quota allows, so waiting within the invocation cannot help.
    #[error(
        "SES's daily sending quota is used up (not accepted); not retried in this invocation: Lambda retries \
         the event, then parks it in the dead-letter queue for `make replay` once the quota allows: {0}"
    )]
    DailyQuota(String),
}
