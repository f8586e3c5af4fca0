//! The reset route publishing to EventBridge: moto's server for the real path, a local stub for faults.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::aws_fixtures::BusToQueue;
use crate::support::{
    ROUTE, SECRET, TestApp, api_config, moto_sdk_config, sdk_config_for, serve, unreachable_endpoint,
    verify_independently,
};
use axum::Router;
use axum::routing::post;
use http::StatusCode;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::publish::EventBridgePublisher;
use serde_json::{Value, json};

async fn app_publishing_to(config: &aws_config::SdkConfig, bus_name: &str) -> TestApp {
    let api_config = api_config(&[("EVENT_BUS_NAME", bus_name), ("EVENT_SOURCE", "shop.auth")]);
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), api_config.events.clone());
    TestApp::new(&api_config, publisher, MemoryIdentityStore::open())
}

#[tokio::test]
async fn a_reset_puts_medusas_event_on_the_bus_and_a_rule_delivers_it() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "shop.auth", "auth.password_reset").await;
    let app = app_publishing_to(&config, &fixture.bus_name).await;

    let body = r#"{"identifier":"a@example.com","metadata":{"locale":"fr-CA"}}"#;
    let (response, text) = app.post(ROUTE, body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{text}");

    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["source"], "shop.auth");
    assert_eq!(event["detail-type"], "auth.password_reset");
    let detail = &event["detail"];
    assert_eq!(detail["entity_id"], "a@example.com");
    assert_eq!(detail["actor_type"], "customer");
    assert_eq!(detail["provider"], "emailpass");
    assert_eq!(detail["metadata"], json!({"locale": "fr-CA"}));
    let claims = verify_independently(detail["token"].as_str().unwrap(), SECRET, None).unwrap();
    assert_eq!(claims["entity_id"], "a@example.com");
}

#[tokio::test]
async fn a_bus_that_does_not_exist_is_a_500() {
    let config = moto_sdk_config().await;
    let app = app_publishing_to(&config, "no-such-bus").await;
    let (response, body) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "unknown_error");
}

/// A stand-in for EventBridge that answers every `PutEvents` with `status` and `body`, counting calls.
async fn stub(status: StatusCode, body: Value, calls: Arc<AtomicUsize>) -> String {
    let app = Router::new().route(
        "/",
        post(move || {
            let calls = calls.clone();
            let body = body.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                (status, [("content-type", "application/x-amz-json-1.1")], body.to_string())
            }
        }),
    );
    serve(app).await
}

#[tokio::test]
async fn a_failed_entry_is_a_failure_not_a_success() {
    let calls = Arc::new(AtomicUsize::new(0));
    let answer = json!({"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}]});
    let endpoint = stub(StatusCode::OK, answer, calls.clone()).await;
    let app = app_publishing_to(&sdk_config_for(&endpoint).await, "bus").await;
    let (response, _) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_answered_500() {
    let calls = Arc::new(AtomicUsize::new(0));
    let answer = json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
    let endpoint = stub(StatusCode::BAD_REQUEST, answer, calls.clone()).await;
    let app = app_publishing_to(&sdk_config_for(&endpoint).await, "bus").await;
    let (response, body) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!body.contains("Rate exceeded"), "the cause stays in the log: {body}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "the standard retry strategy makes three attempts");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_500_within_the_timeouts() {
    let app = app_publishing_to(&sdk_config_for(&unreachable_endpoint()).await, "bus").await;
    let started = std::time::Instant::now();
    let (response, _) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
}
