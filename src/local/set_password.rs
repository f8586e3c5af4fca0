//! `make run`'s development page beside each reset e-mail in the mail viewer: a form that sets a
//! new password with that e-mail's token, through the update route, as a storefront's reset page
//! would. Only the local runner serves it; the links in the e-mails keep pointing at the storefront.
//!
//! The form posts here, not to the route: a form cannot send the `Authorization` header. The
//! handler takes the token from the stored e-mail and sends the route the storefront's request in
//! process, so the answer (and the notice that follows) is the route's own. Only a same-origin
//! form may post: another site open in the same browser must not change passwords through it.

use std::sync::Arc;

use axum::Form;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Request, StatusCode};
use minijinja::context;
use serde::Deserialize;
use tower::ServiceExt;

use super::mail_viewer::{FORM_POLICY, PAGE_POLICY, Viewer, with_headers};

/// The form's one field.
#[derive(Deserialize)]
pub struct NewPassword {
    password: String,
}

/// Whose reset a stored e-mail's token is for, read from the token without checking it (the
/// route checks it).
#[derive(Deserialize)]
struct Claims {
    actor_type: String,
    provider: String,
    entity_id: String,
}

/// The form, for an e-mail that carries a reset token.
pub async fn form(State(viewer): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let Some((_, claims)) = reset_token(&viewer, &id) else {
        return viewer.page(StatusCode::NOT_FOUND, "missing.html", context! { id, kept => viewer.kept() });
    };
    let values = context! { id, to => claims.entity_id, actor_type => claims.actor_type, kept => viewer.kept() };
    viewer.page_with(StatusCode::OK, "set_password.html", values, FORM_POLICY)
}

/// Sends the update route the storefront's request and shows its answer.
pub async fn submit(
    State(viewer): State<Arc<Viewer>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<NewPassword>,
) -> Response {
    if !same_origin(&headers) {
        let refused = (StatusCode::FORBIDDEN, "only this server's own form may set a password here").into_response();
        return with_headers(refused, PAGE_POLICY);
    }
    let Some((token, claims)) = reset_token(&viewer, &id) else {
        return viewer.page(StatusCode::NOT_FOUND, "missing.html", context! { id, kept => viewer.kept() });
    };
    let path = format!("/auth/{}/{}/update", claims.actor_type, claims.provider);
    let body = serde_json::json!({ "password": form.password }).to_string();
    let request = Request::post(&path)
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body));
    let (status, answer) = match request {
        Ok(request) => match viewer.api().oneshot(request).await {
            Ok(response) => read(response).await,
            Err(never) => match never {},
        },
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    let values = context! {
        id, to => claims.entity_id, path, status => status.as_u16(), answer, changed => status.is_success(),
        kept => viewer.kept(),
    };
    viewer.page(StatusCode::OK, "set_password_done.html", values)
}

/// The route's status and body, as text.
async fn read(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The stored e-mail's reset token (the first JWT in its text part) and what it says, when it has one.
fn reset_token(viewer: &Viewer, id: &str) -> Option<(String, Claims)> {
    let stored = viewer.sent().get(id)?;
    let token = find_jwt(&stored.email.text)?;
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token).ok()?;
    Some((token.to_owned(), claims))
}

/// A JWT is three base64url parts joined by dots, the first a JSON header (`eyJ…`, `{"`); none of
/// those characters is encoded in a link's query, however the link template places the token.
pub(super) fn find_jwt(text: &str) -> Option<&str> {
    let is_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    text.match_indices("eyJ").find_map(|(start, _)| {
        let candidate = &text[start..];
        let end = candidate.find(|c: char| !is_part(c)).unwrap_or(candidate.len());
        let token = &candidate[..end];
        (token.split('.').count() == 3 && token.split('.').all(|part| !part.is_empty())).then_some(token)
    })
}

/// Whether the browser says the form came from this very server: its `Origin` names the `Host`
/// the request was sent to (the loopback guard has checked that `Host`).
fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|value: &http::HeaderValue| value.to_str().ok());
    match (header(ORIGIN), header(HOST)) {
        (Some(origin), Some(host)) => origin == format!("http://{host}"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_a_link_however_the_template_places_it() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJhIjoxfQ.c2ln-_";
        for text in [
            format!("Open https://shop.example.com/reset?token={token}&email=a%40b.c now."),
            format!("https://shop.example.com/reset/{token}"),
            token.to_owned(),
        ] {
            assert_eq!(find_jwt(&text), Some(token), "{text}");
        }
        for text in ["no token here", "eyJonly.two", "eyJa..b", "eyJ"] {
            assert_eq!(find_jwt(text), None, "{text}");
        }
    }

    #[test]
    fn only_a_form_from_this_server_may_post() {
        let headers = |pairs: &[(http::HeaderName, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(name.clone(), value.parse().unwrap());
            }
            headers
        };
        assert!(same_origin(&headers(&[(HOST, "127.0.0.1:9000"), (ORIGIN, "http://127.0.0.1:9000")])));
        assert!(!same_origin(&headers(&[(HOST, "127.0.0.1:9000"), (ORIGIN, "https://evil.example")])));
        assert!(!same_origin(&headers(&[(HOST, "127.0.0.1:9000"), (ORIGIN, "null")])));
        assert!(!same_origin(&headers(&[(HOST, "127.0.0.1:9000")])));
    }
}
