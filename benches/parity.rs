//! Timing parity in Medusa-database mode: requests for a known and an unknown identifier, against
//! the machine's PostgreSQL and a real publisher (EventBridge on moto), interleaved, and their
//! latency distributions compared. Reports medians, percentiles and the two-sample
//! Kolmogorov–Smirnov statistic; exits non-zero when the distributions differ at the 1% level.

// Shared with the tests, which use more of it than this file does.
#[allow(dead_code)]
#[path = "../tests/support/medusa_db.rs"]
mod medusa_db;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http::Request;
use medusa_db::TestDb;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MedusaDatabase;
use medusa_reset::publish::EventBridgePublisher;
use medusa_reset::ratelimit::MemoryLimiter;
use medusa_reset::wiring;
use tower::ServiceExt;

const ROUNDS: usize = 300;
const SECRET: &str = "parity-benchmark-secret-0123456789abcdef";
const WARM_UP: usize = 20;
/// Kolmogorov–Smirnov coefficient for α = 0.01.
const KS_C_ALPHA: f64 = 1.628;

#[tokio::main]
async fn main() -> ExitCode {
    let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") else {
        eprintln!("MOTO_ENDPOINT is not set: run `make bench`");
        return ExitCode::FAILURE;
    };
    let db = TestDb::create().await;
    db.add_identity("known@example.com", "emailpass").await;
    let app = app(&db, &endpoint).await;

    for _ in 0..WARM_UP {
        time(&app, "known@example.com").await;
        time(&app, "unknown@example.com").await;
    }
    let (mut known, mut unknown) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..ROUNDS {
        // Alternate which goes first so that neither always follows the other.
        if round % 2 == 0 {
            known.push(time(&app, "known@example.com").await);
            unknown.push(time(&app, "unknown@example.com").await);
        } else {
            unknown.push(time(&app, "unknown@example.com").await);
            known.push(time(&app, "known@example.com").await);
        }
    }
    db.drop_database().await;

    known.sort();
    unknown.sort();
    report("known identity", &known);
    report("unknown identity", &unknown);
    let d = ks_statistic(&known, &unknown);
    let n = ROUNDS as f64;
    let critical = KS_C_ALPHA * ((2.0 * n) / (n * n)).sqrt();
    let delta = ms(median(&known)) - ms(median(&unknown));
    println!("difference of medians: {delta:+.3} ms; Kolmogorov–Smirnov D = {d:.3} (critical at 1%: {critical:.3})");
    if d <= critical {
        println!("parity: OK, the distributions are not distinguishable");
        ExitCode::SUCCESS
    } else {
        println!("parity: MISSED, the distributions differ");
        ExitCode::FAILURE
    }
}

async fn app(db: &TestDb, endpoint: &str) -> Router {
    let url = db.url.clone();
    let vars = Vars::new(move |var: &str| match var {
        "JWT_SECRET" => Some(SECRET.to_owned()),
        "MEDUSA_DATABASE_URL" => Some(url.clone()),
        // The same two identifiers over and over: limits must not turn the test into one of them.
        "RATE_LIMIT_PER_IDENTIFIER" | "RATE_LIMIT_PER_IP" => Some("1000000/3600".to_owned()),
        _ => None,
    });
    let config = ApiConfig::from_vars(Profile::Lambda, &vars).expect("valid configuration");
    let sdk = medusa_reset::aws::defaults().endpoint_url(endpoint).load().await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), config.events.clone());
    let database = medusa_reset::secret::resolve_database(config.database.clone(), &sdk)
        .await
        .expect("a database URL resolves without AWS")
        .expect("database mode");
    let secret = SigningSecret::parse(SECRET).expect("secret");
    let limiter = MemoryLimiter::new(config.limits.limits.clone());
    wiring::app(&config, &secret, publisher, MedusaDatabase::new(database), limiter)
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(label: &str, sorted: &[Duration]) {
    let pick = |p: usize| ms(sorted[(sorted.len() - 1) * p / 100]);
    println!(
        "{label}: median {:.3} ms, p10 {:.3}, p90 {:.3}, p99 {:.3} ({} requests)",
        pick(50),
        pick(10),
        pick(90),
        pick(99),
        sorted.len()
    );
}

/// The largest distance between the two empirical distribution functions.
fn ks_statistic(a: &[Duration], b: &[Duration]) -> f64 {
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            i += 1;
        } else {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}
