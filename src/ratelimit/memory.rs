//! In-memory rate limiter: exact within one process, for `make run` and tests (and, without a
//! table, per Lambda execution environment only).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::SystemTime;

use super::{Counter, LimitError, Limits, RateLimiter, Subject, Verdict, retry_after};
use crate::domain::clock::epoch_seconds;

/// One counter: its count, when its window ends, and the requests it counted (as the DynamoDB
/// items keep them, so both limiters answer a repeated call alike).
#[derive(Debug)]
struct Tally {
    count: u32,
    window_end: u64,
    requests: HashSet<String>,
}

#[derive(Debug)]
pub struct MemoryRateLimiter {
    limits: Limits,
    counts: Mutex<HashMap<String, Tally>>,
}

impl MemoryRateLimiter {
    pub fn new(limits: Limits) -> Self {
        Self { limits, counts: Mutex::default() }
    }
}

/// What a check already made for this request decided, if it counted anything: everything
/// counted is `Allowed`, the client's count alone is `IdentifierLimited`.
fn earlier_verdict(
    counts: &HashMap<String, Tally>,
    ip: &Counter,
    identity: &[Counter],
    request: &str,
) -> Option<Verdict> {
    let counted = |counter: &Counter| counts.get(&counter.key).is_some_and(|tally| tally.requests.contains(request));
    if !counted(ip) {
        return None;
    }
    Some(if identity.iter().all(counted) { Verdict::Allowed } else { Verdict::IdentifierLimited })
}

impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        let counters = self.limits.counters(subject, now);
        let mut counts = self.counts.lock().map_err(|e| LimitError(e.to_string()))?;
        // Ended windows are dropped so memory stays bounded by the traffic of the current windows.
        let seconds = epoch_seconds(now);
        counts.retain(|_, tally| tally.window_end > seconds);
        let Some((ip, identity)) = counters.split_first() else {
            return Ok(Verdict::Allowed);
        };
        if let Some(verdict) = earlier_verdict(&counts, ip, identity, &subject.request) {
            return Ok(verdict);
        }
        let count = |key: &str| counts.get(key).map_or(0, |tally| tally.count);
        if count(&ip.key) >= ip.max {
            return Ok(Verdict::IpLimited { retry_after: retry_after(ip.window_end, now) });
        }
        let limited = identity.iter().any(|c| count(&c.key) >= c.max);
        let bumped = if limited { &counters[..1] } else { &counters[..] };
        for counter in bumped {
            let tally = counts.entry(counter.key.clone()).or_insert_with(|| Tally {
                count: 0,
                window_end: counter.window_end,
                requests: HashSet::new(),
            });
            tally.count += 1;
            tally.requests.insert(subject.request.clone());
        }
        Ok(if limited { Verdict::IdentifierLimited } else { Verdict::Allowed })
    }

    async fn release(&self, subject: &Subject, now: SystemTime) -> Result<(), LimitError> {
        let counters = self.limits.counters(subject, now);
        let mut counts = self.counts.lock().map_err(|e| LimitError(e.to_string()))?;
        for counter in counters.iter().skip(1) {
            if let Some(tally) = counts.get_mut(&counter.key)
                && tally.requests.remove(&subject.request)
            {
                tally.count = tally.count.saturating_sub(1);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::at_epoch_seconds as at;
    use crate::ratelimit::Limit;
    use std::time::Duration;

    fn subject(ip: &str, identifier: &str) -> Subject {
        Subject::new(
            &crate::ratelimit::test_key(),
            ip,
            "customer",
            "emailpass",
            crate::ratelimit::Share::Identifier(identifier),
        )
    }

    #[tokio::test]
    async fn one_token_a_minute_and_five_an_hour_per_identifier() {
        let limiter = MemoryRateLimiter::new(Limits::default());
        let a = || subject("198.51.100.1", "a@example.com");
        assert_eq!(limiter.check(&a(), at(3_600)).await.unwrap(), Verdict::Allowed);
        assert_eq!(limiter.check(&a(), at(3_659)).await.unwrap(), Verdict::IdentifierLimited);
        for minute in 1..5 {
            assert_eq!(limiter.check(&a(), at(3_600 + 60 * minute)).await.unwrap(), Verdict::Allowed, "{minute}");
        }
        assert_eq!(limiter.check(&a(), at(3_600 + 60 * 5)).await.unwrap(), Verdict::IdentifierLimited);
        assert_eq!(limiter.check(&a(), at(7_200)).await.unwrap(), Verdict::Allowed, "the hour rolled over");
    }

    #[tokio::test]
    async fn the_ip_limit_answers_429_with_the_time_left_and_is_independent() {
        let limits = Limits { per_ip: Limit { max: 3, window: Duration::from_secs(300) }, ..Limits::default() };
        let limiter = MemoryRateLimiter::new(limits);
        for n in 0..3 {
            let verdict = limiter.check(&subject("198.51.100.1", &format!("u{n}@example.com")), at(600)).await.unwrap();
            assert_eq!(verdict, Verdict::Allowed);
        }
        let over = limiter.check(&subject("198.51.100.1", "u9@example.com"), at(650)).await.unwrap();
        assert_eq!(over, Verdict::IpLimited { retry_after: Duration::from_secs(250) });
        let other_ip = limiter.check(&subject("198.51.100.2", "u9@example.com"), at(650)).await.unwrap();
        assert_eq!(other_ip, Verdict::Allowed, "another client is not affected, nor was u9 counted");
    }

    #[tokio::test]
    async fn identifier_limited_requests_still_count_against_the_ip() {
        let limits = Limits { per_ip: Limit { max: 2, window: Duration::from_secs(300) }, ..Limits::default() };
        let limiter = MemoryRateLimiter::new(limits);
        let a = || subject("198.51.100.1", "a@example.com");
        assert_eq!(limiter.check(&a(), at(0)).await.unwrap(), Verdict::Allowed);
        assert_eq!(limiter.check(&a(), at(1)).await.unwrap(), Verdict::IdentifierLimited);
        assert!(matches!(limiter.check(&a(), at(2)).await.unwrap(), Verdict::IpLimited { .. }));
    }

    #[tokio::test]
    async fn a_released_count_lets_the_identifier_try_again_in_the_same_window() {
        let limits = Limits { per_ip: Limit { max: 3, window: Duration::from_secs(300) }, ..Limits::default() };
        let limiter = MemoryRateLimiter::new(limits);
        let a = || subject("198.51.100.1", "a@example.com");
        let failed = a();
        assert_eq!(limiter.check(&failed, at(600)).await.unwrap(), Verdict::Allowed);
        // The reset failed after the check: the identifier's count comes back.
        limiter.release(&failed, at(600)).await.unwrap();
        assert_eq!(limiter.check(&a(), at(601)).await.unwrap(), Verdict::Allowed, "the retry is served");
        assert_eq!(limiter.check(&a(), at(602)).await.unwrap(), Verdict::IdentifierLimited, "and counted");
        // The client's count was not given back: three checks, three counted.
        let b = subject("198.51.100.1", "b@example.com");
        assert!(matches!(limiter.check(&b, at(603)).await.unwrap(), Verdict::IpLimited { .. }));
    }

    #[tokio::test]
    async fn releasing_what_was_never_counted_changes_nothing() {
        let limiter = MemoryRateLimiter::new(Limits::default());
        let a = || subject("198.51.100.1", "a@example.com");
        limiter.release(&a(), at(600)).await.unwrap();
        limiter.release(&a(), at(600)).await.unwrap();
        assert_eq!(limiter.check(&a(), at(600)).await.unwrap(), Verdict::Allowed);
        assert_eq!(limiter.check(&a(), at(601)).await.unwrap(), Verdict::IdentifierLimited, "no credit was banked");
    }

    #[tokio::test]
    async fn a_repeated_check_answers_as_the_first_did_and_counts_nothing_more() {
        let limits = Limits { per_ip: Limit { max: 3, window: Duration::from_secs(300) }, ..Limits::default() };
        let limiter = MemoryRateLimiter::new(limits);
        let allowed = subject("198.51.100.1", "a@example.com");
        let limited = subject("198.51.100.1", "a@example.com");
        assert_eq!(limiter.check(&allowed, at(600)).await.unwrap(), Verdict::Allowed);
        assert_eq!(limiter.check(&limited, at(600)).await.unwrap(), Verdict::IdentifierLimited);
        for _ in 0..3 {
            assert_eq!(limiter.check(&allowed, at(601)).await.unwrap(), Verdict::Allowed);
            assert_eq!(limiter.check(&limited, at(601)).await.unwrap(), Verdict::IdentifierLimited);
        }
        // Two requests counted against the client, so a third still fits and a fourth does not.
        assert_eq!(limiter.check(&subject("198.51.100.1", "b@example.com"), at(602)).await.unwrap(), Verdict::Allowed);
        let fourth = limiter.check(&subject("198.51.100.1", "c@example.com"), at(602)).await.unwrap();
        assert!(matches!(fourth, Verdict::IpLimited { .. }), "{fourth:?}");
    }

    #[tokio::test]
    async fn a_give_back_takes_back_only_what_its_own_request_counted_and_only_once() {
        let limits =
            Limits { per_identifier: vec![Limit { max: 2, window: Duration::from_secs(60) }], ..Limits::default() };
        let limiter = MemoryRateLimiter::new(limits);
        let a = || subject("198.51.100.1", "a@example.com");
        let (first, second) = (a(), a());
        assert_eq!(limiter.check(&first, at(600)).await.unwrap(), Verdict::Allowed);
        assert_eq!(limiter.check(&second, at(600)).await.unwrap(), Verdict::Allowed);
        limiter.release(&first, at(600)).await.unwrap();
        limiter.release(&first, at(600)).await.unwrap();
        // A request that was never counted has nothing to give back, though its identifier has counts.
        limiter.release(&a(), at(600)).await.unwrap();
        assert_eq!(limiter.check(&a(), at(601)).await.unwrap(), Verdict::Allowed, "one count came back");
        assert_eq!(limiter.check(&a(), at(601)).await.unwrap(), Verdict::IdentifierLimited, "and only one");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_checks_in_one_fixed_window_allow_exactly_one() {
        let limits = Limits { per_ip: Limit { max: 1_000, window: Duration::from_secs(300) }, ..Limits::default() };
        let limiter = std::sync::Arc::new(MemoryRateLimiter::new(limits));
        // The clock is the test's: every check falls in the same minute, whatever the wall clock does.
        let now = at(1_800_000_000 + 17);
        let mut checks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let limiter = limiter.clone();
            checks.spawn(async move { limiter.check(&subject("198.51.100.1", "a@example.com"), now).await.unwrap() });
        }
        let verdicts = checks.join_all().await;
        let allowed = verdicts.iter().filter(|v| **v == Verdict::Allowed).count();
        assert_eq!(allowed, 1, "{verdicts:?}");
        assert!(verdicts.iter().all(|v| matches!(v, Verdict::Allowed | Verdict::IdentifierLimited)));
    }

    /// The rules, written out plainly: fixed windows; over the IP's limit nothing is counted;
    /// over an identifier's limit only the IP is counted; otherwise everything is.
    #[derive(Default)]
    struct Model {
        counts: HashMap<String, u32>,
    }

    impl Model {
        fn check(&mut self, limits: &Limits, ip: &str, identifier: &str, now: u64) -> Verdict {
            let key = |kind: &str, id: &str, limit: &Limit| format!("{kind}/{id}/{}", now / limit.window.as_secs());
            let ip_key = key("ip", ip, &limits.per_ip);
            if self.counts.get(&ip_key).copied().unwrap_or(0) >= limits.per_ip.max {
                let window = limits.per_ip.window.as_secs();
                return Verdict::IpLimited { retry_after: Duration::from_secs((now / window + 1) * window - now) };
            }
            let id_keys: Vec<(String, u32)> =
                limits.per_identifier.iter().map(|l| (key("id", identifier, l), l.max)).collect();
            let limited = id_keys.iter().any(|(k, max)| self.counts.get(k).copied().unwrap_or(0) >= *max);
            *self.counts.entry(ip_key).or_default() += 1;
            if limited {
                return Verdict::IdentifierLimited;
            }
            for (k, _) in id_keys {
                *self.counts.entry(k).or_default() += 1;
            }
            Verdict::Allowed
        }
    }

    #[tokio::test]
    async fn updates_are_counted_per_client_apart_from_resets() {
        let limits = Limits { update_per_ip: Limit { max: 2, window: Duration::from_secs(300) }, ..Limits::default() };
        let limiter = MemoryRateLimiter::new(limits);
        let update = |ip: &str| Subject::for_update(ip);
        for _ in 0..2 {
            assert_eq!(limiter.check(&update("198.51.100.1"), at(1_000)).await.unwrap(), Verdict::Allowed);
        }
        let refused = limiter.check(&update("198.51.100.1"), at(1_000)).await.unwrap();
        assert_eq!(refused, Verdict::IpLimited { retry_after: Duration::from_secs(200) });
        assert_eq!(limiter.check(&update("198.51.100.2"), at(1_000)).await.unwrap(), Verdict::Allowed);
        // The reset route's share of the same client is untouched.
        assert_eq!(
            limiter.check(&subject("198.51.100.1", "a@example.com"), at(1_000)).await.unwrap(),
            Verdict::Allowed
        );
    }

    proptest::proptest! {
        #[test]
        fn the_limiter_agrees_with_the_rules_over_any_sequence_of_requests(
            steps in proptest::collection::vec((0u64..6, 0usize..2, 0usize..3), 1..120),
        ) {
            // Small limits and windows, few clients and addresses: every limit is reached often.
            let limits = Limits {
                per_identifier: vec![Limit { max: 1, window: Duration::from_secs(10) }, Limit { max: 3, window: Duration::from_secs(60) }],
                per_ip: Limit { max: 4, window: Duration::from_secs(30) },
                ..Limits::default()
            };
            let limiter = MemoryRateLimiter::new(limits.clone());
            let mut model = Model::default();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut now = 1_800_000_000;
            for (advance, ip, identifier) in steps {
                now += advance;
                let (ip, identifier) = (format!("198.51.100.{ip}"), format!("u{identifier}@example.com"));
                let got = runtime.block_on(limiter.check(&subject(&ip, &identifier), at(now))).unwrap();
                let want = model.check(&limits, &ip, &identifier, now);
                proptest::prop_assert_eq!(got, want, "at {} for {} from {}", now, identifier, ip);
            }
        }
    }
}
