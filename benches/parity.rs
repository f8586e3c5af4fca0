//! Timing parity in Medusa-database mode, on the path a deployed request takes: the rate limits in
//! DynamoDB, the machine's PostgreSQL, KMS when sealing, EventBridge (AWS on moto). Requests for
//! known and unknown identifiers, interleaved, from a pool of identifiers and client IPs, so that
//! each counter holds about as many markers as the template's default limits let it hold. moto's
//! `TransactWriteItems` keeps a copy of the whole table per call, so each scenario starts it
//! afresh, and `make bench` runs it with `MOTO_GC=off` (tools/with-moto): collecting over those
//! copies would stall it for tenths of a second, as no AWS service does.
//!
//! First without a floor, plain and sealed: what each path takes (p50, p99). Then with the default
//! floor: whether the floor covers the paths (each one's p99 within `COVERED` of the floor, so that
//! no more than one request in a hundred shows its own time), and whether the two distributions
//! can be told apart (the two-sample Kolmogorov–Smirnov statistic at the 1% level). It exits
//! non-zero when either fails. Each scenario also shows where its time went: the latency metrics
//! the wiring's `Timed` ports record, per call.

// Shared with the tests, which use more of them than this file does.
#[allow(dead_code)]
#[path = "../tests/support/aws_fixtures.rs"]
mod aws_fixtures;
#[allow(dead_code)]
#[path = "../tests/support/medusa_db.rs"]
mod medusa_db;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use medusa_db::TestDb;
use medusa_reset::app::wiring;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::observability::metrics::{OUTCOME, REQUESTS};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tower::ServiceExt;

const ROUNDS: usize = 300;
const SECRET: &str = "parity-benchmark-secret-0123456789abcdef";
const WARM_UP: usize = 20;
/// How far past the floor a covered answer may come: the scheduler's wake-up and the answer's
/// own way out.
const COVERED: Duration = Duration::from_millis(2);
/// Kolmogorov–Smirnov coefficient for α = 0.01.
const KS_C_ALPHA: f64 = 1.628;
/// Identifiers per path, and client IPs per path, taken in turn: over the four scenarios each
/// counter counts about 40 requests (the template's per-IP default allows 30).
const POOL: usize = 32;

/// One configuration to measure.
struct Scenario {
    label: &'static str,
    sealing: bool,
    /// `RESPONSE_FLOOR_MS`; `None` leaves the default.
    floor_ms: Option<&'static str>,
}

/// The latencies of the two paths, sorted.
struct Sample {
    known: Vec<Duration>,
    unknown: Vec<Duration>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") else {
        eprintln!("MOTO_ENDPOINT is not set: run `make bench`");
        return ExitCode::FAILURE;
    };
    // A failed request's log line says why the bench stopped.
    let errors = tracing_subscriber::fmt().with_max_level(tracing::Level::ERROR).finish();
    let _ = tracing::subscriber::set_global_default(errors);
    let calls = Calls::default();
    if metrics::set_global_recorder(calls.clone()).is_err() {
        eprintln!("cannot install the recorder of the calls' latencies");
        return ExitCode::FAILURE;
    }
    let parts = Parts::start(&endpoint).await;
    let scenarios = [
        Scenario { label: "no floor, plain", sealing: false, floor_ms: Some("0") },
        Scenario { label: "no floor, sealed", sealing: true, floor_ms: Some("0") },
        Scenario { label: "default floor, plain", sealing: false, floor_ms: None },
        Scenario { label: "default floor, sealed", sealing: true, floor_ms: None },
    ];
    println!("{ROUNDS} requests per path, interleaved; DynamoDB, KMS and EventBridge on moto, PostgreSQL on 127.0.0.1");
    let (mut uncovered, mut distinguishable) = (Vec::new(), Vec::new());
    let mut rounds = 0..;
    for scenario in &scenarios {
        let aws = match parts.fresh_aws(&endpoint).await {
            Ok(aws) => aws,
            Err(error) => {
                eprintln!("cannot start moto afresh: {error}");
                return ExitCode::FAILURE;
            }
        };
        let (config, app) = app(&parts, &aws, scenario).await;
        let sample = measure(&app, &calls, &mut rounds).await;
        let others = calls.other_outcomes();
        if !others.is_empty() {
            eprintln!("{}: requests that took neither path measured: {}", scenario.label, others.join(", "));
            return ExitCode::FAILURE;
        }
        let (d, critical) = describe(scenario, &sample, &calls);
        if scenario.floor_ms.is_none() {
            let slowest = p(&sample.known, 99).max(p(&sample.unknown, 99));
            if slowest > config.response_floor + COVERED {
                uncovered.push(format!(
                    "{} (p99 {:.3} ms over {:.0})",
                    scenario.label,
                    ms(slowest),
                    ms(config.response_floor)
                ));
            }
            if d > critical {
                distinguishable.push(scenario.label);
            }
        }
    }
    parts.db.drop_database().await;
    verdict(&uncovered, &distinguishable)
}

/// What every scenario shares: moto's SDK configuration and the database with the known identities.
struct Parts {
    sdk: SdkConfig,
    db: TestDb,
}

/// A scenario's own rate-limit table and KMS key, in a moto started afresh.
struct FreshAws {
    table: String,
    key_id: String,
}

impl Parts {
    async fn start(endpoint: &str) -> Self {
        let sdk = medusa_reset::aws::defaults()
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kms::config::Credentials::new("testing", "testing", None, None, "bench"))
            .load()
            .await;
        let db = TestDb::create().await;
        for n in 0..POOL {
            db.add_identity(&known(n), "emailpass").await;
        }
        Self { sdk, db }
    }

    /// moto reset to nothing (`POST /moto-api/reset`), then a new table and key.
    async fn fresh_aws(&self, endpoint: &str) -> Result<FreshAws, String> {
        let reset = reqwest::Client::new().post(format!("{endpoint}/moto-api/reset")).send().await;
        reset.and_then(reqwest::Response::error_for_status).map_err(|e| e.to_string())?;
        let table = aws_fixtures::rate_limit_table(&self.sdk).await;
        let key = aws_sdk_kms::Client::new(&self.sdk).create_key().send().await.map_err(|e| e.to_string())?;
        let key_id = key.key_metadata().map(|m| m.key_id().to_owned()).ok_or("a key without metadata")?;
        Ok(FreshAws { table, key_id })
    }
}

/// Prints the scenario's two paths, its calls and how far apart the paths are; returns the
/// Kolmogorov–Smirnov statistic and its critical value.
fn describe(scenario: &Scenario, sample: &Sample, calls: &Calls) -> (f64, f64) {
    println!("{}:", scenario.label);
    report("  known identity  ", &sample.known);
    report("  unknown identity", &sample.unknown);
    calls.report();
    let delta = ms(median(&sample.known)) - ms(median(&sample.unknown));
    let (d, critical) = ks(sample);
    println!("  difference of medians {delta:+.3} ms; Kolmogorov–Smirnov D = {d:.3} (critical at 1%: {critical:.3})");
    (d, critical)
}

fn verdict(uncovered: &[String], distinguishable: &[&str]) -> ExitCode {
    let mut ok = true;
    if uncovered.is_empty() {
        println!("floor: OK, with the default floor each path's p99 is within {} ms of it", COVERED.as_millis());
    } else {
        println!("floor: MISSED, more than one answer in a hundred came after the floor: {}", uncovered.join(", "));
        ok = false;
    }
    if distinguishable.is_empty() {
        println!("parity: OK, with the default floor the distributions are not distinguishable");
    } else {
        println!("parity: MISSED, the distributions differ: {}", distinguishable.join(", "));
        ok = false;
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The route the reset Lambda's wiring builds, for `scenario`; limits high enough never to bite.
async fn app(parts: &Parts, aws: &FreshAws, scenario: &Scenario) -> (ApiConfig, Router) {
    let url = parts.db.url.clone();
    let table = aws.table.clone();
    let floor = scenario.floor_ms;
    let key_id = scenario.sealing.then(|| aws.key_id.clone());
    let vars = Vars::new(move |var: &str| match var {
        "JWT_SECRET" => Some(SECRET.to_owned()),
        "MEDUSA_DATABASE_URL" => Some(url.clone()),
        "RATE_LIMIT_TABLE" => Some(table.clone()),
        "RATE_LIMIT_PER_IDENTIFIER" | "RATE_LIMIT_PER_IP" => Some("10000/3600".to_owned()),
        "RESPONSE_FLOOR_MS" => floor.map(str::to_owned),
        "TOKEN_KMS_KEY_ID" => key_id.clone(),
        _ => None,
    });
    let config = ApiConfig::from_vars(Profile::Lambda, &vars).expect("valid configuration");
    let router = wiring::reset_password_lambda(&config, &parts.sdk).await.expect("the Lambda's adapters build");
    (config, router)
}

/// Warms up, then times both paths, alternating which goes first so neither always follows the
/// other; each round takes the next of `rounds`, whose rest by `POOL` picks identifiers and IP.
async fn measure(app: &Router, calls: &Calls, rounds: &mut std::ops::RangeFrom<usize>) -> Sample {
    let mut next = || rounds.next().map_or(0, |round| round % POOL);
    for _ in 0..WARM_UP {
        let n = next();
        time(app, &known(n), n).await;
        time(app, &unknown(n), n).await;
    }
    calls.clear();
    let (mut known_times, mut unknown_times) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..ROUNDS {
        let n = next();
        if round % 2 == 0 {
            known_times.push(time(app, &known(n), n).await);
            unknown_times.push(time(app, &unknown(n), n).await);
        } else {
            unknown_times.push(time(app, &unknown(n), n).await);
            known_times.push(time(app, &known(n), n).await);
        }
    }
    let (mut known, mut unknown) = (known_times, unknown_times);
    known.sort();
    unknown.sort();
    Sample { known, unknown }
}

/// The `n`th known identifier, and the `n`th unknown one: of one length, so that their tokens (and
/// a sealed path's throwaway) have one size.
fn known(n: usize) -> String {
    format!("known-{n:05}@example.com")
}

fn unknown(n: usize) -> String {
    format!("other-{n:05}@example.com")
}

/// One request from client IP number `n` (each path its own, so no IP reaches the default limit).
async fn time(app: &Router, identifier: &str, n: usize) -> Duration {
    let body = format!(r#"{{"identifier":"{identifier}"}}"#);
    let second = if identifier.starts_with("known") { 1 } else { 2 };
    let ip = std::net::Ipv4Addr::new(10, second, (n / 256) as u8, (n % 256) as u8);
    let mut request = Request::post("/auth/customer/emailpass/reset-password")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    request.extensions_mut().insert(ConnectInfo(std::net::SocketAddr::from((ip, 40000))));
    let started = Instant::now();
    let response = app.clone().oneshot(request).await.expect("router answers");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 201, "{identifier}");
    elapsed
}

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

/// The `percent`th percentile (nearest rank below).
fn p(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() - 1) * percent / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(label: &str, sorted: &[Duration]) {
    println!(
        "{label}: p50 {:.3} ms, p90 {:.3}, p99 {:.3}, max {:.3}",
        ms(p(sorted, 50)),
        ms(p(sorted, 90)),
        ms(p(sorted, 99)),
        ms(p(sorted, 100)),
    );
}

/// The Kolmogorov–Smirnov statistic of the two paths and its critical value at 1%.
fn ks(sample: &Sample) -> (f64, f64) {
    let (a, b) = (&sample.known, &sample.unknown);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            i += 1;
        } else {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    (d, KS_C_ALPHA * ((n + m) / (n * m)).sqrt())
}

/// What the route records: the latency histograms (`RequestLatency`, and one per call a `Timed`
/// port makes), kept whole so that their percentiles can be printed, and the requests' outcomes.
#[derive(Clone, Default)]
struct Calls {
    latencies: Arc<Mutex<BTreeMap<String, Vec<f64>>>>,
    outcomes: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// One histogram's or one outcome's handle.
struct Entry {
    name: String,
    calls: Calls,
}

impl HistogramFn for Entry {
    fn record(&self, value: f64) {
        self.calls.latencies.lock().expect("not poisoned").entry(self.name.clone()).or_default().push(value);
    }
}

impl CounterFn for Entry {
    fn increment(&self, value: u64) {
        *self.calls.outcomes.lock().expect("not poisoned").entry(self.name.clone()).or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.calls.outcomes.lock().expect("not poisoned").insert(self.name.clone(), value);
    }
}

impl Recorder for Calls {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let outcome = key.labels().find(|label| label.key() == OUTCOME).map(|label| label.value().to_owned());
        match outcome {
            Some(name) if key.name() == REQUESTS => Counter::from_arc(Arc::new(Entry { name, calls: self.clone() })),
            _ => Counter::noop(),
        }
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Entry { name: key.name().to_owned(), calls: self.clone() }))
    }
}

impl Calls {
    fn clear(&self) {
        self.latencies.lock().expect("not poisoned").clear();
        self.outcomes.lock().expect("not poisoned").clear();
    }

    /// The outcomes since the last clear that are not the two paths measured (a rate limit that bit).
    fn other_outcomes(&self) -> Vec<String> {
        let outcomes = self.outcomes.lock().expect("not poisoned");
        let measured = ["token_published", "unknown_identity"];
        outcomes
            .iter()
            .filter(|(name, _)| !measured.contains(&name.as_str()))
            .map(|(n, c)| format!("{n} × {c}"))
            .collect()
    }

    /// Each histogram's count, p50 and p99 since the last clear, both paths together.
    fn report(&self) {
        for (name, values) in self.latencies.lock().expect("not poisoned").iter_mut() {
            values.sort_by(f64::total_cmp);
            let at = |percent: usize| values[(values.len() - 1) * percent / 100];
            println!(
                "  {name:<18}: {} values, p50 {:.3} ms, p99 {:.3}, max {:.3}",
                values.len(),
                at(50),
                at(99),
                at(100)
            );
        }
    }
}
