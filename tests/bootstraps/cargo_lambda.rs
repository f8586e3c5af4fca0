//! The cargo-lambda loop a Rust Lambda developer reaches for: `cargo lambda watch` with only AWS
//! settings (here moto's), then `cargo lambda invoke <function> --data-file events/…`. The
//! development defaults come from `[package.metadata.lambda.env]` in Cargo.toml.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::aws_fixtures::{BusToQueue, sent_messages};
use crate::support::free_port;
use crate::support::{moto_endpoint, moto_sdk_config};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The pinned cargo-lambda that `make test` installs into .venv (tools/requirements-package.txt).
fn cargo_lambda() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/cargo-lambda");
    assert!(path.exists(), "{} is missing: run `make test`, which installs it", path.display());
    path
}

/// `cargo lambda watch` on a free port, stopped (with the functions it started) when dropped.
struct Watch {
    child: tokio::process::Child,
    port: u16,
}

impl Watch {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = tokio::process::Command::new(cargo_lambda());
        command
            // No file watching: walking a large target/ before the first start is what takes time here;
            // the reload itself is cargo-lambda's, not ours to test.
            .args(["lambda", "watch", "--ignore-changes", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("cargo lambda watch starts");
        // Keep draining its output so the functions it runs never block on a full pipe.
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(ready.is_ok(), "cargo lambda watch did not listen on 127.0.0.1:{port} within 60 s");
        Self { child, port }
    }

    /// `cargo lambda invoke <function> --data-file <event>`: the function's answer as JSON.
    async fn invoke(&self, function: &str, event: &str) -> Value {
        let output = tokio::time::timeout(
            // `cargo run` finds the build `cargo test` made (tests/in_process/feature_pins.rs), so this is seconds.
            Duration::from_secs(180),
            tokio::process::Command::new(cargo_lambda())
                .args(["lambda", "invoke", function, "--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &self.port.to_string(), "--data-file", event, "--output-format", "json"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output(),
        )
        .await
        .expect("the invoke ends within 180 s (did `cargo run` rebuild? see tests/in_process/feature_pins.rs)")
        .expect("cargo lambda invoke runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{function}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{function}: not JSON ({e}): {stdout}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The watcher runs each function with `cargo run`: stop the whole process group.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).status();
        }
    }
}

#[tokio::test]
async fn cargo_lambda_watch_and_invoke_run_both_functions_with_only_aws_settings() {
    let config = moto_sdk_config().await;
    let fixture = BusToQueue::create(&config, "medusa.auth", "auth.password_reset").await;
    // The sender in Cargo.toml's defaults, verified as SES requires.
    aws_sdk_sesv2::Client::new(&config).create_email_identity().email_identity("shop.localhost").send().await.unwrap();
    // Only AWS settings (moto's endpoint, region, credentials, all inherited from `make test`) and
    // the bus this test reads; everything else is Cargo.toml's development defaults.
    let watch = Watch::start(&[("EVENT_BUS_NAME", &fixture.bus_name)]).await;

    let answer = watch.invoke("reset-password", "events/reset-password/valid.json").await;
    assert_eq!(answer["statusCode"], 201, "{answer}");
    assert_eq!(answer["body"], "Created");
    let events = fixture.drain(Duration::from_secs(2)).await;
    assert_eq!(events.len(), 1, "one event on the bus");
    assert_eq!(events[0]["detail"]["entity_id"], "customer@example.com");

    // The notifier answers nothing (`null`) once the e-mail is handed to SES.
    let answer = watch.invoke("notifier", "events/notifier/valid.json").await;
    assert!(answer.is_null(), "{answer}");
    let sent = sent_messages(&moto_endpoint(), "no-reply@shop.localhost").await;
    assert!(!sent.is_empty(), "the notifier sent the e-mail through moto's SES");
}
