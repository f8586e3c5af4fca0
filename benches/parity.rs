//! Timing parity in Medusa-database mode, on the path a deployed request takes: the rate limits in
//! DynamoDB, the machine's PostgreSQL, KMS when sealing, EventBridge (AWS on moto). Requests for a
//! known and an unknown identifier, interleaved. First without a floor, plain and sealed: what each
//! path takes (p50, p99), which the floor must cover. Then with the default floor: the two
//! distributions compared with the two-sample Kolmogorov–Smirnov statistic. Exits non-zero when
//! they differ at the 1% level or when the default floor is below a path's p99. Each scenario also
//! shows where its time went: the latency metrics the wiring's `Timed` ports record, per call.

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
use http::Request;
use medusa_db::TestDb;
use medusa_reset::app::wiring;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::ServiceExt;

const ROUNDS: usize = 300;
const SECRET: &str = "parity-benchmark-secret-0123456789abcdef";
const WARM_UP: usize = 20;
/// Kolmogorov–Smirnov coefficient for α = 0.01.
const KS_C_ALPHA: f64 = 1.628;
/// Two identifiers of one length, so their tokens (and a sealed path's throwaway) have one size.
const KNOWN: &str = "known@example.com";
const UNKNOWN: &str = "other@example.com";

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
    let sdk = medusa_reset::aws::defaults()
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::Credentials::new("testing", "testing", None, None, "bench"))
        .load()
        .await;
    let calls = Calls::default();
    if metrics::set_global_recorder(calls.clone()).is_err() {
        eprintln!("cannot install the recorder of the calls' latencies");
        return ExitCode::FAILURE;
    }
    let db = TestDb::create().await;
    db.add_identity(KNOWN, "emailpass").await;
    let table = aws_fixtures::rate_limit_table(&sdk).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_id = match kms.create_key().send().await.ok().and_then(|k| k.key_metadata().map(|m| m.key_id().to_owned()))
    {
        Some(key_id) => key_id,
        None => {
            eprintln!("cannot create a KMS key in moto");
            return ExitCode::FAILURE;
        }
    };

    let scenarios = [
        Scenario { label: "no floor, plain", sealing: false, floor_ms: Some("0") },
        Scenario { label: "no floor, sealed", sealing: true, floor_ms: Some("0") },
        Scenario { label: "default floor, plain", sealing: false, floor_ms: None },
        Scenario { label: "default floor, sealed", sealing: true, floor_ms: None },
    ];
    println!("{ROUNDS} requests per path, interleaved; DynamoDB, KMS and EventBridge on moto, PostgreSQL on 127.0.0.1");
    let mut worst_p99 = Duration::ZERO;
    let mut default_floor = Duration::ZERO;
    let mut distinguishable = Vec::new();
    for scenario in &scenarios {
        let (config, app) = app(&db, &sdk, &table, scenario, &key_id).await;
        let sample = measure(&app, &calls).await;
        println!("{}:", scenario.label);
        report("  known identity  ", &sample.known);
        report("  unknown identity", &sample.unknown);
        calls.report();
        let delta = ms(median(&sample.known)) - ms(median(&sample.unknown));
        let (d, critical) = ks(&sample);
        println!(
            "  difference of medians {delta:+.3} ms; Kolmogorov–Smirnov D = {d:.3} (critical at 1%: {critical:.3})"
        );
        if scenario.floor_ms.is_some() {
            worst_p99 = worst_p99.max(p(&sample.known, 99)).max(p(&sample.unknown, 99));
        } else {
            default_floor = config.response_floor;
            if d > critical {
                distinguishable.push(scenario.label);
            }
        }
    }
    db.drop_database().await;

    println!("default floor {:.0} ms; slowest p99 without a floor {:.3} ms", ms(default_floor), ms(worst_p99));
    let mut ok = true;
    if default_floor < worst_p99 {
        println!("floor: MISSED, below a path's p99, so that path's own time shows");
        ok = false;
    } else {
        println!("floor: OK, above every path's p99");
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
async fn app(db: &TestDb, sdk: &SdkConfig, table: &str, scenario: &Scenario, key_id: &str) -> (ApiConfig, Router) {
    let url = db.url.clone();
    let table = table.to_owned();
    let floor = scenario.floor_ms;
    let key_id = scenario.sealing.then(|| key_id.to_owned());
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
    let router = wiring::reset_password_lambda(&config, sdk).await.expect("the Lambda's adapters build");
    (config, router)
}

/// Warms up, then times both paths, alternating which goes first so neither always follows the other.
async fn measure(app: &Router, calls: &Calls) -> Sample {
    for _ in 0..WARM_UP {
        time(app, KNOWN).await;
        time(app, UNKNOWN).await;
    }
    calls.clear();
    let (mut known, mut unknown) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            known.push(time(app, KNOWN).await);
            unknown.push(time(app, UNKNOWN).await);
        } else {
            unknown.push(time(app, UNKNOWN).await);
            known.push(time(app, KNOWN).await);
        }
    }
    known.sort();
    unknown.sort();
    Sample { known, unknown }
}

async fn time(app: &Router, identifier: &str) -> Duration {
    let body = format!(r#"{{"identifier":"{identifier}"}}"#);
    let request = Request::post("/auth/customer/emailpass/reset-password")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
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

/// The latency histograms the route records (`RequestLatency`, and one per call a `Timed` port
/// makes), kept whole so that their percentiles can be printed; counters and gauges are dropped.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, Vec<f64>>>>);

struct Values {
    name: String,
    calls: Calls,
}

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.calls.0.lock().expect("not poisoned").entry(self.name.clone()).or_default().push(value);
    }
}

impl Recorder for Calls {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Values { name: key.name().to_owned(), calls: self.clone() }))
    }
}

impl Calls {
    fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }

    /// Each histogram's count, p50 and p99 since the last clear, both paths together.
    fn report(&self) {
        for (name, values) in self.0.lock().expect("not poisoned").iter_mut() {
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
