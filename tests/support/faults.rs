//! Faults a real AWS account throws, injected at the wire, on 127.0.0.1 only: a TCP proxy in front
//! of PostgreSQL whose connections can be reset (RST) or go silently dead (bytes vanish both ways),
//! and an HTTP proxy in front of moto that forwards each request, or answers an error (a throttle, a
//! partial failure) without forwarding it, or forwards it and loses the reply, as its queued rules say.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One live connection through the TCP proxy: what the test can do to it.
pub struct Link {
    /// Set: bytes are read and dropped both ways, as a dead NAT entry or a frozen peer does.
    pub dead: Arc<AtomicBool>,
    /// Set: the client's side is closed with an RST.
    pub reset: Arc<AtomicBool>,
}

/// A TCP proxy to `upstream`; each accepted connection is relayed until the test kills it.
pub struct TcpFaultProxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<Link>>>,
    accepted: Arc<AtomicUsize>,
}

impl TcpFaultProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let links: Arc<Mutex<Vec<Link>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (registry, count) = (links.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(upstream).await else { continue };
                let link = Link { dead: Arc::default(), reset: Arc::default() };
                tokio::spawn(relay(client, server, link.dead.clone(), link.reset.clone()));
                registry.lock().unwrap().push(link);
            }
        });
        Self { addr, links, accepted }
    }

    /// The connections open now, for the test to break; connections opened afterwards work.
    pub fn take_links(&self) -> Vec<Link> {
        self.links.lock().unwrap().drain(..).collect()
    }

    /// Every connection open now goes silent: nothing it is sent arrives, nothing comes back, and
    /// neither side is told.
    pub fn kill_silently(&self) {
        for link in self.take_links() {
            link.dead.store(true, Ordering::SeqCst);
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Copies bytes both ways, in small steps so that a fault set in between takes effect at once.
async fn relay(client: TcpStream, server: TcpStream, dead: Arc<AtomicBool>, reset: Arc<AtomicBool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = pump(&mut client_read, &mut server_write, &dead, &reset);
    let down = pump(&mut server_read, &mut client_write, &dead, &reset);
    tokio::select! { _ = up => {}, _ = down => {} }
    if dead.load(Ordering::SeqCst) && !reset.load(Ordering::SeqCst) {
        // Hold the sockets open and silent until the test ends, as a dead path does.
        let _held = (client_read, client_write, server_read, server_write);
        std::future::pending::<()>().await;
        return;
    }
    if reset.load(Ordering::SeqCst)
        && let Ok(client) = client_read.reunite(client_write)
    {
        // Linger 0: closing sends an RST instead of a FIN (and so does not block on drop).
        #[allow(deprecated)]
        let _ = client.set_linger(Some(Duration::ZERO));
    }
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    dead: &AtomicBool,
    reset: &AtomicBool,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = watch(reset) => return,
        };
        let Ok(n) = read else { return };
        if n == 0 || reset.load(Ordering::SeqCst) {
            return;
        }
        if dead.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// Resolves once `flag` is set (polled: the proxies serve a handful of connections).
async fn watch(flag: &AtomicBool) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the HTTP proxy does with one request that a rule matches. The faults only some tests use
/// are written beside them, as `Answer`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answers this status and JSON body without forwarding: the service did nothing.
    Answer { status: u16, body: String },
    /// Forwards the request, so the service acts on it, then answers 500 instead of its reply.
    LoseReply,
}

impl Fault {
    /// SES v2 refusing a send for the account's rate (not accepted).
    pub fn ses_throttled() -> Self {
        Self::aws_error(429, "TooManyRequestsException", "Maximum sending rate exceeded.")
    }

    /// An AWS JSON error answer with `__type`, as both the JSON-1.0 and REST-JSON services send it.
    pub fn aws_error(status: u16, kind: &str, message: &str) -> Self {
        let body = serde_json::json!({"__type": kind, "message": message});
        Self::Answer { status, body: body.to_string() }
    }
}

/// A fault for the next `times` requests that `matches` (an `X-Amz-Target` such as
/// `DynamoDB_20120810.PutItem`, or a path fragment such as `/v2/email/outbound-emails`); `None`
/// lets them through untouched, so that a later rule meets the requests after them.
#[derive(Debug, Clone)]
struct Rule {
    matches: String,
    fault: Option<Fault>,
    times: usize,
}

/// One request as the proxy saw it: what it was, and what was done.
#[derive(Clone)]
pub struct Seen {
    /// `X-Amz-Target`, or the path where a REST service has none.
    pub operation: String,
    pub fault: Option<Fault>,
}

/// Short, as tests print the whole list in their messages.
impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fault {
            Some(fault) => write!(f, "{}: {fault:?}", self.operation),
            None => write!(f, "{}: forwarded", self.operation),
        }
    }
}

#[derive(Default)]
struct Plan {
    rules: Mutex<VecDeque<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// An HTTP proxy in front of moto that applies queued faults; everything else is forwarded.
#[derive(Clone)]
pub struct HttpFaultProxy {
    pub endpoint: String,
    plan: Arc<Plan>,
}

impl HttpFaultProxy {
    pub async fn start(upstream: &str) -> Self {
        let plan = Arc::new(Plan::default());
        let state = (plan.clone(), upstream.trim_end_matches('/').to_owned(), reqwest::Client::new());
        let endpoint = super::serve(Router::new().fallback(handle).with_state(Arc::new(state))).await;
        Self { endpoint, plan }
    }

    /// Applies `fault` to the next `times` requests whose operation contains `matches`.
    pub fn inject(&self, matches: &str, fault: impl Into<Option<Fault>>, times: usize) {
        if times > 0 {
            let rule = Rule { matches: matches.to_owned(), fault: fault.into(), times };
            self.plan.rules.lock().unwrap().push_back(rule);
        }
    }

    /// Every request seen so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.plan.seen.lock().unwrap().clone()
    }
}

type ProxyState = Arc<(Arc<Plan>, String, reqwest::Client)>;

async fn handle(State(state): State<ProxyState>, request: Request) -> Response {
    let (plan, upstream, client) = (&state.0, &state.1, &state.2);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 10 * 1024 * 1024).await.unwrap_or_default();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let operation = target.unwrap_or_else(|| parts.uri.path().to_owned());
    let fault = take_fault(plan, &operation);
    plan.seen.lock().unwrap().push(Seen { operation, fault: fault.clone() });
    let forward = async || {
        let url = format!("{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
        forward(client, parts.method.clone(), &url, &parts.headers, body.clone()).await
    };
    match fault {
        None => forward().await,
        Some(Fault::Answer { status, body }) => json_answer(status, body),
        Some(Fault::LoseReply) => {
            let _ = forward().await;
            json_answer(500, r#"{"__type":"InternalServerError","message":"the reply was lost"}"#.to_owned())
        }
    }
}

fn take_fault(plan: &Plan, operation: &str) -> Option<Fault> {
    let mut rules = plan.rules.lock().unwrap();
    let index = rules.iter().position(|rule| operation.contains(&rule.matches))?;
    let rule = &mut rules[index];
    let fault = rule.fault.clone();
    rule.times -= 1;
    if rule.times == 0 {
        rules.remove(index);
    }
    fault
}

/// A JSON answer; an error's `__type` is also given as `x-amzn-errortype`, where the REST services
/// (SES v2) look for it.
fn json_answer(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value["__type"].as_str().map(|kind| kind.rsplit('#').next().unwrap_or(kind).to_owned()));
    let mut response = (status, [("content-type", "application/x-amz-json-1.0")], body).into_response();
    if let Some(kind) = kind.and_then(|kind| http::HeaderValue::from_str(&kind).ok()) {
        response.headers_mut().insert("x-amzn-errortype", kind);
    }
    response
}

async fn forward(
    client: &reqwest::Client,
    method: http::Method,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let mut request = client.request(method, url).body(body);
    for (name, value) in headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return json_answer(502, r#"{"message":"moto did not answer"}"#.to_owned());
    };
    let status = answer.status();
    let mut response = Response::builder().status(status.as_u16());
    for (name, value) in answer.headers() {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
