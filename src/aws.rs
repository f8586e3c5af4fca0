//! The shared AWS SDK configuration: region, credentials and endpoint from the environment
//! (`AWS_ENDPOINT_URL` points it at a local emulator), with timeouts well inside a Lambda's.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};

/// Loads the SDK configuration once per cold start; clients built from it are reused.
pub async fn sdk_config() -> SdkConfig {
    defaults().load().await
}

/// The loader with this project's settings, for callers (tests) that add their own endpoint.
pub fn defaults() -> ConfigLoader {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts)
}

/// For `make run`: the region from the environment or the profile, else `us-east-1`, never from the
/// instance metadata service (there is none on a laptop, and looking for it is a stray network call).
/// The SDK is only called at all when a table or a secret ARN is configured.
pub async fn local_sdk_config() -> SdkConfig {
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else(Region::new("us-east-1"));
    defaults().region(region).load().await
}
