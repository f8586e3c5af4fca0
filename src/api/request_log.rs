//! One log line per request: route, outcome, status, latency, Lambda request id, masked identifier;
//! and the same outcome and latency as the request's metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use lambda_runtime::Context;

/// How the request ended, set by the handler or the error mapping on the response.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub label: &'static str,
    /// Why an unexpected failure happened; logged, never sent to the client.
    pub cause: Option<String>,
}

/// The identifier the request was about, already masked.
#[derive(Debug, Clone)]
pub struct MaskedIdentifier(pub String);

pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let request_id = request.extensions().get::<Context>().map(|c| c.request_id.clone());
    let response = next.run(request).await;

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let outcome = response.extensions().get::<Outcome>();
    let label = outcome.map_or(if method == http::Method::OPTIONS { "preflight" } else { "unlabelled" }, |o| o.label);
    crate::observability::metrics::request(label, elapsed);
    let cause = outcome.and_then(|o| o.cause.as_deref());
    let identifier = response.extensions().get::<MaskedIdentifier>().map(|m| m.0.as_str());
    let route = route.as_deref().unwrap_or("unmatched");
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                method = %method, route, status, outcome = label, latency_us,
                request_id = request_id.as_deref(), identifier, cause, "request"
            )
        };
    }
    if response.status().is_server_error() {
        emit!(error);
    } else {
        emit!(info);
    }
    response
}
