//! `make replay`'s settings from the environment: `DEAD_LETTER_QUEUE_URL` and `NOTIFIER_FUNCTION`,
//! both required, and `REPLAY_LIMIT`.

use crate::ops::replay::ReplaySettings;
use crate::vars::{ConfigError, Lookup, Vars};

impl ReplaySettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Self, ConfigError> {
        let required = |var: &'static str, what: &str| -> Result<String, ConfigError> {
            vars.get(var)?
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| ConfigError::new(var, format!("is required: {what}")))
        };
        let limit = match vars.get("REPLAY_LIMIT")? {
            None => None,
            Some(raw) => Some(
                raw.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError::new("REPLAY_LIMIT", "must be a whole number above 0"))?,
            ),
        };
        Ok(Self {
            queue_url: required("DEAD_LETTER_QUEUE_URL", "the notifier's dead-letter queue URL")?,
            function: required("NOTIFIER_FUNCTION", "the notifier function's name or ARN")?,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_and_the_function_are_required_and_the_limit_is_a_positive_count() {
        let settings = |pairs: &[(&str, &str)]| ReplaySettings::from_vars(&Vars::from_pairs(pairs));
        const QUEUE: (&str, &str) = ("DEAD_LETTER_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/dlq");
        const FUNCTION: (&str, &str) = ("NOTIFIER_FUNCTION", "stack-NotifierFunction-1");
        assert_eq!(settings(&[FUNCTION]).unwrap_err().var, "DEAD_LETTER_QUEUE_URL");
        assert_eq!(settings(&[QUEUE]).unwrap_err().var, "NOTIFIER_FUNCTION");
        let all = settings(&[QUEUE, FUNCTION]).unwrap();
        assert_eq!((all.function.as_str(), all.limit), ("stack-NotifierFunction-1", None));
        assert_eq!(settings(&[QUEUE, FUNCTION, ("REPLAY_LIMIT", "5")]).unwrap().limit, Some(5));
        for bad in ["0", "-1", "many"] {
            assert_eq!(settings(&[QUEUE, FUNCTION, ("REPLAY_LIMIT", bad)]).unwrap_err().var, "REPLAY_LIMIT", "{bad}");
        }
    }
}
