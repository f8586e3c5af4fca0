//! The rate-limit port: how many reset requests a client IP and an identifier may make, and how
//! many password updates a client IP may make, in fixed windows, decided in one call. DynamoDB on Lambda (shared by every execution environment), in
//! memory for `make run` and unit tests.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use aws_lc_rs::hmac;
use either::Either;

use crate::domain::clock::epoch_seconds;

mod dynamodb;
mod memory;

pub use dynamodb::DynamoDbRateLimiter;
pub use memory::MemoryRateLimiter;

/// The most requests one window may allow with the counters in DynamoDB: each leaves a marker of
/// about 20 bytes on its counter's item, and this many stay well inside an item's 400 KB.
pub const MAX_TABLE_COUNT: u32 = 10_000;

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
    /// Per client IP on the update route, counted apart from the reset route's: each update that
    /// carries a password costs a scrypt hash, so a flood must be turned away before it burns CPU.
    pub update_per_ip: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_identifier: vec![
                Limit { max: 1, window: Duration::from_secs(60) },
                Limit { max: 5, window: Duration::from_secs(3600) },
            ],
            per_ip: Limit { max: 30, window: Duration::from_secs(300) },
            update_per_ip: Limit { max: 10, window: Duration::from_secs(300) },
        }
    }
}

/// The key of the identity hash. Keyed (HMAC-SHA256), so that whoever reads the table cannot test
/// a list of addresses against it the way a plain hash would let them.
#[derive(Clone)]
pub struct IdentityKey(hmac::Key);

impl IdentityKey {
    /// The label that separates this key from every other use of the signing secret.
    pub const LABEL: &'static str = "medusa-reset/rate-limit-identity/v1";

    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityKey(<redacted>)")
    }
}

/// Whose per-identifier share a request uses. In Medusa-database mode the share belongs to the
/// account the lookup found, not to the text typed: requests for spellings Medusa does not know
/// send nothing, so they must not use up a real account's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share<'a> {
    /// An account the identity store found, by its id: only requests that reach it count.
    Account(&'a str),
    /// An identifier with no account: counted apart from every account, on its exact spelling, as
    /// an account is counted on the one spelling Medusa's lookup matches. Folding it would answer
    /// `ALICE@x` then `alice@x` with "limited" exactly when no account is `alice@x`, and a limited
    /// request does less work than an allowed one: the difference would tell accounts apart.
    NoAccount(&'a str),
    /// No identity store (`make run`, `SKIP_IDENTITY_CHECK`): every spelling of one address, trimmed
    /// and case-folded, shares one count.
    Identifier(&'a str),
}

impl Share<'_> {
    /// What the identity hash is taken over; a prefix keeps the three kinds apart.
    fn material(self, actor_type: &str, provider: &str) -> String {
        let folded = |identifier: &str| identifier.trim().to_lowercase();
        match self {
            Self::Account(id) => format!("account\n{actor_type}\n{provider}\n{id}"),
            Self::NoAccount(identifier) => format!("unknown\n{actor_type}\n{provider}\n{identifier}"),
            Self::Identifier(identifier) => format!("{actor_type}\n{provider}\n{}", folded(identifier)),
        }
    }
}

/// Which route's limits a request is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The client IP's and the identifier's counters.
    Reset,
    /// The client IP's update counter alone: the token, not the body, says whose password it is.
    Update,
}

/// Who is asking, in one request: the client's network, a keyed hash of the share they ask about,
/// and a marker of the request. One subject is one request: check it and give its counts back with
/// the same subject, and make a new one for the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub route: Route,
    /// An IPv4 address as it is; an IPv6 one as its /64, which is what one client holds.
    pub client_ip: String,
    /// HMAC-SHA256 hex of actor type, provider and the share (see `Share`): the table never holds
    /// an address or an account id.
    pub identity: String,
    /// 16 random hex digits, kept beside every count this request makes: a write repeated after its
    /// reply was lost finds its own marker and changes nothing, and a give-back takes back only
    /// what this request counted. Random, so it tells nothing about the client or the share.
    pub request: String,
}

impl Subject {
    /// The identifier is normalized for counting only; the token and the e-mail keep it as given.
    pub fn new(key: &IdentityKey, client_ip: &str, actor_type: &str, provider: &str, share: Share<'_>) -> Self {
        let material = share.material(actor_type, provider);
        let identity = hex::encode(hmac::sign(&key.0, material.as_bytes()));
        Self { route: Route::Reset, client_ip: client_network(client_ip), identity, request: request_marker() }
    }

    /// A password update: counted against the client alone, with no identity.
    pub fn for_update(client_ip: &str) -> Self {
        Self {
            route: Route::Update,
            client_ip: client_network(client_ip),
            identity: String::new(),
            request: request_marker(),
        }
    }
}

/// The low half of a v4 UUID: 62 random bits, plenty to keep apart the few hundred requests one
/// counter sees in a window.
fn request_marker() -> String {
    format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().1)
}

/// One client, as the limits count it: an IPv4 address, or the /64 of an IPv6 one (a home or a
/// cloud instance is given a whole /64, so counting addresses would hand it 2^64 shares). Anything
/// that is not an address (`unknown` in-process) counts as itself.
fn client_network(client_ip: &str) -> String {
    match client_ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !u128::from(u64::MAX);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
        Err(_) => client_ip.to_owned(),
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
    /// The counters a request touches now: the client IP's first, then the identifier's (none for
    /// an update).
    pub fn counters(&self, subject: &Subject, now: SystemTime) -> Vec<Counter> {
        let now = epoch_seconds(now);
        let counter = |prefix: &str, id: &str, limit: &Limit| {
            let window = limit.window.as_secs().max(1);
            let index = now / window;
            Counter { key: format!("{prefix}#{id}#{window}#{index}"), max: limit.max, window_end: (index + 1) * window }
        };
        match subject.route {
            Route::Update => vec![counter("update-ip", &subject.client_ip, &self.update_per_ip)],
            Route::Reset => std::iter::once(counter("ip", &subject.client_ip, &self.per_ip))
                .chain(self.per_identifier.iter().map(|limit| counter("id", &subject.identity, limit)))
                .collect(),
        }
    }
}

/// Seconds until a window ends, at least one.
pub fn retry_after(window_end: u64, now: SystemTime) -> Duration {
    Duration::from_secs(window_end.saturating_sub(epoch_seconds(now)).max(1))
}

/// Decides whether a request may go ahead, counting it. Both calls are safe to repeat for one
/// subject: a repeated check counts nothing more, a repeated give-back takes nothing more back.
pub trait RateLimiter: Send + Sync + 'static {
    fn check(&self, subject: &Subject, now: SystemTime) -> impl Future<Output = Result<Verdict, LimitError>> + Send;

    /// Gives back the identifier's counts this request made, when it then failed (a 5xx, the
    /// check's own failure included), so the user's retry is not swallowed; `now` is the time the
    /// request was checked at. Nothing this request did not count is given back, and the client's
    /// count stays: failures must not become free requests.
    fn release(&self, subject: &Subject, now: SystemTime) -> impl Future<Output = Result<(), LimitError>> + Send;
}

/// The limiter could not decide; the request then fails closed.
#[derive(Debug, thiserror::Error)]
#[error("the rate limiter failed: {0}")]
pub struct LimitError(pub String);

/// One limiter or the other, as the configuration picks at start-up (`app::wiring::rate_limiter`):
/// one type, so the binaries build one router either way.
impl<L: RateLimiter, R: RateLimiter> RateLimiter for Either<L, R> {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        either::for_both!(self, limiter => limiter.check(subject, now).await)
    }

    async fn release(&self, subject: &Subject, now: SystemTime) -> Result<(), LimitError> {
        either::for_both!(self, limiter => limiter.release(subject, now).await)
    }
}

/// One limiter shared by the two routes of an execution environment.
impl<T: RateLimiter> RateLimiter for std::sync::Arc<T> {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        self.as_ref().check(subject, now).await
    }

    async fn release(&self, subject: &Subject, now: SystemTime) -> Result<(), LimitError> {
        self.as_ref().release(subject, now).await
    }
}

/// The rate limits, and the DynamoDB table that holds their counters (in memory without one). Read
/// from the environment in `config::limits`, which holds the counts to `MAX_TABLE_COUNT` with a table.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub limits: Limits,
    pub table: Option<String>,
}

#[cfg(test)]
pub(crate) fn test_key() -> IdentityKey {
    IdentityKey::new(b"rate-limit-unit-test-key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::at_epoch_seconds;
    use proptest::prelude::*;

    fn subject(ip: &str, actor_type: &str, provider: &str, identifier: &str) -> Subject {
        Subject::new(&test_key(), ip, actor_type, provider, Share::Identifier(identifier))
    }

    #[test]
    fn limits_parse_from_count_and_seconds() {
        assert_eq!("5/3600".parse(), Ok(Limit { max: 5, window: Duration::from_secs(3600) }));
        for bad in ["5", "0/60", "5/0", "x/60", "5/100000", ""] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_update_touches_one_counter_of_its_own_per_client() {
        let counters = Limits::default().counters(&Subject::for_update("203.0.113.7"), at_epoch_seconds(7_259));
        assert_eq!(counters.len(), 1);
        assert_eq!(counters[0].key, "update-ip#203.0.113.7#300#24");
        assert_eq!((counters[0].max, counters[0].window_end), (10, 7_500));
    }

    #[test]
    fn counters_are_per_window_and_never_hold_the_identifier() {
        let subject = subject("203.0.113.7", "customer", "emailpass", "a@example.com");
        let counters = Limits::default().counters(&subject, at_epoch_seconds(7_259));
        assert_eq!(counters.len(), 3);
        assert_eq!(counters[0].key, "ip#203.0.113.7#300#24");
        assert_eq!((counters[0].max, counters[0].window_end), (30, 7_500));
        assert_eq!(counters[1].window_end, 7_260);
        assert_eq!(counters[2].window_end, 10_800);
        assert!(counters.iter().all(|c| !c.key.contains("example.com")));
        // A second later the minute window has rolled over; the hour has not.
        let later = Limits::default().counters(&subject, at_epoch_seconds(7_260));
        assert_ne!(later[1].key, counters[1].key);
        assert_eq!(later[2].key, counters[2].key);
    }

    #[test]
    fn the_identity_hash_separates_actor_types_and_providers() {
        let a = subject("ip", "customer", "emailpass", "a@example.com");
        let b = subject("ip", "user", "emailpass", "a@example.com");
        let c = subject("ip", "customer", "google", "a@example.com");
        assert_ne!(a.identity, b.identity);
        assert_ne!(a.identity, c.identity);
        assert_eq!(a.identity.len(), 64);
    }

    #[test]
    fn every_spelling_of_one_address_shares_one_identity() {
        let victim = subject("ip", "customer", "emailpass", "victim@x.com");
        for spelling in ["Victim@x.com", "victim@X.COM", "VICTIM@X.COM", " victim@x.com ", "\tVictim@X.com\n"] {
            assert_eq!(subject("ip", "customer", "emailpass", spelling).identity, victim.identity, "{spelling:?}");
        }
        assert_ne!(subject("ip", "customer", "emailpass", "victim2@x.com").identity, victim.identity);
        // Unicode letters fold too, not only ASCII.
        assert_eq!(
            subject("ip", "customer", "emailpass", "ÄRGER@beispiel.de").identity,
            subject("ip", "customer", "emailpass", "ärger@beispiel.de").identity
        );
    }

    #[test]
    fn the_identity_is_keyed_so_a_list_of_addresses_cannot_be_tested_against_it() {
        let material = "customer\nemailpass\na@example.com";
        let plain = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, material.as_bytes()));
        let keyed = subject("ip", "customer", "emailpass", "a@example.com").identity;
        assert_ne!(keyed, plain, "not the unkeyed hash anyone can compute");
        let other_key = Subject::new(
            &IdentityKey::new(b"another key"),
            "ip",
            "customer",
            "emailpass",
            Share::Identifier("a@example.com"),
        );
        assert_ne!(other_key.identity, keyed);
        // HMAC-SHA256 of the material under the key, and nothing else.
        let expected = hex::encode(hmac::sign(&test_key().0, material.as_bytes()));
        assert_eq!(keyed, expected);
        assert!(!format!("{:?}", test_key()).contains("rate-limit-unit-test-key"));
    }

    #[test]
    fn an_account_an_unknown_spelling_and_a_bare_identifier_never_share_a_count() {
        let share = |share| Subject::new(&test_key(), "ip", "customer", "emailpass", share).identity;
        let account = share(Share::Account("01JABCDEF"));
        assert_eq!(account, share(Share::Account("01JABCDEF")));
        assert_ne!(account, share(Share::Account("01JABCDEG")));
        // An unknown spelling counts on its own key, whatever it spells.
        for spelling in ["ALICE@example.com", "alice@EXAMPLE.com", "01JABCDEF"] {
            assert_ne!(share(Share::NoAccount(spelling)), account, "{spelling}");
            assert_ne!(share(Share::NoAccount(spelling)), share(Share::Identifier(spelling)), "{spelling}");
        }
        assert_eq!(share(Share::NoAccount("ALICE@example.com")), share(Share::NoAccount("ALICE@example.com")));
        // Exact, as the account's lookup is: another spelling is another count.
        assert_ne!(share(Share::NoAccount("ALICE@example.com")), share(Share::NoAccount("alice@example.com")));
    }

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_clients_per_address() {
        let client = |ip: &str| subject(ip, "customer", "emailpass", "a@example.com").client_ip;
        assert_eq!(client("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
        assert_eq!(client("198.51.100.7"), "198.51.100.7");
        assert_ne!(client("198.51.100.7"), client("198.51.100.8"));
        assert_eq!(client("::ffff:198.51.100.7"), "198.51.100.7", "an IPv4-mapped address is its IPv4 client");
        assert_eq!(client("unknown"), "unknown");
    }

    /// An address built from a grammar, and a spelling of it: each letter's case flipped or not,
    /// white space around it or not.
    fn address_and_spelling() -> impl Strategy<Value = (String, String)> {
        ("[a-zà-ÿ0-9._+]{1,12}@[a-z0-9]{1,10}\\.[a-z]{2,4}", prop::collection::vec(any::<bool>(), 32), "[ \t]{0,2}")
            .prop_map(|(address, flips, pad)| {
                let spelled: String = address
                    .chars()
                    .zip(flips.iter().cycle())
                    .map(|(c, flip)| if *flip { c.to_uppercase().collect::<String>() } else { c.to_string() })
                    .collect();
                (address, format!("{pad}{spelled}{pad}"))
            })
    }

    proptest! {
        #[test]
        fn retry_after_is_within_the_window(window in 1u64..86_400, now in 0u64..10_000_000) {
            let limits = Limits {
                per_identifier: vec![],
                per_ip: Limit { max: 1, window: Duration::from_secs(window) },
                ..Limits::default()
            };
            let at = at_epoch_seconds(now);
            let counter = &limits.counters(&subject("ip", "a", "b", "c"), at)[0];
            let wait = retry_after(counter.window_end, at).as_secs();
            prop_assert!((1..=window).contains(&wait));
        }

        #[test]
        fn two_moments_share_a_counter_exactly_when_they_share_a_window(
            window in 1u64..7_200, first in 0u64..100_000, gap in 0u64..10_000,
        ) {
            let limits = Limits {
                per_identifier: vec![],
                per_ip: Limit { max: 1, window: Duration::from_secs(window) },
                ..Limits::default()
            };
            let a = subject("198.51.100.1", "customer", "emailpass", "a@example.com");
            let at = |s: u64| at_epoch_seconds(1_800_000_000 + s);
            let (one, two) = (&limits.counters(&a, at(first))[0], &limits.counters(&a, at(first + gap))[0]);
            let same_window = (1_800_000_000 + first) / window == (1_800_000_000 + first + gap) / window;
            prop_assert_eq!(one.key == two.key, same_window);
            prop_assert!(one.window_end > 1_800_000_000 + first && one.window_end <= 1_800_000_000 + first + window);
        }

        #[test]
        fn any_spelling_counts_as_its_address_and_another_address_does_not((address, spelling) in address_and_spelling()) {
            let original = subject("ip", "customer", "emailpass", &address);
            prop_assert_eq!(&subject("ip", "customer", "emailpass", &spelling).identity, &original.identity);
            let other = format!("x{address}");
            prop_assert_ne!(&subject("ip", "customer", "emailpass", &other).identity, &original.identity);
        }

        #[test]
        fn every_address_of_one_ipv6_64_is_one_client_and_another_64_is_not(prefix in any::<u64>(), a in any::<u64>(), b in any::<u64>()) {
            let ip = |high: u64, low: u64| Ipv6Addr::from((u128::from(high) << 64) | u128::from(low)).to_string();
            let client = |ip: String| subject(&ip, "customer", "emailpass", "a@example.com").client_ip;
            // IPv4-mapped addresses (all in the zero /64) are IPv4 clients: a different rule.
            prop_assume!(prefix != 0 && prefix != u64::MAX);
            prop_assert_eq!(client(ip(prefix, a)), client(ip(prefix, b)));
            prop_assert_ne!(client(ip(prefix, a)), client(ip(prefix.wrapping_add(1), a)));
        }
    }
}
