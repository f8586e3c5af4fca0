//! Cold start and memory of the release bootstraps under the Runtime API emulator, and the size of
//! the zipped bootstraps `make package` builds. Targets, where start-up reads no secret over the
//! network (with one, the figures are printed with their round trips, not judged): start (spawn →
//! first `invocation/next`) ≤ 15 ms and within 2× a hello-world `lambda_runtime` binary's
//! (examples/hello_lambda.rs, same release profile) measured in the same run, runs interleaved so
//! that all see the same load. Everywhere: peak RSS ≤ 16 MB after a first request; zip ≤ 3 MiB.
//! Exits non-zero when a figure misses its target. Runs under `tools/with-moto` so the first
//! request really publishes (reset-password) or sends an e-mail (notifier, templates included).

// Shared with the tests, which use more of it than this file does.
#[allow(dead_code)]
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use runtime_api::{Answer, RuntimeApi};

const RUNS: usize = 30;
const MAX_START: Duration = Duration::from_millis(15);
const MAX_RSS_KB: u64 = 16 * 1024;
const MAX_ZIP_BYTES: u64 = 3 * 1024 * 1024;
/// The most a bootstrap's median cold start may be, as a multiple of the hello-world binary's.
const MAX_RATIO: f64 = 2.0;
/// The floor: `cargo build --release --examples` builds it beside the bootstraps.
const HELLO: &str = "examples/hello_lambda";

/// A function to measure: its binary (in Cargo's release folder), a label, the Secrets Manager
/// reads its start-up waits for, the environment it needs and its first request.
struct Function {
    name: &'static str,
    label: &'static str,
    /// Round trips to Secrets Manager (moto here) before the first `invocation/next`: network time
    /// that no start-up work can remove, so the start targets are held only where there are none.
    secret_reads: u32,
    env: Vec<(&'static str, String)>,
    first_event: &'static str,
}

fn functions(secrets: Secrets) -> Vec<Function> {
    let secret = || ("JWT_SECRET", "benchmark-secret-0123456789abcdef".to_owned());
    let skip = || ("SKIP_IDENTITY_CHECK", "true".to_owned());
    vec![
        Function {
            name: HELLO,
            label: "hello-world lambda_runtime",
            secret_reads: 0,
            env: vec![],
            first_event: "events/notifier/valid.json",
        },
        Function {
            name: "reset-password",
            label: "reset-password",
            secret_reads: 0,
            env: vec![secret(), skip(), ("LOG_FORMAT", "json".into())],
            first_event: "events/reset-password/valid.json",
        },
        Function {
            name: "reset-password",
            label: "reset-password, secret from Secrets Manager",
            secret_reads: 1,
            env: vec![("JWT_SECRET_ARN", secrets.signing.clone()), skip(), ("LOG_FORMAT", "json".into())],
            first_event: "events/reset-password/valid.json",
        },
        Function {
            name: "reset-password",
            label: "reset-password, both secrets from Secrets Manager (database mode)",
            secret_reads: 2,
            env: vec![
                ("JWT_SECRET_ARN", secrets.signing),
                ("MEDUSA_DATABASE_SECRET_ARN", secrets.database),
                ("LOG_FORMAT", "json".into()),
            ],
            first_event: "events/reset-password/valid.json",
        },
        Function {
            name: "notifier",
            label: "notifier",
            secret_reads: 0,
            env: vec![
                ("MAIL_FROM", "no-reply@bench.example.com".into()),
                (
                    "RESET_URL_TEMPLATE_CUSTOMER",
                    "https://shop.example.com/reset-password?token={token}&email={email}".into(),
                ),
                ("LOG_FORMAT", "json".into()),
            ],
            first_event: "events/notifier/valid.json",
        },
    ]
}

/// The ARNs of the secrets stored in moto.
struct Secrets {
    signing: String,
    /// RDS-style JSON for the machine's PostgreSQL (the connection opens on the first request).
    database: String,
}

/// Verifies the notifier's sender and stores the two secrets in moto.
async fn prepare_moto() -> Result<Secrets, String> {
    let endpoint = std::env::var("MOTO_ENDPOINT").map_err(|_| "MOTO_ENDPOINT is not set: run `make bench`")?;
    let config = medusa_reset::aws::defaults().endpoint_url(endpoint).load().await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    ses.create_email_identity().email_identity("bench.example.com").send().await.map_err(|e| e.to_string())?;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let mut arns = Vec::new();
    for value in [
        "benchmark-secret-from-secrets-manager-0123456789",
        r#"{"engine":"postgres","host":"127.0.0.1","port":5432,"username":"postgres","password":"unused","dbname":"postgres","sslmode":"disable"}"#,
    ] {
        let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let created =
            secrets.create_secret().name(name).secret_string(value).send().await.map_err(|e| e.to_string())?;
        arns.push(created.arn().map(str::to_owned).ok_or("no ARN")?);
    }
    let database = arns.pop().ok_or("no ARN")?;
    let signing = arns.pop().ok_or("no ARN")?;
    Ok(Secrets { signing, database })
}

struct Run {
    start: Duration,
    rss_kb: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let release = match release_dir() {
        Ok(release) => release,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let secrets = match prepare_moto().await {
        Ok(arn) => arn,
        Err(error) => {
            eprintln!("cannot prepare moto: {error}");
            return ExitCode::FAILURE;
        }
    };
    let functions = functions(secrets);
    let runs = match measure_interleaved(root, &release, &functions).await {
        Ok(runs) => runs,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let floor = median(&runs[0]);
    let mut ok = true;
    for (function, runs) in functions.iter().zip(&runs) {
        ok &= report(function.label, runs, function.secret_reads);
        let ratio = ms(median(runs)) / ms(floor);
        let against = format!("{} cold start against hello-world's {:.2} ms", function.label, ms(floor));
        if function.secret_reads > 0 {
            println!("{against}: {ratio:.2}× ({} Secrets Manager round trips included)", function.secret_reads);
        } else if function.name != HELLO {
            ok &= verdict(&against, &format!("{ratio:.2}×"), ratio <= MAX_RATIO, "≤ 2×");
        }
    }
    let mut zips_seen = std::collections::HashSet::new();
    for function in functions.iter().filter(|f| f.name != HELLO) {
        if !zips_seen.insert(function.name) {
            continue;
        }
        let zip = lambda_dir(&release).join(function.name).join("bootstrap.zip");
        match std::fs::metadata(&zip) {
            Ok(meta) => {
                ok &= verdict(
                    &format!("{} zipped bootstrap", function.name),
                    &format!("{:.2} MB", meta.len() as f64 / 1_048_576.0),
                    meta.len() <= MAX_ZIP_BYTES,
                    "≤ 3 MB",
                )
            }
            Err(_) => println!("{}: no {} (run `make package` first)", function.name, zip.display()),
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `RUNS` cold starts of each function, one of each in turn, so that a burst of load on the
/// machine falls on all of them alike rather than on whichever was measuring then; each round
/// starts one function further on, so that none always follows the same one.
async fn measure_interleaved(root: &Path, release: &Path, functions: &[Function]) -> Result<Vec<Vec<Run>>, String> {
    let mut runs: Vec<Vec<Run>> = functions.iter().map(|_| Vec::with_capacity(RUNS)).collect();
    for round in 0..RUNS {
        for offset in 0..functions.len() {
            let index = (round + offset) % functions.len();
            let function = &functions[index];
            let run = measure(root, release, function).await.map_err(|e| format!("{}: {e}", function.label))?;
            runs[index].push(run);
        }
    }
    Ok(runs)
}

async fn measure(root: &Path, release: &Path, function: &Function) -> Result<Run, String> {
    let binary: PathBuf = release.join(function.name);
    let event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join(function.first_event)).map_err(|e| format!("{}: {e}", function.first_event))?,
    )
    .map_err(|e| e.to_string())?;
    let api = RuntimeApi::start().await.map_err(|e| e.to_string())?;
    let mut command = api.command(&binary, function.name);
    command.envs(function.env.iter().map(|(k, v)| (*k, v.as_str()))).stdout(std::process::Stdio::null());
    // As on Lambda, which names no trust store: this machine's would swap the SDK's shipped roots
    // for a read of the system's store (src/aws/roots.rs).
    command.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("{} (`cargo build --release --bins --examples`): {e}", binary.display()))?;
    let polled = api.first_poll(Duration::from_secs(5)).await.ok_or("no invocation/next within 5 s")?;
    let answer = api.invoke(&event, Duration::from_secs(10)).await?;
    if !matches!(answer, Answer::Response(_)) {
        return Err(format!("the first request failed: {answer:?}"));
    }
    let pid = child.id().ok_or("the bootstrap exited")?;
    let rss_kb = peak_rss_kb(pid).ok_or("cannot read VmHWM")?;
    child.kill().await.map_err(|e| e.to_string())?;
    Ok(Run { start: polled - spawned, rss_kb })
}

/// Cargo's release folder, wherever the target folder is (`CARGO_TARGET_DIR`, `build.target-dir`):
/// Cargo runs this benchmark from its `deps/`, and `cargo build --release` puts the bootstraps and
/// examples beside that.
fn release_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot tell where this benchmark runs from: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in a target folder's release/deps/", exe.display()))
}

/// Where `make package` (cargo-lambda) puts the zips: `lambda/` in the same target folder.
fn lambda_dir(release: &Path) -> PathBuf {
    release.parent().unwrap_or(release).join("lambda")
}

fn median(runs: &[Run]) -> Duration {
    let mut starts: Vec<Duration> = runs.iter().map(|r| r.start).collect();
    starts.sort();
    starts[starts.len() / 2]
}

/// The process's peak resident set (`VmHWM`), in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report(name: &str, runs: &[Run], secret_reads: u32) -> bool {
    let mut starts: Vec<Duration> = runs.iter().map(|r| r.start).collect();
    let mut rss: Vec<u64> = runs.iter().map(|r| r.rss_kb).collect();
    starts.sort();
    rss.sort();
    let pick = |p: usize| starts[(starts.len() - 1) * p / 100];
    let label = format!("{name} cold start ({} runs)", runs.len());
    let figure = format!("median {:.2} ms, p90 {:.2} ms, max {:.2} ms", ms(pick(50)), ms(pick(90)), ms(pick(100)));
    let start = if secret_reads > 0 {
        println!("{label}: {figure} ({secret_reads} Secrets Manager round trips included)");
        true
    } else {
        verdict(&label, &figure, pick(50) <= MAX_START, "median ≤ 15 ms")
    };
    let max_rss = rss[rss.len() - 1];
    let memory = verdict(
        &format!("{name} peak RSS after a first request"),
        &format!("median {:.1} MB, max {:.1} MB", rss[rss.len() / 2] as f64 / 1024.0, max_rss as f64 / 1024.0),
        max_rss <= MAX_RSS_KB,
        "≤ 16 MB",
    );
    start && memory
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(what: &str, figure: &str, ok: bool, target: &str) -> bool {
    println!("{what}: {figure} (target {target}) {}", if ok { "OK" } else { "MISSED" });
    ok
}
