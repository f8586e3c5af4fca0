//! The update route's time per request, in process: verify the token, hash the new password with
//! Medusa's default scrypt (logN 15, r 8, p 1), write it to the in-memory store and publish the
//! notice. scrypt is nearly all of it, so this is what one full core spends on an update; a Lambda
//! gets `MemorySize / 1769` of a core (README: Benchmarks).

use std::time::{Duration, Instant};

use axum::body::Body;
use http::Request;
use jsonwebtoken::{EncodingKey, Header};
use medusa_reset::app::wiring;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::ratelimit::MemoryRateLimiter;
use tower::ServiceExt;

const SECRET: &str = "benchmark-secret-0123456789abcdef";
/// Enough for a stable p99 (two samples above it) in well under a minute.
const UPDATES: usize = 200;

fn config() -> ApiConfig {
    let vars = Vars::from_pairs(&[
        ("JWT_SECRET", SECRET),
        // The open store, as `make run` has it (so in development mode): any verified token may
        // change "the" password, so one token serves every run.
        ("SKIP_IDENTITY_CHECK", "true"),
        ("DEVELOPMENT_MODE", "true"),
        ("RATE_LIMIT_UPDATE_PER_IP", "4000000/86400"),
    ]);
    ApiConfig::from_vars(Profile::Lambda, &vars).expect("valid benchmark configuration")
}

fn token() -> String {
    let claims = serde_json::json!({"entity_id": "customer@example.com", "actor_type": "customer",
        "provider": "emailpass", "purpose": "reset", "jti": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
        "iat": 2_000_000_000u64, "exp": 4_000_000_000u64});
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("token")
}

fn request(token: &str) -> Request<Body> {
    Request::post("/auth/customer/emailpass/update")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(r#"{"password":"a new passphrase of some length"}"#))
        .expect("valid request")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let config = config();
    let secret = SigningSecret::parse(SECRET).expect("secret");
    let (publisher, mut events) = ChannelPublisher::new();
    let limiter = MemoryRateLimiter::new(config.limits.limits.clone());
    let app = wiring::app(&config, &secret, publisher, MemoryIdentityStore::open(), limiter);
    runtime.spawn(async move { while events.recv().await.is_some() {} });
    let token = token();
    let mut times: Vec<Duration> = runtime.block_on(async {
        let mut times = Vec::with_capacity(UPDATES);
        for _ in 0..UPDATES {
            let started = Instant::now();
            let response = app.clone().oneshot(request(&token)).await.expect("router answers");
            assert_eq!(response.status(), 200);
            times.push(started.elapsed());
        }
        times
    });
    times.sort_unstable();
    let at = |percent: usize| times[(times.len() * percent / 100).min(times.len() - 1)];
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "update_password_in_process ({UPDATES} updates, logN 15 r 8 p 1): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(at(50)),
        ms(at(99)),
        ms(times[times.len() - 1])
    );
    for memory_mb in [1024.0, 1769.0] {
        let share = f64::min(memory_mb / 1769.0, 1.0);
        println!(
            "  at {memory_mb:.0} MB ({:.2} of a vCPU): p50 about {:.0} ms, p99 about {:.0} ms",
            share,
            ms(at(50)) / share,
            ms(at(99)) / share
        );
    }
}
