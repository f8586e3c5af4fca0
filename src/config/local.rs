//! Settings of `make run`'s local server: where it listens and where e-mails go.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::vars::{ConfigError, Vars, env_var};

/// Where the local server listens and where e-mails go.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub addr: SocketAddr,
    pub outbox: PathBuf,
}

impl LocalSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars = Vars::new(env_var);
        let addr = vars.parse_or("LOCAL_ADDR", SocketAddr::from(([127, 0, 0, 1], 9000)))?;
        Ok(Self { addr, outbox: PathBuf::from(vars.get_or("OUTBOX_DIR", "outbox")) })
    }
}
