//! Work per request, network excluded. The reset route: parse, validate, mint and build the event,
//! through the whole router with the in-process publisher and rate limiter (target ≤ 50 µs). The notifier: render
//! one e-mail, link included (target ≤ 100 µs).

use std::hint::black_box;

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use medusa_reset::api;
use medusa_reset::app::wiring;
use medusa_reset::config::{ApiConfig, Profile, Vars};
use medusa_reset::domain::locale::Locale;
use medusa_reset::domain::reset_request::ResetRequest;
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MemoryIdentityStore;
use medusa_reset::notify::link::LinkTemplates;
use medusa_reset::notify::templates::{EmailContext, EmailTemplates};
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::ratelimit::MemoryRateLimiter;
use tower::ServiceExt;

const BODY: &str = r#"{"identifier":"customer@example.com","metadata":{"locale":"de","cart_id":"cart_01JDX"}}"#;

const SECRET: &str = "benchmark-secret-0123456789abcdef";

fn config() -> ApiConfig {
    let vars = Vars::new(|var: &str| match var {
        "JWT_SECRET" => Some(SECRET.to_owned()),
        // The open store: the handler's own work, without a database round trip.
        "SKIP_IDENTITY_CHECK" => Some("true".to_owned()),
        // Every iteration asks for the same identifier: limits must not cut the work short.
        "RATE_LIMIT_PER_IDENTIFIER" | "RATE_LIMIT_PER_IP" => Some("4000000000/86400".to_owned()),
        _ => None,
    });
    ApiConfig::from_vars(Profile::Lambda, &vars).expect("valid benchmark configuration")
}

fn request() -> Request<Body> {
    Request::post("/auth/customer/emailpass/reset-password")
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .expect("valid request")
}

fn handler(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (publisher, mut events) = ChannelPublisher::new();
    let config = config();
    let secret = SigningSecret::parse(SECRET).expect("secret");
    let limiter = MemoryRateLimiter::new(config.limits.limits.clone());
    let app = wiring::app(&config, &secret, publisher, MemoryIdentityStore::open(), limiter);
    // Drained on the same runtime, as a subscriber would, so events do not pile up in memory.
    runtime.spawn(async move { while events.recv().await.is_some() {} });

    c.bench_function("reset_request_end_to_end_in_process", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = app.clone().oneshot(request()).await.expect("router answers");
            assert_eq!(response.status(), 201);
            black_box(response)
        })
    });

    c.bench_function("parse_and_validate_body", |b| {
        let headers = request().headers().clone();
        b.iter(|| {
            let value = api::parse_json(&headers, black_box(BODY.as_bytes())).expect("json");
            black_box(ResetRequest::from_json(value).expect("valid"))
        })
    });
}

fn render(c: &mut Criterion) {
    let templates = EmailTemplates::load(None, &Locale::parse("en").expect("locale")).expect("embedded templates");
    let mut links = LinkTemplates::new();
    links.insert("customer", "https://shop.example.com/reset-password?token={token}&email={email}").expect("template");
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJlbnRpdHlfaWQiOiJjdXN0b21lckBleGFtcGxlLmNvbSJ9.c2lnbmF0dXJl";
    let german = Locale::parse("de-DE");

    c.bench_function("render_one_email_with_link", |b| {
        b.iter(|| {
            let link = links.link("customer", black_box(token), "customer@example.com").expect("link");
            let context = EmailContext {
                link: &link,
                email: "customer@example.com",
                actor_type: "customer",
                expires_minutes: 15,
                metadata: None,
            };
            black_box(templates.render(german.as_ref(), &context).expect("renders"))
        })
    });
}

criterion_group!(benches, handler, render);
criterion_main!(benches);
