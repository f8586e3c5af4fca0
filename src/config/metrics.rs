//! The metrics' CloudWatch namespace from `METRICS_NAMESPACE`.

use crate::observability::metrics::{DEFAULT_NAMESPACE, MetricsSettings};
use crate::vars::{ConfigError, Lookup, Vars};

const NAMESPACE_VAR: &str = "METRICS_NAMESPACE";

impl MetricsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    /// `METRICS_NAMESPACE`, or `MedusaReset` when it is unset or empty.
    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Self, ConfigError> {
        Self::new(vars.get_or(NAMESPACE_VAR, DEFAULT_NAMESPACE)?).map_err(|e| ConfigError::new(NAMESPACE_VAR, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(namespace: &str) -> Result<MetricsSettings, ConfigError> {
        MetricsSettings::from_vars(&Vars::from_pairs(&[(NAMESPACE_VAR, namespace)]))
    }

    #[test]
    fn the_namespace_defaults_to_medusa_reset_and_can_be_overridden() {
        assert_eq!(MetricsSettings::from_vars(&Vars::from_pairs(&[])).unwrap().namespace, "MedusaReset");
        assert_eq!(settings("").unwrap().namespace, "MedusaReset");
        assert_eq!(settings("Shop/Auth-Prod").unwrap().namespace, "Shop/Auth-Prod");
    }

    #[test]
    fn a_namespace_cloudwatch_would_refuse_stops_start_up_naming_the_variable() {
        for bad in ["AWS/Lambda", "naïve", "a\"b", &"x".repeat(256)] {
            let error = settings(bad).unwrap_err();
            assert_eq!(error.var, NAMESPACE_VAR, "{bad}");
        }
    }
}
