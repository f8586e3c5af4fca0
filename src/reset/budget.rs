//! The longest one reset request can take: every wait it may make, from the configured time-outs,
//! added up and checked against the function's timeout with a margin, so a stuck dependency ends in
//! Medusa's 500 with the compensations run, never in Lambda killing the request half-way.

use std::fmt;
use std::time::Duration;

/// What the budget does not count: the runtime handing the request over and the answer back, the
/// handler's CPU work (tens of microseconds), timer granularity.
pub const MARGIN: Duration = Duration::from_secs(1);

/// The variable that says the function's timeout (the template sets it from the same parameter
/// as the function's `Timeout`).
pub const FUNCTION_TIMEOUT_VAR: &str = "FUNCTION_TIMEOUT_SECONDS";

/// What one request may wait for, each as configured; zero where that part is not in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waits {
    /// Each call to a remote rate limiter: the check, and the give-back after a failure.
    pub rate_limit: Duration,
    /// Each exchange with Medusa's database: the lookup, the issue, and the withdrawal after a
    /// failed publish.
    pub database: Duration,
    /// The lookup's and the first try on a reused connection, before each starts over on
    /// a fresh one (which then gets the whole of `database`).
    pub database_first_try: Duration,
    /// Sealing the token with KMS before publishing.
    pub seal: Duration,
    /// Putting the event on the bus.
    pub publish: Duration,
    /// The least time an answer takes, failures included.
    pub floor: Duration,
}

/// One wait of a request and the setting that changes it, if any does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub setting: Option<&'static str>,
    pub limit: Duration,
}

/// The waits of the slowest request there can be: one whose reused database connection is dead, so
/// that its lookup and its issue each give it up and start over on a fresh one, that passes the
/// limiter, records a token, seals and publishes it, fails there, withdraws the token and gives the
/// count back. The floor is added too, though it counts from the start and so overlaps the work: an
/// upper bound, simple to check by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeBudget {
    steps: Vec<Step>,
}

impl TimeBudget {
    pub fn new(waits: Waits) -> Self {
        const DATABASE: Option<&str> = Some("MEDUSA_DATABASE_TIMEOUT_MS");
        let first_try = waits.database_first_try;
        let steps = [
            Step { name: "database lookup's first try on a reused connection", setting: DATABASE, limit: first_try },
            Step { name: "database lookup", setting: DATABASE, limit: waits.database },
            Step { name: "rate-limit check", setting: None, limit: waits.rate_limit },
            Step { name: "database issue's first try on a reused connection", setting: DATABASE, limit: first_try },
            Step { name: "database issue", setting: DATABASE, limit: waits.database },
            Step { name: "KMS seal", setting: None, limit: waits.seal },
            Step { name: "EventBridge publish", setting: None, limit: waits.publish },
            Step { name: "database withdrawal", setting: DATABASE, limit: waits.database },
            Step { name: "rate-limit give-back", setting: None, limit: waits.rate_limit },
            Step { name: "response floor", setting: Some("RESPONSE_FLOOR_MS"), limit: waits.floor },
        ];
        Self { steps: steps.into_iter().filter(|step| !step.limit.is_zero()).collect() }
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The sum of every wait.
    pub fn worst_case(&self) -> Duration {
        self.steps.iter().map(|step| step.limit).sum()
    }

    /// The shortest function timeout, in whole seconds as Lambda takes it, that holds the worst
    /// case and the margin.
    pub fn least_timeout_secs(&self) -> u64 {
        (self.worst_case() + MARGIN).as_millis().div_ceil(1_000).try_into().unwrap_or(u64::MAX)
    }

    /// Whether the worst case and the margin fit in `function_timeout`.
    pub fn check(&self, function_timeout: Duration) -> Result<(), Overrun> {
        if self.worst_case() + MARGIN <= function_timeout {
            return Ok(());
        }
        Err(Overrun { budget: self.clone(), function_timeout })
    }
}

/// The function's timeout is too short for what a request may wait for. The message says every
/// wait, what each adds, and which variables would make it fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Overrun {
    pub budget: TimeBudget,
    pub function_timeout: Duration,
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_millis();
        let steps: Vec<String> = self
            .budget
            .steps
            .iter()
            .map(|step| match step.setting {
                Some(setting) => format!("{} {} ms ({setting})", step.name, ms(step.limit)),
                None => format!("{} {} ms", step.name, ms(step.limit)),
            })
            .collect();
        let mut settings: Vec<&str> = self.budget.steps.iter().filter_map(|step| step.setting).collect();
        settings.dedup();
        write!(
            f,
            "{} ms is too short: one request may wait {} ms ({}) and {} ms more are kept as a margin; raise \
             {FUNCTION_TIMEOUT_VAR} (the template's ResetFunctionTimeoutSeconds) to at least {}",
            ms(self.function_timeout),
            ms(self.budget.worst_case()),
            steps.join(" + "),
            ms(MARGIN),
            self.budget.least_timeout_secs(),
        )?;
        if !settings.is_empty() {
            write!(f, ", or lower {}", settings.join(" or "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn everything() -> Waits {
        Waits {
            rate_limit: ms(1_500),
            database: ms(1_000),
            database_first_try: ms(250),
            seal: ms(1_500),
            publish: ms(1_500),
            floor: ms(50),
        }
    }

    #[test]
    fn the_worst_case_counts_the_retries_the_compensations_and_the_floor() {
        let budget = TimeBudget::new(everything());
        // two tries of the lookup + check + two of the issue + seal + publish + withdrawal + give-back + floor
        let expected = (250 + 1_000) + 1_500 + (250 + 1_000) + 1_500 + 1_500 + 1_000 + 1_500 + 50;
        assert_eq!(budget.worst_case(), ms(expected));
        assert_eq!(budget.steps().len(), 10);
        assert_eq!(budget.least_timeout_secs(), 11);
    }

    #[test]
    fn parts_not_in_use_wait_for_nothing() {
        let budget = TimeBudget::new(Waits { publish: ms(1_500), ..Waits::default() });
        assert_eq!(budget.worst_case(), ms(1_500));
        assert_eq!(budget.steps().iter().map(|s| s.name).collect::<Vec<_>>(), ["EventBridge publish"]);
    }

    #[test]
    fn the_margin_must_fit_too() {
        let budget = TimeBudget::new(Waits { publish: ms(1_500), database: ms(1_000), ..Waits::default() });
        assert_eq!(budget.worst_case(), ms(4_500));
        assert!(budget.check(ms(5_500)).is_ok());
        assert!(budget.check(ms(5_499)).is_err());
        assert_eq!(budget.least_timeout_secs(), 6);
    }

    #[test]
    fn an_overrun_says_each_wait_and_the_variables_to_change() {
        let budget = TimeBudget::new(Waits { database: ms(4_000), database_first_try: ms(1_000), ..everything() });
        let message = budget.check(Duration::from_secs(10)).unwrap_err().to_string();
        assert!(message.starts_with("10000 ms is too short: one request may wait 20050 ms"), "{message}");
        assert!(message.contains("database issue 4000 ms (MEDUSA_DATABASE_TIMEOUT_MS)"), "{message}");
        let first_try = "database lookup's first try on a reused connection 1000 ms (MEDUSA_DATABASE_TIMEOUT_MS)";
        assert!(message.contains(first_try), "{message}");
        assert!(message.contains("response floor 50 ms (RESPONSE_FLOOR_MS)"), "{message}");
        assert!(message.contains("raise FUNCTION_TIMEOUT_SECONDS"), "{message}");
        assert!(message.contains("to at least 22"), "{message}");
        assert!(message.ends_with("or lower MEDUSA_DATABASE_TIMEOUT_MS or RESPONSE_FLOOR_MS"), "{message}");
    }
}
