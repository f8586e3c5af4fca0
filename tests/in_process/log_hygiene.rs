//! Every outcome of both functions, with the real JSON log lines captured: no line may hold a
//! token, a reset link, the signing secret or an identifier in clear, and every outcome label the
//! code can log (read from its source, so a new one cannot go unnoticed) must have occurred.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::medusa_db::settings_for;
use crate::support::{
    Logs, ROUTE, SECRET, TestApp, api_config, notifier_config, post_json, sdk_config_for, serve, unreachable_endpoint,
};
use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use medusa_reset::aws::seal::KmsOpener;
use medusa_reset::domain::event::{AuthEvent, EventSubject, PasswordResetEvent, PasswordUpdatedEvent};
use medusa_reset::domain::token::{RESET_PURPOSE, ResetClaims, ResetToken};
use medusa_reset::identity::{MemoryIdentityStore, PostgresIdentityStore};
use medusa_reset::mail::{OutboxMailer, SesMailer};
use medusa_reset::notify::Inbound;
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::ratelimit::{DynamoDbRateLimiter, Limits};
use serde_json::{Value, json};

const VICTIM: &str = "victim.person@example.com";
const SENDER: &str = "no-reply@shop.example.com";
const ORIGIN: &str = "https://shop.example.com";

/// Outcomes no test can reach, each with the reason.
const UNREACHABLE: [(&str, &str); 2] = [
    ("mint_failed", "HS256 signing with an in-memory key cannot fail, and the route's clock cannot be set before 1970"),
    ("hash_failed", "only the system's random generator or a panic in scrypt could fail it"),
];

/// The new password the update outcomes send: it must reach no log line.
const NEW_PASSWORD: &str = "new-password-never-logged";

/// Every outcome label the two functions can log, read from the outcome types' `label` methods.
fn outcome_labels() -> BTreeSet<String> {
    let source = |path: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    // The bodies of every `fn label` (each up to the next line that closes a method): the outcome
    // types label themselves.
    let label_bodies = |text: &str| -> Vec<String> {
        let starts = text.match_indices("fn label(").map(|(start, _)| start);
        starts
            .map(|start| text[start..].find("\n    }\n").map_or(&text[start..], |end| &text[start..start + end]))
            .map(str::to_owned)
            .collect()
    };
    let quoted = regex_lite::Regex::new(r#""([a-z_]+)""#).unwrap();
    let mut labels = BTreeSet::new();
    for path in ["src/api/error.rs", "src/reset/mod.rs", "src/update/mod.rs", "src/notify/notifier.rs"] {
        for body in label_bodies(&source(path)) {
            labels.extend(quoted.captures_iter(&body).map(|c| c[1].to_owned()));
        }
    }
    assert!(source("src/api/request_log.rs").contains("\"preflight\""), "the request log labels preflights");
    labels.insert("preflight".to_owned());
    labels
}

/// A token as the route signs them (same secret), with the claims given.
fn token_for(entity_id: &str, actor_type: &str, exp: u64) -> String {
    let claims = ResetClaims {
        entity_id: entity_id.to_owned(),
        provider: "emailpass".to_owned(),
        actor_type: actor_type.to_owned(),
        purpose: RESET_PURPOSE.to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: exp.saturating_sub(900),
        exp,
        iss: None,
        aud: None,
        locale: None,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Drives the reset route through each of its outcomes; returns every token it minted.
async fn every_reset_outcome() -> Vec<String> {
    // The default identifier limits; six requests per client, so the seventh well-formed one is a 429.
    let config = api_config(&[
        ("RATE_LIMIT_PER_IDENTIFIER", "1/60,5/3600"),
        ("RATE_LIMIT_PER_IP", "6/300"),
        ("AUTH_CORS", ORIGIN),
    ]);
    let store = MemoryIdentityStore::with_identities([(VICTIM, "emailpass")]);
    let (app, mut events) = TestApp::with_channel(&config, store);
    let body = format!(r#"{{"identifier":"{VICTIM}","metadata":{{"note":"{VICTIM}"}}}}"#);
    app.post(ROUTE, &body).await; // token published
    app.post(ROUTE, &body).await; // identifier rate-limited
    app.reset("nobody.else@example.com").await; // unknown identity
    app.send(post_json(ROUTE, &format!(r#"{{"identifier":"{VICTIM}","x":1}}"#))).await; // invalid data
    app.send(post_json(ROUTE, &format!(r#"{{"identifier":"{VICTIM}""#))).await; // malformed
    app.post("/auth/customer/github/reset-password", &body).await; // not allowed
    let form = Request::post(ROUTE).header("content-type", "text/plain").body(Body::from(body.clone())).unwrap();
    app.send(form).await; // unsupported content type
    app.send(post_json(ROUTE, &format!(r#"{{"identifier":"{VICTIM}","pad":"{}"}}"#, "x".repeat(10_000)))).await; // too large
    app.post("/nowhere", &body).await; // not found
    app.send(Request::get(ROUTE).body(Body::empty()).unwrap()).await; // method not allowed
    let preflight = Request::options(ROUTE)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty())
        .unwrap();
    let (answer, _) = app.send(preflight).await;
    assert!(answer.status().is_success(), "the preflight is answered: {}", answer.status());
    for n in 0..3 {
        app.reset(&format!("victim{n}@example.com")).await;
    }
    app.reset("victim9@example.com").await; // IP rate-limited
    let mut tokens = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let AuthEvent::PasswordReset(event) = event {
            tokens.push(event.token.expose().to_owned());
        }
    }

    let (unpublishable, events) = TestApp::with_channel(&config, MemoryIdentityStore::open());
    drop(events);
    unpublishable.reset("victim.two@example.com").await; // publish failure

    // A database and a rate limiter that cannot be reached.
    let down = unreachable_endpoint().replace("http://", "postgres://medusa:db-password@") + "/medusa?sslmode=disable";
    let database = PostgresIdentityStore::new(settings_for(&down));
    let (broken_db, _events) = TestApp::with_channel(&config, database);
    broken_db.post(ROUTE, &body).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk_config_for(&unreachable_endpoint()).await);
    let (publisher, _events) = ChannelPublisher::new();
    let limiter = DynamoDbRateLimiter::new(dynamo, "limits".into(), Limits::default());
    let broken_limiter = TestApp::with_limiter(&config, publisher, MemoryIdentityStore::open(), limiter);
    broken_limiter.post(ROUTE, &body).await;
    tokens
}

/// Every outcome of the update route but the unreachable, each sending `NEW_PASSWORD`; returns the
/// tokens it used.
async fn every_update_outcome() -> Vec<String> {
    // Without a database the update route is served in development only.
    let config = api_config(&[("RATE_LIMIT_UPDATE_PER_IP", "6/300"), ("DEVELOPMENT_MODE", "true")]);
    let token = token_for(VICTIM, "customer", unix_now() + 900);
    let bearer = format!("Bearer {token}");
    let body = format!(r#"{{"password":"{NEW_PASSWORD}"}}"#);
    let (app, _events) = TestApp::with_channel(&config, MemoryIdentityStore::open());
    app.update_as("customer", Some(&bearer), &body).await; // password changed
    app.update_as("customer", Some("Bearer not-a-token"), &body).await; // invalid token
    app.update_as("customer", Some(&bearer), "{}").await; // no password
    for _ in 0..4 {
        app.update_as("customer", Some(&bearer), &body).await; // the last one IP rate-limited
    }
    let (unpublishable, events) = TestApp::with_channel(&config, MemoryIdentityStore::open());
    drop(events);
    unpublishable.update_as("customer", Some(&bearer), &body).await; // changed, notice unpublished

    let down = unreachable_endpoint().replace("http://", "postgres://medusa:db-password@") + "/medusa?sslmode=disable";
    let (broken_db, _events) = TestApp::with_channel(&config, PostgresIdentityStore::new(settings_for(&down)));
    broken_db.update_as("customer", Some(&bearer), &body).await; // database failed
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk_config_for(&unreachable_endpoint()).await);
    let (publisher, _events) = ChannelPublisher::new();
    let limiter = DynamoDbRateLimiter::new(dynamo, "limits".into(), Limits::default());
    let broken_limiter = TestApp::with_limiter(&config, publisher, MemoryIdentityStore::open(), limiter);
    broken_limiter.update_as("customer", Some(&bearer), &body).await; // rate limiter failed
    vec![token]
}

/// An SES v2 stand-in that rejects every message, quoting the recipient as SES does.
async fn rejecting_ses() -> String {
    let app = Router::new().route(
        "/v2/email/outbound-emails",
        post(|| async {
            let message = format!("Email address is not verified. The following identities failed the check: {VICTIM}");
            (
                StatusCode::BAD_REQUEST,
                [("x-amzn-errortype", "MessageRejected"), ("content-type", "application/json")],
                json!({ "message": message }).to_string(),
            )
        }),
    );
    serve(app).await
}

/// An SES v2 stand-in whose account has used up its daily sending quota.
async fn quota_spent_ses() -> String {
    let app = Router::new().route(
        "/v2/email/outbound-emails",
        post(|| async {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("x-amzn-errortype", "TooManyRequestsException"), ("content-type", "application/json")],
                json!({ "message": "Daily message quota exceeded." }).to_string(),
            )
        }),
    );
    serve(app).await
}

/// Drives the notifier through each of its outcomes with `token` (the route's, for `VICTIM`);
/// returns the further tokens it made up.
async fn every_notifier_outcome(token: &str) -> Vec<String> {
    let event = |entity_id: &str, token: &str| PasswordResetEvent {
        about: EventSubject {
            entity_id: entity_id.to_owned(),
            actor_type: "customer".to_owned(),
            provider: "emailpass".to_owned(),
        },
        token: ResetToken::new(token.to_owned()),
        metadata: None,
    };
    let envelope = |detail_type: &str, detail: Value| json!({"id": "e1", "detail-type": detail_type, "source": "medusa.auth", "detail": detail});
    // As `make run`'s bus hands its events over.
    let local = |id: &str, event: PasswordResetEvent| Inbound::Local { id: id.to_owned(), event: event.into() };
    let expired = token_for(VICTIM, "customer", unix_now() - 60);
    let for_user = token_for(VICTIM, "user", unix_now() + 900);
    let for_someone_else = token_for("someone.else@example.com", "customer", unix_now() + 900);

    let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let config = notifier_config(SENDER, &[]);
    let sender = config.sender.clone();
    let notifier =
        medusa_reset::app::wiring::notifier(config, OutboxMailer::new(outbox.clone(), sender.clone()).unwrap(), None);
    notifier.handle(local("sent", event(VICTIM, token)), SystemTime::now()).await.outcome.unwrap();
    // The same token: a duplicate.
    notifier.handle(local("redelivered", event(VICTIM, token)), SystemTime::now()).await.outcome.unwrap();
    notifier
        .handle(local("not-an-email", event(&format!("{VICTIM}\r\nBcc: x@y.z"), token)), SystemTime::now())
        .await
        .outcome
        .unwrap();
    notifier.handle(local("unreadable", event(VICTIM, "garbage")), SystemTime::now()).await.outcome.unwrap();
    notifier.handle(local("expired", event(VICTIM, &expired)), SystemTime::now()).await.outcome.unwrap();
    let mut admin = event(VICTIM, &for_user);
    admin.about.actor_type = "user".to_owned();
    notifier.handle(local("no-link", admin), SystemTime::now()).await.outcome.unwrap();
    let moved = serde_json::to_value(event(VICTIM, &for_someone_else)).unwrap();
    notifier.handle(envelope("auth.password_reset", moved), SystemTime::now()).await.outcome.unwrap();
    notifier
        .handle(envelope("auth.password_reset", json!({"entity_id": VICTIM})), SystemTime::now())
        .await
        .outcome
        .unwrap();
    let well_formed = serde_json::to_value(event(VICTIM, token)).unwrap();
    notifier.handle(envelope("auth.password_reset_unknown", well_formed), SystemTime::now()).await.outcome.unwrap();
    let sealed = json!({"entity_id": VICTIM, "actor_type": "customer", "provider": "emailpass",
        "subject": "ab12", "jti": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "encrypted_token": "AQID"});
    notifier.handle(envelope("auth.password_reset", sealed), SystemTime::now()).await.outcome.unwrap();
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1, "only the valid event was sent, and only once");
    let _ = std::fs::remove_dir_all(&outbox);

    // A template that fails only on some metadata: the cold-start check passes, this event fails.
    let templates = std::env::temp_dir().join(format!("templates-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(templates.join("en")).unwrap();
    std::fs::write(templates.join("en/body.txt"), "{% if metadata %}{{ metadata.shop.name }}{% endif %}{{ link }}")
        .unwrap();
    let config = notifier_config(SENDER, &[("TEMPLATE_DIR", &templates.display().to_string())]);
    let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let rendering =
        medusa_reset::app::wiring::notifier(config, OutboxMailer::new(outbox.clone(), sender.clone()).unwrap(), None);
    let mut with_metadata = serde_json::to_value(event(VICTIM, token)).unwrap();
    with_metadata["metadata"] = json!({"note": VICTIM});
    rendering.handle(envelope("auth.password_reset", with_metadata), SystemTime::now()).await.outcome.unwrap();
    let _ = std::fs::remove_dir_all(&templates);
    let _ = std::fs::remove_dir_all(&outbox);

    let config = notifier_config(SENDER, &[]);
    let ses = aws_sdk_sesv2::Client::new(&sdk_config_for(&rejecting_ses().await).await);
    let rejecting = medusa_reset::app::wiring::notifier(config, SesMailer::new(ses, sender.clone(), None), None);
    rejecting.handle(local("rejected", event(VICTIM, token)), SystemTime::now()).await.outcome.unwrap();

    // Sealing on: a plain token on the bus is not the route's. (No KMS call is made for it.)
    let config = notifier_config(SENDER, &[]);
    let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let kms = aws_sdk_kms::Client::new(&sdk_config_for(&unreachable_endpoint()).await);
    let mailer = OutboxMailer::new(outbox.clone(), sender.clone()).unwrap();
    let sealing =
        medusa_reset::app::wiring::notifier(config, mailer, Some(KmsOpener::new(kms, "alias/reset".to_owned())));
    let plain = serde_json::to_value(event(VICTIM, token)).unwrap();
    sealing.handle(envelope("auth.password_reset", plain), SystemTime::now()).await.outcome.unwrap();
    let _ = std::fs::remove_dir_all(&outbox);

    let config = notifier_config(SENDER, &[]);
    let ses = aws_sdk_sesv2::Client::new(&sdk_config_for(&unreachable_endpoint()).await);
    let failing = medusa_reset::app::wiring::notifier(config, SesMailer::new(ses, sender.clone(), None), None);
    assert!(failing.handle(local("ses-down", event(VICTIM, token)), SystemTime::now()).await.outcome.is_err());

    let config = notifier_config(SENDER, &[]);
    let ses = aws_sdk_sesv2::Client::new(&sdk_config_for(&quota_spent_ses().await).await);
    let parking = medusa_reset::app::wiring::notifier(config, SesMailer::new(ses, sender, None), None);
    assert!(parking.handle(local("daily-quota", event(VICTIM, token)), SystemTime::now()).await.outcome.is_err());
    vec![expired, for_user, for_someone_else]
}

/// Drives the notifier through each outcome of a password-changed notice for `VICTIM`.
async fn every_notice_outcome() {
    let updated = |entity_id: &str, metadata: Value| {
        let detail =
            json!({"entity_id": entity_id, "actor_type": "customer", "provider": "emailpass", "metadata": metadata});
        serde_json::from_value::<PasswordUpdatedEvent>(detail).unwrap()
    };
    let envelope = |id: Value, detail: Value| json!({"id": id, "detail-type": "auth.password_updated", "source": "medusa.auth", "detail": detail});
    let local = |id: &str, event: PasswordUpdatedEvent| Inbound::Local { id: id.to_owned(), event: event.into() };
    let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let config = notifier_config(SENDER, &[]);
    let sender = config.sender.clone();
    let notifier =
        medusa_reset::app::wiring::notifier(config, OutboxMailer::new(outbox.clone(), sender.clone()).unwrap(), None);
    notifier.handle(local("notice-sent", updated(VICTIM, json!({}))), SystemTime::now()).await.outcome.unwrap();
    notifier.handle(local("notice-sent", updated(VICTIM, json!({}))), SystemTime::now()).await.outcome.unwrap();
    let malformed = envelope(json!("notice-malformed"), json!({"entity_id": VICTIM}));
    notifier.handle(malformed, SystemTime::now()).await.outcome.unwrap();
    let unaddressable = updated(&format!("{VICTIM}\r\nBcc: x@y.z"), json!({}));
    notifier.handle(local("notice-not-an-email", unaddressable), SystemTime::now()).await.outcome.unwrap();
    let without_id = envelope(Value::Null, serde_json::to_value(updated(VICTIM, json!({}))).unwrap());
    notifier.handle(without_id, SystemTime::now()).await.outcome.unwrap();
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1, "only the first notice was sent");
    let _ = std::fs::remove_dir_all(&outbox);

    // A notice template that fails only on some metadata: the cold-start check passes, this event fails.
    let templates = std::env::temp_dir().join(format!("templates-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(templates.join("notice/en")).unwrap();
    std::fs::write(templates.join("notice/en/body.txt"), "{% if metadata %}{{ metadata.shop.name }}{% endif %}")
        .unwrap();
    let config = notifier_config(SENDER, &[("TEMPLATE_DIR", &templates.display().to_string())]);
    let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
    let rendering =
        medusa_reset::app::wiring::notifier(config, OutboxMailer::new(outbox.clone(), sender.clone()).unwrap(), None);
    let with_metadata = updated(VICTIM, json!({"note": VICTIM}));
    rendering.handle(local("notice-render", with_metadata), SystemTime::now()).await.outcome.unwrap();
    let _ = std::fs::remove_dir_all(&templates);
    let _ = std::fs::remove_dir_all(&outbox);

    for (id, ses) in [("notice-rejected", rejecting_ses().await), ("notice-ses-down", unreachable_endpoint())] {
        let config = notifier_config(SENDER, &[]);
        let ses = aws_sdk_sesv2::Client::new(&sdk_config_for(&ses).await);
        let notifier = medusa_reset::app::wiring::notifier(config, SesMailer::new(ses, sender.clone(), None), None);
        notifier.handle(local(id, updated(VICTIM, json!({}))), SystemTime::now()).await;
    }
    let config = notifier_config(SENDER, &[]);
    let ses = aws_sdk_sesv2::Client::new(&sdk_config_for(&quota_spent_ses().await).await);
    let parking = medusa_reset::app::wiring::notifier(config, SesMailer::new(ses, sender, None), None);
    let parked = parking.handle(local("notice-daily-quota", updated(VICTIM, json!({}))), SystemTime::now()).await;
    assert!(parked.outcome.is_err());
}

#[tokio::test]
async fn no_log_line_of_any_outcome_holds_a_token_a_secret_or_an_identifier() {
    let (capture, _guard) = Logs::capture();

    let mut tokens = every_reset_outcome().await;
    assert_eq!(tokens.len(), 1, "only the known identity's first request earns a token");
    tokens.extend(every_update_outcome().await);
    let made_up = every_notifier_outcome(&tokens[0]).await;
    every_notice_outcome().await;
    tokens.extend(made_up);
    tokio::time::sleep(Duration::from_millis(10)).await;

    let log = capture.text();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    let seen: BTreeSet<String> = lines.iter().filter_map(|l| l["outcome"].as_str().map(str::to_owned)).collect();

    let labels = outcome_labels();
    assert!(labels.len() >= 25, "the label scan found too few: {labels:?}");
    for label in &labels {
        if UNREACHABLE.iter().any(|(unreachable, _)| unreachable == label) {
            continue;
        }
        assert!(seen.contains(label), "outcome `{label}` was never reached; seen: {seen:?}");
    }
    let unknown: Vec<&String> = seen.difference(&labels).collect();
    assert!(unknown.is_empty(), "outcomes logged that the code does not list: {unknown:?}");

    let identifiers = [
        VICTIM,
        "victim.two@example.com",
        "nobody.else@example.com",
        "someone.else@example.com",
        "victim0@example.com",
        "victim9@example.com",
    ];
    for (number, line) in log.lines().enumerate() {
        for token in &tokens {
            let signature = token.rsplit('.').next().unwrap();
            assert!(!line.contains(signature), "a token reached log line {number}: {line}");
        }
        for forbidden in
            [SECRET, NEW_PASSWORD, "db-password", "reset-password?token=", "token="].iter().chain(&identifiers)
        {
            assert!(!line.contains(forbidden), "`{forbidden}` reached log line {number}: {line}");
        }
    }

    // Each line says what it should, masked: the request log and the notifier's line.
    let published = lines.iter().find(|l| l["outcome"] == "token_published").unwrap();
    assert_eq!(published["identifier"], "v***@example.com");
    assert_eq!((published["status"].as_u64(), published["method"].as_str()), (Some(201), Some("POST")));
    assert!(published["latency_us"].is_u64() && published["route"].is_string(), "{published}");
    let sent = lines.iter().find(|l| l["outcome"] == "sent").unwrap();
    assert_eq!(sent["recipient"], "v***@example.com");
    assert!(sent["event_id"] == "sent" && sent["message_id"].is_string(), "{sent}");
    let rejected = lines.iter().find(|l| l["outcome"] == "dropped_rejected").unwrap();
    assert!(
        rejected["cause"].as_str().unwrap().contains("v***@example.com"),
        "the quoted address is masked: {rejected}"
    );
}

/// The template's `RateLimitedRequests` metric counts the rate-limited outcomes of the
/// real log lines, and nothing else.
#[tokio::test]
async fn the_rate_limit_metric_filter_matches_the_rate_limited_log_lines() {
    let template =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml")).unwrap();
    let metric = template.find("MetricName: RateLimitedRequests").expect("the metric is in the template");
    let filter = template[..metric].rfind("FilterPattern:").expect("a filter pattern");
    let pattern = regex_lite::Regex::new(r#"\{ \$\.(\w+) = "([a-z_]+)\*" \}"#).unwrap();
    let found = pattern.captures(&template[filter..metric]).expect("a `{ $.field = \"prefix*\" }` pattern");
    let (field, prefix) = (found[1].to_owned(), found[2].to_owned());

    let (capture, _guard) = Logs::capture();
    let config = api_config(&[("RATE_LIMIT_PER_IDENTIFIER", "1/60"), ("RATE_LIMIT_PER_IP", "3/300")]);
    let (app, _events) = TestApp::with_channel(&config, MemoryIdentityStore::open());
    for identifier in ["a@example.com", "a@example.com", "b@example.com", "c@example.com"] {
        app.reset(identifier).await;
    }
    let matched: Vec<String> = capture
        .text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|l| l[field.as_str()].as_str().map(str::to_owned))
        .filter(|value| value.starts_with(&prefix))
        .collect();
    assert_eq!(matched, ["rate_limited_identifier", "rate_limited_ip"]);
}
