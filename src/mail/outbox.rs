//! Local mailer for `make run`: prints each e-mail and writes it as an `.eml` file under `./outbox/`.

use std::path::PathBuf;

use lettre::message::{Mailbox, MultiPart};
use lettre::{FileTransport, Message, Transport};

use super::{MailError, Mailer, Sender};
use crate::notify::recipient::Recipient;
use crate::notify::templates::RenderedEmail;

/// Writes e-mails to a folder, one `.eml` each, and shows them on standard output.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    sender: Sender,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, sender: Sender) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, sender })
    }
}

impl Mailer for OutboxMailer {
    async fn send(&self, to: &Recipient, email: &RenderedEmail) -> Result<String, MailError> {
        let mailbox = |raw: &str| raw.parse::<Mailbox>().map_err(|e| MailError::Permanent(format!("`{raw}`: {e}")));
        let mut builder = Message::builder()
            .from(mailbox(&self.sender.from)?)
            .to(Mailbox::new(None, to.address().clone()))
            .subject(&email.subject);
        if let Some(reply_to) = &self.sender.reply_to {
            builder = builder.reply_to(mailbox(reply_to)?);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()))
            .map_err(|e| MailError::Permanent(e.to_string()))?;
        let id = FileTransport::new(&self.dir).send(&message).map_err(|e| MailError::Transient(e.to_string()))?;
        let path = self.dir.join(format!("{id}.eml"));
        println!(
            "--- e-mail to {} (development outbox: {})\nSubject: {}\n\n{}\n",
            to.as_str(),
            path.display(),
            email.subject,
            email.text.trim_end()
        );
        Ok(id)
    }
}
