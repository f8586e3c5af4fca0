//! The roots the AWS SDK's HTTPS client trusts: Amazon Trust Services' four roots and the Starfield
//! Services root that cross-signs them (assets/amazon-trust-services.pem, shipped in the binary),
//! which sign the endpoints of every AWS service this project calls. The SDK's default client reads
//! the system's certificate store instead, file by file, at every cold start: a large share of the
//! start (README: Benchmarks), where these five certificates parse in a fraction of that.
//!
//! An operator who points `SSL_CERT_FILE` or `SSL_CERT_DIR` at a store (a TLS-inspecting proxy, an
//! endpoint with a private certificate) gets the SDK's default client, which reads them
//! (`SdkRoots::System`, as `config::aws` reads those variables).

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Amazon Root CA 1–4 and Starfield Services Root Certificate Authority – G2, with their SHA-256
/// fingerprints as published at amazontrust.com/repository.
const AMAZON_ROOTS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/amazon-trust-services.pem"));

/// Which roots the SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkRoots {
    /// Amazon's, shipped in the binary: what a Lambda, whose environment names no store, uses.
    Shipped,
    /// The system's store, read by the SDK's default client where the environment names one.
    System,
}

/// The HTTPS client for the SDK's configuration, or `None` to keep the SDK's default (the system's
/// store).
pub fn https_client(roots: SdkRoots) -> Option<SharedHttpClient> {
    if roots == SdkRoots::System {
        return None;
    }
    let trust = TrustStore::empty().with_pem_certificate(AMAZON_ROOTS.as_bytes());
    // Building a context cannot fail (the builder returns a Result for the future's sake).
    let context = TlsContext::builder().with_trust_store(trust).build().ok()?;
    // The SDK's own default client, but for the trust store: same TLS provider, its connector
    // settings and sleep, and the proxy from the environment.
    Some(Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// The published SHA-256 fingerprints of the five roots.
    const FINGERPRINTS: [&str; 5] = [
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
        "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
        "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
        "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
    ];

    #[test]
    fn the_shipped_roots_are_amazon_trust_services_five_and_nothing_else() {
        let mut found = Vec::new();
        for block in AMAZON_ROOTS.split("-----BEGIN CERTIFICATE-----").skip(1) {
            let body = block.split("-----END CERTIFICATE-----").next().unwrap();
            let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            let der = base64::engine::general_purpose::STANDARD.decode(base64).unwrap();
            found.push(hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)));
        }
        assert_eq!(found, FINGERPRINTS);
    }

    #[test]
    fn the_systems_store_keeps_the_sdks_default_client() {
        assert!(https_client(SdkRoots::Shipped).is_some());
        assert!(https_client(SdkRoots::System).is_none());
    }
}
