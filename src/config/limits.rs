//! The rate limits from the environment: `RATE_LIMIT_PER_IDENTIFIER` (comma-separated
//! `count/seconds`), `RATE_LIMIT_PER_IP` and `RATE_LIMIT_UPDATE_PER_IP` (one each), and
//! `RATE_LIMIT_TABLE`, the DynamoDB table.

use crate::ratelimit::{Limit, Limits, MAX_TABLE_COUNT, RateLimitSettings};
use crate::vars::{ConfigError, Lookup, Vars};

const PER_IDENTIFIER_VAR: &str = "RATE_LIMIT_PER_IDENTIFIER";
const PER_IP_VAR: &str = "RATE_LIMIT_PER_IP";
const UPDATE_PER_IP_VAR: &str = "RATE_LIMIT_UPDATE_PER_IP";

impl RateLimitSettings {
    /// The documented defaults where a limit is unset; the table's counts held to what an item holds.
    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Self, ConfigError> {
        let defaults = Limits::default();
        let per_identifier = match vars.get(PER_IDENTIFIER_VAR)? {
            None => defaults.per_identifier,
            Some(raw) => raw
                .split(',')
                .map(str::parse::<Limit>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::new(PER_IDENTIFIER_VAR, e))?,
        };
        let per_ip = match vars.get(PER_IP_VAR)? {
            None => defaults.per_ip,
            Some(raw) => raw.parse().map_err(|e: String| ConfigError::new(PER_IP_VAR, e))?,
        };
        let update_per_ip = match vars.get(UPDATE_PER_IP_VAR)? {
            None => defaults.update_per_ip,
            Some(raw) => raw.parse().map_err(|e: String| ConfigError::new(UPDATE_PER_IP_VAR, e))?,
        };
        let table = vars.get("RATE_LIMIT_TABLE")?;
        if table.is_some() {
            fits_in_an_item(PER_IDENTIFIER_VAR, &per_identifier)?;
            fits_in_an_item(PER_IP_VAR, &[per_ip])?;
            fits_in_an_item(UPDATE_PER_IP_VAR, &[update_per_ip])?;
        }
        Ok(Self { limits: Limits { per_identifier, per_ip, update_per_ip }, table })
    }
}

/// With a table, each request leaves a marker on its counter's item, which holds only so many.
fn fits_in_an_item(var: &str, limits: &[Limit]) -> Result<(), ConfigError> {
    if limits.iter().any(|limit| limit.max > MAX_TABLE_COUNT) {
        return Err(ConfigError::new(
            var,
            format!("with RATE_LIMIT_TABLE, a count may be at most {MAX_TABLE_COUNT} per window"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_table_a_count_past_what_an_item_holds_stops_start_up_naming_the_variable() {
        let settings = |pairs: &[(&str, &str)]| RateLimitSettings::from_vars(&Vars::from_pairs(pairs));
        let error = settings(&[("RATE_LIMIT_TABLE", "limits"), ("RATE_LIMIT_PER_IP", "10001/60")]).unwrap_err();
        assert_eq!(error.var, "RATE_LIMIT_PER_IP");
        let error = settings(&[("RATE_LIMIT_TABLE", "limits"), ("RATE_LIMIT_PER_IDENTIFIER", "1/60,20000/3600")]);
        assert_eq!(error.unwrap_err().var, "RATE_LIMIT_PER_IDENTIFIER");
        assert!(settings(&[("RATE_LIMIT_TABLE", "limits"), ("RATE_LIMIT_PER_IP", "10000/60")]).is_ok());
        let error = settings(&[("RATE_LIMIT_TABLE", "limits"), ("RATE_LIMIT_UPDATE_PER_IP", "10001/60")]).unwrap_err();
        assert_eq!(error.var, "RATE_LIMIT_UPDATE_PER_IP");
        assert_eq!(settings(&[("RATE_LIMIT_UPDATE_PER_IP", "3/60")]).unwrap().limits.update_per_ip.max, 3);
        assert_eq!(settings(&[("RATE_LIMIT_UPDATE_PER_IP", "0/60")]).unwrap_err().var, "RATE_LIMIT_UPDATE_PER_IP");
        assert!(settings(&[("RATE_LIMIT_PER_IP", "4000000000/86400")]).is_ok(), "in memory, no item to fill");
    }
}
