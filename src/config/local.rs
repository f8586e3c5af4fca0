//! Settings of `make run`'s local server: where it listens and where e-mails go.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::vars::{ConfigError, Lookup, Vars};

/// Where the local server listens, where e-mails go, and the Medusa backend it fronts, if any.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub addr: SocketAddr,
    pub outbox: PathBuf,
    /// `MEDUSA_BACKEND_URL`: every path but the reset route is forwarded there.
    pub backend: Option<reqwest::Url>,
}

impl LocalSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::from_env())
    }

    pub fn from_vars<L: Lookup>(vars: &Vars<L>) -> Result<Self, ConfigError> {
        let addr = vars.parse_or("LOCAL_ADDR", SocketAddr::from(([127, 0, 0, 1], 9000)))?;
        let backend = vars.get("MEDUSA_BACKEND_URL")?.map(|raw| backend_url(&raw)).transpose()?;
        Ok(Self { addr, outbox: PathBuf::from(vars.get_or("OUTBOX_DIR", "outbox")?), backend })
    }

    /// The mail viewer shows live reset links, so it is served only where only this machine reaches it.
    pub fn serves_mail_viewer(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

/// An `http(s)://host[:port][/prefix]` URL with nothing else in it.
fn backend_url(raw: &str) -> Result<reqwest::Url, ConfigError> {
    let invalid =
        || ConfigError::new("MEDUSA_BACKEND_URL", "is not a Medusa backend URL such as http://localhost:9000");
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| invalid())?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if usable { Ok(url) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_viewer_is_served_only_on_a_loopback_address() {
        let settings =
            |addr: &str| LocalSettings { addr: addr.parse().unwrap(), outbox: "outbox".into(), backend: None };
        assert!(settings("127.0.0.1:9000").serves_mail_viewer());
        assert!(settings("[::1]:9000").serves_mail_viewer());
        assert!(!settings("0.0.0.0:9000").serves_mail_viewer());
        assert!(!settings("192.168.1.10:9000").serves_mail_viewer());
    }

    #[test]
    fn make_run_listens_on_loopback_port_9000_unless_told_otherwise() {
        let default = LocalSettings::from_vars(&Vars::from_pairs(&[])).unwrap();
        assert_eq!((default.addr.to_string(), default.outbox), ("127.0.0.1:9000".to_owned(), "outbox".into()));
        let error = LocalSettings::from_vars(&Vars::from_pairs(&[("LOCAL_ADDR", "localhost")])).unwrap_err();
        assert_eq!(error.var, "LOCAL_ADDR");
    }

    #[test]
    fn a_backend_url_is_an_http_origin_with_an_optional_prefix() {
        assert_eq!(backend_url("http://localhost:9000").unwrap().as_str(), "http://localhost:9000/");
        assert!(backend_url("https://api.shop.example.com/medusa").is_ok());
        for bad in ["localhost:9000", "ftp://x", "http://", "http://u:p@x", "http://x/?a=1", "not a url"] {
            assert_eq!(backend_url(bad).unwrap_err().var, "MEDUSA_BACKEND_URL", "{bad}");
        }
    }
}
