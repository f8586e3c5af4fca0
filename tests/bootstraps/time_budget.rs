//! Every wait fits in the function's time: the template's timeout holds the worst case of the
//! default configuration, and a dependency that accepts the connection and never answers
//! (PostgreSQL, EventBridge, the DynamoDB rate-limit table) ends in Medusa's 500 within the budget,
//! with nothing published, the token row withdrawn and the identifier's count given back. So does a
//! reused database connection that died silently in front of a database that is stuck.
//! Needs the machine's PostgreSQL and moto: `tools/with-moto cargo test --test bootstraps time_budget`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::aws_fixtures::rate_limit_table;
use crate::support::faults::TcpFaultProxy;
use crate::support::medusa_db::{TestDb, connect_to};
use crate::support::runtime_api::RuntimeApi;
use crate::support::{TestApp, api_config, moto_sdk_config, sdk_config_for};
use aws_config::SdkConfig;
use http::StatusCode;
use medusa_reset::app::wiring;
use medusa_reset::aws;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::domain::event::AuthEvent;
use medusa_reset::identity::{DatabaseSettings, IdentityStore, MemoryIdentityStore, PostgresIdentityStore};
use medusa_reset::publish::{ChannelPublisher, EventBridgePublisher, EventPublisher};
use medusa_reset::reset::budget::MARGIN;
use serde_json::Value;
use tokio::net::TcpListener;

/// A parameter of `template.yaml`'s `Parameters` section: the text after `Default:` and `MinValue:`.
fn template_parameter(name: &str) -> (String, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    let template = std::fs::read_to_string(&path).unwrap();
    let mut lines = template.lines().skip_while(|line| *line != "Parameters:");
    let mut block = lines
        .by_ref()
        .skip_while(|line| line.trim_end() != format!("  {name}:"))
        .skip(1)
        .take_while(|line| line.starts_with("    "));
    let mut field = |key: &str| {
        block.by_ref().find_map(|line| line.trim().strip_prefix(key).map(|v| v.trim().trim_matches('"').to_owned()))
    };
    let default = field("Default:").unwrap_or_else(|| panic!("{name} has a Default"));
    let min = field("MinValue:").unwrap_or_else(|| panic!("{name} has a MinValue after its Default"));
    (default, min)
}

/// The reset function's environment as the template sets it, as far as it shapes the waits: a
/// database secret, the rate-limit table, sealing on (the slowest case), the timeout given.
fn deployed_config(function_timeout: &str, extra: &[(&str, &str)]) -> Result<ApiConfig, String> {
    let fixed = [
        ("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf"),
        ("MEDUSA_DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
        ("RATE_LIMIT_TABLE", "limits"),
        ("TOKEN_KMS_KEY_ID", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        ("FUNCTION_TIMEOUT_SECONDS", function_timeout),
    ];
    let pairs: Vec<(&str, &str)> = fixed.iter().chain(extra).copied().collect();
    ApiConfig::from_vars(Profile::Lambda, &Vars::from_pairs(&pairs)).map_err(|e| e.to_string())
}

#[test]
fn the_templates_timeout_holds_the_worst_case_of_the_default_configuration() {
    let template = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("template.yaml")).unwrap();
    // One parameter is both the function's Timeout and what it checks its waits against.
    assert!(template.contains("Timeout: !Ref ResetFunctionTimeoutSeconds"), "the function's Timeout");
    assert!(template.contains("FUNCTION_TIMEOUT_SECONDS: !Ref ResetFunctionTimeoutSeconds"), "its environment");
    let (default, min) = template_parameter("ResetFunctionTimeoutSeconds");
    for seconds in [&default, &min] {
        let config = deployed_config(seconds, &[]).unwrap_or_else(|e| panic!("{seconds} s: {e}"));
        let timeout = Duration::from_secs(seconds.parse().unwrap());
        let worst = config.time_budget.worst_case();
        assert!(worst + MARGIN <= timeout, "{seconds} s holds {worst:?} and the margin");
    }
}

#[test]
fn a_database_time_out_the_templates_timeout_cannot_hold_stops_start_up() {
    let (default, _) = template_parameter("ResetFunctionTimeoutSeconds");
    let error = deployed_config(&default, &[("MEDUSA_DATABASE_TIMEOUT_MS", "10000")]).unwrap_err();
    assert!(error.starts_with("FUNCTION_TIMEOUT_SECONDS: "), "{error}");
    assert!(error.contains("lower MEDUSA_DATABASE_TIMEOUT_MS"), "{error}");
    assert!(error.contains("ResetFunctionTimeoutSeconds"), "{error}");
}

#[tokio::test]
async fn the_compiled_function_refuses_a_timeout_too_short_for_its_waits() {
    let api = RuntimeApi::start().await.unwrap();
    let mut command = api.command(Path::new(env!("CARGO_BIN_EXE_reset-password")), "reset-password");
    command
        .env("JWT_SECRET", crate::support::SECRET)
        .env("MEDUSA_DATABASE_URL", "postgres://medusa:db-password-x9@db.internal:5432/medusa")
        .env("MEDUSA_DATABASE_TIMEOUT_MS", "3000")
        .env("FUNCTION_TIMEOUT_SECONDS", "5");
    let stderr = crate::support::failed_start(&mut command).await;
    assert!(stderr.contains("FUNCTION_TIMEOUT_SECONDS: 5000 ms is too short"), "{stderr}");
    assert!(stderr.contains("lower MEDUSA_DATABASE_TIMEOUT_MS"), "{stderr}");
    assert!(!stderr.contains("db-password-x9"), "{stderr}");
}

/// A listener on 127.0.0.1 that accepts every connection and never answers; returns `host:port`.
async fn stuck_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    address
}

/// The route with the DynamoDB rate limiter of `config`'s table on `sdk`.
fn app(config: &ApiConfig, sdk: &SdkConfig, publisher: impl EventPublisher, store: impl IdentityStore) -> TestApp {
    TestApp::with_limiter(config, publisher, store, wiring::rate_limiter(&config.limits, sdk))
}

/// Sends a reset for `identifier`; returns the status, the error type if any, and the time taken.
async fn reset(app: &TestApp, identifier: &str) -> (StatusCode, Option<String>, Duration) {
    let started = Instant::now();
    let (response, body) = app.reset(identifier).await;
    let elapsed = started.elapsed();
    let kind = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["type"].as_str().map(str::to_owned));
    (response.status(), kind, elapsed)
}

/// The limits the tests count with: one reset per identifier per minute, through DynamoDB on moto.
fn limits(table: &str) -> [(&'static str, String); 2] {
    [("RATE_LIMIT_TABLE", table.to_owned()), ("RATE_LIMIT_PER_IDENTIFIER", "1/60".to_owned())]
}

fn with<'a>(pairs: &'a [(&'static str, String)], more: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).chain(more.iter().copied()).collect()
}

/// After a failure, the identifier's retry is served (its count was given back), and the one after
/// that is held by the limit (the limiter does count).
async fn assert_count_was_given_back(sdk: &SdkConfig, table: &str, identifier: &str) {
    let config = api_config(&with(&limits(table), &[]));
    let (publisher, mut events) = ChannelPublisher::new();
    let healthy = app(&config, sdk, publisher, MemoryIdentityStore::open());
    assert_eq!(reset(&healthy, identifier).await.0, StatusCode::CREATED);
    assert!(
        matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(e)) if e.about.entity_id == identifier),
        "the retry"
    );
    assert_eq!(reset(&healthy, identifier).await.0, StatusCode::CREATED);
    assert!(events.try_recv().is_err(), "the request after the retry is over the limit");
}

#[tokio::test]
async fn a_stuck_database_is_a_500_within_the_budget_publishing_nothing_and_giving_the_count_back() {
    let sdk = moto_sdk_config().await;
    let table = rate_limit_table(&sdk).await;
    // The URL as Medusa's own would be: no sslmode, so libpq's prefer asks for TLS and waits.
    let url = format!("postgres://medusa:medusa-password@{}/medusa", stuck_listener().await);
    let config = api_config(&with(&limits(&table), &[("MEDUSA_DATABASE_URL", &url)]));
    let database = crate::support::database_settings(&config);
    let database_timeout = database.timeout();
    let (publisher, mut events) = ChannelPublisher::new();
    let app = app(&config, &sdk, publisher, PostgresIdentityStore::new(database));

    let (status, kind, elapsed) = reset(&app, "stuck-db@example.com").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(kind.as_deref(), Some("unknown_error"));
    assert!(elapsed >= database_timeout, "it waited for the database: {elapsed:?}");
    assert!(elapsed <= config.time_budget.worst_case(), "{elapsed:?} over {:?}", config.time_budget.worst_case());
    assert!(events.try_recv().is_err(), "nothing published");
    assert_count_was_given_back(&sdk, &table, "stuck-db@example.com").await;
}

#[tokio::test]
async fn a_stuck_eventbridge_is_a_500_within_the_budget_withdrawing_the_row_and_giving_the_count_back() {
    let sdk = moto_sdk_config().await;
    let table = rate_limit_table(&sdk).await;
    let db = TestDb::create().await;
    db.add_identity("stuck-bus@example.com", "emailpass").await;
    let config = api_config(&with(&limits(&table), &[("MEDUSA_DATABASE_URL", &db.url)]));
    let stuck = sdk_config_for(&format!("http://{}", stuck_listener().await)).await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&stuck), config.events.clone());
    let app = app(&config, &sdk, publisher, PostgresIdentityStore::new(db.settings()));

    let (status, kind, elapsed) = reset(&app, "stuck-bus@example.com").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(kind.as_deref(), Some("unknown_error"));
    assert!(elapsed >= aws::OPERATION_TIMEOUT, "it waited for EventBridge: {elapsed:?}");
    assert!(elapsed <= config.time_budget.worst_case(), "{elapsed:?} over {:?}", config.time_budget.worst_case());
    assert!(db.reset_rows("stuck-bus@example.com").await.is_empty(), "the row was withdrawn");
    assert_count_was_given_back(&sdk, &table, "stuck-bus@example.com").await;
    db.drop_database().await;
}

#[tokio::test]
async fn a_stuck_rate_limit_table_is_a_500_within_the_budget_with_nothing_recorded_or_published() {
    let db = TestDb::create().await;
    db.add_identity("stuck-table@example.com", "emailpass").await;
    let stuck = sdk_config_for(&format!("http://{}", stuck_listener().await)).await;
    let config = api_config(&[("MEDUSA_DATABASE_URL", &db.url), ("RATE_LIMIT_TABLE", "limits")]);
    let (publisher, mut events) = ChannelPublisher::new();
    let app = app(&config, &stuck, publisher, PostgresIdentityStore::new(db.settings()));

    let (status, kind, elapsed) = reset(&app, "stuck-table@example.com").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(kind.as_deref(), Some("unknown_error"));
    assert!(elapsed >= aws::OPERATION_TIMEOUT, "it waited for DynamoDB: {elapsed:?}");
    assert!(elapsed <= config.time_budget.worst_case(), "{elapsed:?} over {:?}", config.time_budget.worst_case());
    assert!(events.try_recv().is_err(), "nothing published");
    assert!(db.reset_rows("stuck-table@example.com").await.is_empty(), "nothing recorded");
    db.drop_database().await;
}

#[tokio::test]
async fn a_dead_connection_before_a_stuck_database_is_a_500_within_the_budget_the_fresh_one_given_the_whole_time_out() {
    let db = TestDb::create().await;
    db.add_identity("dead-then-stuck@example.com", "emailpass").await;
    let proxy = TcpFaultProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replacen("127.0.0.1:5432", &proxy.addr.to_string(), 1);
    let config = api_config(&[("MEDUSA_DATABASE_URL", &url)]);
    let database = crate::support::database_settings(&config);
    let (timeout, first_try) = (database.timeout(), DatabaseSettings::first_try_limit(database.timeout()));
    let (app, mut events) = TestApp::with_channel(&config, PostgresIdentityStore::new(database));
    assert_eq!(reset(&app, "dead-then-stuck@example.com").await.0, StatusCode::CREATED);
    assert!(matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(_))));

    // The environment's connection dies silently, and another session holds the identities' table.
    proxy.kill_silently();
    let blocker = connect_to(&db.url).await;
    blocker.batch_execute("BEGIN; LOCK TABLE provider_identity IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let (status, kind, elapsed) = reset(&app, "dead-then-stuck@example.com").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(kind.as_deref(), Some("unknown_error"));
    assert!(elapsed >= first_try + timeout, "the fresh connection had the whole time-out: {elapsed:?}");
    assert!(elapsed <= config.time_budget.worst_case(), "{elapsed:?} over {:?}", config.time_budget.worst_case());
    assert_eq!(proxy.accepted(), 2, "one fresh connection");
    assert!(events.try_recv().is_err(), "nothing published");
    blocker.batch_execute("ROLLBACK").await.unwrap();
    drop(blocker);
    db.drop_database().await;
}
