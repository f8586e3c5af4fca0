//! The scrypt parameters from the environment, for a merchant who changed the emailpass provider's
//! `hashConfig`: `PASSWORD_HASH_LOG_N`, `PASSWORD_HASH_R` and `PASSWORD_HASH_P` (Medusa's 15, 8, 1
//! where unset).

use crate::domain::password::{HashParams, InvalidHashParams};
use crate::vars::{ConfigError, Lookup, Vars};

const LOG_N_VAR: &str = "PASSWORD_HASH_LOG_N";
const R_VAR: &str = "PASSWORD_HASH_R";
const P_VAR: &str = "PASSWORD_HASH_P";

impl HashParams {
    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let log_n = vars.parse_or(LOG_N_VAR, defaults.log_n())?;
        let r = vars.parse_or(R_VAR, defaults.r())?;
        let p = vars.parse_or(P_VAR, defaults.p())?;
        Self::new(log_n, r, p).map_err(|error| ConfigError::new(blamed(error), error))
    }
}

/// The variable a refusal names: the one whose value alone breaks the rule, else the one that
/// moves the figure furthest (N doubles with each step of logN; the work grows with p).
fn blamed(error: InvalidHashParams) -> &'static str {
    match error {
        InvalidHashParams::ZeroR => R_VAR,
        InvalidHashParams::ZeroP | InvalidHashParams::RTimesP { .. } | InvalidHashParams::Work { .. } => P_VAR,
        InvalidHashParams::LogN(_)
        | InvalidHashParams::LogNAboveBlockSize { .. }
        | InvalidHashParams::Memory { .. }
        | InvalidHashParams::NodeMaxmem { .. }
        | InvalidHashParams::Scrypt => LOG_N_VAR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<HashParams, ConfigError> {
        HashParams::from_vars(&Vars::from_pairs(pairs))
    }

    #[test]
    fn unset_is_medusas_default_and_each_setting_is_read() {
        assert_eq!(params(&[]).unwrap(), HashParams::default());
        let set = params(&[(LOG_N_VAR, "14"), (R_VAR, "16"), (P_VAR, "2")]).unwrap();
        assert_eq!((set.log_n(), set.r(), set.p()), (14, 16, 2));
    }

    #[test]
    fn a_refused_value_stops_start_up_naming_its_variable() {
        assert_eq!(params(&[(LOG_N_VAR, "x")]).unwrap_err().var, LOG_N_VAR);
        assert_eq!(params(&[(LOG_N_VAR, "31")]).unwrap_err().var, LOG_N_VAR);
        assert_eq!(params(&[(LOG_N_VAR, "22")]).unwrap_err().var, LOG_N_VAR);
        assert_eq!(params(&[(R_VAR, "0")]).unwrap_err().var, R_VAR);
        assert_eq!(params(&[(P_VAR, "0")]).unwrap_err().var, P_VAR);
        assert_eq!(params(&[(P_VAR, "-1")]).unwrap_err().var, P_VAR);
    }
}
