//! The compiled Lambda binaries under the Runtime API emulator, fed every file in `events/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::aws_fixtures::{BusToQueue, sent_messages, verified_sender};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{SECRET, failed_start, moto_endpoint, moto_sdk_config, read_event, unreachable_endpoint};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_reset-password");
const NOTIFIER: &str = env!("CARGO_BIN_EXE_notifier");

/// What each sample event must get: HTTP status, and the error `type` where there is a body.
fn expected(name: &str) -> (u16, Option<&'static str>) {
    match name {
        "valid.json" | "valid-base64-body.json" => (201, None),
        // A real Medusa 2.21 refuses a bare JSON string in its body parser, and so do we.
        "missing-identifier.json" | "malformed-json.json" | "bare-string-body.json" => (400, Some("invalid_data")),
        "disallowed-provider.json" => (400, Some("not_allowed")),
        "cors-preflight.json" => (200, None),
        // Without Medusa's database (and outside development mode, which `make invoke` turns on)
        // the function has nowhere to write a password, and does not serve the update route.
        "update-password.json" => (404, Some("not_found")),
        other => panic!("events/reset-password/{other} has no expected answer in this test: add one"),
    }
}

fn event_files(function: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"][name].as_str()
}

#[tokio::test]
async fn every_sample_event_gets_its_expected_answer_from_the_bootstrap() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let api = RuntimeApi::start().await.unwrap();
    let mut child = api
        .command(Path::new(BINARY), "reset-password")
        .env("JWT_SECRET", SECRET)
        .env("SKIP_IDENTITY_CHECK", "true")
        .env("EVENT_BUS_NAME", &fixture.bus_name)
        .env("AUTH_CORS", "http://localhost:8000")
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let files = event_files("reset-password");
    assert!(files.len() >= 6, "the six required sample events exist");
    let mut published = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let answer = api.invoke(&event, Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let Answer::Response(response) = answer else { panic!("{name}: the function failed: {answer:?}") };
        let (status, kind) = expected(&name);
        assert_eq!(response["statusCode"], status, "{name}: {response}");
        assert_eq!(header(&response, "cache-control"), Some("no-store"), "{name}");
        match kind {
            Some(kind) => {
                let body: Value = serde_json::from_str(response["body"].as_str().unwrap_or_default()).unwrap();
                assert_eq!(body["type"], kind, "{name}: {body}");
            }
            None if status == 201 => {
                assert_eq!(response["body"], "Created", "{name}: {response}");
                assert_eq!(header(&response, "content-type"), Some("text/plain; charset=utf-8"), "{name}");
            }
            None => assert!(response["body"].as_str().unwrap_or_default().is_empty(), "{name}: {response}"),
        }
        if name == "cors-preflight.json" {
            assert_eq!(header(&response, "access-control-allow-origin"), Some("http://localhost:8000"));
            assert_eq!(header(&response, "access-control-allow-credentials"), Some("true"));
        }
        if status == 201 {
            published += 1;
        }
    }

    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), published, "one event per 201");
    let mut identifiers: Vec<&str> = events.iter().map(|e| e["detail"]["entity_id"].as_str().unwrap()).collect();
    identifiers.sort();
    assert_eq!(identifiers, ["customer@example.com", "second@example.com"]);

    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let request_lines: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .collect();
    assert_eq!(request_lines.len(), files.len(), "one log line per request:\n{stdout}");
    for line in &request_lines {
        assert!(line["request_id"].is_string() && line["status"].is_u64() && line["latency_us"].is_u64(), "{line}");
        assert!(line["outcome"].is_string(), "{line}");
    }
    assert!(request_lines.iter().any(|l| l["identifier"] == "c***@example.com"), "{stdout}");
    for event in &events {
        assert!(!stdout.contains(event["detail"]["token"].as_str().unwrap()), "a token reached the log");
    }
    assert!(!stdout.contains("customer@example.com") && !stdout.contains(SECRET), "{stdout}");
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_and_names_the_variable() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = failed_start(api.command(Path::new(BINARY), "reset-password").env_remove("JWT_SECRET")).await;
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
}

/// With Lambda's JSON logging on, the error that stops start-up is a JSON event like every other line.
#[tokio::test]
async fn a_start_up_error_is_one_json_error_event_under_lambdas_json_logging() {
    let api = RuntimeApi::start().await.unwrap();
    let mut command = api.command(Path::new(BINARY), "reset-password");
    let stderr = failed_start(command.env_remove("JWT_SECRET").env("AWS_LAMBDA_LOG_FORMAT", "JSON")).await;
    let event: Value =
        serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("not one JSON line ({e}): {stderr}"));
    assert_eq!(event["level"], "ERROR", "{event}");
    assert!(event["message"].as_str().is_some_and(|m| m.contains("JWT_SECRET")), "{event}");
}

#[tokio::test]
async fn a_short_secret_stops_start_up_without_showing_it() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr =
        failed_start(api.command(Path::new(BINARY), "reset-password").env("JWT_SECRET", "hunter2-hunter2")).await;
    assert!(stderr.contains("JWT_SECRET: must be at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// What the notifier must do with each sample event: the logged outcome, and the subject if sent.
fn notifier_expected(name: &str) -> (&'static str, Option<&'static str>) {
    match name {
        "valid.json" => ("sent", Some("Reset your password")),
        "locale-de.json" => ("sent", Some("Setzen Sie Ihr Passwort zurück")),
        "expired-token.json" => ("dropped_token_expired", None),
        "not-an-email.json" => ("dropped_not_an_email", None),
        "malformed-detail.json" => ("dropped_malformed_event", None),
        "password-updated.json" => ("notice_sent", Some("Your password was changed")),
        other => panic!("events/notifier/{other} has no expected outcome in this test: add one"),
    }
}

fn json_lines(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output).lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[tokio::test]
async fn every_notifier_sample_event_gets_its_expected_outcome_from_the_bootstrap() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    let api = RuntimeApi::start().await.unwrap();
    let mut child = api
        .command(Path::new(NOTIFIER), "notifier")
        .env("MAIL_FROM", &sender)
        .env("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset-password?token={token}&email={email}")
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let files = event_files("notifier");
    assert!(files.len() >= 5, "the five required notifier events exist");
    let mut expected_subjects = Vec::new();
    let mut tokens = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        if let Some(token) = event["detail"]["token"].as_str() {
            tokens.push(token.to_owned());
        }
        let answer = api.invoke(&event, Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(answer, Answer::Response(_)), "{name}: nothing here is worth a retry: {answer:?}");
        if let (_, Some(subject)) = notifier_expected(&name) {
            expected_subjects.push(subject);
        }
    }

    let messages = sent_messages(&moto_endpoint(), &sender).await;
    let mut subjects: Vec<&str> = messages.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    subjects.sort();
    expected_subjects.sort();
    assert_eq!(subjects, expected_subjects);

    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let lines: Vec<Value> = json_lines(&output.stdout).into_iter().filter(|l| l["message"] == "event").collect();
    assert_eq!(lines.len(), files.len(), "one log line per event");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let event: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let line = lines.iter().find(|l| l["event_id"] == event["id"]).unwrap_or_else(|| panic!("{name}: no log line"));
        assert_eq!(line["outcome"], notifier_expected(&name).0, "{name}: {line}");
        if line["outcome"] == "sent" {
            assert!(line["message_id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
        }
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    for token in &tokens {
        assert!(!stdout.contains(token.as_str()), "a token reached the log");
    }
    assert!(!stdout.contains("customer@example.com") && !stdout.contains("reset-password?token"), "{stdout}");
}

#[tokio::test]
async fn the_notifier_bootstrap_reports_an_error_when_ses_is_unreachable_so_lambda_retries() {
    let api = RuntimeApi::start().await.unwrap();
    let _child = api
        .command(Path::new(NOTIFIER), "notifier")
        .env("MAIL_FROM", "no-reply@shop.example.com")
        .env("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset-password?token={token}")
        .env("AWS_ENDPOINT_URL", unreachable_endpoint())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let answer = api.invoke(&read_event("notifier/valid.json"), Duration::from_secs(15)).await.unwrap();
    let Answer::Error(diagnostic) = answer else { panic!("expected an error for Lambda to retry: {answer:?}") };
    assert_eq!(diagnostic["errorType"], "NotifyError", "{diagnostic}");
}

#[tokio::test]
async fn the_notifier_refuses_to_start_without_a_link_template() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = failed_start(
        api.command(Path::new(NOTIFIER), "notifier")
            .env("MAIL_FROM", "no-reply@shop.example.com")
            .env("AUTH_PROVIDERS", "customer=emailpass;user=emailpass")
            .env("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset-password?token={token}"),
    )
    .await;
    assert!(stderr.contains("RESET_URL_TEMPLATE_USER"), "{stderr}");
}

const DEVELOPMENT_SECRET: &str = "development-only-secret--never-deploy-this-value";

#[tokio::test]
async fn the_reset_function_refuses_the_public_development_secret_naming_jwt_secret() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = failed_start(
        api.command(Path::new(BINARY), "reset-password")
            .env("JWT_SECRET", DEVELOPMENT_SECRET)
            .env("SKIP_IDENTITY_CHECK", "true")
            .env("AWS_ENDPOINT_URL", unreachable_endpoint()),
    )
    .await;
    assert!(stderr.contains("JWT_SECRET: is the public development secret"), "{stderr}");
    assert!(!stderr.contains(DEVELOPMENT_SECRET), "the value is not repeated: {stderr}");
}

#[tokio::test]
async fn the_notifier_refuses_an_http_reset_link_naming_its_variable() {
    let api = RuntimeApi::start().await.unwrap();
    let stderr = failed_start(
        api.command(Path::new(NOTIFIER), "notifier")
            .env("MAIL_FROM", "no-reply@shop.example.com")
            .env("RESET_URL_TEMPLATE_CUSTOMER", "http://shop.example.com/reset-password?token={token}")
            .env("AWS_ENDPOINT_URL", unreachable_endpoint()),
    )
    .await;
    assert!(stderr.contains("RESET_URL_TEMPLATE_CUSTOMER: must start with https://"), "{stderr}");
}

#[tokio::test]
async fn development_mode_accepts_the_development_defaults_and_says_so_at_start_up() {
    let api = RuntimeApi::start().await.unwrap();
    let mut child = api
        .command(Path::new(BINARY), "reset-password")
        .env("DEVELOPMENT_MODE", "true")
        .env("JWT_SECRET", DEVELOPMENT_SECRET)
        .env("SKIP_IDENTITY_CHECK", "true")
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let answer = api.invoke(&read_event("reset-password/valid.json"), Duration::from_secs(10)).await.unwrap();
    let Answer::Response(response) = answer else { panic!("the function answers: {answer:?}") };
    assert_eq!(response["statusCode"], 201, "{response}");
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let warning = json_lines(&output.stdout).into_iter().find(|line| {
        line["level"] == "WARN" && line["message"].as_str().is_some_and(|m| m.starts_with("DEVELOPMENT_MODE=true"))
    });
    assert!(warning.is_some(), "{}", String::from_utf8_lossy(&output.stdout));
}
