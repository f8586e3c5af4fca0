//! Shared test support: the real parts tests use (moto, the compiled binaries, an independent JWT
//! verifier) and small helpers to drive the router in-process.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod aws_fixtures;
pub mod faults;
pub mod local_runner;
pub mod medusa;
pub mod medusa_db;
pub mod pgbouncer;
pub mod runtime_api;
pub mod tls_front;

use std::path::PathBuf;
use std::process::Command;

use aws_config::{Region, SdkConfig};
use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use http_body_util::BodyExt;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::IdentityStore;
use medusa_reset::publish::EventPublisher;
use medusa_reset::ratelimit::MemoryRateLimiter;
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// The customer reset link the tests' notifiers are configured with.
pub const LINK_TEMPLATE: &str = "https://shop.example.com/reset-password?token={token}&email={email}";

/// The compiled notifier under `api` as Lambda runs it: sending as `sender` through moto's SES,
/// claiming in `table`, logging JSON, output captured. Callers add what differs and spawn it.
pub fn notifier_command(api: &runtime_api::RuntimeApi, sender: &str, table: &str) -> tokio::process::Command {
    let mut command = api.command(std::path::Path::new(env!("CARGO_BIN_EXE_notifier")), "notifier");
    command
        .env("MAIL_FROM", sender)
        .env("RESET_URL_TEMPLATE_CUSTOMER", LINK_TEMPLATE)
        .env("IDEMPOTENCY_TABLE", table)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// The moto server `make test` started (`MOTO_ENDPOINT`); tests that need AWS fail loudly without it.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .unwrap_or_else(|_| panic!("MOTO_ENDPOINT is not set: run these tests with `make test`, which starts moto"))
}

/// SDK configuration pointing at moto with dummy credentials.
pub async fn moto_sdk_config() -> SdkConfig {
    sdk_config_for(&moto_endpoint()).await
}

/// The project's SDK settings against any local endpoint (moto, or a stub a test runs).
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    medusa_reset::aws::defaults()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// The API configuration of the tests: the Lambda profile with the test secret, rate limits high
/// enough not to interfere (tests of the limits set their own), the identity check skipped unless a
/// database is given, and the given overrides.
pub fn api_config(overrides: &[(&str, &str)]) -> ApiConfig {
    let has_database =
        overrides.iter().any(|(k, _)| matches!(*k, "MEDUSA_DATABASE_URL" | "MEDUSA_DATABASE_SECRET_ARN"));
    let lookup = |var: &str| {
        overrides.iter().find(|(k, _)| *k == var).map(|(_, v)| v.to_string()).or_else(|| match var {
            "JWT_SECRET" => Some(SECRET.to_owned()),
            "RATE_LIMIT_PER_IDENTIFIER" | "RATE_LIMIT_PER_IP" => Some("1000/60".to_owned()),
            // Without Medusa's database the check must be skipped explicitly, as on Lambda.
            "SKIP_IDENTITY_CHECK" if !has_database => Some("true".to_owned()),
            _ => None,
        })
    };
    ApiConfig::from_vars(Profile::Lambda, &Vars::new(lookup)).expect("test configuration is valid")
}

/// The database settings of a configuration given `MEDUSA_DATABASE_URL`.
pub fn database_settings(config: &ApiConfig) -> medusa_reset::identity::DatabaseSettings {
    match &config.database {
        Some(medusa_reset::aws::secrets::DatabaseSource::Url(settings)) => (**settings).clone(),
        other => panic!("the test configuration has no MEDUSA_DATABASE_URL: {other:?}"),
    }
}

/// The router for a test configuration, with the test secret and an in-memory rate limiter.
pub fn app<P: EventPublisher, S: IdentityStore>(config: &ApiConfig, publisher: P, store: S) -> Router {
    let secret = SigningSecret::parse(SECRET).expect("a long enough secret");
    medusa_reset::app::wiring::app(
        config,
        &secret,
        publisher,
        store,
        MemoryRateLimiter::new(config.limits.limits.clone()),
    )
}

/// Sends one request through the router in-process and returns status, headers and body text.
pub async fn send(app: &Router, request: Request<Body>) -> (Response<()>, String) {
    let response = app.clone().oneshot(request).await.expect("the router never fails");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body collects").to_bytes();
    (Response::from_parts(parts, ()), String::from_utf8_lossy(&bytes).into_owned())
}

pub fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.to_owned())).unwrap()
}

/// The project's Python with PyJWT (`make test` creates `.venv`); `PYTHON` overrides it.
fn python() -> PathBuf {
    std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// Verifies a token with PyJWT, a verifier independent of the code that minted it: signature,
/// algorithm, expiry and the presence of Medusa's claims. Returns the claims, or PyJWT's complaint.
pub fn verify_independently(token: &str, secret: &str, audience: Option<&str>) -> Result<Value, String> {
    const SCRIPT: &str = r#"
import json, sys, jwt
token, secret, audience = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=audience,
        options={"require": ["exp", "iat", "jti", "entity_id", "actor_type", "provider"]})
except jwt.PyJWTError as e:
    print(type(e).__name__ + ": " + str(e)); sys.exit(1)
print(json.dumps(claims))
"#;
    let output = Command::new(python())
        .args(["-c", SCRIPT, token, secret, audience.unwrap_or("")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run `make test`, which creates .venv): {e}", python().display()));
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(serde_json::from_str(&stdout).expect("PyJWT prints JSON claims"))
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)))
    }
}

/// A free loopback port: free when asked, so whoever binds it next must do so soon.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// An address on 127.0.0.1 where nothing listens: the port's listener is gone before it is used.
pub fn unreachable_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Serves a stub on a free 127.0.0.1 port for the rest of the test; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the stub serves") });
    address
}

/// A sample event from `events/`, e.g. `read_event("notifier/valid.json")`.
pub fn read_event(relative: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events").join(relative);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs a bootstrap that must refuse to start: asserts it exits non-zero within 10 s and returns
/// what it printed to standard error.
pub async fn failed_start(command: &mut tokio::process::Command) -> String {
    let output = tokio::time::timeout(std::time::Duration::from_secs(10), command.output())
        .await
        .expect("start-up ends within 10 s")
        .expect("the bootstrap runs");
    assert!(!output.status.success(), "the bootstrap started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}
