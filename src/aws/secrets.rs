//! Where the secrets come from: the signing secret and the Medusa database's credentials, given in
//! the configuration (`make run`, tests) or read from AWS Secrets Manager once per cold start. A
//! database secret holds a URL or RDS's JSON, and either becomes the settings directly.

use std::time::Duration;

use aws_config::SdkConfig;

use crate::domain::token::SigningSecret;
use crate::identity::{DatabaseOptions, DatabaseSettings, Endpoint, SettingsError};
use crate::vars::ConfigError;

/// Named when the options' PEM file cannot go with what the secret asks for; the configuration
/// reads it (`config::database`).
const CA_FILE_VAR: &str = "MEDUSA_DATABASE_CA_FILE";

/// The configured source of the signing secret.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `JWT_SECRET`, already checked.
    Value(SigningSecret),
    /// `JWT_SECRET_ARN`: a Secrets Manager secret whose value is the signing secret.
    SecretsManager { arn: String },
}

impl SecretSource {
    /// The secret itself. A secret that cannot be read, or is too short, stops start-up with a
    /// message naming `JWT_SECRET_ARN`; there is no fallback.
    pub async fn resolve(&self, sdk: &SdkConfig) -> Result<SigningSecret, ConfigError> {
        let arn = match self {
            Self::Value(secret) => return Ok(secret.clone()),
            Self::SecretsManager { arn } => arn,
        };
        let bytes = read_secret(sdk, arn, "JWT_SECRET_ARN").await?;
        SigningSecret::parse(bytes).map_err(|e| ConfigError::new("JWT_SECRET_ARN", format!("the secret {e}")))
    }
}

/// Reads a secret's value; errors name `var` and never carry the value.
async fn read_secret(sdk: &SdkConfig, arn: &str, var: &str) -> Result<Vec<u8>, ConfigError> {
    let output =
        aws_sdk_secretsmanager::Client::new(sdk).get_secret_value().secret_id(arn).send().await.map_err(|e| {
            let context = aws_sdk_secretsmanager::error::DisplayErrorContext(&e);
            ConfigError::new(var, format!("cannot read the secret: {context}"))
        })?;
    match (output.secret_string(), output.secret_binary()) {
        (Some(text), _) => Ok(text.as_bytes().to_vec()),
        (None, Some(binary)) => Ok(binary.as_ref().to_vec()),
        (None, None) => Err(ConfigError::new(var, "the secret has no value")),
    }
}

/// Where Medusa's database is: settings already built from a URL, or a Secrets Manager secret read
/// at cold start. Read from the environment in `config::database`.
#[derive(Debug, Clone)]
pub enum DatabaseSource {
    /// `MEDUSA_DATABASE_URL`, already parsed.
    Url(Box<DatabaseSettings>),
    /// `MEDUSA_DATABASE_SECRET_ARN`, with the options to build the settings with once it is read.
    SecretsManager { arn: String, options: DatabaseOptions },
}

impl DatabaseSource {
    pub const SECRET_VAR: &'static str = "MEDUSA_DATABASE_SECRET_ARN";

    /// Each exchange's time-out, which the time budget counts before any secret is read.
    pub fn timeout(&self) -> Duration {
        match self {
            Self::Url(settings) => settings.timeout(),
            Self::SecretsManager { options, .. } => options.timeout(),
        }
    }

    /// The settings, reading the secret if there is one. A missing, unreadable or malformed secret
    /// stops start-up naming `MEDUSA_DATABASE_SECRET_ARN`, never showing the secret.
    pub async fn resolve(self, sdk: &SdkConfig) -> Result<DatabaseSettings, ConfigError> {
        let (arn, options) = match self {
            Self::Url(settings) => return Ok(*settings),
            Self::SecretsManager { arn, options } => (arn, options),
        };
        let bytes = read_secret(sdk, &arn, Self::SECRET_VAR).await?;
        let text =
            String::from_utf8(bytes).map_err(|_| ConfigError::new(Self::SECRET_VAR, "the secret is not UTF-8"))?;
        settings_from_secret(&text, &options)
    }
}

/// The database settings if there is a database, with its secret read.
pub async fn resolve_database(
    source: Option<DatabaseSource>,
    sdk: &SdkConfig,
) -> Result<Option<DatabaseSettings>, ConfigError> {
    match source {
        Some(source) => source.resolve(sdk).await.map(Some),
        None => Ok(None),
    }
}

/// The settings a secret's text gives with `options`; errors name the secret's variable, or the
/// PEM file's when that is what does not fit.
fn settings_from_secret(text: &str, options: &DatabaseOptions) -> Result<DatabaseSettings, ConfigError> {
    let secret = DatabaseSecret::read(text).map_err(|reason| ConfigError::new(DatabaseSource::SECRET_VAR, reason))?;
    let (settings, holding) = match secret {
        DatabaseSecret::Url(url) => (DatabaseSettings::from_url(&url, options), "URL"),
        DatabaseSecret::Rds(endpoint) => (DatabaseSettings::from_endpoint(endpoint, options), "JSON"),
    };
    settings.map_err(|e: SettingsError| {
        if e.concerns_ca_file() {
            ConfigError::new(CA_FILE_VAR, e)
        } else {
            ConfigError::new(DatabaseSource::SECRET_VAR, format!("the secret's {holding} {e}"))
        }
    })
}

/// What a database secret holds.
enum DatabaseSecret {
    /// A PostgreSQL URL.
    Url(String),
    /// RDS's JSON, its fields checked.
    Rds(Endpoint),
}

impl DatabaseSecret {
    /// The secret's text read; the reason for a refusal never quotes the secret.
    fn read(secret: &str) -> Result<Self, String> {
        let text = secret.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Self::Url(text.to_owned()));
        }
        if !text.starts_with('{') {
            return Err("the secret is neither a PostgreSQL URL nor RDS's JSON (username, password, host, …)".into());
        }
        RdsSecret::parse(text)?.endpoint().map(Self::Rds)
    }
}

/// The JSON of Secrets Manager's database credentials: what a "Credentials for Amazon RDS
/// database" secret and the rotation templates hold. RDS's own managed master-user secret has only
/// `username` and `password`, so a missing `host` is told apart. Read field by field rather than
/// through serde's derive, whose type errors quote the value (`invalid type: string "hunter2"`).
struct RdsSecret {
    username: String,
    password: String,
    host: Option<String>,
    port: u16,
    dbname: Option<String>,
    engine: Option<String>,
    sslmode: Option<String>,
}

impl RdsSecret {
    /// The fields of `text`. Each reason names a field, never its value; JSON syntax errors give
    /// only what was expected and where.
    fn parse(text: &str) -> Result<Self, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            let what = e.to_string().split(" at line").next().unwrap_or_default().to_owned();
            format!("the secret's JSON is not usable: {what}")
        })?;
        let serde_json::Value::Object(fields) = json else {
            return Err("the secret's JSON is not an object".into());
        };
        let text = |name: &str| -> Result<Option<String>, String> {
            match fields.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(value)) => Ok(Some(value.clone())),
                Some(_) => Err(format!("the secret's `{name}` is not a string")),
            }
        };
        let required =
            |name: &str| text(name)?.ok_or_else(|| format!("the secret's JSON is not usable: missing field `{name}`"));
        let port = match fields.get("port") {
            None | Some(serde_json::Value::Null) => Some(5432),
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Some(serde_json::Value::String(s)) => s.trim().parse::<u16>().ok(),
            Some(_) => None,
        };
        Ok(Self {
            username: required("username")?,
            password: required("password")?,
            host: text("host")?,
            port: port.filter(|p| *p != 0).ok_or("the secret's `port` is not a port")?,
            dbname: text("dbname")?,
            engine: text("engine")?,
            sslmode: text("sslmode")?,
        })
    }

    /// The database these fields name, if it is PostgreSQL and they name its host.
    fn endpoint(self) -> Result<Endpoint, String> {
        if let Some(engine) = self.engine.as_deref()
            && !matches!(engine, "postgres" | "postgresql" | "aurora-postgresql")
        {
            // An engine's name is shown only when it looks like one (`mysql`, `aurora-mysql`).
            let named = engine.len() <= 32 && engine.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            return Err(if named {
                format!("the secret is for engine `{engine}`, not PostgreSQL")
            } else {
                "the secret's `engine` is not PostgreSQL".to_owned()
            });
        }
        let Some(host) = self.host.filter(|host| !host.trim().is_empty()) else {
            return Err("the secret's JSON has no `host` (an RDS-managed master-user secret holds only username and \
                        password): store the database user's credentials with host, port and dbname"
                .into());
        };
        // Without `sslmode`, a URL's default applies: verify-full for an RDS endpoint, else prefer.
        Ok(Endpoint {
            user: self.username,
            password: self.password,
            host,
            port: self.port,
            dbname: Some(self.dbname.unwrap_or_else(|| "postgres".to_owned())),
            ssl_mode: self.sslmode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why `secret` is refused.
    fn refusal(secret: &str) -> String {
        match DatabaseSecret::read(secret) {
            Ok(_) => panic!("accepted: {secret}"),
            Err(reason) => reason,
        }
    }

    fn endpoint(secret: &str) -> Endpoint {
        match DatabaseSecret::read(secret) {
            Ok(DatabaseSecret::Rds(endpoint)) => endpoint,
            Ok(DatabaseSecret::Url(_)) => panic!("read as a URL: {secret}"),
            Err(reason) => panic!("{secret}: {reason}"),
        }
    }

    #[test]
    fn a_url_secret_is_the_url() {
        let read = DatabaseSecret::read(" postgresql://u:p@h/db \n");
        assert!(matches!(read, Ok(DatabaseSecret::Url(url)) if url == "postgresql://u:p@h/db"));
    }

    #[test]
    fn rds_json_becomes_an_endpoint_with_its_fields_as_they_are() {
        let secret = r#"{"username":"medusa","password":"p@ss:w/rd?#%","host":"db.cluster.rds.amazonaws.com",
            "port":5432,"dbname":"shop","engine":"postgres"}"#;
        let rds = endpoint(secret);
        assert_eq!((rds.user.as_str(), rds.password.as_str()), ("medusa", "p@ss:w/rd?#%"));
        assert_eq!((rds.host.as_str(), rds.port), ("db.cluster.rds.amazonaws.com", 5432));
        assert_eq!((rds.dbname.as_deref(), rds.ssl_mode), (Some("shop"), None));
        let with_mode = endpoint(r#"{"username":"u","password":"p","host":"h","port":"6432","sslmode":"verify-full"}"#);
        assert_eq!((with_mode.port, with_mode.dbname.as_deref()), (6432, Some("postgres")));
        assert_eq!(with_mode.ssl_mode.as_deref(), Some("verify-full"));
        let settings = settings_from_secret(secret, &DatabaseOptions::default()).unwrap();
        assert!(!format!("{settings:?}").contains("p@ss"), "{settings:?}");
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_and_its_value_never_quoted() {
        let cases = [
            (r#"{"username":"u","password":"p","host":"h","port":true}"#, "`port`"),
            (r#"{"username":"u","password":"p","host":"h","port":"hunter2"}"#, "`port`"),
            (r#"{"username":"u","password":"p","host":"h","port":["hunter2"]}"#, "`port`"),
            (r#"{"username":5,"password":"hunter2","host":"h"}"#, "`username`"),
            (r#"{"username":"u","password":{"hunter2":1},"host":"h"}"#, "`password`"),
            (r#"{"username":"u","password":["hunter2"],"host":"h"}"#, "`password`"),
            (r#"{"username":"u","password":"p","host":["hunter2"]}"#, "`host`"),
            (r#"{"username":"u","password":"p","host":"h","dbname":{"x":"hunter2"}}"#, "`dbname`"),
            (r#"{"username":"u","password":"p","host":"h","engine":["hunter2"]}"#, "`engine`"),
            (r#"{"username":"u","password":"p","host":"h","engine":"hunter2 postgres"}"#, "`engine`"),
            (r#"{"username":"u","password":"p","host":"h","sslmode":false,"x":"hunter2"}"#, "`sslmode`"),
        ];
        for (secret, field) in cases {
            let error = refusal(secret);
            assert!(error.contains(field), "{secret}: {error}");
            assert!(!error.contains("hunter2") && !error.contains('"'), "{secret}: {error}");
        }
        // A password that JSON reads as a number is a password all the same.
        let error = refusal(r#"{"username":"u","password":8675309,"host":"h"}"#);
        assert!(error.contains("`password`") && !error.contains("8675309"), "{error}");
        // serde's own message, which this reading replaces, quotes the value.
        let serde = serde_json::from_str::<u16>(r#""hunter2""#).unwrap_err().to_string();
        assert!(serde.contains("hunter2"), "{serde}");
    }

    #[test]
    fn json_nulls_count_as_absent_fields() {
        let secret = endpoint(r#"{"username":"u","password":"p","host":"h","port":null,"dbname":null,"sslmode":null}"#);
        assert_eq!((secret.port, secret.dbname.as_deref(), secret.ssl_mode), (5432, Some("postgres"), None));
        let error = refusal(r#"{"username":"u","password":null,"host":"h"}"#);
        assert!(error.contains("missing field `password`"), "{error}");
    }

    #[test]
    fn an_rds_secret_without_sslmode_verifies_an_rds_endpoint_in_full_and_leaves_other_hosts_at_prefer() {
        let json = |host: &str| format!(r#"{{"username":"u","password":"p","host":"{host}","port":5432}}"#);
        let options = DatabaseOptions::default();
        let rds = settings_from_secret(&json("mydb.c9akciq32.us-east-1.rds.amazonaws.com"), &options).unwrap();
        assert!(rds.verifies_server() && format!("{rds:?}").contains("VerifyFull"), "{rds:?}");
        let other = settings_from_secret(&json("db.example.com"), &options).unwrap();
        assert!(!other.verifies_server() && format!("{other:?}").contains("Prefer"), "{other:?}");
    }

    #[test]
    fn unusable_secrets_are_refused_without_quoting_them() {
        let cases = [
            ("hunter2-not-a-url", "neither a PostgreSQL URL"),
            (r#"{"username":"u","host":"h","password_typo":"hunter2"}"#, "missing field `password`"),
            (r#"{"username":"u","password":"hunter2","host":"h","engine":"mysql"}"#, "engine `mysql`"),
            (r#"{"username":"u","password":"hunter2","host":"h","port":99999}"#, "port"),
            (r#"{"username":"u","password":"hunter2","host":"h","port":0}"#, "port"),
            (r#"{"username":"u","password":"hunter2""#, "not usable"),
            // RDS's managed master-user secret: credentials without the database's address.
            (r#"{"username":"postgres","password":"hunter2"}"#, "no `host`"),
            (r#"{"username":"postgres","password":"hunter2","host":" "}"#, "no `host`"),
        ];
        for (secret, reason) in cases {
            let error = refusal(secret);
            assert!(error.contains(reason), "{secret}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn settings_the_secret_cannot_make_name_the_secret_and_what_it_holds() {
        let options = DatabaseOptions::default();
        let cases = [
            ("postgres://u:hunter2@h:notaport/db", "the secret's URL has a port"),
            (r#"{"username":"u","password":"hunter2","host":"h","sslmode":"hunter2"}"#, "the secret's JSON sslmode"),
            (r#"{"username":"","password":"hunter2","host":"h"}"#, "the secret's JSON names no user"),
            (r#"{"username":"u","password":"hunter2","host":"h,i"}"#, "the secret's JSON names several hosts"),
        ];
        for (secret, reason) in cases {
            let error = settings_from_secret(secret, &options).unwrap_err();
            assert_eq!(error.var, DatabaseSource::SECRET_VAR, "{secret}");
            assert!(error.reason.starts_with(reason) && !error.reason.contains("hunter2"), "{secret}: {error}");
        }
    }
}
