//! SES v2 `SendEmail` with simple content (subject, text, HTML), classifying failures for retries.
//! One SDK attempt per call: a retried send whose first attempt in fact went out (a time-out after
//! SES accepted it) would be a second e-mail. So an ambiguous failure is retried only by Lambda,
//! after the claim is released; a throttled send, which SES did not accept, is told apart so that
//! the notifier can pace it within the invocation, and the daily quota from the sending rate.

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use super::{Email, MailError, Mailer, Sender};

/// Sends through SES v2 with a client built once per cold start.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    sender: Sender,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// Takes the client as configured (endpoint, credentials, time-outs) but with one attempt.
    pub fn new(client: Client, sender: Sender, configuration_set: Option<String>) -> Self {
        let one_attempt = client.config().to_builder().retry_config(RetryConfig::standard().with_max_attempts(1));
        Self { client: Client::from_conf(one_attempt.build()), sender, configuration_set }
    }
}

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| MailError::Permanent(e.to_string()))
}

impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text)?).html(utf8(&email.html)?).build())
            .build();
        let output = self
            .client
            .send_email()
            .from_email_address(&self.sender.from)
            .set_reply_to_addresses(self.sender.reply_to.clone().map(|r| vec![r]))
            .destination(Destination::builder().to_addresses(email.to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .send()
            .await
            .map_err(classify)?;
        Ok(output.message_id().unwrap_or_default().to_owned())
    }
}

/// The error codes with which AWS refuses a request for its rate or quota: SES v2's 429
/// `TooManyRequestsException`, and the `Throttling` names SES's documentation and other AWS APIs use.
const THROTTLING_CODES: [&str; 3] = ["TooManyRequestsException", "ThrottlingException", "Throttling"];

/// `MessageRejected` and `BadRequest` will fail the same way again. Throttling was not accepted:
/// the daily quota's message ("Daily message quota exceeded") sets it apart from the sending rate's
/// ("Maximum sending rate exceeded"). 5xx, time-outs and everything unrecognised are transient (and
/// end in the dead-letter queue, not lost).
fn classify(error: SdkError<SendEmailError>) -> MailError {
    let description = DisplayErrorContext(&error).to_string();
    if matches!(
        error.as_service_error(),
        Some(SendEmailError::MessageRejected(_) | SendEmailError::BadRequestException(_))
    ) {
        return MailError::Permanent(description);
    }
    let Some(service) = error.as_service_error() else { return MailError::Transient(description) };
    if !service.code().is_some_and(|code| THROTTLING_CODES.contains(&code)) {
        return MailError::Transient(description);
    }
    if service.message().is_some_and(|message| message.to_ascii_lowercase().contains("daily message quota")) {
        MailError::DailyQuota(description)
    } else {
        MailError::Throttled(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_client_makes_one_attempt_whatever_the_shared_configuration_says() {
        let sdk = crate::aws::defaults().region(aws_config::Region::new("us-east-1")).load().await;
        assert!(sdk.retry_config().is_some_and(|retries| retries.max_attempts() > 1), "the shared default retries");
        let sender = Sender { from: "no-reply@shop.example.com".into(), reply_to: None };
        let mailer = SesMailer::new(Client::new(&sdk), sender, None);
        let retries = mailer.client.config().retry_config().expect("a retry configuration");
        assert_eq!(retries.max_attempts(), 1);
        let timeouts = mailer.client.config().timeout_config().expect("time-outs kept");
        assert_eq!(timeouts.operation_attempt_timeout(), Some(crate::aws::ATTEMPT_TIMEOUT));
    }
}
