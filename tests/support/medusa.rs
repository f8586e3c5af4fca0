//! The real Medusa 2.21.2 backend that `tools/with-medusa` starts for `make test`, and the calls
//! the tests make to it: the same reset request our router gets, and Medusa's own register, login
//! and password-update routes; and our route on Medusa's database.

use std::time::Duration;

use medusa_reset::domain::event::AuthEvent;
use medusa_reset::identity::PostgresIdentityStore;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{TestApp, api_config, database_settings};

/// The allow-list both sides are configured with (`medusa-config.js` has the same).
pub const AUTH_PROVIDERS: &str = "customer=emailpass;user=emailpass";

/// Where `tools/with-medusa` started Medusa; the tests fail, never skip, without it.
pub fn url() -> String {
    std::env::var("MEDUSA_URL").unwrap_or_else(|_| {
        panic!("MEDUSA_URL is not set: run these tests with `make test`, which starts Medusa (tools/with-medusa)")
    })
}

/// The second Medusa `tools/with-medusa` starts, on the same database: a project with the merchant's
/// `medusa/src/api/middlewares.ts`, which closes Medusa's own reset route.
pub fn guarded_url() -> String {
    std::env::var("MEDUSA_GUARDED_URL").unwrap_or_else(|_| {
        panic!(
            "MEDUSA_GUARDED_URL is not set: run these tests with `make test`, which starts Medusa (tools/with-medusa)"
        )
    })
}

/// Medusa's own database, for the tests that put our database mode beside it.
pub fn database_url() -> String {
    std::env::var("MEDUSA_DB_URL").unwrap_or_else(|_| panic!("MEDUSA_DB_URL is not set: run with `make test`"))
}

/// The JWT secret Medusa signs and verifies with.
pub fn jwt_secret() -> String {
    std::env::var("MEDUSA_JWT_SECRET").unwrap_or_else(|_| panic!("MEDUSA_JWT_SECRET is not set: run with `make test`"))
}

/// A connection to Medusa's own database, for a test's own statements.
pub async fn database() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("Medusa's database at {}: {e}", database_url()));
    tokio::spawn(connection);
    client
}

/// Our route in database mode on Medusa's database, signing with Medusa's secret: the tokens it
/// publishes are for Medusa's own update route.
pub fn our_app() -> (TestApp, UnboundedReceiver<AuthEvent>) {
    let database_url = format!("{}?sslmode=disable", database_url());
    let secret = jwt_secret();
    let config = api_config(&[
        ("AUTH_PROVIDERS", AUTH_PROVIDERS),
        ("MEDUSA_DATABASE_URL", &database_url),
        ("JWT_SECRET", &secret),
    ]);
    TestApp::with_channel(&config, PostgresIdentityStore::new(database_settings(&config)))
}

/// One answer, reduced to what the contract fixes: status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("an HTTP client")
}

/// Sends a raw request to Medusa.
pub async fn send(client: &reqwest::Client, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
    let mut request = client.post(format!("{}{path}", url())).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("Medusa at {} answers: {e}", url()));
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = response.text().await.expect("Medusa's body");
    Answer { status, content_type, body }
}

async fn post(client: &reqwest::Client, base: &str, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = client.post(format!("{base}{path}")).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("Medusa at {base} answers: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Creates an emailpass identity with Medusa's own register route.
pub async fn register(client: &reqwest::Client, actor_type: &str, email: &str, password: &str) {
    register_at(client, &url(), actor_type, email, password).await;
}

/// `register` at the Medusa (or the proxy in front of one) at `base`.
pub async fn register_at(client: &reqwest::Client, base: &str, actor_type: &str, email: &str, password: &str) {
    let path = format!("/auth/{actor_type}/emailpass/register");
    let (status, body) = post(client, base, &path, None, json!({ "email": email, "password": password })).await;
    assert_eq!(status, 200, "Medusa at {base} registers {email} as a {actor_type}: {body}");
}

/// Logs in with Medusa's own route; true when Medusa gives a token.
pub async fn logs_in(client: &reqwest::Client, actor_type: &str, email: &str, password: &str) -> bool {
    logs_in_at(client, &url(), actor_type, email, password).await
}

/// `logs_in` at the Medusa (or the proxy in front of one) at `base`.
pub async fn logs_in_at(client: &reqwest::Client, base: &str, actor_type: &str, email: &str, password: &str) -> bool {
    let path = format!("/auth/{actor_type}/emailpass");
    let (status, body) = post(client, base, &path, None, json!({ "email": email, "password": password })).await;
    status == 200 && body["token"].is_string()
}

/// Medusa's password update with a reset token: its status and body.
pub async fn update_password(client: &reqwest::Client, actor_type: &str, token: &str, password: &str) -> (u16, Value) {
    update_password_at(client, &url(), actor_type, token, password).await
}

/// `update_password` at the Medusa (or the proxy in front of one) at `base`.
pub async fn update_password_at(
    client: &reqwest::Client,
    base: &str,
    actor_type: &str,
    token: &str,
    password: &str,
) -> (u16, Value) {
    let path = format!("/auth/{actor_type}/emailpass/update");
    post(client, base, &path, Some(token), json!({ "password": password })).await
}
