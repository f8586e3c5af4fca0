//! The update route in process: a reset token from the reset route sets the password once, in
//! Medusa's format, and announces the change; every token Medusa refuses gets Medusa's 401; a flood
//! from one client is turned away before it costs a hash. On the machine's PostgreSQL, the token's
//! row is spent in the transaction that writes the password, as Medusa ≥ 2.16 requires.

use std::sync::Arc;

use crate::support::medusa_db::TestDb;
use crate::support::scrypt_kdf::{parameters, verify_password};
use crate::support::{SECRET, TestApp, api_config};
use http::StatusCode;
use jsonwebtoken::{EncodingKey, Header};
use medusa_reset::domain::event::AuthEvent;
use medusa_reset::identity::{MemoryIdentityStore, PostgresIdentityStore};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const EMAIL: &str = "shopper@example.com";
const INVALID_TOKEN: &str = r#"{"type":"unauthorized","message":"Invalid token"}"#;
const UNAUTHORIZED: &str = r#"{"type":"unauthorized","message":"Unauthorized"}"#;

/// The routes over a store that knows `EMAIL`, with the store kept to look into. Without a
/// database the update route is served in development only (`make run`), which the in-memory
/// stand-in for Medusa's tables is.
fn app_with(overrides: &[(&str, &str)]) -> (TestApp, UnboundedReceiver<AuthEvent>, Arc<MemoryIdentityStore>) {
    let store = Arc::new(MemoryIdentityStore::with_identities([(EMAIL, "emailpass")]));
    let config = api_config(&[overrides, &[("DEVELOPMENT_MODE", "true")]].concat());
    let (app, events) = TestApp::with_channel(&config, store.clone());
    (app, events, store)
}

#[tokio::test]
async fn a_lambda_without_medusas_database_does_not_serve_the_update_route() {
    let (app, mut events) = TestApp::with_channel(&api_config(&[]), MemoryIdentityStore::open());
    let (head, _) = app.post("/auth/customer/emailpass/reset-password", r#"{"identifier":"a@example.com"}"#).await;
    assert_eq!(head.status(), StatusCode::CREATED);
    let Ok(AuthEvent::PasswordReset(event)) = events.try_recv() else { panic!("no reset event") };
    let (head, body) = app.update(event.token.expose(), "pw").await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND, "no 200 for a change that reached no database: {body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "not_found");
    assert!(events.try_recv().is_err(), "nothing announced");
}

/// Asks for a reset of `EMAIL` with `body`'s extra fields and returns the e-mailed token.
async fn token_for(app: &TestApp, events: &mut UnboundedReceiver<AuthEvent>, metadata: Value) -> String {
    let body = json!({"identifier": EMAIL, "metadata": metadata}).to_string();
    let (head, _) = app.post("/auth/customer/emailpass/reset-password", &body).await;
    assert_eq!(head.status(), StatusCode::CREATED);
    match events.try_recv() {
        Ok(AuthEvent::PasswordReset(event)) => event.token.expose().to_owned(),
        other => panic!("expected a reset event, got {other:?}"),
    }
}

/// A token signed with `secret` carrying `claims`, for the cases only a forger or a clock makes.
fn signed(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn claims_of(token: &str) -> Value {
    jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap()
}

#[tokio::test]
async fn a_fresh_token_sets_the_password_once_in_medusas_format_and_announces_it() {
    let (app, mut events, store) = app_with(&[]);
    let token = token_for(&app, &mut events, json!({"locale": "de-DE"})).await;

    let (head, body) = app.update(&token, "a new passphrase").await;
    assert_eq!((head.status(), body.as_str()), (StatusCode::OK, r#"{"success":true}"#));
    assert_eq!(head.headers()["content-type"], "application/json; charset=utf-8");
    assert_eq!(head.headers()["cache-control"], "no-store");
    let hash = store.password_hash(EMAIL, "emailpass").expect("the password is written");
    assert_eq!(parameters(&hash), (15, 8, 1), "Medusa's default hashConfig");
    assert_eq!(verify_password(&hash, "a new passphrase"), Ok(true));
    assert_eq!(verify_password(&hash, "another"), Ok(false));

    match events.try_recv() {
        Ok(event @ AuthEvent::PasswordUpdated(_)) => assert_eq!(
            event.detail().unwrap(),
            format!(
                r#"{{"entity_id":"{EMAIL}","actor_type":"customer","provider":"emailpass","metadata":{{"locale":"de-de"}}}}"#
            )
        ),
        other => panic!("expected the password-updated event, got {other:?}"),
    }

    let (head, body) = app.update(&token, "a third one").await;
    assert_eq!((head.status(), body.as_str()), (StatusCode::UNAUTHORIZED, INVALID_TOKEN), "a token works once");
    assert_eq!(verify_password(&store.password_hash(EMAIL, "emailpass").unwrap(), "a new passphrase"), Ok(true));
    assert!(events.try_recv().is_err(), "nothing announced for a refused token");
}

#[tokio::test]
async fn without_a_locale_in_the_reset_the_notice_event_has_empty_metadata() {
    let (app, mut events, _) = app_with(&[]);
    let token = token_for(&app, &mut events, json!({})).await;
    assert_eq!(app.update(&token, "pw").await.0.status(), StatusCode::OK);
    let Ok(AuthEvent::PasswordUpdated(event)) = events.try_recv() else { panic!("no password-updated event") };
    assert_eq!(serde_json::to_value(&event).unwrap()["metadata"], json!({}));
}

#[tokio::test]
async fn a_body_without_a_password_spends_the_token_with_medusas_unauthorized() {
    let (app, mut events, store) = app_with(&[]);
    for body in [r#"{}"#, r#"{"password":""}"#, r#"{"password":12345678}"#, r#"[]"#, ""] {
        let token = token_for(&app, &mut events, json!({})).await;
        let bearer = format!("Bearer {token}");
        let (head, text) = app.update_as("customer", Some(&bearer), body).await;
        assert_eq!((head.status(), text.as_str()), (StatusCode::UNAUTHORIZED, UNAUTHORIZED), "{body:?}");
        let (head, text) = app.update(&token, "too late").await;
        assert_eq!((head.status(), text.as_str()), (StatusCode::UNAUTHORIZED, INVALID_TOKEN), "spent by {body:?}");
    }
    assert_eq!(store.password_hash(EMAIL, "emailpass"), None, "nothing was written");
    assert!(events.try_recv().is_err(), "nothing announced");
}

#[tokio::test]
async fn every_token_medusa_refuses_gets_its_invalid_token() {
    let (app, mut events, store) = app_with(&[("AUTH_PROVIDERS", "customer=emailpass;user=emailpass")]);
    let token = token_for(&app, &mut events, json!({})).await;
    let claims = claims_of(&token);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims.clone();
        change(&mut claims);
        format!("Bearer {}", signed(&claims, SECRET))
    };
    let refused = [
        None,
        Some("Bearer not-a-token".to_owned()),
        Some(token.clone()),
        Some(format!("Basic {token}")),
        Some(format!("Bearer {}", signed(&claims, "another-secret-0123456789abcdef-xyz"))),
        Some(with(&|c| c["exp"] = json!(1_000_000_000))),
        Some(with(&|c| c["purpose"] = json!("login"))),
        Some(with(&|c| c["jti"] = json!(uuid::Uuid::new_v4().to_string()))),
        Some(with(&|c| c["entity_id"] = json!("someone-else@example.com"))),
    ];
    for authorization in &refused {
        let (head, body) = app.update_as("customer", authorization.as_deref(), r#"{"password":"pw"}"#).await;
        assert_eq!((head.status(), body.as_str()), (StatusCode::UNAUTHORIZED, INVALID_TOKEN), "{authorization:?}");
    }
    // A customer's token at the admin users' route.
    let (head, body) = app.update_as("user", Some(&format!("Bearer {token}")), r#"{"password":"pw"}"#).await;
    assert_eq!((head.status(), body.as_str()), (StatusCode::UNAUTHORIZED, INVALID_TOKEN));
    assert_eq!(store.password_hash(EMAIL, "emailpass"), None);
    assert_eq!(app.update(&token, "still good").await.0.status(), StatusCode::OK, "none of that spent it");
}

#[tokio::test]
async fn a_pair_outside_the_allow_list_is_not_allowed_as_for_the_reset() {
    let (app, _, _) = app_with(&[]);
    let (head, body) = app.post("/auth/customer/github/update", r#"{"password":"pw"}"#).await;
    assert_eq!(head.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"type":"not_allowed","message":"The actor type customer is not allowed to use the auth provider github"}"#
    );
}

#[tokio::test]
async fn a_flood_from_one_client_is_turned_away_before_anything_is_checked() {
    let (app, mut events, store) = app_with(&[("RATE_LIMIT_UPDATE_PER_IP", "3/60")]);
    let token = token_for(&app, &mut events, json!({})).await;
    for _ in 0..3 {
        assert_eq!(app.update_as("customer", Some("Bearer x"), r#"{"password":"pw"}"#).await.0.status(), 401);
    }
    let (head, body) = app.update(&token, "pw").await;
    assert_eq!(head.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(head.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "not_allowed");
    assert_eq!(store.password_hash(EMAIL, "emailpass"), None, "the limited request wrote nothing");
    // The reset route's own share is untouched.
    token_for(&app, &mut events, json!({})).await;
}

#[tokio::test]
async fn a_merchants_hash_config_is_written_into_the_hash() {
    let settings = [("PASSWORD_HASH_LOG_N", "12"), ("PASSWORD_HASH_R", "4"), ("PASSWORD_HASH_P", "2")];
    let (app, mut events, store) = app_with(&settings);
    let token = token_for(&app, &mut events, json!({})).await;
    assert_eq!(app.update(&token, "pw-1").await.0.status(), StatusCode::OK);
    let hash = store.password_hash(EMAIL, "emailpass").unwrap();
    assert_eq!(parameters(&hash), (12, 4, 2));
    assert_eq!(verify_password(&hash, "pw-1"), Ok(true));
}

/// The routes on a test database, over the project's PostgreSQL store.
fn db_app(db: &TestDb) -> (TestApp, UnboundedReceiver<AuthEvent>) {
    let config = api_config(&[("MEDUSA_DATABASE_URL", &db.url)]);
    TestApp::with_channel(&config, PostgresIdentityStore::new(db.settings()))
}

impl TestDb {
    /// The identity's `provider_metadata`.
    async fn provider_metadata(&self, entity_id: &str) -> Value {
        let sql = "SELECT provider_metadata FROM provider_identity WHERE entity_id = $1";
        self.client.query_one(sql, &[&entity_id]).await.expect("the identity").get(0)
    }
}

#[tokio::test]
async fn on_medusa_2_16_the_row_is_spent_where_the_password_is_written_and_other_metadata_kept() {
    let db = TestDb::create().await;
    db.add_identity(EMAIL, "emailpass").await;
    db.client
        .execute("UPDATE provider_identity SET provider_metadata = provider_metadata || '{\"kept\":1}'", &[])
        .await
        .unwrap();
    let (app, mut events) = db_app(&db);
    let token = token_for(&app, &mut events, json!({})).await;
    assert_eq!(db.reset_rows(EMAIL).await.len(), 1);

    assert_eq!(app.update(&token, "written in pg").await.0.status(), StatusCode::OK);
    assert!(db.reset_rows(EMAIL).await.is_empty(), "the row is spent");
    let metadata = db.provider_metadata(EMAIL).await;
    assert_eq!(metadata["kept"], 1, "{metadata}");
    assert_eq!(verify_password(metadata["password"].as_str().unwrap(), "written in pg"), Ok(true));
    assert_eq!(app.update(&token, "again").await.1, INVALID_TOKEN);
    db.drop_database().await;
}

#[tokio::test]
async fn two_uses_of_one_token_at_once_change_the_password_once() {
    let db = TestDb::create().await;
    db.add_identity(EMAIL, "emailpass").await;
    let (app, mut events) = db_app(&db);
    let (other, _) = db_app(&db);
    let token = token_for(&app, &mut events, json!({})).await;
    let (first, second) = tokio::join!(app.update(&token, "first"), other.update(&token, "second"));
    let mut statuses = [first.0.status().as_u16(), second.0.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
    let winner = if first.0.status() == StatusCode::OK { "first" } else { "second" };
    let hash = db.provider_metadata(EMAIL).await["password"].as_str().unwrap().to_owned();
    assert_eq!(verify_password(&hash, winner), Ok(true));
    db.drop_database().await;
}

#[tokio::test]
async fn an_expired_row_refuses_its_token_and_is_removed_as_medusa_removes_it() {
    let db = TestDb::create().await;
    db.add_identity(EMAIL, "emailpass").await;
    let (app, mut events) = db_app(&db);
    let token = token_for(&app, &mut events, json!({})).await;
    db.client
        .execute("UPDATE auth_password_reset_token SET expires_at = now() - interval '1 second'", &[])
        .await
        .unwrap();
    assert_eq!(app.update(&token, "late").await.1, INVALID_TOKEN);
    assert!(db.reset_rows(EMAIL).await.is_empty());
    assert_eq!(db.provider_metadata(EMAIL).await["password"], "hash", "nothing written");
    db.drop_database().await;
}

#[tokio::test]
async fn a_row_of_another_identity_refuses_the_token_and_stays() {
    let db = TestDb::create().await;
    db.add_identity(EMAIL, "emailpass").await;
    db.add_identity("victim@example.com", "emailpass").await;
    let (app, mut events) = db_app(&db);
    let victims = {
        let body = json!({"identifier": "victim@example.com"}).to_string();
        app.post("/auth/customer/emailpass/reset-password", &body).await;
        let Ok(AuthEvent::PasswordReset(event)) = events.try_recv() else { panic!("no reset event") };
        event.token.expose().to_owned()
    };
    // A token for EMAIL that carries the victim's jti: Medusa checks the row's identity.
    let mut claims = claims_of(&victims);
    claims["entity_id"] = json!(EMAIL);
    assert_eq!(app.update(&signed(&claims, SECRET), "pw").await.1, INVALID_TOKEN);
    assert_eq!(db.reset_rows("victim@example.com").await.len(), 1, "the victim's row stays");
    assert_eq!(app.update(&victims, "victim's own").await.0.status(), StatusCode::OK);
    db.drop_database().await;
}

#[tokio::test]
async fn on_medusa_2_15_the_signature_alone_lets_the_password_change_as_there() {
    let db = TestDb::create_2_15().await;
    db.add_identity(EMAIL, "emailpass").await;
    let (app, mut events) = db_app(&db);
    let token = token_for(&app, &mut events, json!({})).await;
    assert_eq!(app.update(&token, "first").await.0.status(), StatusCode::OK);
    assert_eq!(app.update(&token, "second").await.0.status(), StatusCode::OK, "2.15 keeps no row to spend");
    let hash = db.provider_metadata(EMAIL).await["password"].as_str().unwrap().to_owned();
    assert_eq!(verify_password(&hash, "second"), Ok(true));
    let mut claims = claims_of(&token);
    claims["entity_id"] = json!("nobody@example.com");
    assert_eq!(app.update(&signed(&claims, SECRET), "pw").await.1, INVALID_TOKEN, "no such identity");
    db.drop_database().await;
}
