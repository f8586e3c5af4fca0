//! What every test binary uses: the reset route in process on the tests' configuration (`TestApp`),
//! and stubs on free loopback ports. Each binary's `support.rs` includes this file and, of the other
//! files in this folder, only those its tests use: so nothing here is dead code in any of them.

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use http_body_util::BodyExt;
use medusa_reset::aws::secrets::{DatabaseSource, SecretSource};
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::domain::event::AuthEvent;
use medusa_reset::identity::{DatabaseSettings, IdentityStore};
use medusa_reset::publish::{ChannelPublisher, EventPublisher};
use medusa_reset::ratelimit::{MemoryRateLimiter, RateLimiter};
use tokio::sync::mpsc::UnboundedReceiver;
use tower::ServiceExt;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Medusa's reset route for a customer with e-mail and password: the one most tests call.
pub const ROUTE: &str = "/auth/customer/emailpass/reset-password";

/// The API configuration of the tests: the Lambda profile with the test secret, rate limits high
/// enough not to interfere (tests of the limits set their own), the identity check skipped unless a
/// database is given, and the given overrides.
pub fn api_config(overrides: &[(&str, &str)]) -> ApiConfig {
    let has_database =
        overrides.iter().any(|(k, _)| matches!(*k, "MEDUSA_DATABASE_URL" | "MEDUSA_DATABASE_SECRET_ARN"));
    let mut defaults = vec![
        ("JWT_SECRET", SECRET),
        ("RATE_LIMIT_PER_IDENTIFIER", "1000/60"),
        ("RATE_LIMIT_PER_IP", "1000/60"),
        ("RATE_LIMIT_UPDATE_PER_IP", "1000/60"),
    ];
    if !has_database {
        // Without Medusa's database the check must be skipped explicitly, as on Lambda.
        defaults.push(("SKIP_IDENTITY_CHECK", "true"));
    }
    // The first pair for a name wins, so the overrides come first.
    let vars = Vars::from_pairs(&[overrides, &defaults].concat());
    ApiConfig::from_vars(Profile::Lambda, &vars).expect("test configuration is valid")
}

/// The database settings of a configuration given `MEDUSA_DATABASE_URL`.
pub fn database_settings(config: &ApiConfig) -> DatabaseSettings {
    match &config.database {
        Some(DatabaseSource::Url(settings)) => (**settings).clone(),
        other => panic!("the test configuration has no MEDUSA_DATABASE_URL: {other:?}"),
    }
}

/// The reset route in process, as zero2prod's `TestApp`: the router of a test configuration over
/// the ports the test chose, and the requests tests make to it.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
}

impl TestApp {
    /// The route on `config`, over `publisher` and `store`, its rate limits counted in memory.
    pub fn new(config: &ApiConfig, publisher: impl EventPublisher, store: impl IdentityStore) -> Self {
        Self::with_limiter(config, publisher, store, MemoryRateLimiter::new(config.limits.limits.clone()))
    }

    /// `new`, publishing to a channel: the test reads the events, or drops the receiver so that
    /// publishing fails.
    pub fn with_channel(config: &ApiConfig, store: impl IdentityStore) -> (Self, UnboundedReceiver<AuthEvent>) {
        let (publisher, events) = ChannelPublisher::new();
        (Self::new(config, publisher, store), events)
    }

    /// `new` with another rate limiter. Signs with `config`'s `JWT_SECRET`, as the tests give one.
    pub fn with_limiter(
        config: &ApiConfig,
        publisher: impl EventPublisher,
        store: impl IdentityStore,
        limiter: impl RateLimiter,
    ) -> Self {
        let SecretSource::Value(secret) = &config.secret else {
            panic!("a test configuration gives JWT_SECRET itself")
        };
        Self { router: medusa_reset::app::wiring::app(config, secret, publisher, store, limiter) }
    }

    /// Sends one request through the router in process; returns the answer's head and its body as text.
    pub async fn send(&self, request: Request<Body>) -> (Response<()>, String) {
        let response = self.router.clone().oneshot(request).await.expect("the router never fails");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body collects").to_bytes();
        (Response::from_parts(parts, ()), String::from_utf8_lossy(&bytes).into_owned())
    }

    /// POSTs `body` to `path` as JSON.
    pub async fn post(&self, path: &str, body: &str) -> (Response<()>, String) {
        self.send(post_json(path, body)).await
    }

    /// Asks for a reset of `identifier` as `actor_type` with e-mail and password.
    pub async fn reset_as(&self, actor_type: &str, identifier: &str) -> (Response<()>, String) {
        let body = serde_json::json!({ "identifier": identifier }).to_string();
        self.post(&format!("/auth/{actor_type}/emailpass/reset-password"), &body).await
    }

    /// Asks for a customer's reset of `identifier`.
    pub async fn reset(&self, identifier: &str) -> (Response<()>, String) {
        self.reset_as("customer", identifier).await
    }
}

/// A POST of `body` as JSON, for a test to add to before sending it.
pub fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path).header("content-type", "application/json").body(Body::from(body.to_owned())).unwrap()
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
