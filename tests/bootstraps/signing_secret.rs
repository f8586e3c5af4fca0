//! The signing secret from AWS Secrets Manager (moto): read once at cold start, refused when short
//! or missing, with a message that names the setting and never the value.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::aws_fixtures::BusToQueue;
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{failed_start, moto_endpoint, moto_sdk_config, read_event, secret, verify_independently};
use medusa_reset::aws::secrets::SecretSource;

const LONG_SECRET: &str = "secrets-manager-signing-secret-0123456789abcdef";

#[tokio::test]
async fn a_secret_arn_resolves_to_the_secret() {
    let config = moto_sdk_config().await;
    let arn = secret(&config, LONG_SECRET).await;
    let resolved = SecretSource::SecretsManager { arn }.resolve(&config).await.unwrap();
    assert_eq!(resolved.as_bytes(), LONG_SECRET.as_bytes());
}

#[tokio::test]
async fn a_short_or_missing_secret_is_refused_naming_the_setting() {
    let config = moto_sdk_config().await;
    let short = secret(&config, "short-secret").await;
    let error = SecretSource::SecretsManager { arn: short }.resolve(&config).await.unwrap_err();
    assert_eq!(error.var, "JWT_SECRET_ARN");
    assert!(error.to_string().contains("at least 32 bytes") && !error.to_string().contains("short-secret"), "{error}");

    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf".to_owned();
    let error = SecretSource::SecretsManager { arn: missing }.resolve(&config).await.unwrap_err();
    assert_eq!(error.var, "JWT_SECRET_ARN");
}

#[tokio::test]
async fn the_bootstrap_reads_the_secret_at_cold_start_and_signs_with_it() {
    let config = moto_sdk_config().await;
    let arn = secret(&config, LONG_SECRET).await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let api = RuntimeApi::start().await.unwrap();
    let _child = api
        .command(Path::new(env!("CARGO_BIN_EXE_reset-password")), "reset-password")
        .env_remove("JWT_SECRET")
        .env("JWT_SECRET_ARN", &arn)
        .env("SKIP_IDENTITY_CHECK", "true")
        .env("EVENT_BUS_NAME", &fixture.bus_name)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let answer = api.invoke(&read_event("reset-password/valid.json"), Duration::from_secs(10)).await.unwrap();
    let Answer::Response(response) = answer else { panic!("{answer:?}") };
    assert_eq!(response["statusCode"], 201);
    let events = fixture.drain(Duration::from_secs(2)).await;
    let token = events[0]["detail"]["token"].as_str().unwrap();
    verify_independently(token, LONG_SECRET, None).expect("signed with the secret from Secrets Manager");
}

#[tokio::test]
async fn the_bootstrap_refuses_to_start_with_an_unreadable_secret() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = failed_start(
        api.command(Path::new(env!("CARGO_BIN_EXE_reset-password")), "reset-password")
            .env_remove("JWT_SECRET")
            .env("JWT_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")
            .env("SKIP_IDENTITY_CHECK", "true")
            .env("AWS_ENDPOINT_URL", moto_endpoint()),
    )
    .await;
    assert!(stderr.contains("JWT_SECRET_ARN"), "{stderr}");
}
