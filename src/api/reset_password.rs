//! The handler of `POST /auth/{actor_type}/{auth_provider}/reset-password`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::ApiState;
use super::body::read_json;
use super::client_ip::ClientIp;
use super::error::ApiError;
use super::request_log::{MaskedIdentifier, Outcome};
use crate::domain::actor::{ActorType, AuthProvider, NotAllowed};
use crate::domain::reset_request::ResetRequest;
use crate::identity::IdentityStore;
use crate::publish::EventPublisher;
use crate::ratelimit::RateLimiter;
use crate::reset::ResetOutcome;

/// Answers Medusa's 201 once the event is published; known and unknown identifiers alike.
pub async fn reset_password<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    State(state): State<Arc<ApiState<P, S, L>>>,
    path: Result<Path<(String, String)>, PathRejection>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (request, actor_type, provider) = match accept(&state, path, &headers, body).await {
        Ok(accepted) => accepted,
        Err(error) => return error.into_response(),
    };
    let who = MaskedIdentifier(request.identifier.masked());
    let result = state.service.request_reset(request, &actor_type, &provider, &client_ip).await;
    let mut response = result.map_err(ApiError::from).into_response();
    response.extensions_mut().insert(who);
    response
}

/// Medusa's answer, as Express's `res.sendStatus(201)` writes it, labelled for the request log as
/// a failure labels itself (`ApiError`'s `IntoResponse`).
impl IntoResponse for ResetOutcome {
    fn into_response(self) -> Response {
        let mut created =
            (StatusCode::CREATED, [(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], "Created")
                .into_response();
        created.extensions_mut().insert(Outcome { label: self.label(), cause: None });
        created
    }
}

/// The request as Medusa accepts it, in Medusa's order: its body parser first, then the actor
/// type and provider, then validation.
async fn accept<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    state: &ApiState<P, S, L>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ResetRequest, ActorType, AuthProvider), ApiError> {
    let body = read_json(headers, body).await?;
    let Path((actor_type, provider)) = path.map_err(|_| NotAllowed::InvalidName)?;
    let (actor_type, provider) = state.providers.authorize(&actor_type, &provider)?;
    Ok((ResetRequest::from_json(body)?, actor_type, provider))
}
