//! The handler of `POST /auth/{actor_type}/{auth_provider}/update`: Medusa's "Reset a Customer's
//! Password", with the token from the reset link as `Authorization: Bearer <token>`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::ApiState;
use super::body::read_json;
use super::client_ip::ClientIp;
use super::error::ApiError;
use super::request_log::Outcome;
use crate::domain::actor::{ActorType, AuthProvider, NotAllowed};
use crate::domain::update_request::NewPassword;
use crate::identity::IdentityStore;
use crate::publish::EventPublisher;
use crate::ratelimit::RateLimiter;
use crate::update::{UpdateOutcome, UpdateRequest};

/// Answers Medusa's 200 `{"success":true}` once the password is written.
pub async fn update_password<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    State(state): State<Arc<ApiState<P, S, L>>>,
    path: Result<Path<(String, String)>, PathRejection>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(update) = &state.update else {
        return ApiError::NotFound.into_response();
    };
    let (actor_type, provider, password) = match accept(&state, path, &headers, body).await {
        Ok(accepted) => accepted,
        Err(error) => return error.into_response(),
    };
    let request = UpdateRequest {
        actor_type: &actor_type,
        provider: &provider,
        authorization: headers.get(AUTHORIZATION).map(HeaderValue::as_bytes),
        password,
    };
    update.update_password(request, &client_ip).await.map_err(ApiError::from).into_response()
}

/// Medusa's answer, as Express's `res.status(200).json({success: true})` writes it.
impl IntoResponse for UpdateOutcome {
    fn into_response(self) -> Response {
        let mut ok = (StatusCode::OK, Json(serde_json::json!({"success": true}))).into_response();
        ok.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        ok.extensions_mut().insert(Outcome { label: self.label(), cause: None });
        ok
    }
}

/// The request in Medusa's order: its body parser, then the actor type and provider; the token is
/// the service's to check.
async fn accept<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    state: &ApiState<P, S, L>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ActorType, AuthProvider, Option<NewPassword>), ApiError> {
    let body = read_json(headers, body).await?;
    let Path((actor_type, provider)) = path.map_err(|_| NotAllowed::InvalidName)?;
    let (actor_type, provider) = state.providers.authorize(&actor_type, &provider)?;
    Ok((actor_type, provider, NewPassword::from_body(&body)))
}
