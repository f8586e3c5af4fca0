//! Pacing a send that SES throttled. SES refused it for the account's sending rate, so it was not
//! accepted and sending it again cannot make a second e-mail; waiting a little within the invocation
//! beats Lambda's asynchronous retries (a minute, then two, then the dead-letter queue), by which
//! time a burst is long over and the token nearly expired. Waits grow exponentially with jitter, so
//! that environments throttled together do not come back together, and stop while the attempt's
//! deadline still leaves room for the send, for marking the claim done, and for a margin.

use std::time::{Duration, Instant, SystemTime};

use crate::aws::OPERATION_TIMEOUT;

/// The first wait: SES counts its rate per second, and a burst's excess is usually gone within one.
const FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait: a second, SES's own window.
const LONGEST_WAIT: Duration = Duration::from_secs(1);
/// Kept clear before the deadline beyond each timed step, for clock skew and scheduling.
const MARGIN: Duration = Duration::from_millis(500);
/// What must remain of the attempt after a wait for one more send to be worth it: the send at its
/// slowest, then marking the claim done (or giving it back) at its slowest, then the margin. The
/// claim ends at the deadline, so a send that SES accepted later could be sent again by a retry.
pub const RESEND_RESERVE: Duration = OPERATION_TIMEOUT.saturating_mul(2).saturating_add(MARGIN);

/// The waits between throttled sends of one attempt, and when they must stop.
#[derive(Debug)]
pub struct Pacing {
    /// The attempt's deadline on the monotonic clock.
    until: Instant,
    /// The current step: each wait is half of it fixed and half random, then it doubles.
    step: Duration,
}

impl Pacing {
    /// Pacing for an attempt whose claim ends at `deadline`. The wall clock is read once, as
    /// Lambda's deadline is wall-clock time; from then on the monotonic clock counts.
    pub fn until(deadline: SystemTime) -> Self {
        Self::between(deadline, SystemTime::now(), Instant::now())
    }

    fn between(deadline: SystemTime, wall: SystemTime, now: Instant) -> Self {
        Self { until: now + deadline.duration_since(wall).unwrap_or_default(), step: FIRST_WAIT }
    }

    /// The wait before the next send, if the deadline leaves room for it after the wait; `None`
    /// when it does not, and the send is left to Lambda's retry.
    pub fn next_wait(&mut self) -> Option<Duration> {
        self.next_wait_at(Instant::now())
    }

    fn next_wait_at(&mut self, now: Instant) -> Option<Duration> {
        let wait = jittered(self.step, random_fraction());
        self.step = (self.step * 2).min(LONGEST_WAIT);
        (now + wait + RESEND_RESERVE <= self.until).then_some(wait)
    }
}

/// Half of `step`, plus `fraction` (0 to 1) of the other half.
fn jittered(step: Duration, fraction: f64) -> Duration {
    step / 2 + (step / 2).mul_f64(fraction.clamp(0.0, 1.0))
}

/// A fraction from 0 up to 1, from the operating system's randomness (what `uuid` draws v4 ids
/// from): the id's lowest 53 bits, all random (its version and variant bits lie above them).
fn random_fraction() -> f64 {
    const BITS: u32 = f64::MANTISSA_DIGITS;
    let random = uuid::Uuid::new_v4().as_u128() & ((1u128 << BITS) - 1);
    random as f64 / (1u128 << BITS) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wait_is_at_least_half_its_step_and_at_most_the_whole() {
        let step = Duration::from_millis(400);
        assert_eq!(jittered(step, 0.0), Duration::from_millis(200));
        assert_eq!(jittered(step, 1.0), step);
        assert_eq!(jittered(step, 7.0), step, "clamped");
        for _ in 0..1_000 {
            let fraction = random_fraction();
            assert!((0.0..1.0).contains(&fraction), "{fraction}");
        }
    }

    #[test]
    fn the_reserve_holds_a_send_a_claim_update_and_the_margin() {
        assert_eq!(RESEND_RESERVE, Duration::from_millis(3_500));
    }

    #[test]
    fn waits_double_up_to_a_second_and_stop_where_the_deadline_leaves_no_room() {
        let (wall, start) = (SystemTime::now(), Instant::now());
        let mut pacing = Pacing::between(wall + Duration::from_secs(10), wall, start);
        let mut waited = Duration::ZERO;
        let mut steps = Vec::new();
        while let Some(wait) = pacing.next_wait_at(start + waited) {
            steps.push(wait);
            waited += wait;
        }
        let bounds = [100, 200, 400, 800, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000];
        for (wait, bound) in steps.iter().zip(bounds) {
            let bound = Duration::from_millis(bound);
            assert!(*wait >= bound / 2 && *wait <= bound, "{wait:?} against {bound:?}");
        }
        assert!(steps.len() >= 5, "{steps:?}");
        assert!(waited + RESEND_RESERVE <= Duration::from_secs(10), "{waited:?}");
        assert!(waited + RESEND_RESERVE + LONGEST_WAIT > Duration::from_secs(10), "stopped early: {waited:?}");
    }

    #[test]
    fn a_deadline_already_near_or_past_leaves_no_room_for_a_wait() {
        let (wall, now) = (SystemTime::now(), Instant::now());
        assert_eq!(Pacing::between(wall + RESEND_RESERVE, wall, now).next_wait_at(now), None);
        assert_eq!(Pacing::between(wall - Duration::from_secs(1), wall, now).next_wait_at(now), None);
        let roomy = Pacing::between(wall + RESEND_RESERVE + Duration::from_millis(100), wall, now).next_wait_at(now);
        assert!(roomy.is_some_and(|wait| wait <= Duration::from_millis(100)), "{roomy:?}");
    }
}
