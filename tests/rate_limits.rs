//! Rate limits against moto's DynamoDB: boundaries, concurrency, rolling windows, independence,
//! and failing closed; and through the route, what a client sees.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use medusa_reset::domain::event::AuthEvent;
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MemoryStore;
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::ratelimit::{DynamoLimiter, Limit, Limits, RateLimiter, Subject, Verdict};
use serde_json::Value;
use support::aws_fixtures::rate_limit_table;
use support::{SECRET, api_config, moto_sdk_config, post_json, sdk_config_for, send, unreachable_endpoint};
use tokio::sync::mpsc::UnboundedReceiver;

const ROUTE: &str = "/auth/customer/emailpass/reset-password";
/// A multiple of 3600 (and so of 300 and 60): every window starts at this second.
const WINDOWS_START: u64 = 1_800_000_000;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn subject(ip: &str, identifier: &str) -> Subject {
    Subject::new(ip, "customer", "emailpass", identifier)
}

async fn limiter(limits: Limits) -> DynamoLimiter {
    let config = moto_sdk_config().await;
    let table = rate_limit_table(&config).await;
    DynamoLimiter::new(aws_sdk_dynamodb::Client::new(&config), table, limits)
}

#[tokio::test]
async fn the_identifier_limits_hold_at_their_boundaries_and_roll_over() {
    let limiter = limiter(Limits::default()).await;
    let a = subject("198.51.100.1", "a@example.com");
    let hour = WINDOWS_START;
    assert_eq!(limiter.check(&a, at(hour)).await.unwrap(), Verdict::Allowed);
    assert_eq!(limiter.check(&a, at(hour + 59)).await.unwrap(), Verdict::IdentifierLimited, "one a minute");
    for minute in 1..5 {
        assert_eq!(limiter.check(&a, at(hour + 60 * minute)).await.unwrap(), Verdict::Allowed, "minute {minute}");
    }
    assert_eq!(limiter.check(&a, at(hour + 300)).await.unwrap(), Verdict::IdentifierLimited, "five an hour");
    assert_eq!(limiter.check(&a, at(hour + 3600)).await.unwrap(), Verdict::Allowed, "the hour rolled over");
}

#[tokio::test]
async fn the_ip_limit_holds_at_its_boundary_and_is_independent_of_identifiers() {
    let limits = Limits { per_ip: Limit { max: 30, window: Duration::from_secs(300) }, ..Limits::default() };
    let limiter = limiter(limits).await;
    let start = WINDOWS_START;
    for n in 0..30 {
        let verdict = limiter.check(&subject("198.51.100.7", &format!("u{n}@example.com")), at(start + 10)).await;
        assert_eq!(verdict.unwrap(), Verdict::Allowed, "request {n}");
    }
    let over = limiter.check(&subject("198.51.100.7", "another@example.com"), at(start + 100)).await.unwrap();
    assert_eq!(over, Verdict::IpLimited { retry_after: Duration::from_secs(200) });
    // The identifier refused at that IP was not counted: from another IP it goes through.
    let elsewhere = limiter.check(&subject("198.51.100.8", "another@example.com"), at(start + 100)).await.unwrap();
    assert_eq!(elsewhere, Verdict::Allowed);
    // And the window rolls over.
    let later = limiter.check(&subject("198.51.100.7", "later@example.com"), at(start + 300)).await.unwrap();
    assert_eq!(later, Verdict::Allowed);
}

#[tokio::test]
async fn an_identifier_over_its_limit_still_counts_against_the_ip() {
    let limits = Limits { per_ip: Limit { max: 2, window: Duration::from_secs(300) }, ..Limits::default() };
    let limiter = limiter(limits).await;
    let a = subject("198.51.100.9", "a@example.com");
    let now = WINDOWS_START;
    assert_eq!(limiter.check(&a, at(now)).await.unwrap(), Verdict::Allowed);
    assert_eq!(limiter.check(&a, at(now + 1)).await.unwrap(), Verdict::IdentifierLimited);
    assert!(matches!(limiter.check(&a, at(now + 2)).await.unwrap(), Verdict::IpLimited { .. }));
}

fn route_with(limiter: DynamoLimiter, overrides: &[(&str, &str)]) -> (axum::Router, UnboundedReceiver<AuthEvent>) {
    let config = api_config(overrides);
    let (publisher, events) = ChannelPublisher::new();
    let secret = SigningSecret::parse(SECRET).unwrap();
    (medusa_reset::api::app(&config, &secret, publisher, MemoryStore::open(), limiter), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_for_one_identifier_yield_exactly_one_token() {
    let limits = Limits { per_ip: Limit { max: 1000, window: Duration::from_secs(300) }, ..Limits::default() };
    let (app, mut events) = route_with(limiter(limits).await, &[]);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let app = app.clone();
        requests
            .spawn(async move { send(&app, post_json(ROUTE, r#"{"identifier":"a@example.com"}"#)).await.0.status() });
    }
    let statuses = requests.join_all().await;
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED), "the same answer for all: {statuses:?}");
    let mut tokens = 0;
    while let Ok(event) = events.try_recv() {
        assert!(matches!(event, AuthEvent::PasswordReset(_)));
        tokens += 1;
    }
    assert_eq!(tokens, 1);
}

#[tokio::test]
async fn through_the_route_an_identifier_over_its_limit_gets_201_and_an_ip_over_its_limit_gets_429() {
    let limits = Limits { per_ip: Limit { max: 3, window: Duration::from_secs(300) }, ..Limits::default() };
    let (app, mut events) = route_with(limiter(limits).await, &[]);
    let body = r#"{"identifier":"a@example.com"}"#;
    let (first, _) = send(&app, post_json(ROUTE, body)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(events.try_recv().is_ok());
    let (second, second_body) = send(&app, post_json(ROUTE, body)).await;
    assert_eq!(second.status(), StatusCode::CREATED, "revealing nothing");
    assert_eq!(second_body, "");
    assert!(events.try_recv().is_err(), "nothing minted or published");
    send(&app, post_json(ROUTE, r#"{"identifier":"b@example.com"}"#)).await;
    let (limited, limited_body) = send(&app, post_json(ROUTE, r#"{"identifier":"c@example.com"}"#)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let error: Value = serde_json::from_str(&limited_body).unwrap();
    assert_eq!(error["type"], "not_allowed");
    assert!(error["message"].is_string());
}

#[tokio::test]
async fn when_dynamodb_fails_the_route_fails_closed() {
    let config = sdk_config_for(&unreachable_endpoint()).await;
    let limiter = DynamoLimiter::new(aws_sdk_dynamodb::Client::new(&config), "limits".into(), Limits::default());
    let (app, mut events) = route_with(limiter, &[]);
    let (response, body) = send(&app, post_json(ROUTE, r#"{"identifier":"a@example.com"}"#)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "unknown_error");
    assert!(events.try_recv().is_err(), "never open");
}

#[tokio::test]
async fn the_table_holds_no_identifier_in_clear() {
    let config = moto_sdk_config().await;
    let table = rate_limit_table(&config).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let limiter = DynamoLimiter::new(dynamodb.clone(), table.clone(), Limits::default());
    limiter.check(&subject("198.51.100.1", "secret.person@example.com"), SystemTime::now()).await.unwrap();
    let items = dynamodb.scan().table_name(&table).send().await.unwrap();
    assert_eq!(items.count(), 3);
    let dump = format!("{:?}", items.items());
    assert!(!dump.contains("secret.person"), "{dump}");
    assert!(dump.contains("expires_at"), "items carry their TTL attribute: {dump}");
}
