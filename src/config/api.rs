//! Configuration of the reset-password route.

use std::time::Duration;

use crate::api::{CorsError, CorsPolicy};
use crate::aws;
use crate::aws::secrets::{DatabaseSource, SecretSource};
use crate::domain::actor::ProviderPolicy;
use crate::domain::event::{PASSWORD_RESET, PASSWORD_RESET_UNKNOWN};
use crate::domain::password::HashParams;
use crate::domain::token::{SecretTooShort, SigningSecret, TokenSettings};
use crate::identity::DatabaseSettings;
use crate::observability::logs::LogSettings;
use crate::publish::EventTarget;
use crate::ratelimit::RateLimitSettings;
use crate::reset::RATE_LIMIT_TIME_LIMIT;
use crate::reset::budget::{FUNCTION_TIMEOUT_VAR, TimeBudget, Waits};

use crate::vars::{ConfigError, Lookup, Profile, Vars};

/// The signing secret `make run` uses when none is given. It is public, so only for development.
pub const DEVELOPMENT_SECRET: &str = "development-only-secret--never-deploy-this-value";
/// The origins `make run` allows: the usual local storefront and admin ports.
pub const DEVELOPMENT_CORS: &str =
    "http://localhost:8000,http://127.0.0.1:8000,http://localhost:7001,http://localhost:9000";

const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 900;
/// Above the p99 of either path's own time plus a quarter, as `make bench` measures it (README,
/// *Setting the response floor*), and well below a storefront's patience. Operators set theirs from
/// CloudWatch.
const DEFAULT_DATABASE_FLOOR_MS: u64 = 50;
const MAX_FLOOR_MS: u64 = 2_000;
const TOKEN_LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;
/// Lambda's own limit.
const MAX_FUNCTION_TIMEOUT_SECS: u64 = 900;

/// Configuration of the reset-password route.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub secret: SecretSource,
    pub token: TokenSettings,
    pub limits: RateLimitSettings,
    /// How the update route hashes a new password: the emailpass provider's `hashConfig`.
    pub password_hash: HashParams,
    pub providers: ProviderPolicy,
    pub cors: CorsPolicy,
    pub events: EventTarget,
    /// Seal the token in events with this KMS key (`TOKEN_KMS_KEY_ID`, which the template sets by
    /// default); unset, the event carries Medusa's plain `token` field.
    pub token_kms_key_id: Option<String>,
    /// Medusa-database mode when set: only real accounts get a token, recorded for Medusa ≥ 2.16.
    /// Unset only where the identity check is off (`identity_check_skipped`).
    pub database: Option<DatabaseSource>,
    /// Every well-formed identifier gets a token: `make run` without a database, or on Lambda only
    /// with `SKIP_IDENTITY_CHECK=true`.
    pub identity_check_skipped: bool,
    /// The least time a reset answer takes, failures included, so known and unknown identifiers look alike.
    pub response_floor: Duration,
    /// The longest one request may wait, as configured; checked against `FUNCTION_TIMEOUT_SECONDS`.
    pub time_budget: TimeBudget,
    pub log: LogSettings,
    /// True when the development secret is in use, so the local runner can say so.
    pub uses_development_secret: bool,
    /// `make run`, or `DEVELOPMENT_MODE=true`: development-only settings are accepted.
    pub development_mode: bool,
}

impl ApiConfig {
    pub fn from_env(profile: Profile) -> Result<Self, ConfigError> {
        Self::from_vars(profile, &Vars::from_env())
    }

    pub fn from_vars<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<Self, ConfigError> {
        let development_mode = super::development_mode(profile, vars)?;
        let (secret, uses_development_secret) = signing_secret(profile, vars, development_mode)?;
        let token = token(vars)?;
        let providers = super::auth_providers(profile, vars)?;
        let (database, identity_check_skipped) = identity_check(profile, vars)?;
        let response_floor = response_floor(vars, database.is_some())?;
        let default_cors = if profile == Profile::Local { DEVELOPMENT_CORS } else { "" };
        let cors = CorsPolicy::parse(&vars.get_or("AUTH_CORS", default_cors)?)
            .map_err(|e: CorsError| ConfigError::new("AUTH_CORS", e))?;
        let limits = RateLimitSettings::from_vars(vars)?;
        let token_kms_key_id = vars.get("TOKEN_KMS_KEY_ID")?;
        let waits = waits(&limits, database.as_ref(), token_kms_key_id.is_some(), response_floor);
        Ok(Self {
            secret,
            token,
            limits,
            password_hash: HashParams::from_vars(vars)?,
            providers,
            cors,
            time_budget: time_budget(vars, waits)?,
            events: events(vars)?,
            token_kms_key_id,
            database,
            identity_check_skipped,
            response_floor,
            log: LogSettings::from_vars(profile, vars)?,
            uses_development_secret,
            development_mode,
        })
    }

    /// Whether the update route is served: where the password can go, Medusa's database, or in
    /// development (`make run`, tests) the in-memory store. On Lambda with `SKIP_IDENTITY_CHECK` it
    /// answers `404`: answering `200` would claim a change that reached no database.
    pub fn serves_update_route(&self) -> bool {
        self.database.is_some() || self.development_mode
    }

    /// Checks the signing secret read from `JWT_SECRET_ARN` at cold start as `JWT_SECRET` is
    /// checked when configured.
    pub fn check_resolved_secret(&self, secret: &SigningSecret) -> Result<(), ConfigError> {
        refuse_development_secret(secret, self.development_mode, "JWT_SECRET_ARN")
    }
}

/// How long a token lives (`RESET_TOKEN_TTL_SECONDS`), and the issuer and audience it names.
fn token<L: Lookup>(vars: &Vars<L>) -> Result<TokenSettings, ConfigError> {
    let lifetime = vars.parse_or("RESET_TOKEN_TTL_SECONDS", DEFAULT_TOKEN_LIFETIME_SECS)?;
    if !TOKEN_LIFETIME_RANGE.contains(&lifetime) {
        return Err(ConfigError::new(
            "RESET_TOKEN_TTL_SECONDS",
            format!("must be between {} and {} seconds", TOKEN_LIFETIME_RANGE.start(), TOKEN_LIFETIME_RANGE.end()),
        ));
    }
    Ok(TokenSettings {
        lifetime: Duration::from_secs(lifetime),
        issuer: vars.get("JWT_ISSUER")?,
        audience: vars.get("JWT_AUDIENCE")?,
    })
}

/// Medusa's database, and whether the identity check is skipped instead: one or the other.
fn identity_check<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<(Option<DatabaseSource>, bool), ConfigError> {
    let database = DatabaseSource::from_vars(vars)?;
    let skip = match vars.get("SKIP_IDENTITY_CHECK")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ConfigError::new("SKIP_IDENTITY_CHECK", "must be true or false")),
    };
    let skipped = match (&database, skip, profile) {
        (Some(_), true, _) => {
            return Err(ConfigError::new(
                "SKIP_IDENTITY_CHECK",
                "is true, but a Medusa database is configured: set one or the other",
            ));
        }
        (Some(_), false, _) => false,
        (None, true, _) | (None, false, Profile::Local) => true,
        // Medusa itself never e-mails an address it does not know: neither may a deployed route.
        (None, false, Profile::Lambda) => {
            return Err(ConfigError::new(
                "MEDUSA_DATABASE_URL",
                "no Medusa database: set MEDUSA_DATABASE_URL or MEDUSA_DATABASE_SECRET_ARN so that only \
                 Medusa's accounts get a reset e-mail, or SKIP_IDENTITY_CHECK=true to give every \
                 well-formed identifier a token",
            ));
        }
    };
    Ok((database, skipped))
}

/// `RESPONSE_FLOOR_MS`. Only database mode treats known and unknown identifiers differently, so only
/// it needs a floor by default.
fn response_floor<L: Lookup>(vars: &Vars<L>, has_database: bool) -> Result<Duration, ConfigError> {
    let default_floor = if has_database { DEFAULT_DATABASE_FLOOR_MS } else { 0 };
    let floor_ms = vars.parse_or("RESPONSE_FLOOR_MS", default_floor)?;
    if floor_ms > MAX_FLOOR_MS {
        return Err(ConfigError::new("RESPONSE_FLOOR_MS", format!("must be at most {MAX_FLOOR_MS}")));
    }
    Ok(Duration::from_millis(floor_ms))
}

/// Where the events go and what they are called: Medusa's names unless told otherwise.
fn events<L: Lookup>(vars: &Vars<L>) -> Result<EventTarget, ConfigError> {
    Ok(EventTarget {
        bus_name: vars.get_or("EVENT_BUS_NAME", "default")?,
        source: vars.get_or("EVENT_SOURCE", "medusa.auth")?,
        detail_type: vars.get_or("EVENT_DETAIL_TYPE", PASSWORD_RESET)?,
        unknown_detail_type: vars.get_or("EVENT_UNKNOWN_DETAIL_TYPE", PASSWORD_RESET_UNKNOWN)?,
    })
}

/// `JWT_SECRET` or `JWT_SECRET_ARN` (not both); `make run` without either signs with the public
/// development secret, and says so (the `bool`).
fn signing_secret<L: Lookup>(
    profile: Profile,
    vars: &Vars<L>,
    development_mode: bool,
) -> Result<(SecretSource, bool), ConfigError> {
    let value = |raw: String| {
        let secret = SigningSecret::parse(raw).map_err(|e: SecretTooShort| ConfigError::new("JWT_SECRET", e))?;
        refuse_development_secret(&secret, development_mode, "JWT_SECRET")?;
        Ok(SecretSource::Value(secret))
    };
    match (vars.raw("JWT_SECRET")?, vars.get("JWT_SECRET_ARN")?) {
        (Some(_), Some(_)) => {
            Err(ConfigError::new("JWT_SECRET_ARN", "set either JWT_SECRET or JWT_SECRET_ARN, not both"))
        }
        (None, Some(arn)) => Ok((SecretSource::SecretsManager { arn }, false)),
        (Some(raw), None) => Ok((value(raw)?, false)),
        (None, None) if profile == Profile::Local => Ok((value(DEVELOPMENT_SECRET.to_owned())?, true)),
        (None, None) => Err(ConfigError::new("JWT_SECRET", "is required (at least 32 bytes), or JWT_SECRET_ARN")),
    }
}

/// The development secret is in the source, so anyone could sign tokens a deployment accepts.
fn refuse_development_secret(secret: &SigningSecret, development_mode: bool, var: &str) -> Result<(), ConfigError> {
    if !development_mode && secret.as_bytes() == DEVELOPMENT_SECRET.as_bytes() {
        return Err(ConfigError::new(
            var,
            "is the public development secret, which anyone can read in this project's source: set a secret \
             of your own (DEVELOPMENT_MODE=true accepts it, for local use only)",
        ));
    }
    Ok(())
}

/// Each wait of one request as configured: a part that is not in use takes no time.
fn waits(limits: &RateLimitSettings, database: Option<&DatabaseSource>, seals: bool, floor: Duration) -> Waits {
    // Every AWS call, retries included, is over within the SDK's operation time-out.
    let aws_call = |in_use: bool| if in_use { aws::OPERATION_TIMEOUT } else { Duration::ZERO };
    let database = database.map_or(Duration::ZERO, DatabaseSource::timeout);
    Waits {
        rate_limit: if limits.table.is_some() { RATE_LIMIT_TIME_LIMIT } else { Duration::ZERO },
        database,
        database_first_try: DatabaseSettings::first_try_limit(database),
        seal: aws_call(seals),
        publish: aws_call(true),
        floor,
    }
}

/// The worst case of one request's `waits`; where the function's timeout is given
/// (`FUNCTION_TIMEOUT_SECONDS`, set by the template from the function's own `Timeout`), start-up
/// stops unless the worst case and the margin fit in it.
fn time_budget<L: Lookup>(vars: &Vars<L>, waits: Waits) -> Result<TimeBudget, ConfigError> {
    let budget = TimeBudget::new(waits);
    if let Some(raw) = vars.get(FUNCTION_TIMEOUT_VAR)? {
        let seconds =
            raw.trim().parse::<u64>().ok().filter(|s| (1..=MAX_FUNCTION_TIMEOUT_SECS).contains(s)).ok_or_else(
                || {
                    ConfigError::new(
                        FUNCTION_TIMEOUT_VAR,
                        format!("must be whole seconds, 1 to {MAX_FUNCTION_TIMEOUT_SECS}"),
                    )
                },
            )?;
        budget
            .check(Duration::from_secs(seconds))
            .map_err(|overrun| ConfigError::new(FUNCTION_TIMEOUT_VAR, overrun))?;
    }
    Ok(budget)
}

#[cfg(test)]
impl ApiConfig {
    /// The Lambda profile with a test secret, for unit tests elsewhere in the crate.
    pub(crate) fn for_tests() -> Self {
        let vars = Vars::from_pairs(&[
            ("JWT_SECRET", "unit-test-secret-0123456789abcdef0123"),
            ("SKIP_IDENTITY_CHECK", "true"),
        ]);
        Self::from_vars(Profile::Lambda, &vars).expect("valid test configuration")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observability::logs::LogFormat;
    use crate::ratelimit::{Limit, Limits};

    /// The configuration from `pairs`; on Lambda without a database, the identity check is
    /// explicitly skipped unless the pairs say otherwise (the tests of that choice do).
    fn config(profile: Profile, pairs: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let mut pairs = pairs.to_vec();
        let has_database =
            pairs.iter().any(|(var, _)| matches!(*var, "MEDUSA_DATABASE_URL" | "MEDUSA_DATABASE_SECRET_ARN"));
        if profile == Profile::Lambda && !has_database {
            // After the given pairs, so that a given value wins.
            pairs.push(("SKIP_IDENTITY_CHECK", "true"));
        }
        ApiConfig::from_vars(profile, &Vars::from_pairs(&pairs))
    }

    #[test]
    fn lambda_refuses_to_start_without_a_medusa_database_unless_told_to_skip_the_check() {
        let error = config(Profile::Lambda, &[("JWT_SECRET", SECRET), ("SKIP_IDENTITY_CHECK", "")]).unwrap_err();
        assert_eq!(error.var, "MEDUSA_DATABASE_URL");
        assert!(error.reason.contains("MEDUSA_DATABASE_SECRET_ARN"), "{error}");
        assert!(error.reason.contains("SKIP_IDENTITY_CHECK=true"), "{error}");
        let error = config(Profile::Lambda, &[("JWT_SECRET", SECRET), ("SKIP_IDENTITY_CHECK", "false")]).unwrap_err();
        assert_eq!(error.var, "MEDUSA_DATABASE_URL");
        let skipped = config(Profile::Lambda, &[("JWT_SECRET", SECRET), ("SKIP_IDENTITY_CHECK", "true")]).unwrap();
        assert!(skipped.identity_check_skipped && skipped.database.is_none());
        let error = config(Profile::Lambda, &[("JWT_SECRET", SECRET), ("SKIP_IDENTITY_CHECK", "yes")]).unwrap_err();
        assert_eq!(error.var, "SKIP_IDENTITY_CHECK");
    }

    #[test]
    fn make_run_keeps_the_open_store_without_a_database() {
        let local = config(Profile::Local, &[]).unwrap();
        assert!(local.identity_check_skipped && local.database.is_none());
    }

    #[test]
    fn a_database_and_a_skipped_check_do_not_go_together() {
        let url = ("MEDUSA_DATABASE_URL", "postgres://medusa@db/medusa");
        let error = config(Profile::Lambda, &[("JWT_SECRET", SECRET), url, ("SKIP_IDENTITY_CHECK", "true")]);
        assert_eq!(error.unwrap_err().var, "SKIP_IDENTITY_CHECK");
    }

    #[test]
    fn the_database_comes_from_a_url_or_a_secret_but_not_both() {
        let arn = ("MEDUSA_DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf");
        let from_secret = config(Profile::Lambda, &[("JWT_SECRET", SECRET), arn]).unwrap();
        assert!(matches!(from_secret.database, Some(DatabaseSource::SecretsManager { .. })));
        assert!(!from_secret.identity_check_skipped);
        let url = ("MEDUSA_DATABASE_URL", "postgres://medusa@db/medusa");
        let both = config(Profile::Lambda, &[("JWT_SECRET", SECRET), arn, url]).unwrap_err();
        assert_eq!(both.var, "MEDUSA_DATABASE_SECRET_ARN");
        let bad_option = config(Profile::Lambda, &[("JWT_SECRET", SECRET), arn, ("MEDUSA_DATABASE_TIMEOUT_MS", "1")]);
        assert_eq!(bad_option.unwrap_err().var, "MEDUSA_DATABASE_TIMEOUT_MS");
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn lambda_requires_a_secret_and_names_the_variable() {
        let error = config(Profile::Lambda, &[]).unwrap_err();
        assert_eq!(error.var, "JWT_SECRET");
        assert!(error.to_string().contains("JWT_SECRET_ARN"));
        let error = config(Profile::Lambda, &[("JWT_SECRET", "too-short")]).unwrap_err();
        assert_eq!(error.to_string(), "JWT_SECRET: must be at least 32 bytes, got 9");
    }

    #[test]
    fn a_secret_arn_replaces_the_secret_but_not_both() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf";
        let config = config(Profile::Lambda, &[("JWT_SECRET_ARN", arn)]).unwrap();
        assert!(matches!(config.secret, SecretSource::SecretsManager { arn: ref a } if a == arn));
        let both = super::tests::config(Profile::Lambda, &[("JWT_SECRET_ARN", arn), ("JWT_SECRET", SECRET)]);
        assert_eq!(both.unwrap_err().var, "JWT_SECRET_ARN");
    }

    #[test]
    fn rate_limits_default_to_the_documented_values() {
        let config = config(Profile::Lambda, &[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(config.limits.limits, Limits::default());
        assert_eq!(config.limits.table, None);
        let custom = super::tests::config(
            Profile::Lambda,
            &[("JWT_SECRET", SECRET), ("RATE_LIMIT_PER_IDENTIFIER", "2/10"), ("RATE_LIMIT_TABLE", "limits")],
        )
        .unwrap();
        assert_eq!(custom.limits.limits.per_identifier, vec![Limit { max: 2, window: Duration::from_secs(10) }]);
        assert_eq!(custom.limits.table.as_deref(), Some("limits"));
    }

    #[test]
    fn lambda_refuses_the_public_development_secret_unless_in_development_mode() {
        let error = config(Profile::Lambda, &[("JWT_SECRET", DEVELOPMENT_SECRET)]).unwrap_err();
        assert_eq!(error.var, "JWT_SECRET");
        assert!(error.reason.contains("public development secret"), "{error}");
        assert!(!error.to_string().contains(DEVELOPMENT_SECRET), "the value is not repeated: {error}");
        let development = config(Profile::Lambda, &[("JWT_SECRET", DEVELOPMENT_SECRET), ("DEVELOPMENT_MODE", "true")]);
        assert!(development.unwrap().development_mode);
        assert!(config(Profile::Local, &[("JWT_SECRET", DEVELOPMENT_SECRET)]).is_ok(), "make run keeps it");
        // From Secrets Manager, it is refused once read, naming the ARN's variable.
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf";
        let from_arn = config(Profile::Lambda, &[("JWT_SECRET_ARN", arn)]).unwrap();
        let development_secret = SigningSecret::parse(DEVELOPMENT_SECRET).unwrap();
        assert_eq!(from_arn.check_resolved_secret(&development_secret).unwrap_err().var, "JWT_SECRET_ARN");
        assert!(from_arn.check_resolved_secret(&SigningSecret::parse(SECRET).unwrap()).is_ok());
    }

    #[test]
    fn an_empty_secret_is_an_error_not_the_development_default() {
        let error = config(Profile::Local, &[("JWT_SECRET", "")]).unwrap_err();
        assert_eq!(error.var, "JWT_SECRET");
    }

    #[test]
    fn local_runs_with_embedded_defaults() {
        let config = config(Profile::Local, &[]).unwrap();
        assert!(config.uses_development_secret);
        assert!(config.cors.allows("http://localhost:8000"));
        assert_eq!(config.token.lifetime, Duration::from_secs(900));
        assert_eq!(config.events.detail_type, "auth.password_reset");
        assert_eq!(config.log.format, LogFormat::Text);
    }

    #[test]
    fn lambda_defaults_are_json_logs_and_no_cors() {
        let config = config(Profile::Lambda, &[("JWT_SECRET", SECRET)]).unwrap();
        assert!(!config.uses_development_secret);
        assert!(!config.cors.allows("http://localhost:8000"));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.events.bus_name, "default");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("RESET_TOKEN_TTL_SECONDS", "soon"),
            ("RESET_TOKEN_TTL_SECONDS", "5"),
            ("AUTH_PROVIDERS", "customer"),
            ("AUTH_CORS", "localhost"),
            ("LOG_FORMAT", "xml"),
            ("RUST_LOG", "info,aws=loud"),
            ("RATE_LIMIT_PER_IDENTIFIER", "1/60,five/3600"),
            ("RATE_LIMIT_PER_IP", "30"),
        ];
        for (var, value) in cases {
            let error = config(Profile::Lambda, &[("JWT_SECRET", SECRET), (var, value)]).unwrap_err();
            assert_eq!(error.var, var, "{value}");
        }
    }

    #[test]
    fn a_bad_database_url_is_named_without_showing_its_password() {
        let url = "postgres://medusa:s3cr3t-pw@db.internal:notaport/medusa";
        let error = config(Profile::Lambda, &[("JWT_SECRET", SECRET), ("MEDUSA_DATABASE_URL", url)]).unwrap_err();
        assert_eq!(error.var, "MEDUSA_DATABASE_URL");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        let ok = config(
            Profile::Lambda,
            &[("JWT_SECRET", SECRET), ("MEDUSA_DATABASE_URL", "postgres://medusa:s3cr3t-pw@db/medusa")],
        );
        assert!(!format!("{:?}", ok.unwrap()).contains("s3cr3t"));
    }

    #[test]
    fn no_database_url_means_no_database_mode_and_no_floor() {
        let config = config(Profile::Lambda, &[("JWT_SECRET", SECRET)]).unwrap();
        assert!(config.database.is_none());
        assert_eq!(config.response_floor, Duration::ZERO);
    }

    #[test]
    fn database_mode_holds_answers_to_a_floor() {
        let url = ("MEDUSA_DATABASE_URL", "postgres://medusa@db/medusa");
        let config = config(Profile::Lambda, &[("JWT_SECRET", SECRET), url]).unwrap();
        assert_eq!(config.response_floor, Duration::from_millis(50));
        let custom =
            super::tests::config(Profile::Lambda, &[("JWT_SECRET", SECRET), url, ("RESPONSE_FLOOR_MS", "120")]);
        assert_eq!(custom.unwrap().response_floor, Duration::from_millis(120));
        let error = super::tests::config(Profile::Lambda, &[("JWT_SECRET", SECRET), ("RESPONSE_FLOOR_MS", "9999")]);
        assert_eq!(error.unwrap_err().var, "RESPONSE_FLOOR_MS");
    }

    #[test]
    fn the_function_timeout_must_hold_every_wait_and_the_error_names_what_to_change() {
        let everything = [
            ("JWT_SECRET", SECRET),
            ("MEDUSA_DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
            ("RATE_LIMIT_TABLE", "limits"),
            ("TOKEN_KMS_KEY_ID", "alias/reset-token"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            config(Profile::Lambda, &everything.iter().chain(extra).copied().collect::<Vec<_>>())
        };
        let fits = with(&[("FUNCTION_TIMEOUT_SECONDS", "15")]).unwrap();
        // Four AWS calls (check, seal, publish, give-back), three database exchanges, a quarter of the
        // database time-out for each of the lookup's and the first tries, the floor.
        let expected = aws::OPERATION_TIMEOUT * 4 + Duration::from_millis(3 * 1_000 + 2 * 250 + 50);
        assert_eq!(fits.time_budget.worst_case(), expected);
        assert!(with(&[("FUNCTION_TIMEOUT_SECONDS", "11")]).is_ok(), "the template's least timeout holds it");

        let slow_database = with(&[("FUNCTION_TIMEOUT_SECONDS", "15"), ("MEDUSA_DATABASE_TIMEOUT_MS", "5000")]);
        let error = slow_database.unwrap_err();
        assert_eq!(error.var, "FUNCTION_TIMEOUT_SECONDS");
        assert!(error.reason.contains("lower MEDUSA_DATABASE_TIMEOUT_MS"), "{error}");
        let long_floor = with(&[("FUNCTION_TIMEOUT_SECONDS", "10"), ("RESPONSE_FLOOR_MS", "2000")]).unwrap_err();
        assert!(long_floor.reason.contains("RESPONSE_FLOOR_MS"), "{long_floor}");
        // Without the sealing and the table a database time-out of 3 s fits in the same 15 s:
        // 3 × 3000 + 2 × 750 + 1500 + 50 ms, and the margin.
        let lean = config(
            Profile::Lambda,
            &[
                ("JWT_SECRET", SECRET),
                ("MEDUSA_DATABASE_URL", "postgres://medusa@db/medusa"),
                ("MEDUSA_DATABASE_TIMEOUT_MS", "3000"),
                ("FUNCTION_TIMEOUT_SECONDS", "15"),
            ],
        );
        assert!(lean.is_ok(), "{lean:?}");
        // Unset, nothing is checked (make run, tests); the figure is still there.
        let unchecked = with(&[("MEDUSA_DATABASE_TIMEOUT_MS", "10000")]).unwrap();
        assert!(unchecked.time_budget.worst_case() > Duration::from_secs(20));
        for bad in ["fifteen", "0", "901", "1.5"] {
            let error = with(&[("FUNCTION_TIMEOUT_SECONDS", bad)]).unwrap_err();
            assert_eq!(error.var, "FUNCTION_TIMEOUT_SECONDS", "{bad}");
        }
    }

    #[test]
    fn errors_never_show_the_secret() {
        let error = config(Profile::Lambda, &[("JWT_SECRET", "hunter2")]).unwrap_err();
        assert!(!error.to_string().contains("hunter2"));
    }
}
