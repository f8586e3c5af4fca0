//! Our database mode beside a real Medusa 2.21.2, on Medusa's own database: the token we mint is
//! accepted once by Medusa's password-update route, refused on reuse, and the new password logs in;
//! an address Medusa does not know records nothing.

use crate::support::medusa;
use http::{Response, StatusCode};
use medusa_reset::domain::event::AuthEvent;

fn unique_email(actor_type: &str) -> String {
    format!("{actor_type}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Our route's answer, which must be Medusa's 201.
fn assert_created((response, text): (Response<()>, String)) {
    assert_eq!((response.status(), text.as_str()), (StatusCode::CREATED, "Created"));
}

async fn medusa_accepts_our_token_once_and_the_new_password_logs_in(actor_type: &str) {
    let client = medusa::client();
    let email = unique_email(actor_type);
    medusa::register(&client, actor_type, &email, "old-password-1").await;
    let (app, mut events) = medusa::our_app();

    assert_created(app.reset_as(actor_type, &email).await);
    let token = match events.try_recv() {
        Ok(AuthEvent::PasswordReset(event)) => event.token.expose().to_owned(),
        other => panic!("expected a reset token for {email}, got {other:?}"),
    };

    let (status, body) = medusa::update_password(&client, actor_type, &token, "new-password-2").await;
    assert_eq!(status, 200, "Medusa's update route accepts our token: {body}");
    assert!(medusa::logs_in(&client, actor_type, &email, "new-password-2").await, "the new password logs in");
    assert!(!medusa::logs_in(&client, actor_type, &email, "old-password-1").await, "the old one no longer does");

    let (status, body) = medusa::update_password(&client, actor_type, &token, "third-password-3").await;
    assert_eq!(status, 401, "a used token is refused: {body}");
    assert!(medusa::logs_in(&client, actor_type, &email, "new-password-2").await, "the reuse changed nothing");
}

#[tokio::test]
async fn medusa_accepts_a_customers_token_once_and_the_new_password_logs_in() {
    medusa_accepts_our_token_once_and_the_new_password_logs_in("customer").await;
}

#[tokio::test]
async fn medusa_accepts_an_admin_users_token_once_and_the_new_password_logs_in() {
    medusa_accepts_our_token_once_and_the_new_password_logs_in("user").await;
}

#[tokio::test]
async fn a_newer_token_replaces_the_older_one_as_medusa_requires() {
    let client = medusa::client();
    let email = unique_email("customer");
    medusa::register(&client, "customer", &email, "old-password-1").await;
    let (app, mut events) = medusa::our_app();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        assert_created(app.reset(&email).await);
        match events.try_recv() {
            Ok(AuthEvent::PasswordReset(event)) => tokens.push(event.token.expose().to_owned()),
            other => panic!("expected a reset token, got {other:?}"),
        }
    }
    let (status, _) = medusa::update_password(&client, "customer", &tokens[0], "new-password-2").await;
    assert_eq!(status, 401, "the first token was replaced by the second");
    let (status, body) = medusa::update_password(&client, "customer", &tokens[1], "new-password-2").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_address_medusa_does_not_know_records_nothing() {
    let (app, mut events) = medusa::our_app();
    let email = unique_email("customer");
    assert_created(app.reset(&email).await);
    assert!(matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(e)) if e.about.entity_id == email));
    assert!(events.try_recv().is_err(), "no token is published");
    let db = medusa::database().await;
    let rows = db
        .query_one("SELECT count(*) FROM auth_password_reset_token WHERE entity_id = $1", &[&email])
        .await
        .expect("Medusa's token table");
    assert_eq!(rows.get::<_, i64>(0), 0);
}
