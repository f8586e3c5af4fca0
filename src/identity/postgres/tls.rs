//! TLS to the database at the three strengths libpq's `sslmode`s ask for: none (encrypted, any
//! certificate), the chain only (verify-ca), the chain and the host name (verify-full), and the roots
//! each may trust.
//!
//! A check of the chain alone vouches for nothing but the roots: any certificate they issued
//! passes, whatever name it bears. So verify-ca never trusts the web PKI's public roots (anyone can
//! get a certificate from those, for a name of their own); it trusts the roots given, or else the
//! RDS bundle. verify-full checks the name too, so with no roots given it also trusts the public
//! roots: a public CA's certificate for the database's own name is what `sslrootcert=system`
//! asks for, and RDS Proxy's certificates chain to Amazon Trust Services, one of them.

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
const RDS_BUNDLE: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/rds-global-bundle.pem"));

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Nothing,
    Chain,
    ChainAndName,
}

/// The roots a verifying connection trusts.
#[derive(Debug, Clone, Default)]
pub enum TrustedRoots {
    /// None given: the RDS bundle, and for verify-full the web PKI's public roots as well.
    #[default]
    Shipped,
    /// `sslrootcert=system`: the web PKI's public roots (libpq's are the system's), for verify-full only.
    System,
    /// As libpq does with an `sslrootcert` file: these certificates (that file's and
    /// `MEDUSA_DATABASE_CA_FILE`'s) and nothing else.
    Given(Vec<CertificateDer<'static>>),
}

impl TrustedRoots {
    /// Whether roots were given (`sslrootcert` file or `MEDUSA_DATABASE_CA_FILE`).
    pub fn are_given(&self) -> bool {
        matches!(self, Self::Given(_))
    }

    fn store(&self, verification: Verification) -> Result<RootCertStore, rustls::Error> {
        let mut store = RootCertStore::empty();
        let public = || webpki_roots::TLS_SERVER_ROOTS.iter().cloned();
        match self {
            Self::Shipped => {
                store.add_parsable_certificates(rds_bundle());
                if verification == Verification::ChainAndName {
                    store.extend(public());
                }
            }
            Self::System if verification == Verification::ChainAndName => store.extend(public()),
            // The URL's parser allows system only with verify-full; this keeps it so.
            Self::System => return Err(rustls::Error::General("sslrootcert=system needs verify-full".into())),
            Self::Given(certs) => {
                for cert in certs {
                    store.add(cert.clone())?;
                }
            }
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
        Verification::ChainAndName => builder.with_root_certificates(roots.store(verification)?),
        Verification::Chain => builder.dangerous().with_custom_certificate_verifier(Arc::new(WithoutHostName {
            roots: Some(roots.store(verification)?),
            algorithms,
        })),
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

    /// The subjects of a store's roots, to compare stores by what they hold.
    fn subjects(store: &RootCertStore) -> Vec<Vec<u8>> {
        store.roots.iter().map(|anchor| anchor.subject.as_ref().to_vec()).collect()
    }

    #[test]
    fn verify_ca_without_given_roots_trusts_the_rds_bundle_and_no_public_root() {
        let store = TrustedRoots::Shipped.store(Verification::Chain).unwrap();
        assert_eq!(store.len(), 115);
        let held = subjects(&store);
        let public = webpki_roots::TLS_SERVER_ROOTS.iter().filter(|root| held.contains(&root.subject.to_vec()));
        assert_eq!(public.count(), 0, "no web PKI root is trusted without a name check");
    }

    #[test]
    fn verify_full_without_given_roots_trusts_the_rds_bundle_and_the_public_roots() {
        let web_pki = webpki_roots::TLS_SERVER_ROOTS.len();
        assert_eq!(TrustedRoots::Shipped.store(Verification::ChainAndName).unwrap().len(), web_pki + 115);
        assert_eq!(TrustedRoots::System.store(Verification::ChainAndName).unwrap().len(), web_pki);
        assert!(TrustedRoots::System.store(Verification::Chain).is_err(), "public roots need the name check");
    }

    #[test]
    fn given_roots_are_the_only_roots_whatever_is_checked() {
        let one = rds_bundle().swap_remove(0);
        let given = TrustedRoots::Given(vec![one]);
        for verification in [Verification::Chain, Verification::ChainAndName] {
            assert_eq!(given.store(verification).unwrap().len(), 1, "{verification:?}");
        }
    }
}
