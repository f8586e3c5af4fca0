//! The one place where failures become Medusa's JSON error shape and an HTTP status.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use super::body::BodyError;
use super::request_log::Outcome;
use crate::domain::actor::NotAllowed;
use crate::domain::reset_request::InvalidRequest;
use crate::reset::ResetError;
use crate::update::UpdateError;

/// Every way the API can refuse or fail a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The cause is logged; the client sees only Medusa's generic message.
    #[error(transparent)]
    Reset(#[from] ResetError),
    /// The update route's refusals are Medusa's 401s; its failures, like the reset's, a 500.
    #[error(transparent)]
    Update(#[from] UpdateError),
}

/// Medusa's error body: `{"code"?, "type", "message"}`.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
    message: String,
}

/// What Medusa sends when its body parser refuses a body: the same fields, message first.
#[derive(Debug, Serialize)]
struct ParserErrorBody<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Body(BodyError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(BodyError::UnsupportedContentType) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Body(_) | Self::InvalidRequest(_) | Self::NotAllowed(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Reset(ResetError::TooManyRequests { .. }) | Self::Update(UpdateError::TooManyRequests { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Update(UpdateError::InvalidToken(_) | UpdateError::NoPassword) => StatusCode::UNAUTHORIZED,
            Self::Reset(_) | Self::Update(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Body(_) | Self::InvalidRequest(_) => "invalid_data",
            Self::NotAllowed(_)
            | Self::MethodNotAllowed
            | Self::Reset(ResetError::TooManyRequests { .. })
            | Self::Update(UpdateError::TooManyRequests { .. }) => "not_allowed",
            Self::Update(UpdateError::InvalidToken(_) | UpdateError::NoPassword) => "unauthorized",
            Self::NotFound => "not_found",
            Self::Reset(_) | Self::Update(_) => "unknown_error",
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::NotFound => "The requested route does not exist".to_owned(),
            Self::MethodNotAllowed => "The method is not allowed on this route".to_owned(),
            Self::Reset(ResetError::TooManyRequests { .. }) | Self::Update(UpdateError::TooManyRequests { .. }) => {
                "Too many requests. Please try again later.".to_owned()
            }
            Self::Update(UpdateError::InvalidToken(_)) => "Invalid token".to_owned(),
            Self::Update(UpdateError::NoPassword) => "Unauthorized".to_owned(),
            Self::Reset(_) | Self::Update(_) => "An unknown error occurred.".to_owned(),
            other => other.to_string(),
        }
    }

    /// The outcome the request log and the metric give this failure.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Body(BodyError::TooLarge) => "body_too_large",
            Self::Body(BodyError::UnsupportedContentType) => "unsupported_content_type",
            Self::Body(_) => "malformed_body",
            Self::InvalidRequest(_) => "invalid_data",
            Self::NotAllowed(_) => "not_allowed",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Reset(ResetError::Publish(_)) => "publish_failed",
            Self::Reset(ResetError::Store(_)) => "database_failed",
            Self::Reset(ResetError::RateLimit(_)) => "rate_limiter_failed",
            Self::Reset(ResetError::TooManyRequests { .. }) => "rate_limited_ip",
            Self::Reset(ResetError::Token(_)) => "mint_failed",
            Self::Update(UpdateError::InvalidToken(_)) => "invalid_token",
            Self::Update(UpdateError::NoPassword) => "no_password",
            Self::Update(UpdateError::TooManyRequests { .. }) => "rate_limited_ip",
            Self::Update(UpdateError::RateLimit(_)) => "rate_limiter_failed",
            Self::Update(UpdateError::Store(_)) => "database_failed",
            Self::Update(UpdateError::Hash(_) | UpdateError::HashTask(_)) => "hash_failed",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = self.kind();
        let code = (kind == "unknown_error").then_some("unknown_error");
        let message = self.public_message();
        let cause = status.is_server_error().then(|| self.to_string());
        let mut response = match &self {
            Self::Body(_) => (status, Json(ParserErrorBody { message, kind })).into_response(),
            _ => (status, Json(ErrorBody { code, kind, message })).into_response(),
        };
        // Express names the charset; some clients compare the header as a whole.
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        if let Self::Reset(ResetError::TooManyRequests { retry_after })
        | Self::Update(UpdateError::TooManyRequests { retry_after }) = &self
        {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
        }
        response.extensions_mut().insert(Outcome { label: self.label(), cause });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::PublishError;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    async fn parts(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn an_unexpected_failure_is_medusas_unknown_error_without_its_cause() {
        let error = ApiError::Reset(ResetError::Publish(PublishError::Service("secret cause".into())));
        let (status, body) = parts(error).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"code": "unknown_error", "type": "unknown_error", "message": "An unknown error occurred."})
        );
    }

    #[tokio::test]
    async fn the_update_routes_refusals_are_medusas_401s() {
        let (status, body) = parts(ApiError::Update(UpdateError::InvalidToken(crate::update::InvalidToken))).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, json!({"type": "unauthorized", "message": "Invalid token"}))
        );
        let (status, body) = parts(ApiError::Update(UpdateError::NoPassword)).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, json!({"type": "unauthorized", "message": "Unauthorized"}))
        );
        let response =
            ApiError::Update(UpdateError::TooManyRequests { retry_after: std::time::Duration::from_secs(7) })
                .into_response();
        assert_eq!(
            (response.status(), &response.headers()["retry-after"]),
            (StatusCode::TOO_MANY_REQUESTS, &HeaderValue::from(7))
        );
    }

    #[tokio::test]
    async fn too_many_requests_is_429_with_retry_after() {
        let error = ApiError::Reset(ResetError::TooManyRequests { retry_after: std::time::Duration::from_secs(42) });
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "42");
    }

    #[tokio::test]
    async fn a_disallowed_provider_is_not_allowed_with_medusas_message() {
        let error = ApiError::NotAllowed(NotAllowed::Pair { actor_type: "customer".into(), provider: "github".into() });
        let (status, body) = parts(error).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"type": "not_allowed", "message": "The actor type customer is not allowed to use the auth provider github"})
        );
    }

    #[tokio::test]
    async fn body_failures_are_invalid_data_with_their_own_status_message_first_as_medusas_parser_sends() {
        let response = ApiError::Body(BodyError::TooLarge).into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"message":"Invalid request: The body must be at most 8192 bytes","type":"invalid_data"}"#
        );
        let (status, _) = parts(ApiError::Body(BodyError::UnsupportedContentType)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
