//! `make run`'s compiled local runner, started on a free port with an outbox of its own and nothing
//! from the test's environment, for the tests that drive it over HTTP.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::free_port;

/// The running local binary; killed, and its outbox removed, when dropped.
pub struct LocalRunner {
    child: Option<tokio::process::Child>,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    /// Where it writes the e-mails it sends (removed when the runner is dropped).
    pub outbox: PathBuf,
}

impl LocalRunner {
    /// Starts it with `env` on top of `LOCAL_ADDR` and `OUTBOX_DIR`, and waits until it listens.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on("127.0.0.1", env).await
    }

    /// `start`, listening on `ip` (reached at 127.0.0.1 all the same: an unspecified address is
    /// every interface).
    pub async fn start_on(ip: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let outbox = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_local"))
            .env_clear()
            .env("LOCAL_ADDR", format!("{ip}:{port}"))
            .env("OUTBOX_DIR", &outbox)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the local runner starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "make run did not listen within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child: Some(child), base: format!("http://127.0.0.1:{port}"), outbox }
    }

    /// `base` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the runner and returns what it printed: standard output, then standard error.
    pub async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("a runner is stopped once");
        child.start_kill().expect("kill");
        let output = child.wait_with_output().await.expect("output");
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    }
}

impl Drop for LocalRunner {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}
