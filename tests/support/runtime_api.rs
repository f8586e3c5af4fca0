//! A Lambda Runtime API emulator: hands events to a `bootstrap` through `invocation/next` and
//! collects what it answers, as the Lambda service (or `sam local invoke`) would.
//!
//! Used by the integration tests, `make invoke` (examples/invoke.rs) and `make bench`
//! (benches/cold_start.rs).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

/// The trace header `invoke` hands the function, as Lambda does with tracing passive.
pub const UNSAMPLED_TRACE: &str = "Root=1-00000000-000000000000000000000000;Sampled=0";

/// One queued invocation: request id, event, X-Ray trace header.
type Queued = (String, Bytes, String);

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_poll: OnceLock<Instant>,
    polled: Notify,
}

/// A running emulator on 127.0.0.1, stopped when dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, server })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// A command that runs `binary` as Lambda would: the runtime variables set, output captured.
    pub fn command(&self, binary: &Path, function_name: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(binary);
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Queues one event and waits for the function's answer.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Result<Answer, String> {
        self.invoke_traced(event, UNSAMPLED_TRACE, timeout).await
    }

    /// `invoke` with the X-Ray trace header Lambda would hand this invocation (`Lambda-Runtime-Trace-Id`).
    pub async fn invoke_traced(&self, event: &Value, trace: &str, timeout: Duration) -> Result<Answer, String> {
        let id = uuid::Uuid::new_v4().to_string();
        let (sender, receiver) = oneshot::channel();
        self.shared.waiting.lock().map_err(|e| e.to_string())?.insert(id.clone(), sender);
        let body = Bytes::from(serde_json::to_vec(event).map_err(|e| e.to_string())?);
        self.shared.queue.lock().map_err(|e| e.to_string())?.push_back((id, body, trace.to_owned()));
        self.shared.queued.notify_one();
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err("the emulator dropped the invocation".into()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    /// When the function first asked for work: the end of its cold start.
    pub async fn first_poll(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let polled = self.shared.polled.notified();
            if let Some(at) = self.shared.first_poll.get() {
                return Some(*at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, polled).await;
        }
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.first_poll.set(Instant::now()).is_ok() {
        shared.polled.notify_waiters();
    }
    loop {
        let popped = shared.queue.lock().ok().and_then(|mut q| q.pop_front());
        if let Some((id, body, trace)) = popped {
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + Duration::from_secs(30);
            let mut headers = HeaderMap::new();
            let mut set = |name: &'static str, value: String| {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            };
            set("lambda-runtime-aws-request-id", id);
            set("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
            set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:local".into());
            set("lambda-runtime-trace-id", trace);
            set("content-type", "application/json".into());
            return (StatusCode::OK, headers, body);
        }
        shared.queued.notified().await;
    }
}

fn settle(shared: &Shared, id: &str, answer: Answer) -> StatusCode {
    match shared.waiting.lock().ok().and_then(|mut w| w.remove(id)) {
        Some(sender) => {
            let _ = sender.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    settle(&shared, &id, Answer::Response(json_or_text(&body)))
}

async fn fail(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    settle(&shared, &id, Answer::Error(json_or_text(&body)))
}

/// Start-up failures are only shown: the function exits after reporting one.
async fn init_error(body: Bytes) -> StatusCode {
    eprintln!("runtime API: the function reported an init error: {}", json_or_text(&body));
    StatusCode::ACCEPTED
}
