//! SES v2 `SendEmail` with simple content (subject, text, HTML), classifying failures for retries.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{DisplayErrorContext, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::{MailError, Mailer, Sender};
use crate::notify::recipient::Recipient;
use crate::notify::templates::RenderedEmail;

/// Sends through SES v2 with a client built once per cold start.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    sender: Sender,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, sender: Sender, configuration_set: Option<String>) -> Self {
        Self { client, sender, configuration_set }
    }
}

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| MailError::Permanent(e.to_string()))
}

impl Mailer for SesMailer {
    async fn send(&self, to: &Recipient, email: &RenderedEmail) -> Result<String, MailError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text)?).html(utf8(&email.html)?).build())
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.sender.from)
            .set_reply_to_addresses(self.sender.reply_to.clone().map(|r| vec![r]))
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(classify)?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}

/// `MessageRejected` and `BadRequest` will fail the same way again; throttling, 5xx, time-outs
/// and everything unrecognised are retried (and end in the dead-letter queue, not lost).
fn classify(error: SdkError<SendEmailError>) -> MailError {
    let permanent = matches!(
        error.as_service_error(),
        Some(SendEmailError::MessageRejected(_) | SendEmailError::BadRequestException(_))
    );
    let description = DisplayErrorContext(&error).to_string();
    if permanent { MailError::Permanent(description) } else { MailError::Transient(description) }
}
