//! The reset route in-process: Medusa's contract, the token, CORS, and a table of hostile requests.

mod support;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use medusa_reset::domain::event::{AuthEvent, PasswordResetEvent};
use medusa_reset::identity::MemoryStore;
use medusa_reset::publish::ChannelPublisher;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{SECRET, api_config, post_json, send, verify_independently};
use tokio::sync::mpsc::UnboundedReceiver;

const ROUTE: &str = "/auth/customer/emailpass/reset-password";

fn app_with(overrides: &[(&str, &str)]) -> (Router, UnboundedReceiver<AuthEvent>) {
    let (publisher, events) = ChannelPublisher::new();
    (support::app(&api_config(overrides), publisher, MemoryStore::open()), events)
}

/// The next published event, which must be a password reset.
fn next_reset(events: &mut UnboundedReceiver<AuthEvent>) -> PasswordResetEvent {
    match events.try_recv() {
        Ok(AuthEvent::PasswordReset(event)) => event,
        other => panic!("expected a password reset event, got {other:?}"),
    }
}

fn app() -> (Router, UnboundedReceiver<AuthEvent>) {
    app_with(&[("AUTH_CORS", "http://localhost:8000,/\\.example\\.com$/")])
}

#[tokio::test]
async fn a_valid_request_gets_201_with_no_body_and_publishes_one_event() {
    let (app, mut events) = app();
    let (response, body) =
        send(&app, post_json(ROUTE, r#"{"identifier":"a@example.com","metadata":{"locale":"de"}}"#)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body, "");
    assert_eq!(response.headers()["cache-control"], "no-store");

    let event = next_reset(&mut events);
    assert!(events.try_recv().is_err(), "only one event");
    let detail = serde_json::to_value(&event).unwrap();
    assert_eq!(detail["entity_id"], "a@example.com");
    assert_eq!(detail["actor_type"], "customer");
    assert_eq!(detail["provider"], "emailpass");
    assert_eq!(detail["metadata"], json!({"locale": "de"}));

    let claims = verify_independently(event.token.expose(), SECRET, None).expect("PyJWT accepts the token");
    assert_eq!(claims["entity_id"], "a@example.com");
    assert_eq!(claims["actor_type"], "customer");
    assert_eq!(claims["provider"], "emailpass");
    assert_eq!(claims["purpose"], "reset");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 900);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_rejected_by_the_independent_verifier() {
    let (app, mut events) = app();
    send(&app, post_json(ROUTE, r#"{"identifier":"a@example.com"}"#)).await;
    let token = next_reset(&mut events).token;
    let complaint = verify_independently(token.expose(), "another-secret-of-at-least-32-bytes!!", None).unwrap_err();
    assert!(complaint.contains("InvalidSignatureError"), "{complaint}");
}

#[tokio::test]
async fn issuer_audience_and_lifetime_follow_configuration() {
    let (app, mut events) =
        app_with(&[("JWT_ISSUER", "shop"), ("JWT_AUDIENCE", "storefront"), ("RESET_TOKEN_TTL_SECONDS", "120")]);
    send(&app, post_json(ROUTE, r#"{"identifier":"a@example.com"}"#)).await;
    let token = next_reset(&mut events).token;
    let claims = verify_independently(token.expose(), SECRET, Some("storefront")).unwrap();
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some("shop"), Some("storefront")));
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 120);
    assert!(verify_independently(token.expose(), SECRET, Some("admin")).is_err());
}

#[tokio::test]
async fn a_bare_json_string_is_the_identifier() {
    let (app, mut events) = app();
    let (response, _) = send(&app, post_json(ROUTE, r#""customer@gmail.com""#)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(next_reset(&mut events).entity_id, "customer@gmail.com");
}

#[tokio::test]
async fn unknown_identifier_gets_the_same_answer() {
    // Without Medusa's database every well-formed identifier is treated alike: same status, same
    // (empty) body, same headers.
    let (app, _events) = app();
    let (known, known_body) = send(&app, post_json(ROUTE, r#"{"identifier":"customer@example.com"}"#)).await;
    let (unknown, unknown_body) = send(&app, post_json(ROUTE, r#"{"identifier":"nobody@nowhere.test"}"#)).await;
    assert_eq!(known.status(), unknown.status());
    assert_eq!(known_body, unknown_body);
    let names = |r: &http::Response<()>| r.headers().keys().map(|k| k.as_str().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(&known), names(&unknown));
}

#[tokio::test]
async fn a_disallowed_provider_is_refused_with_medusas_message() {
    let (app, mut events) = app();
    let (response, body) =
        send(&app, post_json("/auth/customer/github/reset-password", r#"{"identifier":"a@example.com"}"#)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"type": "not_allowed", "message": "The actor type customer is not allowed to use the auth provider github"})
    );
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn validation_failures_use_medusas_messages() {
    let (app, _events) = app();
    let cases = [
        (r#"{}"#, "Invalid request: Field 'identifier' is required"),
        (r#"{"identifier":1}"#, "Invalid request: Expected type: 'string' for field 'identifier', got: 'number'"),
        (r#"{"identifier":"a@b.c","email":"x"}"#, "Invalid request: Unrecognized fields: 'email'"),
    ];
    for (body, message) in cases {
        let (response, text) = send(&app, post_json(ROUTE, body)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"type": "invalid_data", "message": message}));
    }
}

#[tokio::test]
async fn a_publish_failure_is_medusas_unknown_error() {
    let (app, events) = app();
    drop(events);
    let (response, body) = send(&app, post_json(ROUTE, r#"{"identifier":"a@example.com"}"#)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": "unknown_error", "type": "unknown_error", "message": "An unknown error occurred."})
    );
}

#[tokio::test]
async fn an_allowed_origin_gets_a_preflight_answer_with_credentials() {
    let (app, _events) = app();
    for origin in ["http://localhost:8000", "https://shop.example.com"] {
        let preflight = Request::options(ROUTE)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-publishable-api-key")
            .body(Body::empty())
            .unwrap();
        let (response, _) = send(&app, preflight).await;
        assert!(response.status().is_success(), "{origin}: {}", response.status());
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        assert_eq!(headers["access-control-allow-credentials"], "true");
        assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        assert_eq!(headers["access-control-allow-headers"], "content-type,x-publishable-api-key");
    }
    let mut post = post_json(ROUTE, r#"{"identifier":"a@example.com"}"#);
    post.headers_mut().insert("origin", "http://localhost:8000".parse().unwrap());
    let (response, _) = send(&app, post).await;
    assert_eq!(response.headers()["access-control-allow-origin"], "http://localhost:8000");
}

#[tokio::test]
async fn an_unknown_origin_gets_no_cors_headers() {
    let (app, _events) = app();
    let preflight = Request::options(ROUTE)
        .header("origin", "https://evil.test")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let (response, _) = send(&app, preflight).await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_json_error_shape() {
    let (app, _events) = app();
    let (response, body) = send(&app, post_json("/auth/customer/emailpass/reset", "{}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "not_found");
    let (response, body) = send(&app, Request::get(ROUTE).body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "not_allowed");
}

/// A hostile or malformed request: each must get a 4xx in Medusa's shape and publish nothing.
struct Hostile {
    name: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn hostile(name: &'static str, body: impl Into<Vec<u8>>) -> Hostile {
    Hostile { name, method: "POST", path: ROUTE.into(), content_type: Some("application/json"), body: body.into() }
}

fn hostile_requests() -> Vec<Hostile> {
    let deep_array = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let deep_metadata = format!(r#"{{"identifier":"a@b.c","metadata":{}1{}}}"#, r#"{"a":"#.repeat(10), "}".repeat(10));
    let huge_identifier = format!(r#"{{"identifier":"{}@example.com"}}"#, "a".repeat(300));
    let huge_body = format!(r#"{{"identifier":"a@b.c","metadata":{{"x":"{}"}}}}"#, "x".repeat(20_000));
    let big_metadata = format!(r#"{{"identifier":"a@b.c","metadata":{{"x":"{}"}}}}"#, "x".repeat(3_000));
    let many_fields = format!(
        r#"{{"identifier":"a@b.c",{}}}"#,
        (0..200).map(|i| format!(r#""f{i}":1"#)).collect::<Vec<_>>().join(",")
    );
    vec![
        hostile("invalid utf-8", b"{\"identifier\":\"\xff\xfe@b.c\"}".to_vec()),
        hostile("invalid utf-8 outside strings", b"\xff{}".to_vec()),
        hostile("huge body", huge_body),
        hostile("deep json", deep_array),
        hostile("deep metadata", deep_metadata),
        hostile("big metadata", big_metadata),
        hostile("identifier is a number", r#"{"identifier":42}"#),
        hostile("identifier is null", r#"{"identifier":null}"#),
        hostile("identifier is an array", r#"{"identifier":["a@b.c"]}"#),
        hostile("identifier is an object", r#"{"identifier":{"$ne":""}}"#),
        hostile("identifier is a boolean", r#"{"identifier":true}"#),
        hostile("body is null", "null"),
        hostile("body is a number", "12"),
        hostile("body is an array", r#"["a@b.c"]"#),
        hostile("missing identifier", r#"{"metadata":{}}"#),
        hostile("duplicate identifier", r#"{"identifier":"a@b.c","identifier":"x@y.z"}"#),
        hostile("crlf in identifier", r#"{"identifier":"a@b.c\r\nBcc: victim@x.y"}"#),
        hostile("nul in identifier", r#"{"identifier":"a@b.c\u0000"}"#),
        hostile("escape sequence in identifier", r#"{"identifier":"\u001b[31ma@b.c"}"#),
        hostile("bidi override in identifier", r#"{"identifier":"\u202emoc.b@a"}"#),
        hostile("empty identifier", r#"{"identifier":""}"#),
        hostile("padded identifier", r#"{"identifier":" a@b.c "}"#),
        hostile("identifier too long", huge_identifier),
        hostile("metadata is a string", r#"{"identifier":"a@b.c","metadata":"x"}"#),
        hostile("metadata is null", r#"{"identifier":"a@b.c","metadata":null}"#),
        hostile("metadata is an array", r#"{"identifier":"a@b.c","metadata":[]}"#),
        hostile("unknown field", r#"{"identifier":"a@b.c","password":"x"}"#),
        hostile("prototype pollution", r#"{"identifier":"a@b.c","__proto__":{"admin":true}}"#),
        hostile("many unknown fields", many_fields),
        hostile("truncated json", r#"{"identifier":"a@b.c""#),
        hostile("trailing garbage", r#"{"identifier":"a@b.c"} x"#),
        hostile("single quotes", r#"{'identifier':'a@b.c'}"#),
        hostile("number overflow", r#"{"identifier":"a@b.c","metadata":{"n":1e999}}"#),
        hostile("lone surrogate", r#"{"identifier":"\ud800@b.c"}"#),
        Hostile { content_type: None, ..hostile("no content type", r#"{"identifier":"a@b.c"}"#) },
        Hostile { content_type: Some("text/plain"), ..hostile("text content type", r#"{"identifier":"a@b.c"}"#) },
        Hostile {
            content_type: Some("application/x-www-form-urlencoded"),
            ..hostile("form content type", "identifier=a%40b.c")
        },
        Hostile { content_type: Some("multipart/form-data; boundary=x"), ..hostile("multipart", "--x--") },
        Hostile { content_type: Some("application/json"), ..hostile("empty body", "") },
        Hostile {
            path: "/auth/customer//reset-password".into(),
            ..hostile("missing provider", r#"{"identifier":"a@b.c"}"#)
        },
        Hostile {
            path: "/auth//emailpass/reset-password".into(),
            ..hostile("missing actor", r#"{"identifier":"a@b.c"}"#)
        },
        Hostile { path: "/auth/customer/reset-password".into(), ..hostile("short path", r#"{"identifier":"a@b.c"}"#) },
        Hostile {
            path: "/auth/admin/emailpass/reset-password".into(),
            ..hostile("unknown actor type", r#"{"identifier":"a@b.c"}"#)
        },
        Hostile {
            path: "/auth/customer/%3Cscript%3E/reset-password".into(),
            ..hostile("script in provider", r#"{"identifier":"a@b.c"}"#)
        },
        Hostile {
            path: "/auth/customer/%ff/reset-password".into(),
            ..hostile("bad percent-encoding in path", r#"{"identifier":"a@b.c"}"#)
        },
        Hostile { method: "PUT", ..hostile("wrong method", r#"{"identifier":"a@b.c"}"#) },
        Hostile { method: "DELETE", ..hostile("delete", "") },
    ]
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_in_medusas_shape_and_publish_nothing() {
    let (app, mut events) = app();
    let cases = hostile_requests();
    assert!(cases.len() >= 30);
    for case in cases {
        let mut builder = Request::builder().method(case.method).uri(&case.path);
        if let Some(content_type) = case.content_type {
            builder = builder.header("content-type", content_type);
        }
        let (response, body) = send(&app, builder.body(Body::from(case.body)).unwrap()).await;
        assert!(response.status().is_client_error(), "{}: {}", case.name, response.status());
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{}: not JSON: {body}", case.name));
        assert!(error["type"].is_string() && error["message"].is_string(), "{}: {error}", case.name);
        assert_eq!(error.as_object().unwrap().len(), 2, "{}: {error}", case.name);
        assert!(body.len() < 300, "{}: the error echoes too much: {body}", case.name);
        assert!(events.try_recv().is_err(), "{}: published an event", case.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn no_body_makes_the_route_answer_5xx_or_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            "\\PC{0,200}".prop_map(String::into_bytes),
            "[\\[\\]{}\",:0-9a-z\\\\ ]{0,200}".prop_map(String::into_bytes),
            ("\\PC{0,80}", "\\PC{0,80}").prop_map(|(k, v)| serde_json::to_vec(&json!({"identifier": v, k: 1})).unwrap()),
        ],
        content_type in prop_oneof![Just("application/json"), Just("text/plain"), Just("")],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let status = runtime.block_on(async {
            let (app, _events) = app();
            let mut request = Request::post(ROUTE);
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            send(&app, request.body(Body::from(body)).unwrap()).await.0.status()
        });
        prop_assert!(!status.is_server_error(), "{}", status);
    }
}
