//! Where the secrets come from: the signing secret and the Medusa database's credentials, from the
//! environment (`make run`, tests) or AWS Secrets Manager, read once per cold start.

use aws_config::SdkConfig;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::domain::token::SigningSecret;
use crate::identity::DatabaseSettings;
use crate::vars::{ConfigError, Vars};

/// The variables besides the URL that shape the database connection; read at configuration time,
/// applied once the secret's URL is known.
pub const DATABASE_OPTION_VARS: [&str; 2] = ["MEDUSA_DATABASE_TIMEOUT_MS", "MEDUSA_DATABASE_CA_FILE"];

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

/// Where Medusa's database is: a URL in the environment, or a Secrets Manager secret read at cold start.
#[derive(Debug, Clone)]
pub enum DatabaseSource {
    /// `MEDUSA_DATABASE_URL`, already parsed.
    Url(Box<DatabaseSettings>),
    /// `MEDUSA_DATABASE_SECRET_ARN`, with the other connection settings (`DATABASE_OPTION_VARS`).
    SecretsManager { arn: String, options: Vec<(&'static str, String)> },
}

impl DatabaseSource {
    const SECRET_VAR: &'static str = "MEDUSA_DATABASE_SECRET_ARN";

    /// Reads the database settings from the environment: a URL or a secret's ARN, not both; neither is `None`.
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Option<Self>, ConfigError> {
        match (vars.get("MEDUSA_DATABASE_URL"), vars.get(Self::SECRET_VAR)) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                Self::SECRET_VAR,
                "set either MEDUSA_DATABASE_URL or MEDUSA_DATABASE_SECRET_ARN, not both",
            )),
            (Some(_), None) => Ok(DatabaseSettings::from_vars(vars)?.map(|settings| Self::Url(Box::new(settings)))),
            (None, Some(arn)) => {
                let options: Vec<(&'static str, String)> =
                    DATABASE_OPTION_VARS.iter().filter_map(|&var| vars.get(var).map(|value| (var, value))).collect();
                // Check the other settings now, against a placeholder URL, so a bad one stops start-up by name.
                settings_for("postgres://placeholder@placeholder/medusa", &options)?;
                Ok(Some(Self::SecretsManager { arn, options }))
            }
            (None, None) => Ok(None),
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
        let url = database_url(&text).map_err(|reason| ConfigError::new(Self::SECRET_VAR, reason))?;
        settings_for(&url, &options).map_err(|e| {
            let reason =
                if e.var == "MEDUSA_DATABASE_URL" { format!("the secret's URL {}", e.reason) } else { e.reason };
            ConfigError::new(if e.var == "MEDUSA_DATABASE_URL" { Self::SECRET_VAR } else { &e.var }, reason)
        })
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

/// The settings for `url` with the given other variables, through the one parser of `MEDUSA_DATABASE_URL`.
fn settings_for(url: &str, options: &[(&'static str, String)]) -> Result<DatabaseSettings, ConfigError> {
    let lookup = |var: &str| {
        if var == "MEDUSA_DATABASE_URL" {
            return Some(url.to_owned());
        }
        options.iter().find(|(name, _)| *name == var).map(|(_, value)| value.clone())
    };
    DatabaseSettings::from_vars(&Vars::new(lookup))?
        .ok_or_else(|| ConfigError::new("MEDUSA_DATABASE_URL", "is required"))
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
}

/// A PostgreSQL URL from a secret's text: the URL itself, or RDS's JSON turned into one. The reason
/// for a refusal never quotes the secret.
fn database_url(secret: &str) -> Result<String, String> {
    let text = secret.trim();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(text.to_owned());
    }
    if !text.starts_with('{') {
        return Err("the secret is neither a PostgreSQL URL nor RDS's JSON (username, password, host, …)".into());
    }
    let secret = RdsSecret::parse(text)?;
    if let Some(engine) = secret.engine.as_deref()
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
    let Some(host) = secret.host.filter(|host| !host.trim().is_empty()) else {
        return Err("the secret's JSON has no `host` (an RDS-managed master-user secret holds only username and \
                    password): store the database user's credentials with host, port and dbname"
            .into());
    };
    let encode = |part: &str| utf8_percent_encode(part, NON_ALPHANUMERIC).to_string();
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    // Without `sslmode`, the URL's own default applies: verify-full for an RDS endpoint, else prefer.
    let mut url = format!(
        "postgres://{}:{}@{host}:{}/{}",
        encode(&secret.username),
        encode(&secret.password),
        secret.port,
        encode(secret.dbname.as_deref().unwrap_or("postgres"))
    );
    if let Some(mode) = &secret.sslmode {
        if mode.is_empty() || !mode.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            return Err("the secret's sslmode is not an sslmode".into());
        }
        url.push_str("?sslmode=");
        url.push_str(mode);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_secret_is_the_url() {
        assert_eq!(database_url(" postgresql://u:p@h/db \n").unwrap(), "postgresql://u:p@h/db");
    }

    #[test]
    fn rds_json_becomes_a_url_with_its_parts_percent_encoded() {
        let secret = r#"{"username":"medusa","password":"p@ss:w/rd?#%","host":"db.cluster.rds.amazonaws.com",
            "port":5432,"dbname":"shop","engine":"postgres"}"#;
        assert_eq!(
            database_url(secret).unwrap(),
            "postgres://medusa:p%40ss%3Aw%2Frd%3F%23%25@db.cluster.rds.amazonaws.com:5432/shop"
        );
        let with_mode = r#"{"username":"u","password":"p","host":"h","port":"6432","sslmode":"verify-full"}"#;
        assert_eq!(database_url(with_mode).unwrap(), "postgres://u:p@h:6432/postgres?sslmode=verify-full");
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
            let error = database_url(secret).unwrap_err();
            assert!(error.contains(field), "{secret}: {error}");
            assert!(!error.contains("hunter2") && !error.contains('"'), "{secret}: {error}");
        }
        // A password that JSON reads as a number is a password all the same.
        let error = database_url(r#"{"username":"u","password":8675309,"host":"h"}"#).unwrap_err();
        assert!(error.contains("`password`") && !error.contains("8675309"), "{error}");
        // serde's own message, which this reading replaces, quotes the value.
        let serde = serde_json::from_str::<u16>(r#""hunter2""#).unwrap_err().to_string();
        assert!(serde.contains("hunter2"), "{serde}");
    }

    #[test]
    fn json_nulls_count_as_absent_fields() {
        let secret = r#"{"username":"u","password":"p","host":"h","port":null,"dbname":null,"sslmode":null}"#;
        assert_eq!(database_url(secret).unwrap(), "postgres://u:p@h:5432/postgres");
        let error = database_url(r#"{"username":"u","password":null,"host":"h"}"#).unwrap_err();
        assert!(error.contains("missing field `password`"), "{error}");
    }

    #[test]
    fn an_rds_secret_without_sslmode_verifies_an_rds_endpoint_in_full_and_leaves_other_hosts_at_prefer() {
        let json = |host: &str| format!(r#"{{"username":"u","password":"p","host":"{host}","port":5432}}"#);
        let rds = settings_for(&database_url(&json("mydb.c9akciq32.us-east-1.rds.amazonaws.com")).unwrap(), &[]);
        let rds = rds.unwrap();
        assert!(rds.verifies_server() && format!("{rds:?}").contains("VerifyFull"), "{rds:?}");
        let other = settings_for(&database_url(&json("db.example.com")).unwrap(), &[]).unwrap();
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
            let error = database_url(secret).unwrap_err();
            assert!(error.contains(reason), "{secret}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
