//! The same requests to a real Medusa 2.21.2 and to our router: status, content type and body must
//! be identical, except where Medusa's message is Node's JSON parser text (then status and type).
//!
//! Bodies are built from a grammar of fields and values, so every branch of the parser is reached.
//! What we do differently on purpose (README, "Deliberate differences") is left out by name:
//! duplicate keys, identifier and metadata bounds, body size, content types other than JSON,
//! actor types outside the allow-list, numbers beyond a double's range, and unknown routes.

use crate::support::medusa::{self, AUTH_PROVIDERS, Answer};
use crate::support::{ROUTE, TestApp};
use axum::body::Body;
use http::Request;
use medusa_reset::identity::MemoryIdentityStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Map, Value, json};

/// Cases per run; `CONFORMANCE_CASES` raises it.
const DEFAULT_CASES: u32 = 400;

/// How a case's answer is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Status, content type and body byte for byte.
    Exactly,
    /// Medusa's message is Node's JSON parser text: status, content type and `type` only.
    ParserText,
}

#[derive(Debug, Clone)]
struct Case {
    path: String,
    content_type: Option<&'static str>,
    body: String,
    compare: Compare,
}

/// Any JSON value, small, with the kinds of numbers and strings whose printing differs by language.
fn json_value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i32>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (-25i32..25, -999_999i32..999_999).prop_map(|(e, m)| json!(f64::from(m) * 10f64.powi(e))),
        Just(json!(0.1)),
        Just(json!(1e21)),
        Just(json!(-0.0)),
    ];
    let string = prop_oneof!["[a-zA-Z0-9@. ]{0,12}", "\\PC{0,8}", Just("\u{0}\n\t\"\\\u{2028}é😀".to_owned())];
    let leaf =
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number, string.prop_map(Value::String)];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An identifier within our bounds (the bounds themselves are a deliberate difference).
fn identifier() -> impl Strategy<Value = Value> {
    "[a-z0-9._+-]{1,16}@[a-z0-9-]{1,10}\\.[a-z]{2,4}".prop_map(Value::String)
}

/// The known fields with values of every type, and others with names JavaScript treats specially.
fn field() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        3 => (Just("identifier".to_owned()), prop_oneof![
            3 => identifier(),
            1 => json_value().prop_filter("strings are identifiers, within our bounds", |v| !v.is_string()),
        ]),
        2 => (Just("metadata".to_owned()), prop_oneof![
            2 => prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            1 => json_value(),
        ]),
        1 => ("[a-zA-Z_$][a-zA-Z0-9_]{0,7}", json_value()),
        1 => (prop_oneof![Just("__proto__"), Just("constructor"), Just("toString"), Just("Identifier")]
            .prop_map(str::to_owned), json_value()),
    ]
}

/// An object body: fields in any order, no name twice (duplicate keys are a deliberate difference).
fn object_body() -> impl Strategy<Value = String> {
    prop::collection::vec(field(), 0..5).prop_map(|fields| {
        let mut object = Map::new();
        for (name, value) in fields {
            object.entry(name).or_insert(value);
        }
        Value::Object(object).to_string()
    })
}

fn body() -> impl Strategy<Value = (String, Compare)> {
    prop_oneof![
        8 => object_body().prop_map(|b| (b, Compare::Exactly)),
        1 => prop::collection::vec(json_value(), 0..4).prop_map(|a| (Value::Array(a).to_string(), Compare::Exactly)),
        1 => Just((String::new(), Compare::Exactly)),
        1 => json_value()
            .prop_filter("a scalar", |v| !v.is_object() && !v.is_array())
            .prop_map(|v| (v.to_string(), Compare::ParserText)),
        1 => (object_body(), any::<prop::sample::Index>()).prop_map(|(b, cut)| {
            // A proper prefix of an object is never JSON.
            let at = cut.index(b.len() - 1).max(1);
            let at = (1..=at).rev().find(|&i| b.is_char_boundary(i)).unwrap_or(1);
            (b[..at].to_owned(), Compare::ParserText)
        }),
        1 => object_body().prop_map(|b| (format!("{b} x"), Compare::ParserText)),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let actor = prop_oneof![Just("customer"), Just("user")];
    let provider =
        prop_oneof![4 => Just("emailpass"), 1 => Just("github"), 1 => Just("Git%20hub"), 1 => Just("%3Cb%3E")];
    (actor, provider).prop_map(|(a, p)| format!("/auth/{a}/{p}/reset-password"))
}

fn case() -> impl Strategy<Value = Case> {
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json")),
        Just(Some("application/json; charset=utf-8")),
        Just(Some("APPLICATION/JSON")),
    ];
    (path(), content_type, body()).prop_map(|(path, content_type, (body, compare))| {
        // Without a content type only an empty body is ours to compare (it is `{}` on both sides);
        // Medusa ignores any other body then, which we refuse.
        let content_type = if body.is_empty() { content_type } else { content_type.or(Some("application/json")) };
        Case { path, content_type, body, compare }
    })
}

async fn ours(app: &TestApp, case: &Case) -> Answer {
    let mut request = Request::post(&case.path);
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let (response, body) = app.send(request.body(Body::from(case.body.clone())).unwrap()).await;
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    Answer { status: response.status().as_u16(), content_type, body }
}

fn check(case: &Case, medusa: &Answer, ours: &Answer) -> Result<(), TestCaseError> {
    match case.compare {
        Compare::Exactly => prop_assert_eq!(ours, medusa, "{:?}", case),
        Compare::ParserText => {
            prop_assert_eq!((ours.status, &ours.content_type), (medusa.status, &medusa.content_type), "{:?}", case);
            let kind = |a: &Answer| serde_json::from_str::<Value>(&a.body).ok().map(|v| v["type"].clone());
            prop_assert_eq!(kind(ours), kind(medusa), "{:?}: ours {} / Medusa {}", case, ours.body, medusa.body);
            prop_assert_eq!(medusa.status, 400, "{:?}", case);
        }
    }
    Ok(())
}

#[test]
fn generated_requests_get_the_same_answer_from_medusa_and_from_us() {
    let seed: u64 = std::env::var("CONFORMANCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand_seed);
    let cases = std::env::var("CONFORMANCE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_CASES);
    println!("differential: {cases} cases, CONFORMANCE_SEED={seed}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = crate::support::api_config(&[
        ("AUTH_PROVIDERS", AUTH_PROVIDERS),
        ("RATE_LIMIT_PER_IDENTIFIER", "100000/60"),
        ("RATE_LIMIT_PER_IP", "100000/60"),
    ]);
    let (app, _events) = TestApp::with_channel(&config, MemoryIdentityStore::open());
    let client = medusa::client();

    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let compared = std::cell::Cell::new(0u32);
    let result = runner.run(&case(), |case| {
        let (medusa, ours) = runtime.block_on(async {
            let medusa = medusa::send(&client, &case.path, case.content_type, case.body.clone().into_bytes()).await;
            (medusa, ours(&app, &case).await)
        });
        compared.set(compared.get() + 1);
        check(&case, &medusa, &ours)
    });
    if let Err(failure) = result {
        panic!("differs from Medusa 2.21.2 (rerun with CONFORMANCE_SEED={seed}): {failure}");
    }
    assert!(compared.get() >= cases, "only {} cases ran", compared.get());
}

/// The hand-picked cases of DESIGN.md's contract, each measured against Medusa 2.21.2: a failure
/// here names the case without shrinking.
#[tokio::test]
async fn the_contracts_examples_get_the_same_answer_from_medusa_and_from_us() {
    let config = crate::support::api_config(&[("AUTH_PROVIDERS", AUTH_PROVIDERS)]);
    let (app, _events) = TestApp::with_channel(&config, MemoryIdentityStore::open());
    let client = medusa::client();
    let exactly = [
        "{}",
        r#"{"identifier":"a@x.com"}"#,
        r#"{"identifier":123}"#,
        r#"{"identifier":null}"#,
        r#"{"identifier":true}"#,
        r#"{"identifier":[1,2]}"#,
        r#"{"identifier":[]}"#,
        r#"{"identifier":{}}"#,
        r#"{"identifier":1.5e-7}"#,
        r#"{"identifier":12345678901234567890}"#,
        r#"{"identifier":[null,1,[2,[3]],{"a":1}]}"#,
        r#"{"identifier":"a@x.com","metadata":"x"}"#,
        r#"{"identifier":"a@x.com","metadata":null}"#,
        r#"{"identifier":"a@x.com","b":1,"a":2}"#,
        r#"{"z":3,"metadata":2,"identifier":1}"#,
        r#"{"identifier":"a@x.com","metadata":{"locale":"de"}}"#,
        "[]",
        r#"["a@x.com"]"#,
        "",
    ];
    let parser_text = [r#""a@x.com""#, "null", "1", "true", r#"{"identifier":"#, r#"{"identifier":"a@x.com"} x"#];
    let cases =
        exactly.iter().map(|b| (b, Compare::Exactly)).chain(parser_text.iter().map(|b| (b, Compare::ParserText)));
    for (body, compare) in cases {
        let case =
            Case { path: ROUTE.into(), content_type: Some("application/json"), body: (*body).to_owned(), compare };
        let medusa = medusa::send(&client, &case.path, case.content_type, case.body.clone().into_bytes()).await;
        let ours = ours(&app, &case).await;
        if let Err(e) = check(&case, &medusa, &ours) {
            panic!("{body}: {e}");
        }
    }
    for path in ["/auth/customer/github/reset-password", "/auth/user/Git%20hub/reset-password"] {
        let case = Case {
            path: path.into(),
            content_type: Some("application/json"),
            body: "{}".into(),
            compare: Compare::Exactly,
        };
        let medusa = medusa::send(&client, path, case.content_type, b"{}".to_vec()).await;
        assert_eq!(ours(&app, &case).await, medusa, "{path}");
    }
}

fn rand_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    (nanos as u64) ^ u64::from(std::process::id()).rotate_left(32)
}
