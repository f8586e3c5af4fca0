//! `make run`'s mail viewer at `/_dev/mail`: the outbox's recent e-mails, newest first, each with
//! its HTML part in a sandboxed frame and its text part with the links clickable.
//!
//! Every value is HTML-escaped by the page templates; the e-mail's own HTML is shown only inside an
//! `<iframe sandbox>` without scripts, and its response carries a Content-Security-Policy that
//! forbids scripts, frames, forms and connections even when it is opened on its own.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, StatusCode};
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use crate::mail::{SentMail, Stored};

/// Where the viewer lives on the local server.
pub const PATH: &str = "/_dev/mail";

/// The viewer's own pages: inline styles only, frames only from this server, nothing else.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An e-mail's HTML: what a mail client allows (inline styles, remote images and fonts), no
/// scripts, and sandboxed even when opened outside the viewer's frame; links open a new tab.
const EMAIL_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; \
     font-src http: https: data:; form-action 'none'; frame-ancestors 'self'; \
     sandbox allow-popups allow-popups-to-escape-sandbox";

const LAYOUT: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · make run mail</title>
</head>
<body style="margin:0;background:#f4f4f5;color:#18181b;font:15px/1.5 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;">
<header style="background:#18181b;color:#fafafa;padding:12px 24px;">
<a href="/_dev/mail" style="color:#fafafa;text-decoration:none;font-weight:600;">make run · mail</a>
<span style="color:#a1a1aa;margin-left:12px;">the last {{ kept }} e-mails of this session; all of them are in the outbox folder</span>
</header>
<main style="max-width:1100px;margin:0 auto;padding:24px;">
{% block main %}{% endblock %}
</main>
</body>
</html>"#;

const LIST: &str = r#"{% extends "layout.html" %}
{% block title %}E-mails{% endblock %}
{% block main %}
<h1 style="font-size:22px;margin:0 0 16px;">E-mails <span style="color:#71717a;font-weight:400;">({{ emails | length }})</span></h1>
{% if emails %}
<table id="emails" style="width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e4e7;">
<thead><tr style="text-align:left;color:#52525b;font-size:13px;">
<th style="padding:8px 12px;border-bottom:1px solid #e4e4e7;">Time (UTC)</th>
<th style="padding:8px 12px;border-bottom:1px solid #e4e4e7;">Recipient</th>
<th style="padding:8px 12px;border-bottom:1px solid #e4e4e7;">Subject</th>
<th style="padding:8px 12px;border-bottom:1px solid #e4e4e7;">Locale</th>
<th style="padding:8px 12px;border-bottom:1px solid #e4e4e7;">Actor type</th>
</tr></thead>
<tbody>
{% for email in emails %}
<tr class="email">
<td style="padding:8px 12px;border-bottom:1px solid #f4f4f5;white-space:nowrap;color:#52525b;">{{ email.time }}</td>
<td class="recipient" style="padding:8px 12px;border-bottom:1px solid #f4f4f5;">{{ email.to }}</td>
<td style="padding:8px 12px;border-bottom:1px solid #f4f4f5;"><a class="subject" href="/_dev/mail/{{ email.id }}" style="color:#0f766e;">{{ email.subject }}</a></td>
<td class="locale" style="padding:8px 12px;border-bottom:1px solid #f4f4f5;">{{ email.locale }}</td>
<td class="actor-type" style="padding:8px 12px;border-bottom:1px solid #f4f4f5;">{{ email.actor_type }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p id="empty">No e-mails yet. Ask for a reset and reload this page:</p>
<pre style="background:#fff;border:1px solid #e4e4e7;padding:12px;white-space:pre-wrap;">curl -i -X POST {{ origin }}/auth/customer/emailpass/reset-password -H 'content-type: application/json' -d '{"identifier":"a@example.com"}'</pre>
{% endif %}
{% endblock %}"#;

const SHOW: &str = r#"{% extends "layout.html" %}
{% block title %}{{ email.subject }}{% endblock %}
{% block main %}
<p style="margin:0 0 12px;"><a href="/_dev/mail" style="color:#0f766e;">← all e-mails</a></p>
<h1 id="subject" style="font-size:22px;margin:0 0 12px;">{{ email.subject }}</h1>
<table style="border-collapse:collapse;margin-bottom:16px;color:#3f3f46;">
<tr><th style="text-align:left;padding:2px 16px 2px 0;">To</th><td id="to">{{ email.to }}</td></tr>
<tr><th style="text-align:left;padding:2px 16px 2px 0;">Sent</th><td>{{ email.time }} UTC</td></tr>
<tr><th style="text-align:left;padding:2px 16px 2px 0;">Locale</th><td id="locale">{{ email.locale }}</td></tr>
<tr><th style="text-align:left;padding:2px 16px 2px 0;">Actor type</th><td id="actor-type">{{ email.actor_type }}</td></tr>
<tr><th style="text-align:left;padding:2px 16px 2px 0;">File</th><td>{{ email.id }}.eml</td></tr>
</table>
<h2 style="font-size:16px;margin:0 0 8px;">HTML part <span style="color:#71717a;font-weight:400;font-size:13px;">(scripts off; drag the corner for more height)</span></h2>
<iframe id="html" title="The e-mail's HTML part" src="/_dev/mail/{{ email.id }}/html" sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" style="display:block;width:100%;height:1000px;resize:vertical;border:1px solid #d4d4d8;background:#fff;"></iframe>
<h2 style="font-size:16px;margin:24px 0 8px;">Text part</h2>
<pre id="text" style="background:#fff;border:1px solid #e4e4e7;padding:16px;white-space:pre-wrap;overflow-wrap:anywhere;font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;">
{%- for part in text -%}
{%- if part.link -%}<a href="{{ part.text }}" target="_blank" rel="noopener noreferrer" style="color:#0f766e;">{{ part.text }}</a>
{%- else -%}{{ part.text }}{%- endif -%}
{%- endfor -%}
</pre>
{% endblock %}"#;

const MISSING: &str = r#"{% extends "layout.html" %}
{% block title %}Not found{% endblock %}
{% block main %}
<h1 style="font-size:22px;margin:0 0 12px;">No such e-mail</h1>
<p id="missing">There is no e-mail <code>{{ id }}</code> among the last {{ kept }}. Older ones are in the outbox folder.</p>
<p><a href="/_dev/mail" style="color:#0f766e;">← all e-mails</a></p>
{% endblock %}"#;

/// The outbox's e-mails and the compiled pages (`.html` names: every value escaped).
struct Viewer {
    sent: SentMail,
    pages: Environment<'static>,
    kept: usize,
}

/// The viewer's routes over the outbox's kept e-mails, for loopback host names only.
pub fn routes(sent: SentMail) -> Router {
    let mut pages = Environment::new();
    pages.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in [("layout.html", LAYOUT), ("list.html", LIST), ("show.html", SHOW), ("missing.html", MISSING)]
    {
        // The sources are constants, compiled by the tests: an error here is a bug found by them.
        if let Err(error) = pages.add_template(name, source) {
            tracing::error!(%error, "the mail viewer's page {name} does not compile");
        }
    }
    let kept = sent.capacity();
    let viewer = Arc::new(Viewer { sent, pages, kept });
    Router::new()
        .route(PATH, get(list))
        .route(&format!("{PATH}/{{id}}"), get(show))
        .route(&format!("{PATH}/{{id}}/html"), get(html_part))
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
    fn page(&self, status: StatusCode, name: &str, values: Value) -> Response {
        let response = match self.pages.get_template(name).and_then(|page| page.render(values)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(%error, "the mail viewer's page {name} failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "the mail viewer failed; see the log").into_response()
            }
        };
        with_headers(response, PAGE_POLICY)
    }
}

/// The policy, and no sniffing, referrer or caching: a page here can hold a live reset link.
fn with_headers(mut response: Response, policy: &'static str) -> Response {
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

/// `2026-11-28 14:03:07`, in UTC (the standard library has no time zones).
fn utc(at: SystemTime) -> String {
    let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// Howard Hinnant's days-to-civil-date algorithm, for dates from 1970 on.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::recipient::Recipient;
    use crate::mail::Email;
    use http_body_util::BodyExt;
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
        let router = routes(sent);
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
        let (status, headers, html) = get(&routes(sent), "/_dev/mail/one/html").await;
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
        let router = routes(sent);
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
        let (status, _, page) = get(&routes(SentMail::new(10)), "/_dev/mail").await;
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
