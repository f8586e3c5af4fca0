//! `make run`'s one base URL for a storefront: every request that is not the reset route goes to
//! the Medusa backend (`MEDUSA_BACKEND_URL`) as it came, and its answer streams back.
//!
//! Forwarded requests are not held to the reset route's body limit or rate limits, and their
//! cookies, `Authorization` header and query string (which may carry a token) are never logged.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName};
use http::{HeaderValue, StatusCode};
use tower::ServiceExt;

/// Where forwarded requests go, and the client that takes them there.
#[derive(Debug, Clone)]
pub struct BackendProxy {
    base: reqwest::Url,
    client: reqwest::Client,
}

/// Headers that belong to one connection, not to the request: never forwarded either way.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

impl BackendProxy {
    /// `base` is the backend's URL, e.g. `http://localhost:9000` (a path prefix is kept).
    pub fn new(base: reqwest::Url) -> Self {
        // No redirects followed and no decompression: the storefront sees the backend's own answer.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { base, client }
    }

    fn target(&self, request: &Request) -> reqwest::Url {
        let mut url = self.base.clone();
        let prefix = self.base.path().trim_end_matches('/');
        url.set_path(&format!("{prefix}{}", request.uri().path()));
        url.set_query(request.uri().query());
        url
    }
}

/// Which of the API's routes the local server answers itself in front of a backend: the reset
/// route always, the update route when the password can reach Medusa (its database is configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnRoutes {
    pub update: bool,
}

/// The local server's router: the API's own routes (exactly as on Lambda: their layers, limits
/// and errors) and, for every other path, the backend, for loopback host names only: a page that
/// rebinds its domain to this machine must not reach the backend with the visitor's cookies.
pub fn in_front_of(api: Router, proxy: BackendProxy, own: OwnRoutes) -> Router {
    Router::new().fallback(async move |request: Request| {
        if own.answers(request.uri().path()) {
            match api.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        } else if super::loopback::foreign_host(&request).is_some() {
            super::loopback::refusal()
        } else {
            forward(State(proxy.clone()), request).await
        }
    })
}

impl OwnRoutes {
    /// `/auth/{actor_type}/{auth_provider}/reset-password`, and `…/update` when it is ours.
    fn answers(self, path: &str) -> bool {
        match path.split('/').collect::<Vec<_>>().as_slice() {
            ["", "auth", _, _, "reset-password"] => true,
            ["", "auth", _, _, "update"] => self.update,
            _ => false,
        }
    }
}

/// Forwards the request and streams the backend's answer back.
pub async fn forward(State(proxy): State<BackendProxy>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let url = proxy.target(&request);
    let (parts, body) = request.into_parts();
    let outgoing = proxy
        .client
        .request(parts.method, url)
        .headers(end_to_end(&parts.headers, true))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let response = match outgoing {
        Ok(answer) => {
            let (status, headers) = (answer.status(), end_to_end(answer.headers(), false));
            let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(error) => {
            tracing::warn!(%method, path, error = %without_url(&error), "the Medusa backend did not answer");
            backend_down()
        }
    };
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(%method, path, status = response.status().as_u16(), latency_us, "forwarded to the Medusa backend");
    response
}

/// The headers to pass on: all but the hop-by-hop ones, and on the way out `Host`, which the
/// client sets for the backend.
fn end_to_end(headers: &HeaderMap, outgoing: bool) -> HeaderMap {
    let mut kept = headers.clone();
    for name in HOP_BY_HOP {
        kept.remove(name);
    }
    kept.remove("keep-alive");
    if outgoing {
        kept.remove(header::HOST);
    }
    kept
}

/// A transport error without the URL, whose query string may carry a token.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connection refused or unreachable"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() {
        "the request body failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// Medusa's error shape for a backend that is down.
fn backend_down() -> Response {
    let body = serde_json::json!({
        "code": "unknown_error",
        "type": "unknown_error",
        "message": "The Medusa backend (MEDUSA_BACKEND_URL) did not answer.",
    });
    let mut response = (StatusCode::BAD_GATEWAY, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_keeps_the_backends_path_prefix_the_path_and_the_query() {
        let proxy = BackendProxy::new("http://localhost:9000/medusa/".parse().unwrap());
        let request = Request::get("/store/products?limit=2&q=a%20b").body(Body::empty()).unwrap();
        assert_eq!(proxy.target(&request).as_str(), "http://localhost:9000/medusa/store/products?limit=2&q=a%20b");
        let root = BackendProxy::new("http://localhost:9000".parse().unwrap());
        assert_eq!(
            root.target(&Request::get("/health").body(Body::empty()).unwrap()).as_str(),
            "http://localhost:9000/health"
        );
    }

    #[test]
    fn the_reset_route_stays_here_and_the_update_route_only_with_medusas_database() {
        let (with, without) = (OwnRoutes { update: true }, OwnRoutes { update: false });
        for own in [with, without] {
            assert!(own.answers("/auth/customer/emailpass/reset-password"));
            assert!(own.answers("/auth/user/emailpass/reset-password"));
        }
        assert!(with.answers("/auth/customer/emailpass/update"));
        assert!(!without.answers("/auth/customer/emailpass/update"));
        for other in [
            "/auth/customer/emailpass",
            "/store/products",
            "/",
            "/auth/customer/emailpass/reset-password/x",
            "/auth/customer/emailpass/update/x",
        ] {
            assert!(!with.answers(other), "{other}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_the_host_stay_behind() {
        let headers = HeaderMap::from_iter([
            (header::CONNECTION, HeaderValue::from_static("keep-alive")),
            (header::HOST, HeaderValue::from_static("127.0.0.1:9000")),
            (header::COOKIE, HeaderValue::from_static("connect.sid=s%3Aabc")),
            (header::AUTHORIZATION, HeaderValue::from_static("Bearer t")),
        ]);
        let kept = end_to_end(&headers, true);
        assert!(kept.get(header::CONNECTION).is_none() && kept.get(header::HOST).is_none());
        assert_eq!(kept[header::COOKIE], "connect.sid=s%3Aabc");
        assert_eq!(kept[header::AUTHORIZATION], "Bearer t");
    }
}
