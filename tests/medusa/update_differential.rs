//! Our update route beside Medusa 2.21.2's, on Medusa's database: each case gets a fresh account
//! and token on each side, the same request, then the same follow-up with the same token, and both
//! answers must agree in status, content type and body. Then the password set here logs in at
//! Medusa, and the storefront's JS SDK (`sdk.auth.updateProvider`) works against `make run`.

use crate::support::TestApp;
use crate::support::local_runner::LocalRunner;
use crate::support::medusa::{self, Answer};
use jsonwebtoken::{EncodingKey, Header};
use medusa_reset::domain::event::AuthEvent;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// How a case spells the `Authorization` header from the token it was given.
type Authorize = fn(&str) -> Option<String>;

struct Case {
    name: &'static str,
    /// The actor type the token is minted for, and the one in the path.
    token_for: &'static str,
    path_actor: &'static str,
    authorize: Authorize,
    body: &'static str,
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

/// The token re-signed with its `exp` in the past (Medusa's own row still live).
fn expired(token: &str) -> Option<String> {
    let mut claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap();
    claims["exp"] = json!(claims["iat"].as_u64().unwrap() - 1);
    let key = EncodingKey::from_secret(medusa::jwt_secret().as_bytes());
    bearer(&jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap())
}

fn other_secret(token: &str) -> Option<String> {
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap();
    let key = EncodingKey::from_secret(b"not-medusas-secret-not-medusas-secret");
    bearer(&jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap())
}

const PASSWORD: &str = r#"{"password":"a-new-password-1"}"#;

fn cases() -> Vec<Case> {
    let case = |name, authorize: Authorize, body| Case {
        name,
        token_for: "customer",
        path_actor: "customer",
        authorize,
        body,
    };
    vec![
        case("a fresh token", bearer, PASSWORD),
        Case { token_for: "user", path_actor: "user", ..case("an admin user's token", bearer, PASSWORD) },
        Case { path_actor: "user", ..case("a customer's token at the users' route", bearer, PASSWORD) },
        case("no Authorization header", |_| None, PASSWORD),
        case("a malformed token", |_| bearer("not-a-token"), PASSWORD),
        case("the token without a scheme", |t| Some(t.to_owned()), PASSWORD),
        case("another scheme", |t| Some(format!("Basic {t}")), PASSWORD),
        case("the scheme in lower case, words after", |t| Some(format!("bearer {t} more words")), PASSWORD),
        case("an expired token", expired, PASSWORD),
        case("a token signed with another secret", other_secret, PASSWORD),
        case("an empty object", bearer, "{}"),
        case("an empty password", bearer, r#"{"password":""}"#),
        case("a number as the password", bearer, r#"{"password":12345678}"#),
        case("an array", bearer, "[]"),
        case("no body", bearer, ""),
        case("an entity_id beside the password", bearer, r#"{"password":"pw-2","entity_id":"x@example.com"}"#),
    ]
}

/// A Medusa account with a token minted by our reset route; returns the token.
async fn account_with_token(
    client: &reqwest::Client,
    app: &TestApp,
    events: &mut UnboundedReceiver<AuthEvent>,
    actor_type: &str,
) -> String {
    let email = format!("update-{}@example.com", uuid::Uuid::new_v4().simple());
    medusa::register(client, actor_type, &email, "the-old-password").await;
    assert_eq!(app.reset_as(actor_type, &email).await.0.status(), 201);
    // The notices of the previous cases' changes come first.
    loop {
        match events.try_recv() {
            Ok(AuthEvent::PasswordUpdated(_)) => continue,
            Ok(AuthEvent::PasswordReset(event)) => return event.token.expose().to_owned(),
            other => panic!("expected a reset token for {email}, got {other:?}"),
        }
    }
}

async fn medusas(client: &reqwest::Client, actor: &str, authorization: Option<&str>, body: &str) -> Answer {
    let mut request = client
        .post(format!("{}/auth/{actor}/emailpass/update", medusa::url()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.expect("Medusa answers");
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    Answer { status, content_type, body: response.text().await.unwrap() }
}

async fn ours(app: &TestApp, actor: &str, authorization: Option<&str>, body: &str) -> Answer {
    let (head, body) = app.update_as(actor, authorization, body).await;
    let content_type = head.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    Answer { status: head.status().as_u16(), content_type, body }
}

#[tokio::test]
async fn every_case_and_its_follow_up_get_medusas_answer() {
    let client = medusa::client();
    let (app, mut events) = medusa::our_app();
    let mut disagreements = Vec::new();
    for case in cases() {
        let mut answers = Vec::new();
        for side in ["medusa", "ours"] {
            let token = account_with_token(&client, &app, &mut events, case.token_for).await;
            let authorization = (case.authorize)(&token);
            let follow_up = bearer(&token);
            let send = async |authorization: Option<&str>, body: &str| match side {
                "medusa" => medusas(&client, case.path_actor, authorization, body).await,
                _ => ours(&app, case.path_actor, authorization, body).await,
            };
            let first = send(authorization.as_deref(), case.body).await;
            let again = send(follow_up.as_deref(), PASSWORD).await;
            answers.push((first, again));
        }
        if answers[0] != answers[1] {
            disagreements.push(format!("{}:\n  medusa {:?}\n  ours   {:?}", case.name, answers[0], answers[1]));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[tokio::test]
async fn a_password_set_here_logs_in_at_medusa_and_the_old_one_no_longer_does() {
    let client = medusa::client();
    let (app, mut events) = medusa::our_app();
    for actor_type in ["customer", "user"] {
        let email = format!("set-here-{}@example.com", uuid::Uuid::new_v4().simple());
        medusa::register(&client, actor_type, &email, "the-old-password").await;
        app.reset_as(actor_type, &email).await;
        let Ok(AuthEvent::PasswordReset(event)) = events.try_recv() else { panic!("no reset event") };
        let body = json!({"password": "set by the lambda"}).to_string();
        let bearer = format!("Bearer {}", event.token.expose());
        let (head, text) = app.update_as(actor_type, Some(&bearer), &body).await;
        assert_eq!((head.status().as_u16(), text.as_str()), (200, r#"{"success":true}"#));
        assert!(medusa::logs_in(&client, actor_type, &email, "set by the lambda").await, "{actor_type}: new logs in");
        assert!(!medusa::logs_in(&client, actor_type, &email, "the-old-password").await, "{actor_type}: old refused");
        assert!(matches!(events.try_recv(), Ok(AuthEvent::PasswordUpdated(_))), "the change is announced");
    }
}

/// The storefront's own call, unchanged: `sdk.auth.updateProvider` against `make run` on Medusa's
/// database in front of Medusa (one base URL), then a log-in at Medusa with the new password.
#[tokio::test]
async fn medusas_js_sdk_update_provider_works_against_make_run() {
    let client = medusa::client();
    let (app, mut events) = medusa::our_app();
    let token = account_with_token(&client, &app, &mut events, "customer").await;
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&token).unwrap();
    let email = claims["entity_id"].as_str().unwrap().to_owned();
    let database = format!("{}?sslmode=disable", medusa::database_url());
    let secret = medusa::jwt_secret();
    let backend = medusa::url();
    // One base URL: make run in front of Medusa, answering the update route itself since it has
    // Medusa's database.
    let env = [
        ("MEDUSA_DATABASE_URL", database.as_str()),
        ("JWT_SECRET", secret.as_str()),
        ("AUTH_PROVIDERS", medusa::AUTH_PROVIDERS),
        ("MEDUSA_BACKEND_URL", backend.as_str()),
    ];
    let local = LocalRunner::start(&env).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/update_provider.cjs");
    let node_modules = std::env::var("MEDUSA_NODE_MODULES").expect("MEDUSA_NODE_MODULES (run with `make test`)");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .args([local.base.as_str(), medusa::url().as_str(), email.as_str(), token.as_str(), "sdk-set-password-1"])
        .env("NODE_PATH", &node_modules)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed = local.stop().await;
    assert!(output.status.success(), "{stdout}{}\n{printed}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result, json!({"updated": true, "loggedInWithTheNewPassword": true, "reuseRefused": true}));
    assert!(printed.contains("password_changed"), "{printed}");
}
