//! The merchant's `medusa/src/api/middlewares.ts` in a real Medusa 2.21.2: `MEDUSA_GUARDED_URL`,
//! which tools/with-medusa starts with that very file transpiled as `medusa build` compiles it, on
//! the database of the stock Medusa at `MEDUSA_URL`. Medusa's own reset route answers 404 in every
//! spelling its router takes to the handler, for every actor type and provider, whatever the body;
//! register, login and the update route still work, with this project's tokens, directly and
//! through `make run`'s proxy. The file also type-checks against Medusa's own types.

use medusa_reset::domain::event::AuthEvent;
use serde_json::{Value, json};

use crate::support::ROUTE;
use crate::support::local_runner::LocalRunner;
use crate::support::medusa;

/// The middleware's message (`RESET_PASSWORD_CLOSED`), which the README quotes.
const CLOSED: &str = "Password reset is not available on this server";

/// Spellings a stock Medusa takes to its reset route: Express matches paths case-insensitively and
/// ignores a trailing slash. Both actor types, a provider the actor may not use (Medusa's own check
/// would answer 400), an actor type Medusa's configuration does not name (a stock Medusa answers 201).
const SPELLINGS: [&str; 9] = [
    "/auth/customer/emailpass/reset-password",
    "/auth/user/emailpass/reset-password",
    "/Auth/Customer/EmailPass/Reset-Password",
    "/auth/customer/emailpass/reset-password/",
    "/AUTH/USER/EMAILPASS/RESET-PASSWORD/",
    "/auth/customer/github/reset-password",
    "/auth/user/google/Reset-Password",
    "/auth/seller/emailpass/reset-password",
    "/auth/customer/emailpass/reset-password?identifier=a%40example.com",
];

/// One answer: status, content type, whether Express (so Medusa) sent it, and the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    from_medusa: bool,
    body: String,
}

async fn send(client: &reqwest::Client, method: &str, url: &str, body: impl Into<reqwest::Body>) -> Answer {
    let method = method.parse().expect("an HTTP method");
    let response = client
        .request(method, url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url} answers: {e}"));
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap_or_default().to_owned());
    let (content_type, powered_by) = (header("content-type").unwrap_or_default(), header("x-powered-by"));
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    Answer { status, content_type, from_medusa: powered_by.as_deref() == Some("Express"), body }
}

/// The middleware's 404, from Medusa's error handler.
fn assert_closed(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 404, "{what}: {answer:?}");
    assert_eq!(answer.content_type, "application/json; charset=utf-8", "{what}: {answer:?}");
    assert!(answer.from_medusa, "{what}: Medusa answered: {answer:?}");
    let body: Value = serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{what}: {e}: {answer:?}"));
    assert_eq!(body, json!({ "type": "not_found", "message": CLOSED }), "{what}");
}

fn unique_email(actor_type: &str) -> String {
    format!("closed-{actor_type}-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn identifier(email: &str) -> String {
    json!({ "identifier": email }).to_string()
}

/// A reset token minted by this project's route in database mode on Medusa's database, with
/// Medusa's secret: what the e-mailed link carries.
async fn our_token(actor_type: &str, email: &str) -> String {
    let (app, mut events) = medusa::our_app();
    let (response, text) = app.reset_as(actor_type, email).await;
    assert_eq!((response.status().as_u16(), text.as_str()), (201, "Created"));
    match events.try_recv() {
        Ok(AuthEvent::PasswordReset(event)) => event.token.expose().to_owned(),
        other => panic!("expected a reset token for {email}, got {other:?}"),
    }
}

#[tokio::test]
async fn medusas_own_reset_route_is_closed_in_every_spelling() {
    let client = medusa::client();
    let body = identifier(&unique_email("customer"));
    for path in SPELLINGS {
        // Without the file, each spelling is answered by the route, not by the router's 404.
        let stock = send(&client, "POST", &format!("{}{path}", medusa::url()), body.clone()).await;
        assert_ne!(stock.status, 404, "a stock Medusa takes {path} to its reset route: {stock:?}");
        let guarded = send(&client, "POST", &format!("{}{path}", medusa::guarded_url()), body.clone()).await;
        assert_closed(&guarded, path);
    }
}

#[tokio::test]
async fn the_closed_route_answers_404_whatever_the_body_carries() {
    let client = medusa::client();
    let over_large = identifier(&"a".repeat(200_000));
    let bodies = ["{}", "{bad", "\"a@example.com\"", "", r#"{"identifier":"a@example.com","x":1}"#, &over_large];
    for body in bodies {
        let path = ROUTE;
        let what = format!("a body of {} bytes: {:.40}", body.len(), body);
        // A stock Medusa refuses each of these itself: 400 from its validation or parser, 413.
        let stock = send(&client, "POST", &format!("{}{path}", medusa::url()), body.to_owned()).await;
        assert!(matches!(stock.status, 400 | 413), "{what}: {stock:?}");
        let guarded = send(&client, "POST", &format!("{}{path}", medusa::guarded_url()), body.to_owned()).await;
        assert_closed(&guarded, &what);
    }
}

#[tokio::test]
async fn other_methods_find_no_route_there_as_on_a_stock_medusa() {
    let client = medusa::client();
    let path = ROUTE;
    for method in ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
        let stock = send(&client, method, &format!("{}{path}", medusa::url()), "").await;
        let guarded = send(&client, method, &format!("{}{path}", medusa::guarded_url()), "").await;
        assert_eq!((guarded.status, &guarded.content_type), (stock.status, &stock.content_type), "{method}");
    }
    // A browser's preflight is still answered, so the storefront's page can read the 404.
    let origin = "http://localhost:8000";
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{}{path}", medusa::guarded_url()))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("Medusa answers");
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
    let refused = client
        .post(format!("{}{path}", medusa::guarded_url()))
        .header("origin", origin)
        .json(&json!({ "identifier": "a@example.com" }))
        .send()
        .await
        .expect("Medusa answers");
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.headers()["access-control-allow-origin"], origin);
}

/// The attack the file stops: on a stock Medusa one call to its route replaces the token row, so
/// the link this project e-mailed no longer works; also in spellings that `make run` and the
/// template's `$default` route forward to Medusa. (The route takes the provider as spelled, so
/// `EmailPass` finds no identity and replaces nothing; the other segments' case does not matter.)
#[tokio::test]
async fn medusas_open_route_invalidates_the_link_this_project_emailed() {
    let client = medusa::client();
    let stock = medusa::url();
    for path in ["/auth/customer/emailpass/reset-password/", "/AUTH/CUSTOMER/emailpass/RESET-PASSWORD"] {
        let email = unique_email("customer");
        medusa::register(&client, "customer", &email, "old-password-1").await;
        let token = our_token("customer", &email).await;
        let answer = send(&client, "POST", &format!("{stock}{path}"), identifier(&email)).await;
        assert_eq!(answer.status, 201, "{path}: {answer:?}");
        let (status, body) = medusa::update_password(&client, "customer", &token, "new-password-2").await;
        assert_eq!(status, 401, "{path} replaced the e-mailed token: {body}");
    }
}

async fn behind_the_closed_route_our_token_survives_and_medusa_takes_it(actor_type: &str) {
    let (client, guarded) = (medusa::client(), medusa::guarded_url());
    let email = unique_email(actor_type);
    medusa::register_at(&client, &guarded, actor_type, &email, "old-password-1").await;
    assert!(medusa::logs_in_at(&client, &guarded, actor_type, &email, "old-password-1").await, "login works");
    let token = our_token(actor_type, &email).await;
    // What someone loops on to invalidate the e-mailed link: every call refused, nothing replaced.
    for path in SPELLINGS {
        assert_closed(&send(&client, "POST", &format!("{guarded}{path}"), identifier(&email)).await, path);
    }
    let (status, body) = medusa::update_password_at(&client, &guarded, actor_type, &token, "new-password-2").await;
    assert_eq!(status, 200, "Medusa's update route takes this project's token: {body}");
    assert!(medusa::logs_in_at(&client, &guarded, actor_type, &email, "new-password-2").await, "the new password");
    assert!(!medusa::logs_in_at(&client, &guarded, actor_type, &email, "old-password-1").await, "not the old one");
}

#[tokio::test]
async fn behind_the_closed_route_a_customers_token_from_this_project_survives_and_medusa_takes_it() {
    behind_the_closed_route_our_token_survives_and_medusa_takes_it("customer").await;
}

#[tokio::test]
async fn behind_the_closed_route_an_admin_users_token_from_this_project_survives_and_medusa_takes_it() {
    behind_the_closed_route_our_token_survives_and_medusa_takes_it("user").await;
}

/// `make run` answers `/auth/{actor_type}/{auth_provider}/reset-password` itself, exactly as its
/// router matches it; the other spellings are paths like any other, forwarded to the backend.
const FORWARDED_BY_MAKE_RUN: [&str; 4] = [
    "/Auth/Customer/EmailPass/Reset-Password",
    "/auth/customer/emailpass/reset-password/",
    "/AUTH/USER/EMAILPASS/RESET-PASSWORD/",
    "/auth/user/google/Reset-Password",
];

#[tokio::test]
async fn through_make_runs_proxy_the_odd_spellings_get_medusas_404_and_the_route_itself_is_ours() {
    let local = LocalRunner::start(&[("MEDUSA_BACKEND_URL", &medusa::guarded_url())]).await;
    let client = medusa::client();
    let email = unique_email("customer");
    for path in SPELLINGS {
        let answer = send(&client, "POST", &local.url(path), identifier(&email)).await;
        if FORWARDED_BY_MAKE_RUN.contains(&path) {
            assert_closed(&answer, path);
        } else {
            assert!(!answer.from_medusa, "make run answers {path} itself: {answer:?}");
        }
    }
    let ours = send(&client, "POST", &local.url(ROUTE), identifier(&email)).await;
    assert_eq!((ours.status, ours.body.as_str()), (201, "Created"), "{ours:?}");

    medusa::register_at(&client, &local.base, "customer", &email, "old-password-1").await;
    assert!(medusa::logs_in_at(&client, &local.base, "customer", &email, "old-password-1").await, "login works");
    let token = our_token("customer", &email).await;
    let (status, body) = medusa::update_password_at(&client, &local.base, "customer", &token, "new-password-2").await;
    assert_eq!(status, 200, "Medusa's update route, through the proxy, takes this project's token: {body}");
    assert!(medusa::logs_in_at(&client, &local.base, "customer", &email, "new-password-2").await, "the new password");
    let log = local.stop().await;
    assert!(log.contains("forwarded to the Medusa backend"), "{log}");
}

/// `medusa/src/api/middlewares.ts` as `change` leaves it, type-checked by the Medusa project's own
/// TypeScript (tools/medusa/package.json) against Medusa 2.21.2's types, with a Medusa project's
/// compiler settings (tools/medusa/tsconfig.json): the running Medusa's copy went through esbuild,
/// which only strips the types. `Err` holds tsc's report.
fn type_check(change: impl FnOnce(String) -> String) -> Result<(), String> {
    let node_modules = std::env::var("MEDUSA_NODE_MODULES")
        .unwrap_or_else(|_| panic!("MEDUSA_NODE_MODULES is not set: run with `make test` (tools/with-medusa)"));
    let node_modules = std::path::PathBuf::from(node_modules);
    // Beside node_modules, so that the imports resolve to Medusa's packages.
    let project = node_modules.with_file_name(format!("typecheck-{}", uuid::Uuid::new_v4().simple()));
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("medusa/src/api/middlewares.ts")).expect("the middleware");
    std::fs::create_dir_all(project.join("src/api")).expect("a project folder");
    std::fs::write(project.join("src/api/middlewares.ts"), change(source)).expect("the middleware's copy");
    std::fs::copy(root.join("tools/medusa/tsconfig.json"), project.join("tsconfig.json")).expect("tsconfig");
    let output = std::process::Command::new(node_modules.join(".bin/tsc")).arg("-p").arg(&project).output();
    std::fs::remove_dir_all(&project).ok();
    let output = output.expect("the Medusa project's tsc runs");
    if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stdout).into_owned()) }
}

#[test]
fn the_middleware_type_checks_against_medusas_own_types_and_a_type_error_would_not() {
    type_check(|source| source).unwrap_or_else(|report| panic!("medusa/src/api/middlewares.ts:\n{report}"));
    let misspelt = type_check(|source| source.replace("MedusaError.Types.NOT_FOUND", "MedusaError.Types.NOT_FOUNDX"));
    let report = misspelt.expect_err("tsc refuses a member Medusa's types lack");
    assert!(report.contains("NOT_FOUNDX") && report.contains("error TS"), "{report}");
}
