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
use crate::domain::actor::NotAllowed;
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
    let mut who = None;
    let result = attempt(&state, path, &client_ip, &headers, body, &mut who).await;
    let mut response = match result {
        Ok(outcome) => {
            let label = match outcome {
                ResetOutcome::TokenPublished => "token_published",
                ResetOutcome::UnknownIdentity => "unknown_identity",
                ResetOutcome::RateLimited => "rate_limited_identifier",
            };
            let mut created = created();
            created.extensions_mut().insert(Outcome { label, cause: None });
            created
        }
        Err(error) => error.into_response(),
    };
    if let Some(who) = who {
        response.extensions_mut().insert(who);
    }
    response
}

/// Medusa's answer, as Express's `res.sendStatus(201)` writes it.
fn created() -> Response {
    (StatusCode::CREATED, [(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], "Created")
        .into_response()
}

async fn attempt<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    state: &ApiState<P, S, L>,
    path: Result<Path<(String, String)>, PathRejection>,
    client_ip: &str,
    headers: &HeaderMap,
    body: Body,
    who: &mut Option<MaskedIdentifier>,
) -> Result<ResetOutcome, ApiError> {
    // Medusa's order: its body parser first, then the actor type and provider, then validation.
    let body = read_json(headers, body).await?;
    let Path((actor_type, provider)) = path.map_err(|_| NotAllowed::InvalidName)?;
    let (actor_type, provider) = state.providers.authorize(&actor_type, &provider)?;
    let request = ResetRequest::from_json(body)?;
    *who = Some(MaskedIdentifier(request.identifier.masked()));
    Ok(state.service.request_reset(request, &actor_type, &provider, client_ip).await?)
}
