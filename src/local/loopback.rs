//! Guards `make run`'s development-only routes (the mail viewer, the backend proxy) against DNS
//! rebinding: a page on an attacker's domain that re-resolves to 127.0.0.1 reaches this server
//! from the visitor's own browser, but its requests still carry the attacker's `Host`, so only
//! loopback host names are answered.

use std::net::IpAddr;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::HOST;

/// `localhost`, a name under `.localhost` (which browsers resolve to loopback themselves), or a
/// loopback address, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.strip_prefix('[') {
        // `[::1]:9000`
        Some(bracketed) => bracketed.split_once(']').map_or(bracketed, |(address, _)| address),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The request's `Host`, when it has one that is not loopback. A request without one (HTTP/1.0, a
/// script) came from no browser page, so it has nothing to rebind.
pub fn foreign_host(request: &Request) -> Option<String> {
    let host = request.headers().get(HOST).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let host = host.or_else(|| request.uri().authority().map(|authority| authority.to_string()))?;
    (!is_loopback_host(&host)).then_some(host)
}

/// The answer to a request for a development route under a foreign `Host`, in Medusa's error shape.
pub fn refusal() -> Response {
    let body = serde_json::json!({
        "type": "not_allowed",
        "message": "This development server answers only loopback host names (localhost, 127.0.0.1, [::1])",
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Middleware: refuses requests whose `Host` is not a loopback name.
pub async fn only_loopback(request: Request, next: Next) -> Response {
    if foreign_host(&request).is_some() {
        return refusal();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_pass_with_or_without_a_port() {
        for host in [
            "localhost",
            "localhost:9000",
            "LOCALHOST",
            "shop.localhost:8000",
            "127.0.0.1",
            "127.1.2.3:9000",
            "[::1]",
            "[::1]:9000",
            "::1",
            "localhost.",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn other_names_and_addresses_are_refused() {
        for host in [
            "attacker.example",
            "attacker.example:9000",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "192.168.1.10:9000",
            "[2001:db8::1]:9000",
            "0.0.0.0",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
