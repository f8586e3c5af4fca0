//! Every outcome of both functions, with the real JSON log lines captured: no line may hold a
//! token, a reset link, the signing secret or an identifier in clear.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::Request;
use medusa_reset::config::{NotifierConfig, Profile, Vars};
use medusa_reset::domain::event::{AuthEvent, PasswordResetEvent};
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::{DatabaseSettings, MedusaDatabase, MemoryStore};
use medusa_reset::mail::{OutboxMailer, SesMailer};
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::ratelimit::{DynamoLimiter, Limits, MemoryLimiter};
use medusa_reset::telemetry::{self, LogSettings};
use support::{SECRET, api_config, post_json, sdk_config_for, send, unreachable_endpoint};

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn json_logs() -> LogSettings {
    let vars = Vars::new(|var: &str| (var == "LOG_FORMAT").then(|| "json".to_owned()));
    LogSettings::from_vars(Profile::Lambda, &vars).unwrap()
}

const VICTIM: &str = "victim.person@example.com";

/// Drives the reset route through each of its outcomes; returns every token it minted.
async fn every_reset_outcome() -> Vec<String> {
    let secret = SigningSecret::parse(SECRET).unwrap();
    // The default identifier limits; six requests per client, so the seventh well-formed one is a 429.
    let config = api_config(&[("RATE_LIMIT_PER_IDENTIFIER", "1/60,5/3600"), ("RATE_LIMIT_PER_IP", "6/300")]);
    let limiter = || MemoryLimiter::new(config.limits.limits.clone());
    let (publisher, mut events) = ChannelPublisher::new();
    let store = MemoryStore::with_identities([(VICTIM, "emailpass")]);
    let app = medusa_reset::api::app(&config, &secret, publisher, store, limiter());
    let route = "/auth/customer/emailpass/reset-password";
    let body = format!(r#"{{"identifier":"{VICTIM}","metadata":{{"note":"{VICTIM}"}}}}"#);
    send(&app, post_json(route, &body)).await; // token published
    send(&app, post_json(route, &body)).await; // identifier rate-limited
    send(&app, post_json(route, r#"{"identifier":"nobody.else@example.com"}"#)).await; // unknown identity
    send(&app, post_json(route, &format!(r#"{{"identifier":"{VICTIM}","x":1}}"#))).await; // invalid data
    send(&app, post_json(route, &format!(r#"{{"identifier":"{VICTIM}""#))).await; // malformed
    send(&app, post_json("/auth/customer/github/reset-password", &body)).await; // not allowed
    let form = Request::post(route).header("content-type", "text/plain").body(Body::from(body.clone())).unwrap();
    send(&app, form).await; // unsupported content type
    send(&app, post_json(route, &"x".repeat(10_000))).await; // too large
    send(&app, post_json("/nowhere", &body)).await; // not found
    send(&app, Request::get(route).body(Body::empty()).unwrap()).await; // method not allowed
    for n in 0..3 {
        send(&app, post_json(route, &format!(r#"{{"identifier":"victim{n}@example.com"}}"#))).await;
    }
    send(&app, post_json(route, r#"{"identifier":"victim9@example.com"}"#)).await; // IP rate-limited
    let mut tokens = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let AuthEvent::PasswordReset(event) = event {
            tokens.push(event.token.expose().to_owned());
        }
    }

    let (publisher, events) = ChannelPublisher::new();
    drop(events);
    let unpublishable = medusa_reset::api::app(&config, &secret, publisher, MemoryStore::open(), limiter());
    send(&unpublishable, post_json(route, r#"{"identifier":"victim.two@example.com"}"#)).await; // publish failure

    // A database and a rate limiter that cannot be reached.
    let down = unreachable_endpoint().replace("http://", "postgres://medusa:db-password@") + "/medusa?sslmode=disable";
    let url = down.clone();
    let vars = Vars::new(move |var: &str| (var == "MEDUSA_DATABASE_URL").then(|| url.clone()));
    let database = MedusaDatabase::new(DatabaseSettings::from_vars(&vars).unwrap().unwrap());
    let (publisher, _events) = ChannelPublisher::new();
    let broken_db = medusa_reset::api::app(&config, &secret, publisher, database, limiter());
    send(&broken_db, post_json(route, &body)).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk_config_for(&unreachable_endpoint()).await);
    let (publisher, _events) = ChannelPublisher::new();
    let limiter = DynamoLimiter::new(dynamo, "limits".into(), Limits::default());
    let broken_limiter = medusa_reset::api::app(&config, &secret, publisher, MemoryStore::open(), limiter);
    send(&broken_limiter, post_json(route, &body)).await;
    tokens
}

/// Drives the notifier through each of its outcomes with `token`.
async fn every_notifier_outcome(token: &str) {
    let vars = Vars::new(|var: &str| match var {
        "MAIL_FROM" => Some("no-reply@shop.example.com".to_owned()),
        "RESET_URL_TEMPLATE_CUSTOMER" => Some("https://shop.example.com/reset?token={token}&email={email}".to_owned()),
        _ => None,
    });
    let event = |entity_id: &str| PasswordResetEvent {
        entity_id: entity_id.to_owned(),
        actor_type: "customer".to_owned(),
        provider: "emailpass".to_owned(),
        token: medusa_reset::domain::token::ResetToken::new(token.to_owned()),
        metadata: None,
    };
    let envelope = |detail: serde_json::Value| serde_json::json!({"id": "e1", "detail-type": "auth.password_reset", "source": "medusa.auth", "detail": detail});
    let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let config = NotifierConfig::from_vars(Profile::Lambda, &vars).unwrap();
    let sender = config.sender.clone();
    let notifier = config.into_notifier(OutboxMailer::new(outbox.clone(), sender.clone()).unwrap());
    notifier.handle("sent", &event(VICTIM)).await.unwrap();
    notifier.handle("not-an-email", &event("victim.person@example.com\r\nBcc: x@y.z")).await.unwrap();
    let mut expired = event(VICTIM);
    expired.token = medusa_reset::domain::token::ResetToken::new("e30.eyJleHAiOjF9.c2ln".into());
    notifier.handle("expired", &expired).await.unwrap();
    notifier.handle_envelope(envelope(serde_json::json!({"entity_id": VICTIM}))).await.unwrap();
    let _ = std::fs::remove_dir_all(&outbox);

    let config = NotifierConfig::from_vars(Profile::Lambda, &vars).unwrap();
    let ses = aws_sdk_sesv2::Client::new(&sdk_config_for(&unreachable_endpoint()).await);
    let failing = config.into_notifier(SesMailer::new(ses, sender, None));
    assert!(failing.handle("ses-down", &event(VICTIM)).await.is_err());
}

#[tokio::test]
async fn no_log_line_of_any_outcome_holds_a_token_a_secret_or_an_identifier() {
    let capture = Capture::default();
    let writer = capture.clone();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(&json_logs(), move || writer.clone()));

    let tokens = every_reset_outcome().await;
    assert_eq!(tokens.len(), 1, "only the known identity's first request earns a token");
    every_notifier_outcome(&tokens[0]).await;
    tokio::time::sleep(Duration::from_millis(10)).await;

    let log = capture.text();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    for expected in [
        "token_published",
        "rate_limited_identifier",
        "unknown_identity",
        "invalid_data",
        "malformed_body",
        "not_allowed",
        "unsupported_content_type",
        "body_too_large",
        "not_found",
        "method_not_allowed",
        "rate_limited_ip",
        "publish_failed",
        "database_failed",
        "rate_limiter_failed",
        "sent",
        "dropped_not_an_email",
        "dropped_token_expired",
        "dropped_malformed_event",
        "failed_will_retry",
    ] {
        assert!(outcomes.contains(&expected), "no `{expected}` line in:\n{log}");
    }
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "a token reached the log");
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token's signature reached the log");
    }
    for forbidden in
        [SECRET, VICTIM, "victim.two@example.com", "nobody.else@example.com", "db-password", "reset?token="]
    {
        assert!(!log.contains(forbidden), "`{forbidden}` reached the log:\n{log}");
    }
    assert!(log.contains("v***@example.com"), "identifiers appear masked");
}
