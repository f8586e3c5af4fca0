//! What an operator sees, through the compiled bootstraps under the Runtime API emulator: the EMF
//! metric documents of both functions, Lambda's logging controls, and the X-Ray trace header that
//! the reset function hands to `PutEvents`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::aws_fixtures::{BusToQueue, sent_messages, verified_sender};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::{SECRET, moto_endpoint, moto_sdk_config, read_event, serve, unreachable_endpoint};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

const RESET: &str = env!("CARGO_BIN_EXE_reset-password");
const NOTIFIER: &str = env!("CARGO_BIN_EXE_notifier");
const WAIT: Duration = Duration::from_secs(15);

/// Lambda sets no trust-store variable, so the SDK client trusts the Amazon roots it ships with
/// (src/aws/roots.rs); this machine's own settings would swap in the system's store.
fn as_on_lambda(command: &mut tokio::process::Command) -> &mut tokio::process::Command {
    command.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR")
}

fn reset_command(api: &RuntimeApi, endpoint: &str, bus: &str) -> tokio::process::Command {
    let mut command = api.command(Path::new(RESET), "reset-password");
    as_on_lambda(&mut command)
        .env("JWT_SECRET", SECRET)
        .env("SKIP_IDENTITY_CHECK", "true")
        .env("EVENT_BUS_NAME", bus)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn notifier_command(api: &RuntimeApi, endpoint: &str, sender: &str) -> tokio::process::Command {
    let mut command = api.command(Path::new(NOTIFIER), "notifier");
    as_on_lambda(&mut command)
        .env("MAIL_FROM", sender)
        .env("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset-password?token={token}&email={email}")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn invoke(api: &RuntimeApi, event: &Value) -> Value {
    match api.invoke(event, WAIT).await.expect("an answer") {
        Answer::Response(response) => response,
        Answer::Error(error) => error,
    }
}

/// Stops the function and returns what it wrote.
async fn stop(mut child: tokio::process::Child) -> Output {
    child.kill().await.expect("the bootstrap stops");
    child.wait_with_output().await.expect("its output")
}

/// The JSON lines of `stdout`.
fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// The EMF documents among the lines, each checked against the format's rules: one namespace,
/// every dimension and every metric a member of the document's root, a timestamp of now.
fn emf_documents(stdout: &[u8], namespace: &str) -> Vec<Value> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let documents: Vec<Value> = json_lines(stdout).into_iter().filter(|line| line.get("_aws").is_some()).collect();
    for document in &documents {
        let aws = &document["_aws"];
        let timestamp = aws["Timestamp"].as_u64().expect("a timestamp in ms");
        assert!(timestamp <= now && now - timestamp < 120_000, "{document}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert_eq!(directives.len(), 1, "{document}");
        assert_eq!(directives[0]["Namespace"], namespace, "{document}");
        for dimension in directives[0]["Dimensions"][0].as_array().expect("a dimension set") {
            assert!(document[dimension.as_str().unwrap()].is_string(), "dimension {dimension} in {document}");
        }
        for metric in directives[0]["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().unwrap();
            assert!(document[name].is_number() || document[name].is_array(), "{name} in {document}");
        }
    }
    documents
}

/// The metric's unit and dimension set wherever it appears (they must agree), and its values.
struct Series {
    unit: String,
    dimensions: Vec<String>,
    /// Per value of the first dimension ("" without one), every value written.
    values: HashMap<String, Vec<f64>>,
}

fn series(documents: &[Value], name: &str) -> Option<Series> {
    let mut found: Option<Series> = None;
    for document in documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        let Some(metric) = directive["Metrics"].as_array().unwrap().iter().find(|m| m["Name"] == name) else {
            continue;
        };
        let unit = metric["Unit"].as_str().expect("a unit").to_owned();
        let dimensions: Vec<String> =
            directive["Dimensions"][0].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
        let key = dimensions.first().map_or(String::new(), |d| document[d].as_str().unwrap().to_owned());
        let values: Vec<f64> = match &document[name] {
            Value::Array(values) => values.iter().map(|v| v.as_f64().unwrap()).collect(),
            value => vec![value.as_f64().unwrap()],
        };
        let series = found.get_or_insert_with(|| Series {
            unit: unit.clone(),
            dimensions: dimensions.clone(),
            values: HashMap::new(),
        });
        assert_eq!((&series.unit, &series.dimensions), (&unit, &dimensions), "{name} changed its unit or dimensions");
        series.values.entry(key).or_default().extend(values);
    }
    found
}

/// A count metric's totals by outcome.
fn counts(documents: &[Value], name: &str) -> HashMap<String, f64> {
    let series = series(documents, name).unwrap_or_else(|| panic!("no {name} in {documents:?}"));
    assert_eq!(series.unit, "Count", "{name}");
    assert_eq!(series.dimensions, ["outcome"], "{name}");
    series.values.into_iter().map(|(outcome, values)| (outcome, values.iter().sum())).collect()
}

/// A latency metric's values, in milliseconds, with no dimension.
fn latencies(documents: &[Value], name: &str) -> Vec<f64> {
    let Some(series) = series(documents, name) else { return Vec::new() };
    assert_eq!(series.unit, "Milliseconds", "{name}");
    assert!(series.dimensions.is_empty(), "{name}: {:?}", series.dimensions);
    let values = series.values.into_values().flatten().collect::<Vec<_>>();
    assert!(values.iter().all(|v| *v > 0.0 && *v < 15_000.0), "{name}: {values:?}");
    values
}

fn cold_starts(documents: &[Value]) -> HashMap<String, f64> {
    let series = series(documents, "ColdStarts").expect("a cold start");
    assert_eq!(series.dimensions, ["function"]);
    series.values.into_iter().map(|(function, values)| (function, values.iter().sum())).collect()
}

/// How many log lines gave each outcome.
fn logged_outcomes(stdout: &[u8], message: &str) -> HashMap<String, f64> {
    let mut outcomes = HashMap::new();
    for line in json_lines(stdout).into_iter().filter(|l| l["message"] == message) {
        *outcomes.entry(line["outcome"].as_str().unwrap().to_owned()).or_insert(0.0) += 1.0;
    }
    outcomes
}

#[tokio::test]
async fn the_reset_function_writes_requests_by_outcome_and_its_latencies_as_emf() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let api = RuntimeApi::start().await.unwrap();
    let child = reset_command(&api, &moto_endpoint(), &fixture.bus_name)
        .env("AUTH_CORS", "http://localhost:8000")
        .spawn()
        .unwrap();

    let mut statuses = Vec::new();
    // A reset, the same identifier again within its minute, and three refusals before any call.
    for event in ["valid.json", "valid.json", "malformed-json.json", "disallowed-provider.json", "cors-preflight.json"]
    {
        statuses.push(invoke(&api, &read_event(&format!("reset-password/{event}"))).await["statusCode"].clone());
    }
    assert_eq!(statuses, [json!(201), json!(201), json!(400), json!(400), json!(200)]);
    assert_eq!(fixture.drain(Duration::from_secs(2)).await.len(), 1, "one event published");

    let output = stop(child).await;
    let documents = emf_documents(&output.stdout, "MedusaReset");
    let requests = counts(&documents, "Requests");
    let expected: HashMap<String, f64> = [
        ("token_published", 1.0),
        ("rate_limited_identifier", 1.0),
        ("malformed_body", 1.0),
        ("not_allowed", 1.0),
        ("preflight", 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(requests, expected);
    assert_eq!(requests, logged_outcomes(&output.stdout, "request"), "the metrics say what the log says");

    let request_latency = latencies(&documents, "RequestLatency");
    assert_eq!(request_latency.len(), 5, "one per request");
    let publish = latencies(&documents, "PublishLatency");
    assert_eq!(publish.len(), 1, "only the reset publishes");
    assert_eq!(latencies(&documents, "RateLimiterLatency").len(), 2, "the two requests that got that far");
    // Both look up (the limits count against what the lookup finds); only the first records a token.
    assert_eq!(latencies(&documents, "DatabaseLatency").len(), 3, "two lookups and one issue");
    let slowest = request_latency.iter().cloned().fold(0.0, f64::max);
    assert!(slowest >= publish[0], "the request took at least its publish: {slowest} < {}", publish[0]);
    assert_eq!(cold_starts(&documents), HashMap::from([("reset-password".to_owned(), 1.0)]));
    // Flushed after each invocation: a request's documents are out before the next request.
    assert!(documents.len() >= 5, "{documents:?}");
}

#[tokio::test]
async fn the_reset_function_counts_a_failed_publish_as_a_5xx_by_its_cause() {
    let api = RuntimeApi::start().await.unwrap();
    let child =
        reset_command(&api, &unreachable_endpoint(), "default").env("METRICS_NAMESPACE", "Shop/Auth").spawn().unwrap();
    let response = invoke(&api, &read_event("reset-password/valid.json")).await;
    assert_eq!(response["statusCode"], 500, "{response}");
    let output = stop(child).await;
    let documents = emf_documents(&output.stdout, "Shop/Auth");
    assert_eq!(counts(&documents, "Requests"), HashMap::from([("publish_failed".to_owned(), 1.0)]));
    assert_eq!(latencies(&documents, "PublishLatency").len(), 1, "the failed call is timed too");
}

#[tokio::test]
async fn the_notifier_writes_emails_by_outcome_and_ses_latency_as_emf_whatever_the_log_level() {
    let config = moto_sdk_config().await;
    let sender = verified_sender(&config).await;
    let api = RuntimeApi::start().await.unwrap();
    // At ERROR no event line is logged, but the metrics are still written.
    let child = notifier_command(&api, &moto_endpoint(), &sender)
        .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
        .env("METRICS_NAMESPACE", "Shop/Mail")
        .spawn()
        .unwrap();
    for event in ["valid.json", "expired-token.json", "not-an-email.json", "malformed-detail.json"] {
        invoke(&api, &read_event(&format!("notifier/{event}"))).await;
    }
    assert_eq!(sent_messages(&moto_endpoint(), &sender).await.len(), 1);
    let output = stop(child).await;
    assert!(logged_outcomes(&output.stdout, "event").is_empty(), "no event line at ERROR");
    let documents = emf_documents(&output.stdout, "Shop/Mail");
    let emails = counts(&documents, "Emails");
    let expected: HashMap<String, f64> = [
        ("sent", 1.0),
        ("dropped_token_expired", 1.0),
        ("dropped_not_an_email", 1.0),
        ("dropped_malformed_event", 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(emails, expected);
    assert_eq!(latencies(&documents, "SesLatency").len(), 1, "one per SES call");
    assert!(series(&documents, "Requests").is_none(), "the notifier has no requests");
    assert_eq!(cold_starts(&documents), HashMap::from([("notifier".to_owned(), 1.0)]));
}

#[tokio::test]
async fn the_notifier_counts_a_transient_ses_failure_as_failed_will_retry() {
    let api = RuntimeApi::start().await.unwrap();
    let child = notifier_command(&api, &unreachable_endpoint(), "no-reply@shop.example.com").spawn().unwrap();
    let answer = api.invoke(&read_event("notifier/valid.json"), WAIT).await.unwrap();
    assert!(matches!(answer, Answer::Error(_)), "{answer:?}");
    let output = stop(child).await;
    let documents = emf_documents(&output.stdout, "MedusaReset");
    assert_eq!(counts(&documents, "Emails"), HashMap::from([("failed_will_retry".to_owned(), 1.0)]));
    assert_eq!(counts(&documents, "Emails"), logged_outcomes(&output.stdout, "event"));
    assert_eq!(latencies(&documents, "SesLatency").len(), 1);
}

#[tokio::test]
async fn with_lambdas_json_log_format_every_stdout_line_is_json() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let api = RuntimeApi::start().await.unwrap();
    // LOG_FORMAT asks for text: Lambda's setting wins.
    let child = reset_command(&api, &moto_endpoint(), &fixture.bus_name)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("LOG_FORMAT", "text")
        .spawn()
        .unwrap();
    for event in ["valid.json", "missing-identifier.json", "disallowed-provider.json"] {
        invoke(&api, &read_event(&format!("reset-password/{event}"))).await;
    }
    let output = stop(child).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    for line in &lines {
        assert!(serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()), "not a JSON object: {line}");
    }
    let logged = logged_outcomes(&output.stdout, "request");
    assert_eq!(logged.values().sum::<f64>(), 3.0, "{stdout}");
    assert!(lines.iter().any(|l| l.contains("SKIP_IDENTITY_CHECK")), "the cold start's warning is JSON too: {stdout}");
}

#[tokio::test]
async fn at_trace_level_neither_function_logs_a_token_or_a_body() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    let sender = verified_sender(&config).await;
    let api = RuntimeApi::start().await.unwrap();
    let reset = reset_command(&api, &moto_endpoint(), &fixture.bus_name)
        .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .env("RUST_LOG", "trace")
        .spawn()
        .unwrap();
    assert_eq!(invoke(&api, &read_event("reset-password/valid.json")).await["statusCode"], 201);
    let reset_output = stop(reset).await;
    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1);
    let token = events[0]["detail"]["token"].as_str().expect("the minted token").to_owned();

    // The notifier gets the very event that was published, token and all.
    let api = RuntimeApi::start().await.unwrap();
    let notifier = notifier_command(&api, &moto_endpoint(), &sender)
        .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
        .env("RUST_LOG", "trace")
        .spawn()
        .unwrap();
    invoke(&api, &events[0]).await;
    let notifier_output = stop(notifier).await;
    assert_eq!(logged_outcomes(&notifier_output.stdout, "event").get("sent"), Some(&1.0));

    for (function, output) in [("reset-password", &reset_output), ("notifier", &notifier_output)] {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        for written in [&stdout, &stderr] {
            assert!(!written.contains(&token), "{function} logged the token");
            assert!(!written.contains("customer@example.com"), "{function} logged the address:\n{written}");
            assert!(!written.contains("\\\"identifier\\\""), "{function} logged the request body:\n{written}");
            assert!(!written.contains("reset-password?token"), "{function} logged the link");
        }
    }
}

/// What the stub EventBridge was sent: each `PutEvents` body.
type Recorded = Arc<Mutex<Vec<Value>>>;

/// Answers `PutEvents` as EventBridge does, every entry accepted, and records the request.
async fn put_events(State(recorded): State<Recorded>, body: Bytes) -> ([(&'static str, &'static str); 1], String) {
    recorded.lock().unwrap().push(serde_json::from_slice(&body).expect("PutEvents is JSON"));
    let answer = json!({"FailedEntryCount": 0, "Entries": [{"EventId": uuid::Uuid::new_v4().to_string()}]});
    ([("content-type", "application/x-amz-json-1.1")], answer.to_string())
}

#[tokio::test]
async fn each_reset_passes_its_invocations_trace_header_to_put_events() {
    let recorded = Recorded::default();
    let stub = serve(Router::new().route("/", post(put_events)).with_state(recorded.clone())).await;
    let api = RuntimeApi::start().await.unwrap();
    let child = reset_command(&api, &stub, "default").spawn().unwrap();
    let traces = [
        "Root=1-6746a8f0-3c1e6f2b7d8a9e0f1a2b3c4d;Parent=53995c3f42cd8ad8;Sampled=1",
        "Root=1-6746a8f1-0123456789abcdef01234567;Parent=0a1b2c3d4e5f6a7b;Sampled=0",
    ];
    let mut event = read_event("reset-password/valid.json");
    for (n, trace) in traces.iter().enumerate() {
        event["body"] = json!(format!(r#"{{"identifier":"user{n}@example.com"}}"#));
        let answer = api.invoke_traced(&event, trace, WAIT).await.unwrap();
        assert!(matches!(&answer, Answer::Response(r) if r["statusCode"] == 201), "{answer:?}");
    }
    stop(child).await;
    let recorded = recorded.lock().unwrap();
    let headers: Vec<&str> =
        recorded.iter().map(|r| r["Entries"][0]["TraceHeader"].as_str().unwrap_or("none")).collect();
    assert_eq!(headers, traces, "each entry carries its own invocation's trace header");
}
