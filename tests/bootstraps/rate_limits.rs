//! Rate limits against moto's DynamoDB: boundaries, rolling windows, independence and failing
//! closed; against a DynamoDB stand-in on 127.0.0.1 that answers `TransactionCanceledException` as
//! DynamoDB does (moto's transactions are not atomic, so races are proven there, not on moto);
//! through the route, what a client sees; and `make run`'s in-memory limits.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::aws_fixtures::rate_limit_table;
use crate::support::faults::{Fault, HttpFaultProxy};
use crate::support::local_runner::LocalRunner;
use crate::support::{
    ROUTE, TestApp, api_config, moto_endpoint, moto_sdk_config, sdk_config_for, serve, unreachable_endpoint,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use medusa_reset::domain::event::AuthEvent;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::publish::{EventPublisher, PublishError};
use medusa_reset::ratelimit::{DynamoDbRateLimiter, IdentityKey, Limit, Limits, RateLimiter, Share, Subject, Verdict};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

/// A multiple of 3600 (and so of 300 and 60): every window starts at this second.
const WINDOWS_START: u64 = 1_800_000_000;

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn subject(ip: &str, identifier: &str) -> Subject {
    Subject::new(&IdentityKey::new(b"rate-limit-test-key"), ip, "customer", "emailpass", Share::Identifier(identifier))
}

/// A limiter on a fresh table of moto's, with the table's client and name to read the counts.
struct OnMoto {
    limiter: DynamoDbRateLimiter,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

async fn on_moto(limits: Limits) -> OnMoto {
    let config = moto_sdk_config().await;
    let table = rate_limit_table(&config).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    OnMoto { limiter: DynamoDbRateLimiter::new(dynamodb.clone(), table.clone(), limits), dynamodb, table }
}

async fn limiter(limits: Limits) -> DynamoDbRateLimiter {
    on_moto(limits).await.limiter
}

#[tokio::test]
async fn the_identifier_limits_hold_at_their_boundaries_and_roll_over() {
    let limiter = limiter(Limits::default()).await;
    let a = || subject("198.51.100.1", "a@example.com");
    let hour = WINDOWS_START;
    assert_eq!(limiter.check(&a(), at(hour)).await.unwrap(), Verdict::Allowed);
    assert_eq!(limiter.check(&a(), at(hour + 59)).await.unwrap(), Verdict::IdentifierLimited, "one a minute");
    for minute in 1..5 {
        assert_eq!(limiter.check(&a(), at(hour + 60 * minute)).await.unwrap(), Verdict::Allowed, "minute {minute}");
    }
    assert_eq!(limiter.check(&a(), at(hour + 300)).await.unwrap(), Verdict::IdentifierLimited, "five an hour");
    assert_eq!(limiter.check(&a(), at(hour + 3600)).await.unwrap(), Verdict::Allowed, "the hour rolled over");
}

#[tokio::test]
async fn the_ip_limit_holds_at_its_boundary_and_is_independent_of_identifiers() {
    let limits = Limits { per_ip: Limit { max: 30, window: Duration::from_secs(300) }, ..Limits::default() };
    let limiter = limiter(limits).await;
    let start = WINDOWS_START;
    for n in 0..30 {
        let verdict = limiter.check(&subject("198.51.100.7", &format!("u{n}@example.com")), at(start + 10)).await;
        assert_eq!(verdict.unwrap(), Verdict::Allowed, "request {n}");
    }
    let over = limiter.check(&subject("198.51.100.7", "another@example.com"), at(start + 100)).await.unwrap();
    assert_eq!(over, Verdict::IpLimited { retry_after: Duration::from_secs(200) });
    // The identifier refused at that IP was not counted: from another IP it goes through.
    let elsewhere = limiter.check(&subject("198.51.100.8", "another@example.com"), at(start + 100)).await.unwrap();
    assert_eq!(elsewhere, Verdict::Allowed);
    // And the window rolls over.
    let later = limiter.check(&subject("198.51.100.7", "later@example.com"), at(start + 300)).await.unwrap();
    assert_eq!(later, Verdict::Allowed);
}

#[tokio::test]
async fn an_identifier_over_its_limit_still_counts_against_the_ip() {
    let limits = Limits { per_ip: Limit { max: 2, window: Duration::from_secs(300) }, ..Limits::default() };
    let limiter = limiter(limits).await;
    let a = || subject("198.51.100.9", "a@example.com");
    let now = WINDOWS_START;
    assert_eq!(limiter.check(&a(), at(now)).await.unwrap(), Verdict::Allowed);
    assert_eq!(limiter.check(&a(), at(now + 1)).await.unwrap(), Verdict::IdentifierLimited);
    assert!(matches!(limiter.check(&a(), at(now + 2)).await.unwrap(), Verdict::IpLimited { .. }));
}

fn route_with(limiter: DynamoDbRateLimiter, overrides: &[(&str, &str)]) -> (TestApp, UnboundedReceiver<AuthEvent>) {
    let (publisher, events) = ChannelPublisher::new();
    (TestApp::with_limiter(&api_config(overrides), publisher, MemoryIdentityStore::open(), limiter), events)
}

#[tokio::test]
async fn through_the_route_an_identifier_over_its_limit_gets_201_and_an_ip_over_its_limit_gets_429() {
    let limits = Limits { per_ip: Limit { max: 3, window: Duration::from_secs(300) }, ..Limits::default() };
    let (app, mut events) = route_with(limiter(limits).await, &[]);
    let body = r#"{"identifier":"a@example.com"}"#;
    let (first, first_body) = app.post(ROUTE, body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(events.try_recv().is_ok());
    let (second, second_body) = app.post(ROUTE, body).await;
    assert_eq!(second.status(), StatusCode::CREATED, "revealing nothing");
    assert_eq!(second_body, first_body, "the same answer as a request that was served");
    assert_eq!(second.headers().get("content-type"), first.headers().get("content-type"));
    assert!(events.try_recv().is_err(), "nothing minted or published");
    app.reset("b@example.com").await;
    let (limited, limited_body) = app.reset("c@example.com").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let error: Value = serde_json::from_str(&limited_body).unwrap();
    assert_eq!(error["type"], "not_allowed");
    assert!(error["message"].is_string());
}

#[tokio::test]
async fn when_dynamodb_fails_the_route_fails_closed() {
    let config = sdk_config_for(&unreachable_endpoint()).await;
    let limiter = DynamoDbRateLimiter::new(aws_sdk_dynamodb::Client::new(&config), "limits".into(), Limits::default());
    let (app, mut events) = route_with(limiter, &[]);
    let (response, body) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "unknown_error");
    assert!(events.try_recv().is_err(), "never open");
}

#[tokio::test]
async fn the_table_holds_no_identifier_in_clear() {
    let OnMoto { limiter, dynamodb, table } = on_moto(Limits::default()).await;
    limiter.check(&subject("198.51.100.1", "secret.person@example.com"), SystemTime::now()).await.unwrap();
    let items = dynamodb.scan().table_name(&table).send().await.unwrap();
    assert_eq!(items.count(), 3);
    let dump = format!("{:?}", items.items());
    assert!(!dump.contains("secret.person"), "{dump}");
    assert!(dump.contains("expires_at"), "items carry their TTL attribute: {dump}");
}

/// Each item's count, by key.
async fn counts(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> HashMap<String, i64> {
    let items = dynamodb.scan().table_name(table).send().await.unwrap();
    items
        .items()
        .iter()
        .map(|item| (item["pk"].as_s().unwrap().clone(), item["count"].as_n().unwrap().parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn a_count_given_back_on_dynamodb_lets_the_retry_through_and_never_goes_below_zero() {
    let OnMoto { limiter, dynamodb, table } = on_moto(Limits::default()).await;
    let now = at(WINDOWS_START + 10);
    let a = || subject("198.51.100.1", "a@example.com");
    let failed = a();
    assert_eq!(limiter.check(&failed, now).await.unwrap(), Verdict::Allowed);
    limiter.release(&failed, now).await.unwrap();
    assert_eq!(limiter.check(&a(), at(WINDOWS_START + 11)).await.unwrap(), Verdict::Allowed, "the retry is served");
    assert_eq!(limiter.check(&a(), at(WINDOWS_START + 12)).await.unwrap(), Verdict::IdentifierLimited);
    let counters = Limits::default().counters(&failed, now);
    let counted = counts(&dynamodb, &table).await;
    assert_eq!(counted[&counters[0].key], 3, "the client's count is never given back");
    assert_eq!(counted[&counters[1].key], 1);
    assert_eq!(counted[&counters[2].key], 1);

    // Giving back what was never counted neither fails nor creates a counter below zero, and a
    // request gives back only its own count, once.
    let stranger = subject("198.51.100.1", "stranger@example.com");
    limiter.release(&stranger, now).await.unwrap();
    limiter.release(&failed, now).await.unwrap();
    limiter.release(&a(), now).await.unwrap();
    let counted = counts(&dynamodb, &table).await;
    assert_eq!(counted.len(), 3, "no item for the stranger: {counted:?}");
    assert!(counted.values().all(|count| *count >= 0), "{counted:?}");
    assert_eq!(counted[&counters[1].key], 1, "the served retry's count stays");
}

#[tokio::test]
async fn spellings_of_one_address_share_one_count_on_dynamodb() {
    let limiter = limiter(Limits::default()).await;
    let now = at(WINDOWS_START);
    assert_eq!(limiter.check(&subject("198.51.100.1", "Victim@x.com"), now).await.unwrap(), Verdict::Allowed);
    for spelling in ["victim@X.COM", "VICTIM@x.com"] {
        let verdict = limiter.check(&subject("198.51.100.2", spelling), now).await.unwrap();
        assert_eq!(verdict, Verdict::IdentifierLimited, "{spelling}");
    }
}

#[tokio::test]
async fn ipv6_clients_in_one_64_share_one_count_on_dynamodb() {
    let limits = Limits { per_ip: Limit { max: 2, window: Duration::from_secs(300) }, ..Limits::default() };
    let limiter = limiter(limits).await;
    let now = at(WINDOWS_START);
    for (n, ip) in ["2001:db8:7:7::1", "2001:db8:7:7:ffff:ffff:ffff:fffe"].into_iter().enumerate() {
        let verdict = limiter.check(&subject(ip, &format!("u{n}@example.com")), now).await.unwrap();
        assert_eq!(verdict, Verdict::Allowed, "{ip}");
    }
    let same_64 = limiter.check(&subject("2001:db8:7:7:1234::9", "u9@example.com"), now).await.unwrap();
    assert!(matches!(same_64, Verdict::IpLimited { .. }), "another address of the same /64: {same_64:?}");
    let next_64 = limiter.check(&subject("2001:db8:7:8::1", "u9@example.com"), now).await.unwrap();
    assert_eq!(next_64, Verdict::Allowed, "the neighbouring /64 is another client");
}

/// Fails its first `failures` publishes, then hands events on.
struct FlakyPublisher {
    failures: std::sync::atomic::AtomicUsize,
    inner: ChannelPublisher,
}

impl EventPublisher for FlakyPublisher {
    async fn publish(&self, event: &AuthEvent) -> Result<(), PublishError> {
        use std::sync::atomic::Ordering;
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(PublishError::Service("stub outage".into()));
        }
        self.inner.publish(event).await
    }

    async fn publish_unknown(&self, event: &AuthEvent, _token_len: usize) -> Result<(), PublishError> {
        self.publish(event).await
    }
}

#[tokio::test]
async fn through_the_route_a_500_gives_the_count_back_on_dynamodb_so_the_retry_gets_its_token() {
    let (inner, mut events) = ChannelPublisher::new();
    let publisher = FlakyPublisher { failures: 1.into(), inner };
    let app = TestApp::with_limiter(
        &api_config(&[]),
        publisher,
        MemoryIdentityStore::open(),
        limiter(Limits::default()).await,
    );
    let body = r#"{"identifier":"a@example.com"}"#;
    let (failed, _) = app.post(ROUTE, body).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let (retry, _) = app.post(ROUTE, body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(
        matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(e)) if e.about.entity_id == "a@example.com"),
        "the retry's e-mail"
    );
    let (again, _) = app.post(ROUTE, body).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(events.try_recv().is_err(), "a served request is counted as before");
}

#[tokio::test]
async fn every_item_expires_a_little_after_its_window_ends() {
    let OnMoto { limiter, dynamodb, table } = on_moto(Limits::default()).await;
    let now = at(WINDOWS_START + 61);
    let a = subject("198.51.100.1", "a@example.com");
    limiter.check(&a, now).await.unwrap();
    let items = dynamodb.scan().table_name(&table).send().await.unwrap();
    let expiry: HashMap<String, u64> = items
        .items()
        .iter()
        .map(|item| {
            let key = item["pk"].as_s().unwrap().clone();
            (key, item["expires_at"].as_n().unwrap().parse().unwrap())
        })
        .collect();
    // DynamoDB deletes an item some time after its TTL; a grace of five minutes beyond the window
    // keeps a count alive across clock skew between execution environments.
    for counter in Limits::default().counters(&a, now) {
        assert_eq!(expiry.get(&counter.key), Some(&(counter.window_end + 300)), "{}: {expiry:?}", counter.key);
    }
}

/// A stand-in for DynamoDB's JSON protocol (`x-amz-target`, `application/x-amz-json-1.0`). It
/// answers `TransactWriteItems` from a script, or else as DynamoDB does: atomically, each update's
/// condition (under the limit, the request's marker not there yet) checked against the counts under
/// one lock, and `TransactionCanceledException` with one cancellation reason per item when any
/// condition fails, a failed item as it stood. With `hold`, a transaction holds its items that long,
/// and any other write to one of them meanwhile is cancelled with `TransactionConflict`, as
/// DynamoDB's are. `UpdateItem` counts the client alone, or gives a request's count back.
#[derive(Default)]
struct FakeDynamo {
    script: Mutex<VecDeque<Answer>>,
    /// What every `TransactWriteItems` gets once the script is spent; `None`: evaluate atomically.
    otherwise: Option<Answer>,
    /// What `UpdateItem` answers; `None`: evaluate it.
    update_item: Option<Answer>,
    hold: Option<Duration>,
    table: Mutex<Table>,
    calls: Mutex<Vec<(String, Value)>>,
}

/// The fake's items: each counter's count and the markers of the requests it counted, and the
/// items a transaction holds now.
#[derive(Default)]
struct Table {
    counts: HashMap<String, u32>,
    markers: HashMap<String, HashSet<String>>,
    held: HashSet<String>,
}

#[derive(Clone, Debug)]
enum Answer {
    Cancelled(Vec<&'static str>),
    /// Cancellation reasons as DynamoDB writes them, items included.
    Reasons(Vec<Value>),
    Error(StatusCode, &'static str),
    Done,
}

const NAMESPACE: &str = "com.amazonaws.dynamodb.v20120810";
const UNDER_LIMIT: &str = "(attribute_not_exists(#count) OR #count < :max) AND NOT contains(#requests, :marker)";

/// DynamoDB's reason for one item: `None` for an item that was fine.
fn reason(code: &str) -> Value {
    match code {
        "None" => json!({"Code": "None"}),
        "ConditionalCheckFailed" => {
            json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"})
        }
        other => json!({"Code": other, "Message": format!("{other} on this item")}),
    }
}

impl Answer {
    fn response(&self) -> Response {
        let (status, body) = match self {
            Self::Done => (StatusCode::OK, json!({})),
            Self::Cancelled(codes) => return Self::Reasons(codes.iter().map(|code| reason(code)).collect()).response(),
            // DynamoDB's answer, field for field: the reasons in the order of the items.
            Self::Reasons(reasons) => {
                let codes: Vec<&str> = reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect();
                let message = format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                    codes.join(", ")
                );
                (
                    StatusCode::BAD_REQUEST,
                    json!({
                        "__type": format!("{NAMESPACE}#TransactionCanceledException"),
                        "Message": message,
                        "CancellationReasons": reasons,
                    }),
                )
            }
            Self::Error(status, kind) => {
                (*status, json!({"__type": format!("{NAMESPACE}#{kind}"), "message": "stub failure"}))
            }
        };
        let headers = [
            ("content-type", "application/x-amz-json-1.0".to_owned()),
            ("x-amzn-requestid", uuid::Uuid::new_v4().to_string()),
        ];
        (status, headers, body.to_string()).into_response()
    }
}

/// One update of the check's transaction: its counter, its limit and the request's marker.
struct Bump {
    key: String,
    max: u32,
    marker: String,
}

fn bumps(body: &Value) -> Vec<Bump> {
    let items = body["TransactItems"].as_array().unwrap();
    items
        .iter()
        .map(|item| {
            let update = &item["Update"];
            assert_eq!(update["ConditionExpression"], UNDER_LIMIT, "{update}");
            assert_eq!(update["ReturnValuesOnConditionCheckFailure"], "ALL_OLD", "{update}");
            let values = &update["ExpressionAttributeValues"];
            Bump {
                key: update["Key"]["pk"]["S"].as_str().unwrap().to_owned(),
                max: values[":max"]["N"].as_str().unwrap().parse().unwrap(),
                marker: values[":marker"]["S"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

impl FakeDynamo {
    fn scripted(answers: impl IntoIterator<Item = Answer>) -> Self {
        Self { script: Mutex::new(answers.into_iter().collect()), ..Self::default() }
    }

    fn calls(&self, operation: &str) -> Vec<Value> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|(op, _)| op == operation).map(|(_, body)| body.clone()).collect()
    }

    fn count(&self, key: &str) -> u32 {
        self.table.lock().unwrap().counts.get(key).copied().unwrap_or(0)
    }

    async fn transact(&self, body: &Value) -> Answer {
        let scripted = self.script.lock().unwrap().pop_front();
        if let Some(answer) = scripted.or_else(|| self.otherwise.clone()) {
            return answer;
        }
        let bumps = bumps(body);
        if let Some(hold) = self.hold {
            {
                let mut table = self.table.lock().unwrap();
                if bumps.iter().any(|bump| table.held.contains(&bump.key)) {
                    let codes =
                        bumps.iter().map(|b| if table.held.contains(&b.key) { "TransactionConflict" } else { "None" });
                    return Answer::Reasons(codes.map(reason).collect());
                }
                table.held.extend(bumps.iter().map(|bump| bump.key.clone()));
            }
            tokio::time::sleep(hold).await;
        }
        let mut table = self.table.lock().unwrap();
        for bump in &bumps {
            table.held.remove(&bump.key);
        }
        let reasons: Vec<Value> = bumps
            .iter()
            .map(|bump| {
                let markers = table.markers.get(&bump.key).cloned().unwrap_or_default();
                let count = table.counts.get(&bump.key).copied().unwrap_or(0);
                if count < bump.max && !markers.contains(&bump.marker) {
                    return reason("None");
                }
                let mut failed = reason("ConditionalCheckFailed");
                let mut item = json!({"pk": {"S": bump.key}, "count": {"N": count.to_string()}});
                if !markers.is_empty() {
                    item["requests"] = json!({"SS": markers.iter().collect::<Vec<_>>()});
                }
                failed["Item"] = item;
                failed
            })
            .collect();
        if reasons.iter().any(|r| r["Code"] != "None") {
            return Answer::Reasons(reasons);
        }
        for bump in bumps {
            *table.counts.entry(bump.key.clone()).or_default() += 1;
            table.markers.entry(bump.key).or_default().insert(bump.marker);
        }
        Answer::Done
    }

    /// Counting the client alone (`:one`, only where the marker is not there yet) or giving a
    /// count back (`:minus_one`, only where it is).
    fn update(&self, body: &Value) -> Answer {
        if let Some(answer) = &self.update_item {
            return answer.clone();
        }
        let key = body["Key"]["pk"]["S"].as_str().unwrap().to_owned();
        let marker = body["ExpressionAttributeValues"][":marker"]["S"].as_str().unwrap().to_owned();
        let give_back = body["ExpressionAttributeValues"].get(":minus_one").is_some();
        let mut table = self.table.lock().unwrap();
        if table.held.contains(&key) {
            return Answer::Error(StatusCode::BAD_REQUEST, "TransactionConflictException");
        }
        let markers = table.markers.entry(key.clone()).or_default();
        let applies = if give_back { markers.remove(&marker) } else { markers.insert(marker) };
        if !applies {
            return Answer::Error(StatusCode::BAD_REQUEST, "ConditionalCheckFailedException");
        }
        let count = table.counts.entry(key).or_default();
        *count = if give_back { count.saturating_sub(1) } else { *count + 1 };
        Answer::Done
    }
}

async fn dynamo_endpoint(fake: FakeDynamo) -> (Arc<FakeDynamo>, String) {
    async fn answer(State(fake): State<Arc<FakeDynamo>>, headers: HeaderMap, body: Bytes) -> Response {
        let target = headers.get("x-amz-target").and_then(|t| t.to_str().ok()).unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        fake.calls.lock().unwrap().push((operation.clone(), body.clone()));
        let answer = match operation.as_str() {
            "TransactWriteItems" => fake.transact(&body).await,
            "UpdateItem" => fake.update(&body),
            _ => Answer::Error(StatusCode::BAD_REQUEST, "UnknownOperationException"),
        };
        answer.response()
    }
    let fake = Arc::new(fake);
    let app = Router::new().route("/", post(answer)).with_state(fake.clone());
    (fake, serve(app).await)
}

async fn limiter_on(endpoint: &str, limits: Limits) -> DynamoDbRateLimiter {
    let config = sdk_config_for(endpoint).await;
    DynamoDbRateLimiter::new(aws_sdk_dynamodb::Client::new(&config), "limits".into(), limits)
}

/// One identifier limit, so a transaction has two items: the client IP's, then the identifier's.
fn two_items() -> Limits {
    Limits { per_identifier: vec![Limit { max: 1, window: Duration::from_secs(60) }], ..Limits::default() }
}

#[tokio::test]
async fn dynamodbs_cancellation_reasons_decide_between_identifier_limited_and_ip_limited() {
    let now = at(WINDOWS_START + 100);
    let a = subject("198.51.100.1", "a@example.com");
    let ip_retry_after = Verdict::IpLimited { retry_after: Duration::from_secs(200) };
    let cases: [(Limits, Vec<&'static str>, Verdict); 5] = [
        (two_items(), vec!["None", "ConditionalCheckFailed"], Verdict::IdentifierLimited),
        (two_items(), vec!["ConditionalCheckFailed", "None"], ip_retry_after),
        (Limits::default(), vec!["None", "None", "ConditionalCheckFailed"], Verdict::IdentifierLimited),
        (
            Limits::default(),
            vec!["None", "ConditionalCheckFailed", "ConditionalCheckFailed"],
            Verdict::IdentifierLimited,
        ),
        (Limits::default(), vec!["ConditionalCheckFailed", "ConditionalCheckFailed", "None"], ip_retry_after),
    ];
    for (limits, reasons, want) in cases {
        let (fake, endpoint) = dynamo_endpoint(FakeDynamo::scripted([Answer::Cancelled(reasons.clone())])).await;
        let ip_key = limits.counters(&a, now)[0].key.clone();
        let verdict = limiter_on(&endpoint, limits).await.check(&a, now).await;
        assert_eq!(verdict.unwrap(), want, "{reasons:?}");
        let counted = fake.calls("UpdateItem");
        if want == Verdict::IdentifierLimited {
            // Over its identifier limit, the request still counts against its client, whatever the
            // client's limit, and once: only where its marker is not there yet.
            assert_eq!(counted.len(), 1, "{reasons:?}");
            assert_eq!(counted[0]["Key"]["pk"]["S"], ip_key.as_str());
            assert_eq!(counted[0]["ConditionExpression"], "NOT contains(#requests, :marker)", "{}", counted[0]);
            assert_eq!(counted[0]["ExpressionAttributeValues"][":marker"]["S"], a.request.as_str());
            assert!(counted[0]["ExpressionAttributeValues"].get(":max").is_none(), "{}", counted[0]);
        } else {
            assert!(counted.is_empty(), "an IP over its limit is not counted again: {reasons:?}");
        }
    }
}

#[tokio::test]
async fn every_counter_of_a_request_is_bumped_in_one_transaction_each_conditional_on_its_limit() {
    let (fake, endpoint) = dynamo_endpoint(FakeDynamo::default()).await;
    let now = at(WINDOWS_START + 100);
    let a = subject("198.51.100.1", "a@example.com");
    assert_eq!(limiter_on(&endpoint, Limits::default()).await.check(&a, now).await.unwrap(), Verdict::Allowed);
    let transactions = fake.calls("TransactWriteItems");
    assert_eq!(transactions.len(), 1);
    assert!(fake.calls("UpdateItem").is_empty());
    let items = transactions[0]["TransactItems"].as_array().unwrap();
    let counters = Limits::default().counters(&a, now);
    assert_eq!(items.len(), counters.len());
    for (item, counter) in items.iter().zip(&counters) {
        let update = &item["Update"];
        assert_eq!(update["TableName"], "limits");
        assert_eq!(update["Key"]["pk"]["S"], counter.key.as_str());
        assert_eq!(update["ExpressionAttributeValues"][":max"]["N"], counter.max.to_string().as_str());
        assert_eq!(update["ExpressionAttributeValues"][":ttl"]["N"], (counter.window_end + 300).to_string().as_str());
        assert_eq!(update["ExpressionAttributeValues"][":marker"]["S"], a.request.as_str(), "the request's marker");
        assert_eq!(update["ExpressionAttributeValues"][":request"]["SS"], json!([a.request]));
    }
}

/// How many times the limiter tries a transaction that other transactions keep cancelling.
const CONFLICT_ATTEMPTS: usize = 7;

#[tokio::test]
async fn a_conflict_on_an_identifiers_counter_is_retried_and_if_it_persists_the_identifier_fails_closed() {
    let conflict = || Answer::Cancelled(vec!["None", "TransactionConflict", "None"]);
    let now = at(WINDOWS_START);
    let a = || subject("198.51.100.1", "a@example.com");

    let (fake, endpoint) = dynamo_endpoint(FakeDynamo::scripted([conflict(), Answer::Done])).await;
    assert_eq!(limiter_on(&endpoint, Limits::default()).await.check(&a(), now).await.unwrap(), Verdict::Allowed);
    assert_eq!(fake.calls("TransactWriteItems").len(), 2);

    let (fake, endpoint) = dynamo_endpoint(FakeDynamo { otherwise: Some(conflict()), ..FakeDynamo::default() }).await;
    let verdict = limiter_on(&endpoint, Limits::default()).await.check(&a(), now).await.unwrap();
    assert_eq!(verdict, Verdict::IdentifierLimited, "no second token while another request holds the item");
    assert_eq!(fake.calls("TransactWriteItems").len(), CONFLICT_ATTEMPTS);
}

#[tokio::test]
async fn a_conflict_on_the_client_counter_alone_is_retried_and_if_it_persists_the_check_fails() {
    let conflict = || Answer::Cancelled(vec!["TransactionConflict", "None", "None"]);
    let now = at(WINDOWS_START);
    let a = || subject("198.51.100.1", "a@example.com");

    let script = std::iter::repeat_n(conflict(), CONFLICT_ATTEMPTS - 1).chain([Answer::Done]);
    let (fake, endpoint) = dynamo_endpoint(FakeDynamo::scripted(script)).await;
    let verdict = limiter_on(&endpoint, Limits::default()).await.check(&a(), now).await.unwrap();
    assert_eq!(verdict, Verdict::Allowed, "waited out");
    assert_eq!(fake.calls("TransactWriteItems").len(), CONFLICT_ATTEMPTS);

    let (fake, endpoint) = dynamo_endpoint(FakeDynamo { otherwise: Some(conflict()), ..FakeDynamo::default() }).await;
    let verdict = limiter_on(&endpoint, Limits::default()).await.check(&a(), now).await;
    assert!(verdict.is_err(), "never an identifier verdict for the client's contention: {verdict:?}");
    assert_eq!(fake.calls("TransactWriteItems").len(), CONFLICT_ATTEMPTS);
}

#[tokio::test]
async fn throttling_a_server_error_or_an_unexpected_reason_fails_closed() {
    let now = at(WINDOWS_START);
    let a = subject("198.51.100.1", "a@example.com");
    let failures = [
        Answer::Error(StatusCode::BAD_REQUEST, "ThrottlingException"),
        Answer::Error(StatusCode::BAD_REQUEST, "ProvisionedThroughputExceededException"),
        Answer::Error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        Answer::Error(StatusCode::BAD_REQUEST, "ResourceNotFoundException"),
        Answer::Cancelled(vec!["None", "ThrottlingError", "None"]),
        Answer::Cancelled(vec!["ValidationError", "None", "None"]),
    ];
    for failure in failures {
        let (fake, endpoint) =
            dynamo_endpoint(FakeDynamo { otherwise: Some(failure.clone()), ..FakeDynamo::default() }).await;
        let verdict = limiter_on(&endpoint, Limits::default()).await.check(&a, now).await;
        assert!(verdict.is_err(), "{failure:?} gave {verdict:?}");
        assert!(!fake.calls("TransactWriteItems").is_empty(), "{failure:?}: the stub was reached");
    }
    // Over its identifier limit, but the IP's count cannot be recorded: a failure too, not a pass.
    let fake = FakeDynamo {
        otherwise: Some(Answer::Cancelled(vec!["None", "ConditionalCheckFailed", "None"])),
        update_item: Some(Answer::Error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError")),
        ..FakeDynamo::default()
    };
    let (_, endpoint) = dynamo_endpoint(fake).await;
    assert!(limiter_on(&endpoint, Limits::default()).await.check(&a, now).await.is_err());
}

#[tokio::test]
async fn giving_back_touches_only_the_identifiers_counters_tolerates_a_missing_one_and_fails_on_an_error() {
    let now = at(WINDOWS_START + 100);
    let a = subject("198.51.100.1", "a@example.com");
    let gone = Answer::Error(StatusCode::BAD_REQUEST, "ConditionalCheckFailedException");
    let (fake, endpoint) = dynamo_endpoint(FakeDynamo { update_item: Some(gone), ..FakeDynamo::default() }).await;
    limiter_on(&endpoint, Limits::default()).await.release(&a, now).await.expect("nothing to give back is fine");
    let updates = fake.calls("UpdateItem");
    let counters = Limits::default().counters(&a, now);
    let keys: Vec<&str> = updates.iter().map(|u| u["Key"]["pk"]["S"].as_str().unwrap()).collect();
    assert_eq!(keys, [counters[1].key.as_str(), counters[2].key.as_str()], "never the client's counter");
    for update in &updates {
        // Only where this request counted: never below zero, never twice.
        assert_eq!(update["ConditionExpression"], "contains(#requests, :marker)", "{update}");
        assert_eq!(update["UpdateExpression"], "ADD #count :minus_one DELETE #requests :request", "{update}");
        assert_eq!(update["ExpressionAttributeValues"][":marker"]["S"], a.request.as_str());
        assert_eq!(update["ExpressionAttributeValues"][":minus_one"]["N"], "-1");
    }
    assert!(fake.calls("TransactWriteItems").is_empty());

    let down = Answer::Error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError");
    let (_, endpoint) = dynamo_endpoint(FakeDynamo { update_item: Some(down), ..FakeDynamo::default() }).await;
    assert!(limiter_on(&endpoint, Limits::default()).await.release(&a, now).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_checks_in_one_fixed_window_on_an_atomic_dynamodb_allow_exactly_one() {
    let (fake, endpoint) = dynamo_endpoint(FakeDynamo::default()).await;
    let limits = Limits { per_ip: Limit { max: 1_000, window: Duration::from_secs(300) }, ..Limits::default() };
    let limiter = Arc::new(limiter_on(&endpoint, limits.clone()).await);
    // The test's clock: all fifty fall in one minute whatever the wall clock does meanwhile.
    let now = at(WINDOWS_START + 30);
    let a = || subject("198.51.100.1", "a@example.com");
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (limiter, a) = (limiter.clone(), a());
        checks.spawn(async move { limiter.check(&a, now).await.unwrap() });
    }
    let verdicts = checks.join_all().await;
    assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Allowed).count(), 1, "{verdicts:?}");
    assert!(verdicts.iter().all(|v| matches!(v, Verdict::Allowed | Verdict::IdentifierLimited)), "{verdicts:?}");
    let counters = limits.counters(&a(), now);
    assert_eq!(fake.count(&counters[0].key), 50, "every request counted against the client");
    assert_eq!(fake.count(&counters[1].key), 1);
    assert_eq!(fake.count(&counters[2].key), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_concurrent_requests_for_one_address_on_a_contended_dynamodb_give_twelve_201s_and_one_reset() {
    // Each transaction holds its items a while, so the twelve meet on both counters, as on DynamoDB.
    let fake = FakeDynamo { hold: Some(Duration::from_millis(2)), ..FakeDynamo::default() };
    let (_, endpoint) = dynamo_endpoint(fake).await;
    let limits = Limits { per_ip: Limit { max: 1_000, window: Duration::from_secs(300) }, ..Limits::default() };
    let (app, mut events) = route_with(limiter_on(&endpoint, limits).await, &[]);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let app = app.clone();
        requests.spawn(async move { app.reset("a@example.com").await.0.status() });
    }
    let statuses = requests.join_all().await;
    assert!(statuses.iter().all(|status| *status == StatusCode::CREATED), "{statuses:?}");
    let resets = std::iter::from_fn(|| events.try_recv().ok()).filter(|e| matches!(e, AuthEvent::PasswordReset(_)));
    assert_eq!(resets.count(), 1, "one e-mail for twelve requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_shoppers_behind_one_address_at_once_each_get_their_reset_or_a_500_never_a_silent_201() {
    // Each transaction holds the client's counter about as long as one on DynamoDB does.
    let fake = FakeDynamo { hold: Some(Duration::from_millis(10)), ..FakeDynamo::default() };
    let (fake, endpoint) = dynamo_endpoint(fake).await;
    let limits = Limits { per_ip: Limit { max: 1_000, window: Duration::from_secs(300) }, ..Limits::default() };
    let (app, mut events) = route_with(limiter_on(&endpoint, limits).await, &[]);
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..12 {
        let app = app.clone();
        requests.spawn(async move {
            let body = json!({ "identifier": format!("shopper{n}@example.com") }).to_string();
            (n, app.post(ROUTE, &body).await.0.status())
        });
    }
    let statuses = requests.join_all().await;
    let published: HashSet<String> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            AuthEvent::PasswordReset(reset) => Some(reset.about.entity_id),
            _ => None,
        })
        .collect();
    for (n, status) in &statuses {
        let address = format!("shopper{n}@example.com");
        match *status {
            StatusCode::CREATED => assert!(published.contains(&address), "{address}: 201 and nothing sent"),
            StatusCode::INTERNAL_SERVER_ERROR => assert!(!published.contains(&address), "{address}"),
            other => panic!("{address}: {other}"),
        }
    }
    let served = statuses.iter().filter(|(_, status)| *status == StatusCode::CREATED).count();
    assert!(served >= 1, "{statuses:?}");
    let conflicts = fake.calls("TransactWriteItems").len() - 12;
    eprintln!(
        "twelve shoppers behind one address: {served} served, {} answered 500, {conflicts} conflicts",
        12 - served
    );
}

/// The limiter on moto behind the fault proxy, the same table without it, and the table's client.
struct ThroughFaults {
    aws: HttpFaultProxy,
    limiter: DynamoDbRateLimiter,
    direct: DynamoDbRateLimiter,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

async fn through_faults(limits: Limits) -> ThroughFaults {
    let moto = moto_sdk_config().await;
    let table = rate_limit_table(&moto).await;
    let aws = HttpFaultProxy::start(&moto_endpoint()).await;
    let faulty = sdk_config_for(&aws.endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&moto);
    ThroughFaults {
        limiter: DynamoDbRateLimiter::new(aws_sdk_dynamodb::Client::new(&faulty), table.clone(), limits.clone()),
        direct: DynamoDbRateLimiter::new(dynamodb.clone(), table.clone(), limits),
        aws,
        dynamodb,
        table,
    }
}

const TRANSACT: &str = "DynamoDB_20120810.TransactWriteItems";

/// DynamoDB cancelling a transaction, one reason per item (`None`, `TransactionConflict`, …).
fn transaction_cancelled(reasons: &[&str]) -> Fault {
    let reasons: Vec<Value> = reasons.iter().map(|code| json!({"Code": code})).collect();
    let body = json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
        "CancellationReasons": reasons,
    });
    Fault::Answer { status: 400, body: body.to_string() }
}
const UPDATE_ITEM: &str = "DynamoDB_20120810.UpdateItem";

#[tokio::test]
async fn a_lost_reply_to_the_check_counts_the_request_once_and_its_repeat_is_allowed() {
    let now = at(WINDOWS_START + 10);
    let a = || subject("198.51.100.1", "a@example.com");
    let clean = through_faults(two_items()).await;
    assert_eq!(clean.limiter.check(&a(), now).await.unwrap(), Verdict::Allowed);
    assert_eq!(clean.limiter.check(&a(), now).await.unwrap(), Verdict::IdentifierLimited);
    let without_the_fault = counts(&clean.dynamodb, &clean.table).await;

    let faulty = through_faults(two_items()).await;
    faulty.aws.inject(TRANSACT, Fault::LoseReply, 1);
    let verdict = faulty.limiter.check(&a(), now).await.unwrap();
    assert_eq!(verdict, Verdict::Allowed, "the SDK's repeat finds the first attempt applied");
    let seen = faulty.aws.seen();
    assert!(matches!(seen[0].fault, Some(Fault::LoseReply)) && seen.len() == 2, "applied, lost, repeated: {seen:?}");
    assert_eq!(faulty.limiter.check(&a(), now).await.unwrap(), Verdict::IdentifierLimited);
    assert_eq!(counts(&faulty.dynamodb, &faulty.table).await, without_the_fault, "counted as without the fault");
}

#[tokio::test]
async fn a_lost_reply_to_counting_the_client_alone_counts_it_once() {
    let now = at(WINDOWS_START + 10);
    let a = || subject("198.51.100.1", "a@example.com");
    let faulty = through_faults(two_items()).await;
    assert_eq!(faulty.limiter.check(&a(), now).await.unwrap(), Verdict::Allowed);
    faulty.aws.inject(UPDATE_ITEM, Fault::LoseReply, 1);
    assert_eq!(faulty.limiter.check(&a(), now).await.unwrap(), Verdict::IdentifierLimited);
    assert_eq!(faulty.aws.count(UPDATE_ITEM), 2, "the lost one was repeated");
    let client = &two_items().counters(&a(), now)[0];
    assert_eq!(counts(&faulty.dynamodb, &faulty.table).await[&client.key], 2, "two requests, two counts");
}

#[tokio::test]
async fn a_lost_reply_to_a_give_back_gives_back_once() {
    let now = at(WINDOWS_START + 10);
    let limits =
        Limits { per_identifier: vec![Limit { max: 2, window: Duration::from_secs(60) }], ..Limits::default() };
    let a = || subject("198.51.100.1", "a@example.com");
    let faulty = through_faults(limits.clone()).await;
    let (failed, served) = (a(), a());
    assert_eq!(faulty.limiter.check(&failed, now).await.unwrap(), Verdict::Allowed);
    assert_eq!(faulty.limiter.check(&served, now).await.unwrap(), Verdict::Allowed);
    faulty.aws.inject(UPDATE_ITEM, Fault::LoseReply, 1);
    faulty.limiter.release(&failed, now).await.unwrap();
    assert_eq!(faulty.aws.count(UPDATE_ITEM), 2, "the lost one was repeated");
    let identifier = &limits.counters(&failed, now)[1];
    assert_eq!(counts(&faulty.dynamodb, &faulty.table).await[&identifier.key], 1, "the served request's count stays");
    assert_eq!(faulty.limiter.check(&a(), now).await.unwrap(), Verdict::Allowed, "the failed one's share is back");
    assert_eq!(faulty.limiter.check(&a(), now).await.unwrap(), Verdict::IdentifierLimited, "and only that");
}

#[tokio::test]
async fn a_conflict_on_the_client_counter_that_clears_is_waited_out_and_the_reset_is_published() {
    let faulty = through_faults(Limits::default()).await;
    let (app, mut events) = route_with(faulty.limiter.clone(), &[]);
    faulty.aws.inject(TRANSACT, transaction_cancelled(&["TransactionConflict", "None", "None"]), 3);
    let (response, _) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(
        matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(e)) if e.about.entity_id == "a@example.com"),
        "the reset is published"
    );
    assert_eq!(faulty.aws.count(TRANSACT), 4, "three cancelled, the fourth applied");
}

#[tokio::test]
async fn a_conflict_on_the_client_counter_that_persists_is_a_500_with_the_identifiers_counts_given_back() {
    let faulty = through_faults(Limits::default()).await;
    let (app, mut events) = route_with(faulty.limiter.clone(), &[]);
    // The first attempt is applied and its reply lost; every attempt after it finds the client's
    // counter held by other transactions.
    faulty.aws.inject(TRANSACT, Fault::LoseReply, 1);
    faulty.aws.inject(TRANSACT, transaction_cancelled(&["TransactionConflict", "None", "None"]), 1_000);
    let body = r#"{"identifier":"a@example.com"}"#;
    let (response, answer) = app.post(ROUTE, body).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(serde_json::from_str::<Value>(&answer).unwrap()["type"], "unknown_error");
    assert!(events.try_recv().is_err());
    let counted = counts(&faulty.dynamodb, &faulty.table).await;
    assert_eq!(counted.len(), 3, "{counted:?}");
    for (key, count) in &counted {
        let want = if key.starts_with("ip#") { 1 } else { 0 };
        assert_eq!(*count, want, "the client's count stays, the identifier's come back: {counted:?}");
    }
    // The contention over, the user's retry right after is served.
    let (direct, mut direct_events) = route_with(faulty.direct.clone(), &[]);
    let (retry, _) = direct.post(ROUTE, body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(matches!(direct_events.try_recv(), Ok(AuthEvent::PasswordReset(_))), "the retry's e-mail");
}

#[tokio::test]
async fn a_conflict_on_the_identifiers_counter_that_persists_answers_201_and_sends_nothing() {
    let faulty = through_faults(Limits::default()).await;
    let (app, mut events) = route_with(faulty.limiter.clone(), &[]);
    faulty.aws.inject(TRANSACT, transaction_cancelled(&["None", "TransactionConflict", "None"]), 1_000);
    let (response, body) = app.reset("a@example.com").await;
    assert_eq!((response.status(), body.as_str()), (StatusCode::CREATED, "Created"));
    assert!(events.try_recv().is_err(), "the request holding the counter sends the e-mail, not this one");
    assert_eq!(faulty.aws.count(TRANSACT), CONFLICT_ATTEMPTS);
}

/// `make run`: the compiled local runner, in-memory limits, a second request within the minute.
#[tokio::test]
async fn make_run_answers_a_second_request_within_a_minute_with_201_and_sends_nothing() {
    let local = LocalRunner::start(&[("LOG_FORMAT", "json")]).await;
    let url = local.url(ROUTE);
    let client = reqwest::Client::new();
    let post =
        || client.post(&url).header("content-type", "application/json").body(r#"{"identifier":"a@example.com"}"#);
    let first = post().send().await.unwrap();
    assert_eq!(first.status(), 201);
    let second = post().send().await.unwrap();
    assert_eq!(second.status(), 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let emails = std::fs::read_dir(&local.outbox).map(|dir| dir.count()).unwrap_or(0);
    let log = local.stop().await;
    let outcomes: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| line["outcome"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "token_published").count(), 1, "{log}");
    assert_eq!(outcomes.iter().filter(|o| *o == "rate_limited_identifier").count(), 1, "{log}");
    assert_eq!(emails, 1, "one e-mail for two requests");
}
