//! TLS to the database at the three strengths libpq's `sslmode`s ask for: none (encrypted, any
//! certificate), the chain only (verify-ca), the chain and the host name (verify-full).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The Amazon RDS certificate authorities (see assets/README.md): RDS and Aurora certificates do
/// not chain to the web PKI. Parsed only when a connection verifies its server.
const RDS_BUNDLE: &[u8] = include_bytes!("../../../assets/rds-global-bundle.pem");

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Nothing,
    Chain,
    ChainAndName,
}

/// The roots a verifying connection trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustedRoots {
    /// As libpq does with an `sslrootcert` file: trust the given certificates and nothing else.
    pub only_given: bool,
    /// `sslrootcert`'s and `MEDUSA_DATABASE_CA_FILE`'s certificates.
    pub given: Vec<CertificateDer<'static>>,
}

impl TrustedRoots {
    fn store(&self) -> Result<RootCertStore, rustls::Error> {
        let mut store = RootCertStore::empty();
        if !self.only_given {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            store.add_parsable_certificates(rds_bundle());
        }
        for cert in &self.given {
            store.add(cert.clone())?;
        }
        Ok(store)
    }
}

fn rds_bundle() -> Vec<CertificateDer<'static>> {
    // The bundle is ours and checked by a test; a certificate that would not parse is left out.
    CertificateDer::pem_slice_iter(RDS_BUNDLE).filter_map(Result::ok).collect()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A connector that checks the server's certificate as far as `verification` says.
pub fn connector(verification: Verification, roots: &TrustedRoots) -> Result<MakeRustlsConnect, rustls::Error> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?;
    let config = match verification {
        Verification::ChainAndName => builder.with_root_certificates(roots.store()?),
        Verification::Chain => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(WithoutHostName { roots: Some(roots.store()?), algorithms })),
        Verification::Nothing => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(WithoutHostName { roots: None, algorithms }))
        }
    };
    Ok(MakeRustlsConnect::new(config.with_no_client_auth()))
}

/// Checks the server's certificate without its host name: against `roots` when given (verify-ca:
/// the certificate must chain to a trusted root, whatever name it bears), or not at all (prefer,
/// allow, and require without roots: encryption against passive eavesdroppers, as libpq gives
/// there). Either way the handshake's own signatures are checked against the presented key.
#[derive(Debug)]
struct WithoutHostName {
    roots: Option<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for WithoutHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, self.algorithms.all)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_certificate_of_the_rds_bundle_becomes_a_root() {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(RDS_BUNDLE).collect::<Result<_, _>>().unwrap();
        assert_eq!(certs.len(), 115);
        let mut store = RootCertStore::empty();
        assert_eq!(store.add_parsable_certificates(certs), (115, 0));
    }

    #[test]
    fn the_default_roots_are_the_web_pki_and_rds_and_an_sslrootcert_file_replaces_them() {
        let web_pki = webpki_roots::TLS_SERVER_ROOTS.len();
        assert_eq!(TrustedRoots::default().store().unwrap().len(), web_pki + 115);
        let one = rds_bundle().swap_remove(0);
        let extra = TrustedRoots { only_given: false, given: vec![one.clone()] };
        assert_eq!(extra.store().unwrap().len(), web_pki + 116);
        let only = TrustedRoots { only_given: true, given: vec![one] };
        assert_eq!(only.store().unwrap().len(), 1);
    }
}
