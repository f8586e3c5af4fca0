//! The HTTP API: one axum `Router` that `lambda_http::run` and the local server both serve.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use tower_http::set_header::SetResponseHeaderLayer;

mod body;
mod client_ip;
mod cors;
mod error;
mod request_log;
mod reset_password;
mod update_password;

pub use body::{BodyError, MAX_BODY_BYTES, parse_json};
pub use client_ip::ClientIp;
pub use cors::{CorsError, CorsPolicy};
pub use error::ApiError;

use crate::domain::actor::ProviderPolicy;
use crate::identity::IdentityStore;
use crate::publish::EventPublisher;
use crate::ratelimit::RateLimiter;
use crate::reset::ResetService;
use crate::update::UpdateService;

/// The routes' paths, with Medusa's parameter names.
pub const RESET_PASSWORD_ROUTE: &str = "/auth/{actor_type}/{auth_provider}/reset-password";
pub const UPDATE_PASSWORD_ROUTE: &str = "/auth/{actor_type}/{auth_provider}/update";

/// What the handlers need, shared by every request of an execution environment. The two services
/// share one publisher, one identity store (one database connection) and one rate limiter. Without
/// an update service the update route answers `404`, as any route this server does not serve.
pub struct ApiState<P, S, L> {
    pub service: ResetService<Arc<P>, Arc<S>, Arc<L>>,
    pub update: Option<UpdateService<Arc<P>, Arc<S>, Arc<L>>>,
    pub providers: ProviderPolicy,
}

/// The router over the two services and the allow-list; `wiring` builds them from configuration.
pub fn router<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    state: ApiState<P, S, L>,
    cors: &CorsPolicy,
) -> Router {
    let mut router = Router::new()
        .route(RESET_PASSWORD_ROUTE, post(reset_password::reset_password::<P, S, L>))
        .route(UPDATE_PASSWORD_ROUTE, post(update_password::update_password::<P, S, L>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::new(state));
    if let Some(cors) = cors.layer() {
        router = router.layer(cors);
    }
    router
        // Answers must never be cached by a browser, a CDN or a proxy.
        .layer(SetResponseHeaderLayer::overriding(CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(middleware::from_fn(request_log::log_request))
}

async fn not_found() -> Response {
    ApiError::NotFound.into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}
