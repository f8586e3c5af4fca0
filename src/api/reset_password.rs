//! The handler of `POST /auth/{actor_type}/{auth_provider}/reset-password`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::ApiState;
use super::body::read_json;
use super::error::ApiError;
use super::request_log::{MaskedIdentifier, Outcome};
use crate::domain::actor::NotAllowed;
use crate::domain::reset_request::ResetRequest;
use crate::identity::IdentityStore;
use crate::publish::EventPublisher;
use crate::reset::ResetOutcome;

/// Answers 201 with no body once the event is published; known and unknown identifiers alike.
pub async fn reset_password<P: EventPublisher, S: IdentityStore>(
    State(state): State<Arc<ApiState<P, S>>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut who = None;
    let result = attempt(&state, path, &headers, body, &mut who).await;
    let mut response = match result {
        Ok(outcome) => {
            let label = match outcome {
                ResetOutcome::TokenPublished => "token_published",
                ResetOutcome::UnknownIdentity => "unknown_identity",
            };
            let mut created = StatusCode::CREATED.into_response();
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

async fn attempt<P: EventPublisher, S: IdentityStore>(
    state: &ApiState<P, S>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
    who: &mut Option<MaskedIdentifier>,
) -> Result<ResetOutcome, ApiError> {
    // Medusa checks the actor type and provider before it reads the body.
    let Path((actor_type, provider)) = path.map_err(|_| NotAllowed::InvalidName)?;
    let (actor_type, provider) = state.providers.authorize(&actor_type, &provider)?;
    let request = ResetRequest::from_json(read_json(headers, body).await?)?;
    *who = Some(MaskedIdentifier(request.identifier.masked()));
    Ok(state.service.request_reset(request, &actor_type, &provider).await?)
}
