//! The shared AWS SDK configuration: region, credentials and endpoint from the environment
//! (`AWS_ENDPOINT_URL` points it at a local emulator), with time-outs and retries that keep every
//! call well inside the function's time (`reset::budget` adds them up). Beside it, the roots the
//! SDK trusts (`roots`), Secrets Manager's secrets (`secrets`) and KMS sealing (`seal`).

pub mod roots;
pub mod seal;
pub mod secrets;

use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};

pub use roots::SdkRoots;

/// DNS, TCP and TLS to a regional endpoint (or a VPC endpoint) take a few milliseconds; half a
/// second is only ever reached by an endpoint that does not answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// DynamoDB, EventBridge, KMS and Secrets Manager answer in tens of milliseconds; an attempt
/// still waiting after a second is stuck, and a fresh attempt on a new connection does better.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Every call, its retries and their back-off included, is over by then: the figure the time
/// budget counts for each AWS call.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(1_500);
/// With the SDK's default first back-off of a second, a retry would rarely fit in the operation
/// time; 50 ms (doubling, jittered, at most 200 ms) lets a throttled or failed call be tried three
/// times and a stuck one twice.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(200);
const MAX_ATTEMPTS: u32 = 3;

// A connection must be able to open within an attempt, and after a stuck first attempt and the
// longest back-off a second attempt must still have time to start.
const _: () = assert!(CONNECT_TIMEOUT.as_millis() < ATTEMPT_TIMEOUT.as_millis());
const _: () = assert!(ATTEMPT_TIMEOUT.as_millis() + MAX_BACKOFF.as_millis() < OPERATION_TIMEOUT.as_millis());

/// Loads the SDK configuration once per cold start; clients built from it are reused.
pub async fn sdk_config(roots: SdkRoots) -> SdkConfig {
    loader(roots).load().await
}

/// The loader with this project's settings and Amazon's shipped roots, as on Lambda, for callers
/// (tests, benchmarks) that add their own endpoint.
pub fn defaults() -> ConfigLoader {
    loader(SdkRoots::Shipped)
}

/// The loader with this project's time-outs and retries, its HTTPS client trusting `roots`.
fn loader(roots: SdkRoots) -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);
    let loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts).retry_config(retries);
    // Amazon's roots instead of reading the system's store at each cold start (src/aws/roots.rs).
    match self::roots::https_client(roots) {
        Some(client) => loader.http_client(client),
        None => loader,
    }
}

/// For `make run`: the region from the environment or the profile, else `us-east-1`, never from the
/// instance metadata service (there is none on a laptop, and looking for it is a stray network call).
/// The SDK is only called at all when a table or a secret ARN is configured.
pub async fn local_sdk_config(roots: SdkRoots) -> SdkConfig {
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(Region::new("us-east-1"));
    loader(roots).region(region).load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_loader_carries_the_time_outs_and_retries() {
        let sdk = defaults().region(Region::new("us-east-1")).load().await;
        let timeouts = sdk.timeout_config().expect("time-outs set");
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        let retries = sdk.retry_config().expect("retries set");
        assert_eq!(retries.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(retries.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(retries.max_backoff(), MAX_BACKOFF);
    }
}
