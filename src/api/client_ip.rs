//! The caller's IP address: API Gateway's `requestContext.http.sourceIp` on Lambda, the socket's
//! peer address locally.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use lambda_http::request::RequestContext;

/// The client's address as text; `unknown` when neither source is there (in-process tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // API Gateway's own view of the caller; X-Forwarded-For is the client's to forge.
        if let Some(RequestContext::ApiGatewayV2(context)) = parts.extensions.get::<RequestContext>()
            && let Some(ip) = &context.http.source_ip
        {
            return Ok(Self(ip.clone()));
        }
        if let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(Self(peer.ip().to_string()));
        }
        Ok(Self("unknown".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;

    async fn client_ip(request: http::Request<()>) -> String {
        let (mut parts, ()) = request.into_parts();
        ClientIp::from_request_parts(&mut parts, &()).await.unwrap().0
    }

    #[tokio::test]
    async fn api_gateways_source_ip_wins_over_a_forged_forwarded_header() {
        let mut context = ApiGatewayV2httpRequestContext::default();
        context.http.source_ip = Some("203.0.113.7".to_owned());
        let request = http::Request::builder()
            .header("x-forwarded-for", "198.51.100.99")
            .extension(RequestContext::ApiGatewayV2(context))
            .body(())
            .unwrap();
        assert_eq!(client_ip(request).await, "203.0.113.7");
    }

    #[tokio::test]
    async fn locally_the_peer_address_is_used_and_otherwise_unknown() {
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let request = http::Request::builder().extension(ConnectInfo(peer)).body(()).unwrap();
        assert_eq!(client_ip(request).await, "127.0.0.1");
        let request = http::Request::builder().header("x-forwarded-for", "198.51.100.99").body(()).unwrap();
        assert_eq!(client_ip(request).await, "unknown");
    }
}
