//! Metrics as CloudWatch Embedded Metric Format (EMF): JSON documents on standard output, one a
//! line, that CloudWatch turns into metrics as it ingests the function's log, so no request waits
//! on a `PutMetricData` call. The `metrics` facade records; `metrics_cloudwatch_embedded`'s
//! collector writes the documents when the binary flushes it after each invocation. Without an
//! installed recorder (`make run`, unit tests) every recording is a no-op.
//!
//! What is written, in the namespace `METRICS_NAMESPACE` (default `MedusaReset`):
//! - `Requests` (Count) and `Emails` (Count) with the dimension `outcome`, whose values are the
//!   log lines' outcome labels, so that a new label needs no change here (a password-changed
//!   notice's `Emails` outcomes begin with `notice_`, a reset e-mail's do not);
//! - `RequestLatency`, `DatabaseLatency`, `RateLimiterLatency`, `PublishLatency`, `SesLatency`
//!   (Milliseconds, every value of the invocation) without dimensions;
//! - `SesThrottledAttempts` (Count) without dimensions, one per `SendEmail` that SES refused for
//!   the account's sending rate (the notifier paces and repeats those within the invocation);
//! - `ColdStarts` (Count) with the dimension `function`, once per execution environment.

mod timed;

use std::io::Write;
use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_cloudwatch_embedded::{Builder, Collector};

pub use timed::Timed;

/// The namespace when `METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "MedusaReset";
/// The dimension of `Requests` and `Emails`.
pub const OUTCOME: &str = "outcome";
/// The dimension of `ColdStarts`.
pub const FUNCTION: &str = "function";
pub const REQUESTS: &str = "Requests";
pub const EMAILS: &str = "Emails";
pub const COLD_STARTS: &str = "ColdStarts";
pub const SES_THROTTLED: &str = "SesThrottledAttempts";
pub const REQUEST_LATENCY: &str = "RequestLatency";

/// A call to a real part whose time is worth a metric of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Medusa's database: the identity lookup and the token row.
    Database,
    /// The rate limiter (DynamoDB when configured).
    RateLimiter,
    /// EventBridge's `PutEvents`, with the KMS sealing when that is on.
    Publish,
    /// SES v2's `SendEmail`.
    Ses,
}

impl Latency {
    pub const ALL: [Self; 4] = [Self::Database, Self::RateLimiter, Self::Publish, Self::Ses];

    /// The metric's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Database => "DatabaseLatency",
            Self::RateLimiter => "RateLimiterLatency",
            Self::Publish => "PublishLatency",
            Self::Ses => "SesLatency",
        }
    }
}

/// Where the metrics go: the CloudWatch namespace. Read from the environment in `config::metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub namespace: String,
}

/// A namespace CloudWatch would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    #[error("must be at most 255 letters, digits and `.-_/#: ` (a CloudWatch namespace)")]
    Invalid,
    #[error("must not start with `AWS/`, which AWS reserves")]
    Reserved,
}

impl MetricsSettings {
    /// CloudWatch's rules for a namespace: 1 to 255 of letters, digits and `.-_/#: `, not `AWS/…`.
    pub fn new(namespace: String) -> Result<Self, NamespaceError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
        if namespace.is_empty() || namespace.len() > 255 || !namespace.chars().all(allowed) {
            return Err(NamespaceError::Invalid);
        }
        if namespace.starts_with("AWS/") {
            return Err(NamespaceError::Reserved);
        }
        Ok(Self { namespace })
    }
}

/// The recorder could not be installed (one per process).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsError(String);

/// The process's EMF collector: what was recorded since the last flush.
#[derive(Clone, Copy)]
pub struct Metrics(&'static Collector);

impl Metrics {
    /// Installs the process-wide recorder for `function` and counts its cold start.
    pub fn install(settings: &MetricsSettings, function: &'static str) -> Result<Self, MetricsError> {
        let collector = Builder::new()
            .cloudwatch_namespace(settings.namespace.clone())
            .init()
            .map_err(|e| MetricsError(e.to_string()))?;
        describe_counter!(REQUESTS, Unit::Count, "reset requests by outcome");
        describe_counter!(EMAILS, Unit::Count, "notifier events by outcome");
        describe_counter!(COLD_STARTS, Unit::Count, "execution environments started");
        describe_counter!(SES_THROTTLED, Unit::Count, "sends SES refused for the account's sending rate");
        describe_histogram!(REQUEST_LATENCY, Unit::Milliseconds, "reset request, answer included");
        for latency in Latency::ALL {
            describe_histogram!(latency.name(), Unit::Milliseconds, "one call");
        }
        counter!(COLD_STARTS, FUNCTION => function).increment(1);
        Ok(Self(collector))
    }

    /// Writes what was recorded since the last flush: the binaries call it after each invocation,
    /// before the runtime reports the answer, after which Lambda may freeze the process. The documents are built in memory and
    /// written at once, so that no log line from another thread lands inside one.
    pub fn flush(&self) {
        let mut documents = Vec::new();
        let written = self.0.flush(&mut documents).and_then(|()| std::io::stdout().lock().write_all(&documents));
        if let Err(error) = written {
            tracing::warn!(%error, "could not write the metrics");
        }
    }

    /// The router, flushing after each request (outside the request log, which records it).
    pub fn flushing(self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self, flush_after))
    }
}

/// Flushes once the request is answered, before `lambda_http` reports the answer, after which
/// Lambda may freeze the process.
async fn flush_after(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    metrics.flush();
    response
}

/// One reset request: its outcome label (the request log's) and its time.
pub fn request(outcome: &'static str, latency: Duration) {
    counter!(REQUESTS, OUTCOME => outcome).increment(1);
    histogram!(REQUEST_LATENCY).record(millis(latency));
}

/// One notifier event: its outcome label (the notifier log's).
pub fn email(outcome: &'static str) {
    counter!(EMAILS, OUTCOME => outcome).increment(1);
}

/// One `SendEmail` that SES refused for the account's sending rate.
pub fn ses_throttled() {
    counter!(SES_THROTTLED).increment(1);
}

/// One call to a real part.
pub fn latency(kind: Latency, elapsed: Duration) {
    histogram!(kind.name()).record(millis(elapsed));
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_cloudwatch_would_refuse_is_refused() {
        assert_eq!(MetricsSettings::new("Shop/Auth-Prod".to_owned()).unwrap().namespace, "Shop/Auth-Prod");
        assert_eq!(MetricsSettings::new("AWS/Lambda".to_owned()), Err(NamespaceError::Reserved));
        for bad in ["", "naïve", "a\"b", &"x".repeat(256)] {
            assert_eq!(MetricsSettings::new(bad.to_owned()), Err(NamespaceError::Invalid), "{bad}");
        }
    }
}
