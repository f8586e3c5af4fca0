//! A port wrapped so that each call's time becomes its latency metric: the adapters themselves
//! (PostgreSQL, DynamoDB, EventBridge, SES) know nothing of metrics, and `wiring` wraps them.

use std::time::{Instant, SystemTime};

use super::Latency;
use crate::domain::event::AuthEvent;
use crate::identity::{ChangeOutcome, IdentityStore, IssuedToken, Lookup, PasswordChange, StoreError, TokenRecord};
use crate::mail::{Email, MailError, Mailer};
use crate::publish::{EventPublisher, PublishError};
use crate::ratelimit::{LimitError, RateLimiter, Subject, Verdict};

/// `inner`, each call timed into the `latency` metric, failures included. The inner call's future
/// is boxed: the SDK's futures nest so deep that one more level around them passes the compiler's
/// limit for working out their layout, and one allocation beside a network call costs nothing.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    inner: T,
    latency: Latency,
}

impl<T> Timed<T> {
    pub fn new(inner: T, latency: Latency) -> Self {
        Self { inner, latency }
    }

    fn record(&self, started: Instant) {
        super::latency(self.latency, started.elapsed());
    }
}

impl<T: EventPublisher> EventPublisher for Timed<T> {
    async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.publish(event)).await;
        self.record(started);
        output
    }

    async fn publish_unknown(&self, event: &AuthEvent, token_len: usize) -> Result<(), PublishError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.publish_unknown(event, token_len)).await;
        self.record(started);
        output
    }
}

impl<T: IdentityStore> IdentityStore for Timed<T> {
    async fn find(&self, entity_id: &str, provider: &str) -> Result<Lookup, StoreError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.find(entity_id, provider)).await;
        self.record(started);
        output
    }

    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.issue(record)).await;
        self.record(started);
        output
    }

    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.withdraw(issued)).await;
        self.record(started);
        output
    }

    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<ChangeOutcome, StoreError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.change_password(change)).await;
        self.record(started);
        output
    }
}

impl<T: RateLimiter> RateLimiter for Timed<T> {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.check(subject, now)).await;
        self.record(started);
        output
    }

    async fn release(&self, subject: &Subject, now: SystemTime) -> Result<(), LimitError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.release(subject, now)).await;
        self.record(started);
        output
    }
}

impl<T: Mailer> Mailer for Timed<T> {
    async fn send(&self, email: &Email) -> Result<String, MailError> {
        let started = Instant::now();
        let output = Box::pin(self.inner.send(email)).await;
        self.record(started);
        output
    }
}
