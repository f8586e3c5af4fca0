//! Requests to the update route, for the binaries that test it.

use axum::body::Body;
use http::Response;

use super::{TestApp, post_json};

impl TestApp {
    /// POSTs `body` to `actor_type`'s e-mail-and-password update route, with `authorization` as the
    /// `Authorization` header when given.
    pub async fn update_as(&self, actor_type: &str, authorization: Option<&str>, body: &str) -> (Response<()>, String) {
        let mut request: http::Request<Body> = post_json(&format!("/auth/{actor_type}/emailpass/update"), body);
        if let Some(authorization) = authorization {
            request.headers_mut().insert("authorization", authorization.parse().expect("a header value"));
        }
        self.send(request).await
    }
}
