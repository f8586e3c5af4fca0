//! `make run`'s mail viewer at `/_dev/mail`: the outbox's recent e-mails, newest first, each with
//! its HTML part in a sandboxed frame and its text part with the links clickable; beside a reset
//! e-mail, the development page that sets a new password with its token (`set_password`).
//!
//! The pages are minijinja templates in src/local/pages/, which HTML-escape every value; the
//! e-mail's own HTML is shown only inside an `<iframe sandbox>` without scripts, and its response
//! carries a Content-Security-Policy that forbids scripts, frames, forms and connections even when
//! it is opened on its own.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, StatusCode};
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use super::set_password;
use crate::mail::{SentMail, Stored};

/// Where the viewer lives on the local server.
pub const PATH: &str = "/_dev/mail";

/// The viewer's own pages: inline styles only, frames only from this server, nothing else.
pub(super) const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The development page's form: the viewer's policy, but its form may post back here.
pub(super) const FORM_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An e-mail's HTML: what a mail client allows (inline styles, remote images and fonts), no
/// scripts, and sandboxed even when opened outside the viewer's frame; links open a new tab.
const EMAIL_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; \
     font-src http: https: data:; form-action 'none'; frame-ancestors 'self'; \
     sandbox allow-popups allow-popups-to-escape-sandbox";

/// The viewer's pages (src/local/pages/), embedded at build time so that `make run`'s binary needs
/// no files beside it.
macro_rules! pages {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/local/pages/", $name)))),*]
    };
}
const PAGES: [(&str, &str); 6] =
    pages!("layout.html", "list.html", "show.html", "missing.html", "set_password.html", "set_password_done.html");

/// The outbox's e-mails, the compiled pages (`.html` names: every value escaped), and the routes
/// the development page sends its requests to.
pub(super) struct Viewer {
    sent: SentMail,
    pages: Environment<'static>,
    kept: usize,
    api: Router,
}

/// The viewer's routes over the outbox's kept e-mails, for loopback host names only; `api` is the
/// router whose update route the development page calls.
pub fn routes(sent: SentMail, api: Router) -> Router {
    let mut pages = Environment::new();
    pages.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in PAGES {
        // The pages are embedded and every one is rendered by the tests: an error here is a bug found by them.
        if let Err(error) = pages.add_template(name, source) {
            tracing::error!(%error, "the mail viewer's page {name} does not compile");
        }
    }
    let kept = sent.capacity();
    let viewer = Arc::new(Viewer { sent, pages, kept, api });
    Router::new()
        .route(PATH, get(list))
        .route(&format!("{PATH}/{{id}}"), get(show))
        .route(&format!("{PATH}/{{id}}/html"), get(html_part))
        .route(&format!("{PATH}/{{id}}/set-password"), get(set_password::form).post(set_password::submit))
        .route_layer(axum::middleware::from_fn(super::loopback::only_loopback))
        .with_state(viewer)
}

/// One e-mail as the pages show it.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    time: String,
    to: &'a str,
    subject: &'a str,
    locale: &'a str,
    actor_type: &'a str,
}

impl<'a> From<&'a Stored> for Row<'a> {
    fn from(stored: &'a Stored) -> Self {
        Row {
            id: &stored.id,
            time: utc(stored.sent_at),
            to: stored.email.to.as_str(),
            subject: &stored.email.subject,
            locale: &stored.email.locale,
            actor_type: &stored.email.actor_type,
        }
    }
}

/// A piece of the text part: a link to make clickable, or text around it.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Piece<'a> {
    text: &'a str,
    link: bool,
}

async fn list(State(viewer): State<Arc<Viewer>>, headers: http::HeaderMap) -> Response {
    let recent = viewer.sent.recent();
    let emails: Vec<Row<'_>> = recent.iter().map(|stored| Row::from(stored.as_ref())).collect();
    let origin = headers.get(http::header::HOST).and_then(|host| host.to_str().ok()).unwrap_or("127.0.0.1:9000");
    let origin = format!("http://{origin}");
    viewer.page(
        StatusCode::OK,
        "list.html",
        context! { emails => Value::from(Serde(&emails)), origin, kept => viewer.kept },
    )
}

async fn show(State(viewer): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let Some(stored) = viewer.sent.get(&id) else {
        return viewer.page(StatusCode::NOT_FOUND, "missing.html", context! { id, kept => viewer.kept });
    };
    let values = context! {
        email => Value::from(Serde(Row::from(stored.as_ref()))),
        text => Value::from(Serde(pieces(&stored.email.text))),
        sets_password => set_password::find_jwt(&stored.email.text).is_some(),
        kept => viewer.kept,
    };
    viewer.page(StatusCode::OK, "show.html", values)
}

async fn html_part(State(viewer): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let Some(stored) = viewer.sent.get(&id) else {
        return viewer.page(StatusCode::NOT_FOUND, "missing.html", context! { id, kept => viewer.kept });
    };
    with_headers(Html(opening_links_in_a_new_tab(&stored.email.html)).into_response(), EMAIL_POLICY)
}

impl Viewer {
    pub(super) fn kept(&self) -> usize {
        self.kept
    }

    pub(super) fn sent(&self) -> &SentMail {
        &self.sent
    }

    pub(super) fn api(&self) -> Router {
        self.api.clone()
    }

    pub(super) fn page(&self, status: StatusCode, name: &str, values: Value) -> Response {
        self.page_with(status, name, values, PAGE_POLICY)
    }

    pub(super) fn page_with(&self, status: StatusCode, name: &str, values: Value, policy: &'static str) -> Response {
        let response = match self.pages.get_template(name).and_then(|page| page.render(values)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(%error, "the mail viewer's page {name} failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "the mail viewer failed; see the log").into_response()
            }
        };
        with_headers(response, policy)
    }
}

/// The policy, and no sniffing, referrer or caching: a page here can hold a live reset link.
pub(super) fn with_headers(mut response: Response, policy: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The e-mail's HTML with `<base target="_blank">` right after its `<head>`, as letter_opener does:
/// a click in the sandboxed frame opens the reset page in a tab of its own. (Nothing may go before
/// the doctype: that would switch the browser to quirks mode and change the layout.)
fn opening_links_in_a_new_tab(html: &str) -> String {
    const BASE: &str = "<base target=\"_blank\">";
    let lower = html.to_ascii_lowercase();
    let head_end = lower
        .match_indices("<head")
        .find(|(at, _)| matches!(lower.as_bytes().get(at + 5), Some(b'>' | b' ' | b'\t' | b'\n' | b'\r')))
        .and_then(|(at, _)| lower[at..].find('>').map(|end| at + end + 1));
    match head_end {
        Some(at) => format!("{}{BASE}{}", &html[..at], &html[at..]),
        None => html.to_owned(),
    }
}

/// Splits a text part into links (`http://` or `https://` up to white space, without trailing
/// sentence punctuation) and the text between them.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = [rest.find("https://"), rest.find("http://")].into_iter().flatten().min() {
        let after = &rest[start..];
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let link = after[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '>', '"', '\'']);
        if start > 0 {
            pieces.push(Piece { text: &rest[..start], link: false });
        }
        let has_host = link.split_once("://").is_some_and(|(_, host)| !host.is_empty());
        pieces.push(Piece { text: link, link: has_host });
        rest = &after[link.len().max(1)..];
    }
    if !rest.is_empty() {
        pieces.push(Piece { text: rest, link: false });
    }
    pieces
}

/// `2026-11-28 14:03:07`, in UTC.
fn utc(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recipient::Recipient;
    use crate::mail::Email;
    use http_body_util::BodyExt;
    use std::time::UNIX_EPOCH;
    use tower::ServiceExt;

    const HOSTILE: &str = "<script>document.title='pwned'</script><b>bold</b>";

    fn stored(id: &str, subject: &str, locale: &str, actor_type: &str) -> Stored {
        Stored {
            id: id.to_owned(),
            sent_at: UNIX_EPOCH + std::time::Duration::from_secs(1_795_894_266),
            email: Email {
                to: Recipient::parse("shopper@example.com").unwrap(),
                subject: subject.to_owned(),
                text: "Open http://localhost:8000/reset-password?token=abc&email=a%40b.c to choose one.".to_owned(),
                html: "<!DOCTYPE html><html><HEAD lang=\"en\"><title>x</title></head><body>card</body></html>"
                    .to_owned(),
                locale: locale.to_owned(),
                actor_type: actor_type.to_owned(),
            },
        }
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let request = http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_list_is_newest_first_and_each_email_opens_with_its_link_clickable() {
        let sent = SentMail::new(10);
        sent.keep(stored("older", "Reset your password", "en", "customer"));
        sent.keep(stored("newer", "Setzen Sie Ihr Admin-Passwort zurück", "de", "user"));
        let router = routes(sent, Router::new());
        let (status, headers, list) = get(&router, "/_dev/mail").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[http::header::CONTENT_TYPE], "text/html; charset=utf-8");
        let newer = list.find("href=\"/_dev/mail/newer\"").expect("the newer e-mail is listed");
        let older = list.find("href=\"/_dev/mail/older\"").expect("the older e-mail is listed");
        assert!(newer < older, "newest first");
        for shown in ["2026-11-28 19:31:06", "shopper@example.com", "Admin-Passwort", ">de<", ">user<"] {
            assert!(list.contains(shown), "{shown}: {list}");
        }

        let (status, _, page) = get(&router, "/_dev/mail/older").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("src=\"/_dev/mail/older/html\" sandbox=\"allow-popups allow-popups-to-escape-sandbox\""));
        assert!(
            page.contains(
                "<a href=\"http:&#x2f;&#x2f;localhost:8000&#x2f;reset-password?token=abc&amp;email=a%40b.c\" \
                 target=\"_blank\""
            ),
            "{page}"
        );
        assert!(page.contains("</a> to choose one."), "the sentence's full stop stays out of the link");
    }

    #[tokio::test]
    async fn the_emails_html_is_served_apart_with_a_policy_that_forbids_scripts() {
        let sent = SentMail::new(10);
        sent.keep(stored("one", "Reset", "en", "customer"));
        let (status, headers, html) = get(&routes(sent, Router::new()), "/_dev/mail/one/html").await;
        assert_eq!(status, StatusCode::OK);
        let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.starts_with("default-src 'none';") && !policy.contains("script-src"), "{policy}");
        assert!(policy.contains("sandbox allow-popups") && !policy.contains("allow-scripts"), "{policy}");
        assert_eq!(
            html,
            "<!DOCTYPE html><html><HEAD lang=\"en\"><base target=\"_blank\"><title>x</title></head><body>card</body></html>"
        );
    }

    #[tokio::test]
    async fn html_in_an_identifier_or_in_what_an_email_carries_is_shown_as_text() {
        let sent = SentMail::new(10);
        sent.keep(stored("one", HOSTILE, HOSTILE, HOSTILE));
        let router = routes(sent, Router::new());
        // The list shows subject, locale and actor type; the e-mail's page its subject twice (title, heading) too.
        for (path, shown) in [("/_dev/mail", 3), ("/_dev/mail/one", 4)] {
            let (status, _, page) = get(&router, path).await;
            assert_eq!(status, StatusCode::OK);
            assert!(!page.contains("<script") && !page.contains("<b>"), "{path}: {page}");
            let escaped = page.matches("&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;&#x2f;script&gt;&lt;b&gt;");
            assert_eq!(escaped.count(), shown, "{path}: {page}");
        }
        let encoded = "/_dev/mail/%3Cscript%3Edocument.title='pwned'%3C%2Fscript%3E";
        for path in [encoded.to_owned(), format!("{encoded}/html")] {
            let (status, headers, page) = get(&router, &path).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(headers.contains_key(CONTENT_SECURITY_POLICY));
            assert!(!page.contains("<script") && page.contains("&lt;script&gt;document.title"), "{page}");
        }
    }

    #[tokio::test]
    async fn with_no_emails_the_list_says_how_to_send_one() {
        let (status, _, page) = get(&routes(SentMail::new(10), Router::new()), "/_dev/mail").await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("id=\"empty\"") && page.contains("reset-password"), "{page}");
    }

    #[test]
    fn links_in_the_text_part_are_found_without_trailing_punctuation() {
        let found = pieces("Go to https://a.example/x?t=1&e=2. Or (http://b.example/y), not http:// nor ftp://c.");
        let links: Vec<_> = found.iter().filter(|piece| piece.link).map(|piece| piece.text).collect();
        assert_eq!(links, ["https://a.example/x?t=1&e=2", "http://b.example/y"]);
        let joined: String = found.iter().map(|piece| piece.text).collect();
        assert_eq!(joined, "Go to https://a.example/x?t=1&e=2. Or (http://b.example/y), not http:// nor ftp://c.");
        assert_eq!(pieces("no links"), [Piece { text: "no links", link: false }]);
    }

    #[test]
    fn times_are_shown_as_utc_calendar_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00");
        assert_eq!(utc(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)), "2000-02-29 00:00:00");
        assert_eq!(utc(UNIX_EPOCH + std::time::Duration::from_secs(1_795_894_266)), "2026-11-28 19:31:06");
    }

    #[test]
    fn links_open_in_a_new_tab_without_touching_the_doctype() {
        assert_eq!(
            opening_links_in_a_new_tab("<!DOCTYPE html><html><head>\n<title>t</title>"),
            "<!DOCTYPE html><html><head><base target=\"_blank\">\n<title>t</title>"
        );
        assert_eq!(opening_links_in_a_new_tab("<p>no head</p><header>x</header>"), "<p>no head</p><header>x</header>");
    }
}
