//! Medusa's database credentials from Secrets Manager (moto), as a URL or as RDS's JSON, read at
//! cold start; and the deployed function's refusal to start without an identity check.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::aws_fixtures::BusToQueue;
use crate::support::medusa_db::TestDb;
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{SECRET, TestApp, api_config, failed_start, moto_endpoint, moto_sdk_config, read_event, secret};
use aws_config::SdkConfig;
use medusa_reset::aws::secrets::{DatabaseSource, resolve_database};
use medusa_reset::identity::DatabaseOptions;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_reset-password");
const SECRET_VAR: &str = "MEDUSA_DATABASE_SECRET_ARN";

fn source(arn: String) -> DatabaseSource {
    DatabaseSource::SecretsManager { arn, options: DatabaseOptions::default() }
}

/// RDS's JSON for a test database on the machine's PostgreSQL (trust auth: the password is unused).
fn rds_json(db: &TestDb, password: &str) -> String {
    json!({
        "engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": "postgres",
        "password": password, "dbname": db.name, "sslmode": "disable",
    })
    .to_string()
}

async fn binary_secret(config: &SdkConfig, bytes: &[u8]) -> String {
    let created = aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(format!("binary-{}", uuid::Uuid::new_v4().simple()))
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(bytes))
        .send()
        .await
        .expect("moto stores the secret");
    created.arn().expect("an ARN").to_owned()
}

#[tokio::test]
async fn a_url_secret_and_an_rds_json_secret_both_reach_the_database() {
    let config = moto_sdk_config().await;
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    for value in [db.url.clone(), rds_json(&db, "p@ss:w/rd?#%")] {
        let arn = secret(&config, &value).await;
        let settings = resolve_database(Some(source(arn)), &config).await.unwrap().expect("a database");
        assert!(!format!("{settings:?}").contains("p@ss"), "Debug hides the password");
        let store = medusa_reset::identity::PostgresIdentityStore::new(settings);
        let (app, mut events) = TestApp::with_channel(&api_config(&[("MEDUSA_DATABASE_URL", &db.url)]), store);
        let (response, _) = app.reset("a@example.com").await;
        assert_eq!(response.status(), 201);
        assert!(matches!(events.try_recv(), Ok(medusa_reset::domain::event::AuthEvent::PasswordReset(_))));
        assert_eq!(db.reset_rows("a@example.com").await.len(), 1);
    }
    db.drop_database().await;
}

#[tokio::test]
async fn unusable_database_secrets_stop_start_up_naming_the_setting_and_never_the_secret() {
    let config = moto_sdk_config().await;
    let cases = [
        (secret(&config, "hunter2-is-not-a-url").await, "neither a PostgreSQL URL"),
        (secret(&config, r#"{"username":"u","host":"h","pass":"hunter2"}"#).await, "missing field `password`"),
        (secret(&config, r#"{"username":"u","password":"hunter2","host":"h""#).await, "not usable"),
        (secret(&config, "postgres://u:hunter2@h:notaport/db").await, "the secret's URL"),
        (binary_secret(&config, b"\xffhunter2\xfe").await, "not UTF-8"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf".to_owned(), "cannot read the secret"),
    ];
    for (arn, reason) in cases {
        let error = resolve_database(Some(source(arn)), &config).await.unwrap_err();
        assert_eq!(error.var, SECRET_VAR, "{reason}");
        assert!(error.reason.contains(reason), "{reason}: {error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}

#[tokio::test]
async fn a_database_secret_with_a_field_of_the_wrong_type_is_refused_without_quoting_the_value() {
    let config = moto_sdk_config().await;
    let cases = [
        (r#"{"username":"u","password":8675309,"host":"h"}"#, "`password`", "8675309"),
        (r#"{"username":"u","password":"hunter2","host":"h","port":true}"#, "`port`", "true"),
        (r#"{"username":"u","password":"hunter2","host":"h","port":"hunter2"}"#, "`port`", "hunter2"),
        (r#"{"username":["hunter2"],"password":"p","host":"h"}"#, "`username`", "hunter2"),
        (r#"{"username":"u","password":"p","host":{"name":"hunter2"}}"#, "`host`", "hunter2"),
    ];
    for (value, field, leak) in cases {
        let error = resolve_database(Some(source(secret(&config, value).await)), &config).await.unwrap_err();
        assert_eq!(error.var, SECRET_VAR, "{value}");
        assert!(error.reason.contains(field), "{value}: {error}");
        assert!(!error.to_string().contains(leak) && !error.to_string().contains("hunter2"), "{value}: {error}");
    }
    // Through the compiled bootstrap: start-up stops naming the setting, and the value is nowhere.
    let arn = secret(&config, r#"{"username":"u","password":8675309,"host":"h"}"#).await;
    let api = RuntimeApi::start().await.unwrap();
    let mut command = api.command(Path::new(BINARY), "reset-password");
    command.env("JWT_SECRET", SECRET).env(SECRET_VAR, &arn).env("AWS_ENDPOINT_URL", moto_endpoint());
    let stderr = failed_start(&mut command).await;
    assert!(stderr.contains(SECRET_VAR) && stderr.contains("`password`"), "{stderr}");
    assert!(!stderr.contains("8675309"), "{stderr}");
}

#[tokio::test]
async fn an_rds_json_secret_without_sslmode_verifies_an_rds_endpoint_in_full() {
    let config = moto_sdk_config().await;
    let json = |host: &str| {
        json!({"engine": "postgres", "host": host, "port": 5432, "username": "medusa", "password": "hunter2"})
            .to_string()
    };
    let rds = secret(&config, &json("mydb.c9akciq32.us-east-1.rds.amazonaws.com")).await;
    let settings = resolve_database(Some(source(rds)), &config).await.unwrap().expect("a database");
    assert!(settings.verifies_server() && format!("{settings:?}").contains("VerifyFull"), "{settings:?}");
    // Another host keeps libpq's default: TLS if offered, unverified.
    let other = secret(&config, &json("db.internal.example")).await;
    let settings = resolve_database(Some(source(other)), &config).await.unwrap().expect("a database");
    assert!(!settings.verifies_server() && format!("{settings:?}").contains("Prefer"), "{settings:?}");
}

#[tokio::test]
async fn the_bootstrap_refuses_to_start_without_a_medusa_database() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = failed_start(api.command(Path::new(BINARY), "reset-password").env("JWT_SECRET", SECRET)).await;
    assert!(stderr.contains("MEDUSA_DATABASE_URL") && stderr.contains(SECRET_VAR), "{stderr}");
    assert!(stderr.contains("SKIP_IDENTITY_CHECK"), "{stderr}");
}

#[tokio::test]
async fn the_bootstrap_warns_at_cold_start_when_told_to_skip_the_identity_check() {
    let api = RuntimeApi::start().await.unwrap();
    let mut child = api
        .command(Path::new(BINARY), "reset-password")
        .env("JWT_SECRET", SECRET)
        .env("SKIP_IDENTITY_CHECK", "true")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    api.first_poll(Duration::from_secs(10)).await.expect("it starts");
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let warned = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|line| {
            line["level"] == "WARN" && line["message"].as_str().is_some_and(|m| m.contains("SKIP_IDENTITY_CHECK=true"))
        });
    assert!(warned, "{}", String::from_utf8_lossy(&output.stdout));
}

#[tokio::test]
async fn the_bootstrap_reads_the_database_secret_at_cold_start_and_mails_only_known_accounts() {
    let config = moto_sdk_config().await;
    let db = TestDb::create().await;
    db.add_identity("customer@example.com", "emailpass").await;
    let database_arn = secret(&config, &rds_json(&db, "unused")).await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let api = RuntimeApi::start().await.unwrap();
    let _child = api
        .command(Path::new(BINARY), "reset-password")
        .env("JWT_SECRET", SECRET)
        .env(SECRET_VAR, &database_arn)
        .env("EVENT_BUS_NAME", &fixture.bus_name)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("RESPONSE_FLOOR_MS", "0")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let known = read_event("reset-password/valid.json");
    let mut unknown = known.clone();
    unknown["body"] = json!(r#"{"identifier":"stranger@example.com"}"#);
    for event in [&known, &unknown] {
        let answer = api.invoke(event, Duration::from_secs(10)).await.unwrap();
        let Answer::Response(response) = answer else { panic!("{answer:?}") };
        assert_eq!(response["statusCode"], 201, "{response}");
    }
    let events = fixture.drain(Duration::from_secs(2)).await;
    let recipients: Vec<&str> = events.iter().filter_map(|e| e["detail"]["entity_id"].as_str()).collect();
    assert_eq!(recipients, ["customer@example.com"], "only Medusa's account gets a reset e-mail");
    assert_eq!(db.reset_rows("customer@example.com").await.len(), 1);
    db.drop_database().await;
}
