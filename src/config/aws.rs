//! The roots the AWS SDK trusts: Amazon's, shipped in the binary, unless `SSL_CERT_FILE` or
//! `SSL_CERT_DIR` names a store (a TLS-inspecting proxy, an endpoint with a private certificate),
//! which the SDK's default client then reads.

use crate::aws::SdkRoots;
use crate::vars::{Lookup, Vars};

impl SdkRoots {
    pub fn from_env() -> Self {
        Self::from_vars(&Vars::from_env())
    }

    /// Set to anything, even empty or not UTF-8, a variable names a store: the SDK's client reads it as it is.
    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Self {
        if vars.is_set("SSL_CERT_FILE") || vars.is_set("SSL_CERT_DIR") { Self::System } else { Self::Shipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trust_store_named_in_the_environment_keeps_the_sdks_default() {
        assert_eq!(SdkRoots::from_vars(&Vars::from_pairs(&[])), SdkRoots::Shipped);
        for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            let named = Vars::from_pairs(&[(var, "/etc/ssl/certs/ca-certificates.crt")]);
            assert_eq!(SdkRoots::from_vars(&named), SdkRoots::System, "{var}");
        }
    }
}
