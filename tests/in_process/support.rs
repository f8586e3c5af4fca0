//! What the in-process tests use of `tests/support`. Each binary includes only the files its tests
//! use, so that nothing in them is dead code there.

#[path = "../support/mod.rs"]
mod shared;
pub use shared::*;
#[path = "../support/update.rs"]
mod update;

#[path = "../support/aws_fixtures.rs"]
pub mod aws_fixtures;
#[path = "../support/faults.rs"]
pub mod faults;
#[path = "../support/medusa_db.rs"]
pub mod medusa_db;
#[path = "../support/notifier.rs"]
mod notifier;
#[path = "../support/pgbouncer.rs"]
pub mod pgbouncer;
#[path = "../support/pyjwt.rs"]
mod pyjwt;
#[path = "../support/scrypt_kdf.rs"]
pub mod scrypt_kdf;
#[path = "../support/tls_front.rs"]
pub mod tls_front;

pub use aws_fixtures::{moto_endpoint, moto_sdk_config, read_event, sdk_config_for};
pub use notifier::notifier_config;
pub use pyjwt::verify_independently;

/// Only the in-process tests reset connections; both binaries kill them silently.
impl faults::TcpFaultProxy {
    /// Every connection open now is reset (RST to the client), as an idle timeout at a proxy does.
    pub fn reset_all(&self) {
        for link in self.take_links() {
            link.reset.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// A fault proxy in front of the test database's server, and the database's URL through it.
pub async fn behind_proxy(db: &medusa_db::TestDb) -> (std::sync::Arc<faults::TcpFaultProxy>, String) {
    let server = db.url.split_once('@').and_then(|(_, rest)| rest.split_once('/')).expect("host:port in the URL").0;
    let upstream = tokio::net::lookup_host(server).await.unwrap().next().expect("the server's address");
    let proxy = faults::TcpFaultProxy::start(upstream).await;
    let url = db.url.replacen(server, &proxy.addr.to_string(), 1);
    (std::sync::Arc::new(proxy), url)
}

/// Only the in-process tests set a customer's password in one call.
impl TestApp {
    /// Sets a customer's new password with `token`.
    pub async fn update(&self, token: &str, password: &str) -> (http::Response<()>, String) {
        let body = serde_json::json!({ "password": password }).to_string();
        self.update_as("customer", Some(&format!("Bearer {token}")), &body).await
    }
}

/// The project's JSON log lines, captured in memory for the test's thread.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures what the code under test logs, as JSON lines, until the guard is dropped.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        use medusa_reset::config::{Profile, Vars};
        use medusa_reset::observability::logs::{self, LogSettings};
        let logs = Self::default();
        let settings = LogSettings::from_vars(Profile::Lambda, &Vars::from_pairs(&[("LOG_FORMAT", "json")])).unwrap();
        let writer = logs.clone();
        let guard = tracing::subscriber::set_default(logs::subscriber(&settings, move || writer.clone()));
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
