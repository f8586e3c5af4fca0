//! Local mailer for `make run`: prints each e-mail, writes it as an `.eml` file under `./outbox/`,
//! and keeps the most recent ones in memory for the mail viewer (`/_dev/mail`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use lettre::message::{Mailbox, MultiPart};
use lettre::{FileTransport, Message, Transport};

use super::{Email, MailError, Mailer, Sender};

/// How many e-mails the viewer can show; older ones stay on disk only.
pub const KEPT: usize = 200;

/// Writes e-mails to a folder, one `.eml` each, shows them on standard output and keeps the last few.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    sender: Sender,
    sent: SentMail,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, sender: Sender) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir, sender, sent: SentMail::new(KEPT) })
    }

    /// The e-mails this mailer sent, as they arrive: the handle the viewer reads.
    pub fn sent(&self) -> SentMail {
        self.sent.clone()
    }
}

impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let mailbox = |raw: &str| raw.parse::<Mailbox>().map_err(|e| MailError::Permanent(format!("`{raw}`: {e}")));
        let mut builder = Message::builder()
            .from(mailbox(&self.sender.from)?)
            .to(Mailbox::new(None, email.to.address().clone()))
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
            email.to.as_str(),
            path.display(),
            email.subject,
            email.text.trim_end()
        );
        self.sent.keep(Stored { id: id.clone(), sent_at: SystemTime::now(), email: email.clone() });
        Ok(id)
    }
}

/// One e-mail as the outbox sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The `.eml` file's name without its extension (a UUID).
    pub id: String,
    pub sent_at: SystemTime,
    pub email: Email,
}

/// The most recent e-mails, newest first, shared between the mailer and the viewer and bounded,
/// so a long `make run` session does not grow without end.
#[derive(Debug, Clone)]
pub struct SentMail {
    kept: Arc<Mutex<VecDeque<Arc<Stored>>>>,
    capacity: usize,
}

impl Default for SentMail {
    fn default() -> Self {
        Self::new(KEPT)
    }
}

impl SentMail {
    pub fn new(capacity: usize) -> Self {
        Self { kept: Arc::default(), capacity }
    }

    /// How many e-mails are kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an e-mail, dropping the oldest beyond the capacity.
    pub fn keep(&self, stored: Stored) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.push_front(Arc::new(stored));
        kept.truncate(self.capacity);
    }

    /// The kept e-mails, newest first.
    pub fn recent(&self) -> Vec<Arc<Stored>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    /// The kept e-mail with this id, if it is still kept.
    pub fn get(&self, id: &str) -> Option<Arc<Stored>> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|stored| stored.id == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recipient::Recipient;

    fn email(subject: &str) -> Email {
        Email {
            to: Recipient::parse("shopper@example.com").unwrap(),
            subject: subject.to_owned(),
            text: format!("{subject}\nhttp://localhost:8000/reset-password?token=t"),
            html: format!("<p>{subject}</p>"),
            locale: "en".to_owned(),
            actor_type: "customer".to_owned(),
        }
    }

    #[tokio::test]
    async fn each_sent_email_is_written_as_eml_and_kept_newest_first_for_the_viewer() {
        let dir = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
        let sender = Sender { from: "Shop <no-reply@shop.example.com>".into(), reply_to: None };
        let mailer = OutboxMailer::new(dir.clone(), sender).unwrap();
        let viewer = mailer.sent();
        let first = mailer.send(&email("first")).await.unwrap();
        let second = mailer.send(&email("second")).await.unwrap();
        let eml = std::fs::read_to_string(dir.join(format!("{first}.eml"))).unwrap();
        assert!(eml.contains("Subject: first") && eml.contains("To: shopper@example.com"), "{eml}");
        let ids: Vec<_> = viewer.recent().iter().map(|stored| stored.id.clone()).collect();
        assert_eq!(ids, [second.clone(), first]);
        let kept = viewer.get(&second).unwrap();
        assert_eq!(kept.email, email("second"));
        assert!(viewer.get("no-such-id").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_the_most_recent_emails_are_kept() {
        let sent = SentMail::new(3);
        for n in 0..5 {
            sent.keep(Stored { id: n.to_string(), sent_at: SystemTime::now(), email: email(&n.to_string()) });
        }
        let ids: Vec<_> = sent.recent().iter().map(|stored| stored.id.clone()).collect();
        assert_eq!(ids, ["4", "3", "2"]);
        assert!(sent.get("1").is_none(), "the oldest are dropped from memory");
    }
}
