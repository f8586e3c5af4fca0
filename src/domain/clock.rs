//! Time as tokens, counters and claims store it: whole seconds since the Unix epoch. A clock set
//! before 1970 is a broken host, not a case to handle: it reads as the epoch itself, except where a
//! token would carry it (`checked_epoch_seconds`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, rounded down, so "now" never runs ahead of the clock; `None` before 1970.
pub fn checked_epoch_seconds(at: SystemTime) -> Option<u64> {
    at.duration_since(UNIX_EPOCH).ok().map(|since| since.as_secs())
}

/// Seconds since the epoch, rounded down; 0 before 1970.
pub fn epoch_seconds(at: SystemTime) -> u64 {
    checked_epoch_seconds(at).unwrap_or(0)
}

/// Seconds since the epoch, rounded up, for an end that must not come before `at`; 0 before 1970.
pub fn epoch_seconds_ceil(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    since.as_secs() + u64::from(since.subsec_nanos() > 0)
}

/// The instant `seconds` after the epoch.
pub fn at_epoch_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_rounds_down_or_up_and_one_before_1970_reads_as_the_epoch() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(epoch_seconds(at(12_999)), 12);
        assert_eq!(epoch_seconds_ceil(at(12_300)), 13);
        assert_eq!(epoch_seconds_ceil(at(12_000)), 12);
        assert_eq!(at_epoch_seconds(12), at(12_000));
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(checked_epoch_seconds(before), None);
        assert_eq!((epoch_seconds(before), epoch_seconds_ceil(before)), (0, 0));
    }
}
