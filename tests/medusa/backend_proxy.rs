//! `make run` with `MEDUSA_BACKEND_URL`: one base URL for the storefront. Everything but the reset
//! route goes to the backend as it came (method, path, query, headers, cookies, body) and the answer
//! streams back; the reset route stays ours; a backend that is down is a 502 in Medusa's shape.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::local_runner::LocalRunner;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{any, get};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

/// What the stub backend saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    headers: http::HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Backend {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Lets the streaming answer finish; until then only its first chunk is out.
    finish: Arc<Notify>,
}

async fn record(State(backend): State<Backend>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path_and_query = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    backend.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path_and_query,
        headers: parts.headers,
        body: body.clone(),
    });
    Response::builder()
        .status(207)
        .header("set-cookie", "connect.sid=s%3Anew; Path=/; HttpOnly")
        .header("x-backend", "medusa")
        .body(Body::from(format!("echo:{}", body.len())))
        .unwrap()
}

async fn stream(State(backend): State<Backend>) -> Response {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        sender.send(Ok(Bytes::from_static(b"first;"))).await.unwrap();
        backend.finish.notified().await;
        sender.send(Ok(Bytes::from_static(b"last"))).await.unwrap();
    });
    Response::new(Body::from_stream(tokio_stream_of(receiver)))
}

fn tokio_stream_of(
    mut receiver: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// `make run` in front of `backend_url`, logging JSON.
async fn start_local(backend_url: &str) -> (LocalRunner, String) {
    let local = LocalRunner::start(&[("MEDUSA_BACKEND_URL", backend_url), ("LOG_FORMAT", "json")]).await;
    let base = local.base.clone();
    (local, base)
}

async fn stub_backend() -> (Backend, String) {
    let backend = Backend::default();
    let app = Router::new().route("/stream", get(stream)).fallback(any(record)).with_state(backend.clone());
    (backend.clone(), crate::support::serve(app).await)
}

#[tokio::test]
async fn other_paths_reach_the_backend_as_they_came_and_its_answer_comes_back() {
    let (backend, backend_url) = stub_backend().await;
    let (local, base) = start_local(&backend_url).await;
    let client = reqwest::Client::new();
    // Bigger than the reset route's 8 KiB limit, which forwarded requests are not held to.
    let big = vec![b'x'; 100_000];
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
        let response = client
            .request(method.parse().unwrap(), format!("{base}/store/carts/cart_1?fields=*items&q=a%20b"))
            .header("cookie", "connect.sid=s%3Asecret-session")
            .header("authorization", "Bearer secret-bearer-token")
            .header("x-publishable-api-key", "pk_123")
            .body(if method == "GET" { Vec::new() } else { big.clone() })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 207, "{method}");
        assert_eq!(response.headers()["x-backend"], "medusa");
        assert_eq!(response.headers()["set-cookie"], "connect.sid=s%3Anew; Path=/; HttpOnly");
        let expected_len = if method == "GET" { 0 } else { big.len() };
        assert_eq!(response.text().await.unwrap(), format!("echo:{expected_len}"));
    }
    let seen = backend.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(), ["GET", "POST", "PUT", "DELETE", "PATCH"]);
    for request in &seen {
        assert_eq!(request.path_and_query, "/store/carts/cart_1?fields=*items&q=a%20b");
        assert_eq!(request.headers["cookie"], "connect.sid=s%3Asecret-session");
        assert_eq!(request.headers["authorization"], "Bearer secret-bearer-token");
        assert_eq!(request.headers["x-publishable-api-key"], "pk_123");
    }
    assert_eq!(seen[1].body.len(), big.len(), "the whole body, past 8 KiB");

    // The reset route is still answered here, and never reaches the backend.
    let ours = client
        .post(format!("{base}/auth/customer/emailpass/reset-password"))
        .header("content-type", "application/json")
        .body(r#"{"identifier":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), 201);
    assert_eq!(backend.seen.lock().unwrap().len(), seen.len());

    let log = local.stop().await;
    assert!(log.contains("forwarded to the Medusa backend"), "{log}");
    for secret in ["secret-session", "secret-bearer-token", "q=a%20b", "fields="] {
        assert!(!log.contains(secret), "the log shows {secret}: {log}");
    }
}

#[tokio::test]
async fn the_backends_answer_streams_back_as_it_comes() {
    let (backend, backend_url) = stub_backend().await;
    let (_local, base) = start_local(&backend_url).await;
    let mut response = reqwest::get(format!("{base}/stream")).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), response.chunk()).await.expect("a first chunk").unwrap();
    assert_eq!(first.as_deref(), Some(&b"first;"[..]), "the first chunk arrives before the backend finishes");
    backend.finish.notify_one();
    let rest = response.text().await.unwrap();
    assert_eq!(rest, "last");
}

#[tokio::test]
async fn a_backend_that_is_down_is_a_502_in_medusas_shape() {
    let (_local, base) = start_local(&crate::support::unreachable_endpoint()).await;
    let response = reqwest::get(format!("{base}/store/products")).await.unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["content-type"], "application/json; charset=utf-8");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "unknown_error");
    assert_eq!(body["code"], "unknown_error");
    assert!(body["message"].as_str().unwrap().contains("MEDUSA_BACKEND_URL"));
}

#[tokio::test]
async fn an_unusable_backend_url_stops_start_up_naming_the_variable() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_local"))
        .env_clear()
        .env("LOCAL_ADDR", "127.0.0.1:0")
        .env("MEDUSA_BACKEND_URL", "localhost:9000")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MEDUSA_BACKEND_URL"));
}

/// Medusa's own JS SDK, both ways the README shows: one baseUrl pointed at `make run` in front of a
/// real Medusa 2.21.2, and a second client used only for resets.
#[tokio::test]
async fn medusas_js_sdk_works_with_one_base_url_and_with_a_second_client() {
    let medusa_url = crate::support::medusa::url();
    let node_modules = std::env::var("MEDUSA_NODE_MODULES")
        .unwrap_or_else(|_| panic!("MEDUSA_NODE_MODULES is not set: run with `make test` (tools/with-medusa)"));
    let (local, base) = start_local(&medusa_url).await;
    let email = format!("sdk-{}@example.com", uuid::Uuid::new_v4().simple());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/storefront_sdk.cjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .args([base.as_str(), medusa_url.as_str(), email.as_str(), "a-long-password-1"])
        .env("NODE_PATH", &node_modules)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    for step in [
        "registeredThroughProxy",
        "resetThroughOneBaseUrl",
        "loggedInThroughProxy",
        "loggedInAtMedusa",
        "resetThroughSecondClient",
    ] {
        assert_eq!(result[step], true, "{step}: {result}");
    }
    let printed = local.stop().await;
    let mailed = printed.matches(&format!("--- e-mail to {email}")).count();
    assert!(mailed >= 1, "our route answered the SDK's resets and mailed {email}: {printed}");
}
