//! The rate-limit port: how many reset requests a client IP and an identifier may make, in fixed
//! windows, decided in one call. DynamoDB on Lambda (shared by every execution environment), in
//! memory for `make run` and unit tests.

use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::RateLimitSettings;
use crate::domain::token::sha256_hex;

mod dynamodb;
mod memory;

pub use dynamodb::DynamoLimiter;
pub use memory::MemoryLimiter;

/// At most `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl FromStr for Limit {
    type Err = String;

    /// `5/3600`: five per hour.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("`{raw}` is not `count/seconds` such as `5/3600`");
        let (max, seconds) = raw.trim().split_once('/').ok_or_else(invalid)?;
        let max: u32 = max.trim().parse().map_err(|_| invalid())?;
        let seconds: u64 = seconds.trim().parse().map_err(|_| invalid())?;
        if max == 0 || !(1..=86_400).contains(&seconds) {
            return Err(format!("`{raw}`: the count must be at least 1 and the window 1 to 86400 seconds"));
        }
        Ok(Self { max, window: Duration::from_secs(seconds) })
    }
}

/// The limits in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Per identifier (with provider and actor type); over any of them, nothing is sent.
    pub per_identifier: Vec<Limit>,
    /// Per client IP; over it, the answer is 429.
    pub per_ip: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_identifier: vec![
                Limit { max: 1, window: Duration::from_secs(60) },
                Limit { max: 5, window: Duration::from_secs(3600) },
            ],
            per_ip: Limit { max: 30, window: Duration::from_secs(300) },
        }
    }
}

/// Who is asking: the client's address and a hash of what they ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub client_ip: String,
    /// SHA-256 hex of actor type, provider and identifier: the table never holds an address.
    pub identity: String,
}

impl Subject {
    pub fn new(client_ip: &str, actor_type: &str, provider: &str, identifier: &str) -> Self {
        let material = format!("{actor_type}\n{provider}\n{identifier}");
        let identity = sha256_hex(material.as_bytes());
        Self { client_ip: client_ip.to_owned(), identity }
    }
}

/// What the limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The identifier had its share: answer as usual, send nothing.
    IdentifierLimited,
    /// The client had its share: 429, try again after this long.
    IpLimited {
        retry_after: Duration,
    },
}

/// One counter to bump: its key, its limit and when its window ends (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub key: String,
    pub max: u32,
    pub window_end: u64,
}

impl Limits {
    /// The counters a request touches now: the client IP's first, then the identifier's.
    pub fn counters(&self, subject: &Subject, now: SystemTime) -> Vec<Counter> {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let counter = |prefix: &str, id: &str, limit: &Limit| {
            let window = limit.window.as_secs().max(1);
            let index = now / window;
            Counter { key: format!("{prefix}#{id}#{window}#{index}"), max: limit.max, window_end: (index + 1) * window }
        };
        std::iter::once(counter("ip", &subject.client_ip, &self.per_ip))
            .chain(self.per_identifier.iter().map(|limit| counter("id", &subject.identity, limit)))
            .collect()
    }
}

/// Seconds until a window ends, at least one.
pub fn retry_after(window_end: u64, now: SystemTime) -> Duration {
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    Duration::from_secs(window_end.saturating_sub(now).max(1))
}

/// Decides whether a request may go ahead, counting it.
pub trait RateLimiter: Send + Sync + 'static {
    fn check(&self, subject: &Subject, now: SystemTime) -> impl Future<Output = Result<Verdict, LimitError>> + Send;
}

/// The limiter could not decide; the request then fails closed.
#[derive(Debug, thiserror::Error)]
#[error("the rate limiter failed: {0}")]
pub struct LimitError(pub String);

/// The limiter a configuration asks for: DynamoDB when a table is configured, else in memory.
/// One type, so the binaries build one router either way.
pub enum Limiter {
    Dynamo(DynamoLimiter),
    Memory(MemoryLimiter),
}

impl Limiter {
    pub fn from_settings(settings: &RateLimitSettings, sdk: &aws_config::SdkConfig) -> Self {
        match &settings.table {
            Some(table) => {
                let client = aws_sdk_dynamodb::Client::new(sdk);
                Self::Dynamo(DynamoLimiter::new(client, table.clone(), settings.limits.clone()))
            }
            None => Self::Memory(MemoryLimiter::new(settings.limits.clone())),
        }
    }
}

impl RateLimiter for Limiter {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        match self {
            Self::Dynamo(limiter) => limiter.check(subject, now).await,
            Self::Memory(limiter) => limiter.check(subject, now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_parse_from_count_and_seconds() {
        assert_eq!("5/3600".parse(), Ok(Limit { max: 5, window: Duration::from_secs(3600) }));
        for bad in ["5", "0/60", "5/0", "x/60", "5/100000", ""] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counters_are_per_window_and_never_hold_the_identifier() {
        let subject = Subject::new("203.0.113.7", "customer", "emailpass", "a@example.com");
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let counters = Limits::default().counters(&subject, at(7_259));
        assert_eq!(counters.len(), 3);
        assert_eq!(counters[0].key, "ip#203.0.113.7#300#24");
        assert_eq!((counters[0].max, counters[0].window_end), (30, 7_500));
        assert_eq!(counters[1].window_end, 7_260);
        assert_eq!(counters[2].window_end, 10_800);
        assert!(counters.iter().all(|c| !c.key.contains("example.com")));
        // A second later the minute window has rolled over; the hour has not.
        let later = Limits::default().counters(&subject, at(7_260));
        assert_ne!(later[1].key, counters[1].key);
        assert_eq!(later[2].key, counters[2].key);
    }

    #[test]
    fn the_identity_hash_separates_actor_types_and_providers() {
        let a = Subject::new("ip", "customer", "emailpass", "a@example.com");
        let b = Subject::new("ip", "user", "emailpass", "a@example.com");
        let c = Subject::new("ip", "customer", "google", "a@example.com");
        assert_ne!(a.identity, b.identity);
        assert_ne!(a.identity, c.identity);
        assert_eq!(a.identity.len(), 64);
    }

    proptest! {
        #[test]
        fn retry_after_is_within_the_window(window in 1u64..86_400, now in 0u64..10_000_000) {
            let limits = Limits { per_identifier: vec![], per_ip: Limit { max: 1, window: Duration::from_secs(window) } };
            let at = UNIX_EPOCH + Duration::from_secs(now);
            let counter = &limits.counters(&Subject::new("ip", "a", "b", "c"), at)[0];
            let wait = retry_after(counter.window_end, at).as_secs();
            prop_assert!((1..=window).contains(&wait));
        }
    }
}
