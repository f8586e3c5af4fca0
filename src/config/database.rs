//! Medusa's database from the environment: `MEDUSA_DATABASE_URL` or `MEDUSA_DATABASE_SECRET_ARN`
//! (not both; neither, no database mode), each with `MEDUSA_DATABASE_TIMEOUT_MS` and
//! `MEDUSA_DATABASE_CA_FILE`.

use std::path::Path;
use std::time::Duration;

use crate::aws::secrets::DatabaseSource;
use crate::identity::{DatabaseOptions, DatabaseSettings, SettingsError};
use crate::vars::{ConfigError, Lookup, Vars};

const URL_VAR: &str = "MEDUSA_DATABASE_URL";
/// Each exchange with the database as a whole, connecting included, in milliseconds.
const TIMEOUT_VAR: &str = "MEDUSA_DATABASE_TIMEOUT_MS";
/// PEM roots to trust instead of the shipped ones, as the URL's `sslrootcert` is trusted.
const CA_FILE_VAR: &str = "MEDUSA_DATABASE_CA_FILE";
const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=10_000;

impl DatabaseSettings {
    /// `MEDUSA_DATABASE_URL`, read as libpq reads it, with its options; `None` when it is unset.
    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Option<Self>, ConfigError> {
        let Some(url) = vars.get(URL_VAR)? else {
            return Ok(None);
        };
        let options = options(vars)?;
        // The URL holds a password: the settings' messages quote nothing from it.
        Self::from_url(&url, &options).map(Some).map_err(named)
    }
}

impl DatabaseSource {
    /// A URL or a secret's ARN, not both; neither is `None`. With an ARN the options are checked
    /// now, so that a bad one stops start-up by name before the secret is read.
    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Option<Self>, ConfigError> {
        match (vars.get(URL_VAR)?, vars.get(Self::SECRET_VAR)?) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                Self::SECRET_VAR,
                "set either MEDUSA_DATABASE_URL or MEDUSA_DATABASE_SECRET_ARN, not both",
            )),
            (Some(_), None) => Ok(DatabaseSettings::from_vars(vars)?.map(|settings| Self::Url(Box::new(settings)))),
            (None, Some(arn)) => Ok(Some(Self::SecretsManager { arn, options: options(vars)? })),
            (None, None) => Ok(None),
        }
    }
}

/// `MEDUSA_DATABASE_TIMEOUT_MS` and `MEDUSA_DATABASE_CA_FILE`, the file read.
fn options<L: Lookup>(vars: &Vars<L>) -> Result<DatabaseOptions, ConfigError> {
    let timeout = timeout(vars)?;
    let ca_file = vars.get(CA_FILE_VAR)?;
    DatabaseOptions::new(timeout, ca_file.as_deref().map(Path::new)).map_err(named)
}

fn timeout<L: Lookup>(vars: &Vars<L>) -> Result<Duration, ConfigError> {
    let Some(timeout_ms) = vars.parse::<u64>(TIMEOUT_VAR)? else {
        return Ok(DatabaseOptions::DEFAULT_TIMEOUT);
    };
    if !TIMEOUT_RANGE_MS.contains(&timeout_ms) {
        return Err(ConfigError::new(
            TIMEOUT_VAR,
            format!("must be between {} and {}", TIMEOUT_RANGE_MS.start(), TIMEOUT_RANGE_MS.end()),
        ));
    }
    Ok(Duration::from_millis(timeout_ms))
}

/// The setting at fault: the PEM file's variable, or the URL's.
fn named(error: SettingsError) -> ConfigError {
    ConfigError::new(if error.concerns_ca_file() { CA_FILE_VAR } else { URL_VAR }, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(query: &str) -> String {
        format!("postgres://medusa:s3cret-pw@db.example.com/medusa{query}")
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::from_vars(&Vars::from_pairs(pairs)).map(|s| s.expect("a database is configured"))
    }

    #[test]
    fn a_bad_url_or_root_file_stops_start_up_naming_the_setting_and_not_the_url() {
        let empty = std::env::temp_dir().join(format!("empty-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&empty, "").unwrap();
        let empty = empty.display().to_string();
        let cases = [
            (url("?sslmode=verify_full"), "", URL_VAR),
            ("medusa:s3cret-pw@db.example.com".to_owned(), "", URL_VAR),
            (url("?sslmode=verify-full&sslrootcert=/nonexistent/root.pem"), "", URL_VAR),
            (url("?sslmode=verify-full"), &empty, CA_FILE_VAR),
            (url("?sslrootcert=system"), "/nonexistent/root.pem", CA_FILE_VAR),
        ];
        for (url, ca_file, var) in cases {
            let error = settings(&[(URL_VAR, &url), (CA_FILE_VAR, ca_file)]).unwrap_err();
            assert_eq!(error.var, var, "{url}");
            let shown = error.to_string();
            assert!(!shown.contains("s3cret-pw") && !shown.contains("db.example.com"), "{shown}");
        }
        let error = settings(&[(URL_VAR, "postgres://medusa@db:notaport/medusa")]).unwrap_err();
        assert!(error.reason.contains("expected e.g. postgres://"), "{error}");
        std::fs::remove_file(empty).unwrap();
    }

    #[test]
    fn the_time_out_defaults_to_a_second_and_stays_within_its_range() {
        assert_eq!(settings(&[(URL_VAR, &url(""))]).unwrap().timeout(), Duration::from_secs(1));
        let given = settings(&[(URL_VAR, &url("")), (TIMEOUT_VAR, " 250 ")]).unwrap();
        assert_eq!(given.timeout(), Duration::from_millis(250));
        for bad in ["99", "10001", "soon", "-1"] {
            assert_eq!(settings(&[(URL_VAR, &url("")), (TIMEOUT_VAR, bad)]).unwrap_err().var, TIMEOUT_VAR, "{bad}");
        }
    }

    #[test]
    fn no_url_and_no_secret_is_no_database() {
        assert!(DatabaseSettings::from_vars(&Vars::from_pairs(&[(URL_VAR, "")])).unwrap().is_none());
        assert!(DatabaseSource::from_vars(&Vars::from_pairs(&[])).unwrap().is_none());
    }

    #[test]
    fn a_secret_keeps_its_options_checked_for_when_it_is_read() {
        let arn = (DatabaseSource::SECRET_VAR, "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
        let source = DatabaseSource::from_vars(&Vars::from_pairs(&[arn, (TIMEOUT_VAR, "300")])).unwrap();
        assert!(matches!(&source, Some(DatabaseSource::SecretsManager { arn, .. }) if arn.ends_with("db-AbCdEf")));
        assert_eq!(source.map(|s| s.timeout()), Some(Duration::from_millis(300)));
        let missing_file = DatabaseSource::from_vars(&Vars::from_pairs(&[arn, (CA_FILE_VAR, "/nonexistent/root.pem")]));
        assert_eq!(missing_file.unwrap_err().var, CA_FILE_VAR);
        let both = DatabaseSource::from_vars(&Vars::from_pairs(&[arn, (URL_VAR, &url(""))]));
        assert_eq!(both.unwrap_err().var, DatabaseSource::SECRET_VAR);
    }
}
