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
