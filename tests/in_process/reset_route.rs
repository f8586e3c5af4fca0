//! The reset route in-process: Medusa's contract, the token, CORS, and a table of hostile requests.

use crate::support::{ROUTE, SECRET, TestApp, api_config, post_json, verify_independently};
use axum::body::Body;
use http::{Request, StatusCode};
use medusa_reset::domain::event::{AuthEvent, PasswordResetEvent};
use medusa_reset::identity::{
    ChangeOutcome, IdentityStore, IssuedToken, Lookup, MemoryIdentityStore, PasswordChange, StoreError, TokenRecord,
};
use medusa_reset::publish::ChannelPublisher;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

fn app_with(overrides: &[(&str, &str)]) -> (TestApp, UnboundedReceiver<AuthEvent>) {
    TestApp::with_channel(&api_config(overrides), MemoryIdentityStore::open())
}

/// The next published event, which must be a password reset.
fn next_reset(events: &mut UnboundedReceiver<AuthEvent>) -> PasswordResetEvent {
    match events.try_recv() {
        Ok(AuthEvent::PasswordReset(event)) => event,
        other => panic!("expected a password reset event, got {other:?}"),
    }
}

fn app() -> (TestApp, UnboundedReceiver<AuthEvent>) {
    app_with(&[("AUTH_CORS", "http://localhost:8000,/\\.example\\.com$/")])
}

#[tokio::test]
async fn a_valid_request_gets_medusas_201_and_publishes_one_event() {
    let (app, mut events) = app();
    let (response, body) = app.post(ROUTE, r#"{"identifier":"a@example.com","metadata":{"locale":"de"}}"#).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body, "Created");
    assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
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
    app.reset("a@example.com").await;
    let token = next_reset(&mut events).token;
    let complaint = verify_independently(token.expose(), "another-secret-of-at-least-32-bytes!!", None).unwrap_err();
    assert!(complaint.contains("InvalidSignatureError"), "{complaint}");
}

#[tokio::test]
async fn issuer_audience_and_lifetime_follow_configuration() {
    let (app, mut events) =
        app_with(&[("JWT_ISSUER", "shop"), ("JWT_AUDIENCE", "storefront"), ("RESET_TOKEN_TTL_SECONDS", "120")]);
    app.reset("a@example.com").await;
    let token = next_reset(&mut events).token;
    let claims = verify_independently(token.expose(), SECRET, Some("storefront")).unwrap();
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some("shop"), Some("storefront")));
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 120);
    assert!(verify_independently(token.expose(), SECRET, Some("admin")).is_err());
}

#[tokio::test]
async fn a_bare_json_string_is_refused_as_medusas_parser_refuses_it() {
    let (app, mut events) = app();
    let (response, body) = app.post(ROUTE, r#""customer@gmail.com""#).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        r#"{"message":"Unexpected token '\"', \"\"customer@gmail.com\"\" is not valid JSON","type":"invalid_data"}"#
    );
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn unknown_identifier_gets_the_same_answer() {
    // A store that knows one identity, so the two requests take different paths inside.
    let store = MemoryIdentityStore::with_identities([("customer@example.com", "emailpass")]);
    let (app, mut events) = TestApp::with_channel(&api_config(&[]), store);
    let (known, known_body) = app.reset("customer@example.com").await;
    assert!(matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(_))), "the known identity got a token");
    let (unknown, unknown_body) = app.reset("nobody@nowhere.test").await;
    assert!(matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(_))), "the unknown one got none");
    assert_eq!(known.status(), StatusCode::CREATED);
    assert_eq!((known.status(), &known_body), (unknown.status(), &unknown_body));
    assert_eq!(known.headers(), unknown.headers(), "every header, names and values");
}

#[tokio::test]
async fn a_disallowed_provider_is_refused_with_medusas_message() {
    let (app, mut events) = app();
    let (response, body) = app.post("/auth/customer/github/reset-password", r#"{"identifier":"a@example.com"}"#).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"type": "not_allowed", "message": "The actor type customer is not allowed to use the auth provider github"})
    );
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn validation_failures_use_medusas_messages() {
    // Measured against Medusa 2.21.2; tests/medusa/medusa_differential.rs compares many more live.
    let (app, _events) = app();
    let cases = [
        (r#"{}"#, "Invalid request: Field 'identifier' is required"),
        (r#"{"identifier":1}"#, "Invalid request: Expected type: 'string' for field 'identifier', got: '1'"),
        (r#"{"identifier":"a@b.c","b":1,"a":2}"#, "Invalid request: Unrecognized fields: 'b, a'"),
        (r#"[]"#, "Invalid request: Field '' is required"),
    ];
    for (body, message) in cases {
        let (response, text) = app.post(ROUTE, body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(text, json!({"type": "invalid_data", "message": message}).to_string(), "{body}");
    }
}

#[tokio::test]
async fn a_publish_failure_is_medusas_unknown_error() {
    let (app, events) = app();
    drop(events);
    let (response, body) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": "unknown_error", "type": "unknown_error", "message": "An unknown error occurred."})
    );
}

#[tokio::test]
async fn failures_take_no_less_than_the_response_floor_as_successes_do() {
    let floor = Duration::from_millis(200);
    let overrides = [("RESPONSE_FLOOR_MS", "200"), ("RATE_LIMIT_PER_IP", "2/300")];
    let (app, events) = app_with(&overrides);
    let timed = async |identifier: &str| {
        let started = Instant::now();
        let (response, _) = app.reset(identifier).await;
        (response.status(), started.elapsed())
    };
    // The bus is gone, so resets fail with a 500; after two the client is over its limit: a 429.
    drop(events);
    for identifier in ["a@example.com", "b@example.com"] {
        let (status, elapsed) = timed(identifier).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(elapsed >= floor, "{status} after {elapsed:?}, before the floor");
    }
    let (status, elapsed) = timed("c@example.com").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(elapsed >= floor, "{status} after {elapsed:?}, before the floor");
}

/// The store calls a request made, in order.
#[derive(Clone)]
struct RecordingStore {
    inner: Arc<MemoryIdentityStore>,
    calls: Arc<Mutex<Vec<&'static str>>>,
}

impl RecordingStore {
    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl IdentityStore for RecordingStore {
    async fn find(&self, entity_id: &str, provider: &str) -> Result<Lookup, StoreError> {
        self.calls.lock().unwrap().push("find");
        self.inner.find(entity_id, provider).await
    }

    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        self.calls.lock().unwrap().push("issue");
        self.inner.issue(record).await
    }

    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push("withdraw");
        self.inner.withdraw(issued).await
    }

    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<ChangeOutcome, StoreError> {
        self.calls.lock().unwrap().push("change_password");
        self.inner.change_password(change).await
    }
}

#[tokio::test]
async fn a_failed_publish_takes_the_same_store_steps_for_a_known_and_an_unknown_identifier() {
    let store = RecordingStore {
        inner: Arc::new(MemoryIdentityStore::with_identities([("known@example.com", "emailpass")])),
        calls: Arc::default(),
    };
    let (publisher, events) = ChannelPublisher::new();
    drop(events);
    let app = TestApp::new(&api_config(&[]), publisher, store.clone());
    let mut steps = Vec::new();
    for identifier in ["known@example.com", "nobody@example.com"] {
        let (response, _) = app.reset(identifier).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{identifier}");
        steps.push(store.take());
    }
    assert_eq!(steps[0], ["find", "issue", "withdraw"], "the known path takes its row back");
    assert_eq!(steps[1], steps[0], "the unknown path makes the same calls");
    assert_eq!(store.inner.live_token_hash("known@example.com", "emailpass"), None);
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
        let (response, _) = app.send(preflight).await;
        assert!(response.status().is_success(), "{origin}: {}", response.status());
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        assert_eq!(headers["access-control-allow-credentials"], "true");
        assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        assert_eq!(headers["access-control-allow-headers"], "content-type,x-publishable-api-key");
    }
    let mut post = post_json(ROUTE, r#"{"identifier":"a@example.com"}"#);
    post.headers_mut().insert("origin", "http://localhost:8000".parse().unwrap());
    let (response, _) = app.send(post).await;
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
    let (response, _) = app.send(preflight).await;
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_json_error_shape() {
    let (app, _events) = app();
    let (response, body) = app.post("/auth/customer/emailpass/reset", "{}").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "not_found");
    let (response, body) = app.send(Request::get(ROUTE).body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "not_allowed");
}

/// A hostile or malformed request, and the exact answer it must get. None publishes anything.
struct Hostile {
    name: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    kind: &'static str,
    message: String,
}

/// A POST to the route with a JSON body, refused as invalid data with `message`.
fn hostile(name: &'static str, body: impl Into<Vec<u8>>, message: impl Into<String>) -> Hostile {
    Hostile {
        name,
        method: "POST",
        path: ROUTE.into(),
        content_type: Some("application/json"),
        body: body.into(),
        status: 400,
        kind: "invalid_data",
        message: message.into(),
    }
}

const MALFORMED: &str = "Invalid request: The body is not valid JSON";
const CONTROL: &str = "Invalid request: Field 'identifier' must not contain control characters";
const CONTENT_TYPE: &str = "Invalid request: Content-Type must be application/json with UTF-8";
const INVALID_NAME: &str = "The actor type or auth provider is not a valid name";
const VALID: &str = r#"{"identifier":"a@b.c"}"#;

fn wrong(field: &str, expected: &str, got: &str) -> String {
    format!("Invalid request: Expected type: '{expected}' for field '{field}', got: '{got}'")
}

fn hostile_requests() -> Vec<Hostile> {
    let deep_array = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let deep_metadata = format!(r#"{{"identifier":"a@b.c","metadata":{}1{}}}"#, r#"{"a":"#.repeat(10), "}".repeat(10));
    let huge_identifier = format!(r#"{{"identifier":"{}@example.com"}}"#, "a".repeat(300));
    let huge_body = format!(r#"{{"identifier":"a@b.c","metadata":{{"x":"{}"}}}}"#, "x".repeat(20_000));
    let big_metadata = format!(r#"{{"identifier":"a@b.c","metadata":{{"x":"{}"}}}}"#, "x".repeat(3_000));
    let names: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let many_fields = format!(
        r#"{{"identifier":"a@b.c",{}}}"#,
        names.iter().map(|n| format!(r#""{n}":1"#)).collect::<Vec<_>>().join(",")
    );
    let not_allowed = |name, path: &str, message: &str| Hostile {
        path: path.into(),
        status: 400,
        kind: "not_allowed",
        ..hostile(name, VALID, message)
    };
    let not_found = |name, path: &str| Hostile {
        path: path.into(),
        status: 404,
        kind: "not_found",
        ..hostile(name, VALID, "The requested route does not exist")
    };
    let unsupported =
        |name, content_type, body: &str| Hostile { content_type, status: 415, ..hostile(name, body, CONTENT_TYPE) };
    let wrong_method = |name, method| Hostile {
        method,
        status: 405,
        kind: "not_allowed",
        ..hostile(name, VALID, "The method is not allowed on this route")
    };
    vec![
        hostile("invalid utf-8 in a string", b"{\"identifier\":\"\xff\xfe@b.c\"}".to_vec(), MALFORMED),
        // Node's message, byte for byte: the replacement character stands for the bad byte.
        hostile(
            "invalid utf-8 first",
            b"\xff{}".to_vec(),
            "Unexpected token '\u{fffd}', \"\u{fffd}{}\" is not valid JSON",
        ),
        Hostile {
            status: 413,
            ..hostile("huge body", huge_body, "Invalid request: The body must be at most 8192 bytes")
        },
        hostile("deep json", deep_array, MALFORMED),
        hostile(
            "deep metadata",
            deep_metadata,
            "Invalid request: Field 'metadata' must be nested at most 5 levels deep",
        ),
        hostile("big metadata", big_metadata, "Invalid request: Field 'metadata' must be at most 2048 bytes of JSON"),
        hostile("identifier is a number", r#"{"identifier":42}"#, wrong("identifier", "string", "42")),
        hostile("identifier is null", r#"{"identifier":null}"#, wrong("identifier", "string", "null")),
        hostile("identifier is an array", r#"{"identifier":["a@b.c"]}"#, wrong("identifier", "string", "a@b.c")),
        hostile(
            "identifier is an object",
            r#"{"identifier":{"$ne":""}}"#,
            wrong("identifier", "string", "[object Object]"),
        ),
        hostile("identifier is a boolean", r#"{"identifier":true}"#, wrong("identifier", "string", "true")),
        hostile("body is null", "null", r#"Unexpected token 'n', "null" is not valid JSON"#),
        hostile("body is a number", "12", r#"Unexpected token '1', "12" is not valid JSON"#),
        hostile("body is an array", r#"["a@b.c"]"#, "Invalid request: Field '' is required"),
        hostile("missing identifier", r#"{"metadata":{}}"#, "Invalid request: Field 'identifier' is required"),
        hostile(
            "duplicate identifier",
            r#"{"identifier":"a@b.c","identifier":"x@y.z"}"#,
            "Invalid request: The body has a duplicate field",
        ),
        hostile("crlf in identifier", r#"{"identifier":"a@b.c\r\nBcc: victim@x.y"}"#, CONTROL),
        hostile("nul in identifier", r#"{"identifier":"a@b.c\u0000"}"#, CONTROL),
        hostile("escape sequence in identifier", r#"{"identifier":"\u001b[31ma@b.c"}"#, CONTROL),
        hostile("bidi override in identifier", r#"{"identifier":"\u202emoc.b@a"}"#, CONTROL),
        hostile("empty identifier", r#"{"identifier":""}"#, "Invalid request: Field 'identifier' must not be empty"),
        hostile(
            "padded identifier",
            r#"{"identifier":" a@b.c "}"#,
            "Invalid request: Field 'identifier' must not start or end with white space",
        ),
        hostile(
            "identifier too long",
            huge_identifier,
            "Invalid request: Field 'identifier' must be at most 254 characters",
        ),
        hostile("metadata is a string", r#"{"identifier":"a@b.c","metadata":"x"}"#, wrong("metadata", "record", "x")),
        hostile("metadata is null", r#"{"identifier":"a@b.c","metadata":null}"#, wrong("metadata", "record", "null")),
        hostile("metadata is an array", r#"{"identifier":"a@b.c","metadata":[]}"#, wrong("metadata", "record", "")),
        hostile(
            "unknown field",
            r#"{"identifier":"a@b.c","password":"x"}"#,
            "Invalid request: Unrecognized fields: 'password'",
        ),
        hostile(
            "prototype pollution",
            r#"{"identifier":"a@b.c","__proto__":{"admin":true}}"#,
            "Invalid request: Unrecognized fields: '__proto__'",
        ),
        hostile(
            "many unknown fields",
            many_fields,
            format!("Invalid request: Unrecognized fields: '{}'", names.join(", ")),
        ),
        hostile("truncated json", r#"{"identifier":"a@b.c""#, MALFORMED),
        hostile("trailing garbage", r#"{"identifier":"a@b.c"} x"#, MALFORMED),
        hostile("single quotes", r#"{'identifier':'a@b.c'}"#, MALFORMED),
        hostile("number overflow", r#"{"identifier":"a@b.c","metadata":{"n":1e999}}"#, MALFORMED),
        hostile("lone surrogate", r#"{"identifier":"\ud800@b.c"}"#, MALFORMED),
        unsupported("no content type", None, VALID),
        unsupported("text content type", Some("text/plain"), VALID),
        unsupported("form content type", Some("application/x-www-form-urlencoded"), "identifier=a%40b.c"),
        unsupported("multipart", Some("multipart/form-data; boundary=x"), "--x--"),
        unsupported("another charset", Some("application/json; charset=latin1"), VALID),
        Hostile {
            content_type: Some("application/json"),
            ..hostile("empty body", "", "Invalid request: Field 'identifier' is required")
        },
        not_allowed("missing provider", "/auth/customer//reset-password", INVALID_NAME),
        not_allowed("missing actor", "/auth//emailpass/reset-password", INVALID_NAME),
        not_found("short path", "/auth/customer/reset-password"),
        not_allowed(
            "unknown actor type",
            "/auth/admin/emailpass/reset-password",
            "The actor type admin is not allowed to use the auth provider emailpass",
        ),
        not_allowed(
            "markup in provider, echoed as JSON text as Medusa does",
            "/auth/customer/%3Cscript%3E/reset-password",
            "The actor type customer is not allowed to use the auth provider <script>",
        ),
        not_allowed("control character in provider", "/auth/customer/a%0Ab/reset-password", INVALID_NAME),
        not_allowed("bad percent-encoding in path", "/auth/customer/%ff/reset-password", INVALID_NAME),
        wrong_method("wrong method", "PUT"),
        wrong_method("delete", "DELETE"),
    ]
}

#[tokio::test]
async fn hostile_requests_get_their_exact_answer_and_publish_nothing() {
    let (app, mut events) = app();
    let cases = hostile_requests();
    for case in cases {
        let mut builder = Request::builder().method(case.method).uri(&case.path);
        if let Some(content_type) = case.content_type {
            builder = builder.header("content-type", content_type);
        }
        let (response, body) = app.send(builder.body(Body::from(case.body)).unwrap()).await;
        let name = case.name;
        assert_eq!(response.status().as_u16(), case.status, "{name}: {body}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/json; charset=utf-8", "{name}");
        assert_eq!(headers["cache-control"], "no-store", "{name}");
        let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{name}: not JSON: {body}"));
        assert_eq!(error, json!({"type": case.kind, "message": case.message}), "{name}");
        assert!(events.try_recv().is_err(), "{name}: published an event");
    }
}

/// A field of a request body from a grammar: the known ones with values of every JSON type
/// (identifier strings within and outside our bounds), and other names.
fn field() -> impl Strategy<Value = (String, Value)> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,10}".prop_map(Value::String),
    ];
    let value = scalar.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    });
    let identifier = prop_oneof![
        4 => "[a-z0-9.]{1,12}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(Value::String),
        1 => "[ \\t]?[a-z@.\\r\\n\u{202e}]{0,6}[ ]?".prop_map(Value::String),
        1 => value.clone(),
    ];
    let metadata = prop_oneof![
        3 => prop::collection::vec(("[a-z]{1,6}", value.clone()), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => value.clone(),
    ];
    prop_oneof![
        4 => identifier.prop_map(|v| ("identifier".to_owned(), v)),
        2 => metadata.prop_map(|v| ("metadata".to_owned(), v)),
        1 => ("[a-z_]{1,8}", value),
    ]
}

fn object_body() -> impl Strategy<Value = String> {
    prop::collection::vec(field(), 0..4).prop_map(|fields| {
        let mut map = serde_json::Map::new();
        for (name, value) in fields {
            map.entry(name).or_insert(value);
        }
        Value::Object(map).to_string()
    })
}

/// Bodies of every shape: objects from the grammar (sometimes truncated), arrays, scalars, bytes.
fn request_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => object_body().prop_map(String::into_bytes),
        1 => (object_body(), any::<prop::sample::Index>())
            .prop_map(|(b, cut)| b.as_bytes()[..cut.index(b.len())].to_vec()),
        1 => field().prop_map(|(_, v)| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// A 201 publishes exactly one event, for the body's identifier and metadata; anything else is a
    /// 4xx that publishes nothing; nothing is a 5xx.
    #[test]
    fn every_body_gets_a_201_with_its_event_or_a_4xx_with_none(
        body in request_body(),
        content_type in prop_oneof![8 => Just("application/json"), 1 => Just("text/plain"), 1 => Just("")],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, mut events) = runtime.block_on(async {
            let (app, events) = app();
            let mut request = Request::post(ROUTE);
            if !content_type.is_empty() {
                request = request.header("content-type", content_type);
            }
            (app.send(request.body(Body::from(body.clone())).unwrap()).await.0.status(), events)
        });
        if status == StatusCode::CREATED {
            let sent: Value = serde_json::from_slice(&body).unwrap();
            let event = next_reset(&mut events);
            prop_assert_eq!(Some(event.about.entity_id.as_str()), sent["identifier"].as_str());
            let published = serde_json::to_value(&event).unwrap();
            let empty = json!({});
            prop_assert_eq!(&published["metadata"], sent.get("metadata").unwrap_or(&empty));
            prop_assert!(events.try_recv().is_err(), "more than one event");
        } else {
            prop_assert!(status.is_client_error(), "{}", status);
            prop_assert!(events.try_recv().is_err(), "a {} published an event", status);
        }
    }
}
