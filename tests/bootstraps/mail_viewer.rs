//! `make run`'s mail viewer in a real browser: the compiled local runner sends resets in every
//! embedded locale for customers and admin users, and headless Chromium (Debian's `chromium`) loads
//! the list and each e-mail; each e-mail's screenshot, saved under target/mail-screenshots/, is
//! decoded and checked to show the rendered e-mail, not a blank frame. The Lambda's router has no viewer.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::TestApp;
use crate::support::local_runner::LocalRunner;
use axum::body::Body;
use http::Request;
use medusa_reset::identity::MemoryIdentityStore;

/// The locales of `metadata.locale` sent, and the locale each e-mail must say it is written in.
const LOCALES: [(&str, &str); 8] = [
    ("en", "en"),
    ("de", "de"),
    ("fr", "fr"),
    ("es", "es"),
    ("it", "it"),
    ("nl", "nl"),
    ("pt-BR", "pt-br"),
    ("pl", "pl"),
];
const ACTOR_TYPES: [&str; 2] = ["customer", "user"];
/// The embedded e-mail's default brand colour (`SHOP_BRAND_COLOR`), the button's: the viewer's own
/// page uses no such blue, so seeing it in a screenshot means the framed e-mail was drawn.
const BRAND: [u8; 3] = [0x25, 0x63, 0xeb];

#[tokio::test]
async fn the_lambda_router_answers_404_at_the_mail_viewers_paths() {
    let (app, _events) = TestApp::with_channel(&crate::support::api_config(&[]), MemoryIdentityStore::open());
    for path in ["/_dev/mail", "/_dev/mail/some-id", "/_dev/mail/some-id/html", "/_dev/mail/some-id/set-password"] {
        let (response, body) = app.send(Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(response.status(), 404, "{path}: {body}");
        assert!(body.contains("\"type\":\"not_found\""), "{path}: Medusa's error shape, not a page: {body}");
    }
}

/// A stand-in Medusa backend that counts the requests it is sent.
async fn counting_backend() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let backend = axum::Router::new().fallback(async move || {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        "from the backend"
    });
    (crate::support::serve(backend).await, count)
}

#[tokio::test]
async fn the_viewer_and_the_proxy_answer_only_loopback_host_names_against_dns_rebinding() {
    let (backend, forwarded) = counting_backend().await;
    let local = Local::start(&[("MEDUSA_BACKEND_URL", &backend)]).await;
    let get = async |path: &str, host: &str| {
        let response = local.client.get(local.runner.url(path)).header("host", host).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    for path in ["/_dev/mail", "/store/products"] {
        let (status, body) = get(path, "rebound.attacker.example:9000").await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("\"type\":\"not_allowed\""), "{path}: {body}");
    }
    assert_eq!(forwarded.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the backend");
    assert_eq!(get("/_dev/mail", "localhost:9000").await.0, 200);
    assert_eq!(get("/store/products", "127.0.0.1").await, (200, "from the backend".to_owned()));
    assert_eq!(forwarded.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The reset route itself is the API, answered whatever the name it was reached by.
    let reset = local
        .client
        .post(local.runner.url("/auth/customer/emailpass/reset-password"))
        .header("host", "shop.example.com")
        .header("content-type", "application/json")
        .body(r#"{"identifier":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 201);
}

#[tokio::test]
async fn the_viewer_is_off_and_says_so_when_listening_beyond_loopback() {
    let runner = LocalRunner::start_on("0.0.0.0", &[]).await;
    let response = reqwest::get(runner.url("/_dev/mail")).await.unwrap();
    assert_eq!(response.status(), 404);
    let printed = runner.stop().await;
    assert!(printed.contains("the mail viewer is off"), "{printed}");
    assert!(!printed.contains("mail viewer: http://"), "{printed}");
}

#[tokio::test]
async fn chromium_lists_every_locale_and_actor_type_newest_first_and_shows_each_email_rendered() {
    let local = Local::start(&[]).await;
    let mut sent = Vec::new();
    for actor_type in ACTOR_TYPES {
        for (requested, written_in) in LOCALES {
            let identifier = format!("{actor_type}-{}@example.com", requested.to_ascii_lowercase());
            local.reset(actor_type, &identifier, &format!(r#"{{"locale":"{requested}"}}"#)).await;
            sent.push((identifier, written_in, actor_type));
        }
    }
    local.wait_for_emails(sent.len()).await;

    let list = chromium_dom(&format!("{}/_dev/mail", local.runner.base)).await;
    let rows = rows(&list);
    let expected: Vec<_> = sent.iter().rev().map(|(to, locale, actor)| (to.as_str(), *locale, *actor)).collect();
    let listed: Vec<_> =
        rows.iter().map(|row| (row.to.as_str(), row.locale.as_str(), row.actor_type.as_str())).collect();
    assert_eq!(listed, expected, "every e-mail, newest first, with its locale and actor type");
    let subjects: HashSet<&str> = rows.iter().map(|row| row.subject.as_str()).collect();
    assert_eq!(subjects.len(), rows.len(), "each locale and actor type has its own subject: {subjects:?}");
    assert!(rows.iter().all(|row| row.time.len() == "2026-11-28 19:31:06".len()), "{rows:?}");

    let shots = screenshot_dir();
    for row in &rows {
        let page = format!("{}/_dev/mail/{}", local.runner.base, row.id);
        let shot = shots.join(format!("{}-{}.png", row.locale, row.actor_type));
        chromium_screenshot(&page, &shot).await;
        let pixels = Pixels::read(&shot);
        let case = format!("{} {}: {}", row.locale, row.actor_type, shot.display());
        assert!(pixels.near(BRAND) >= 3_000, "{case}: the e-mail's button is not drawn ({} px)", pixels.near(BRAND));
        assert!(pixels.colours() >= 200, "{case}: only {} colours, not a rendered page", pixels.colours());
        assert!(pixels.non_white_share() >= 0.3, "{case}: {:.2} of it is not white", pixels.non_white_share());
    }

    // The e-mail's page: the subject, its metadata, the frame without scripts, the link clickable.
    for row in rows.iter().filter(|row| row.locale == "pt-br" || row.locale == "pl") {
        let dom = chromium_dom(&format!("{}/_dev/mail/{}", local.runner.base, row.id)).await;
        let case = format!("{} {}", row.locale, row.actor_type);
        assert!(dom.contains(&format!(">{}</h1>", row.subject)), "{case}: {dom}");
        assert!(dom.contains(&format!("<td id=\"locale\">{}</td>", row.locale)), "{case}: {dom}");
        assert!(dom.contains(&format!("<td id=\"actor-type\">{}</td>", row.actor_type)), "{case}");
        let frame =
            format!("src=\"/_dev/mail/{}/html\" sandbox=\"allow-popups allow-popups-to-escape-sandbox\"", row.id);
        assert!(dom.contains(&frame) && !dom.contains("allow-scripts"), "{case}: {dom}");
        let link = match row.actor_type.as_str() {
            "user" => "<a href=\"http://localhost:9000/app/reset-password?token=ey",
            _ => "<a href=\"http://localhost:8000/reset-password?token=ey",
        };
        assert!(dom.contains(link), "{case}: the text part's link is clickable: {dom}");
        assert!(dom.contains(&format!("&amp;email={}\"", row.to.replace('@', "%40"))), "{case}");
    }

    let base = local.runner.base.clone();
    let printed = local.stop().await;
    assert!(printed.contains(&format!("mail viewer: {base}/_dev/mail")), "the start-up lines say where: {printed}");
}

#[tokio::test]
async fn html_in_metadata_or_in_an_identifier_is_shown_by_chromium_as_text() {
    const HOSTILE: &str = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>";
    // A template directory whose subject and text part carry the request's metadata, as a shop's may.
    let templates = std::env::temp_dir().join(format!("viewer-templates-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(templates.join("en")).unwrap();
    std::fs::write(templates.join("en/subject.txt"), "{{ metadata.note | default('Reset') }}").unwrap();
    std::fs::write(templates.join("en/body.txt"), "{{ metadata.note | default('') }}\n{{ link }}\n").unwrap();
    let local = Local::start(&[("TEMPLATE_DIR", templates.to_str().unwrap())]).await;
    let metadata = serde_json::json!({ "note": HOSTILE, "locale": "en" }).to_string();
    local.reset("customer", "shopper@example.com", &metadata).await;
    local.wait_for_emails(1).await;

    let list = chromium_dom(&format!("{}/_dev/mail", local.runner.base)).await;
    let rows = rows(&list);
    assert_eq!(rows.len(), 1, "{list}");
    let escaped = "&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;";
    let page = chromium_dom(&format!("{}/_dev/mail/{}", local.runner.base, rows[0].id)).await;
    let missing =
        chromium_dom(&format!("{}/_dev/mail/%3Cscript%3Edocument.title='pwned'%3C%2Fscript%3E", local.runner.base))
            .await;
    // The subject is in the list once; on its page in the title, the heading and the text part.
    for (name, dom, whole_note) in
        [("list", &list, Some(1)), ("e-mail", &page, Some(3)), ("unknown id", &missing, None)]
    {
        assert!(!dom.contains("<script") && !dom.contains("<img"), "{name}: markup got through: {dom}");
        assert!(!dom.contains("<title>pwned"), "{name}: a script ran: {dom}");
        assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"), "{name}: {dom}");
        if let Some(times) = whole_note {
            assert_eq!(dom.matches(escaped).count(), times, "{name}: shown as text: {dom}");
        }
    }
    local.stop().await;
    std::fs::remove_dir_all(templates).unwrap();
}

/// One row of the list as Chromium parsed it.
#[derive(Debug)]
struct Row {
    time: String,
    to: String,
    id: String,
    subject: String,
    locale: String,
    actor_type: String,
}

fn rows(dom: &str) -> Vec<Row> {
    let row = regex_lite::Regex::new(
        r#"(?s)<tr class="email">.*?<td[^>]*>([^<]*)</td>.*?class="recipient"[^>]*>([^<]*)</td>.*?href="/_dev/mail/([^"]+)"[^>]*>([^<]*)</a>.*?class="locale"[^>]*>([^<]*)</td>.*?class="actor-type"[^>]*>([^<]*)</td>"#,
    )
    .unwrap();
    row.captures_iter(dom)
        .map(|c| Row {
            time: c[1].to_owned(),
            to: c[2].to_owned(),
            id: c[3].to_owned(),
            subject: c[4].to_owned(),
            locale: c[5].to_owned(),
            actor_type: c[6].to_owned(),
        })
        .collect()
}

/// target/mail-screenshots/, where a person can look at each locale's e-mail.
fn screenshot_dir() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp is in the target folder");
    let dir = target.join("mail-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Debian's `chromium` (or `CHROMIUM`) headless with these arguments and a fresh profile,
/// which is removed afterwards (each is tens of megabytes); returns what it printed.
async fn chromium(args: &[&str]) -> String {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let profile = std::env::temp_dir().join(format!("chromium-profile-{}", uuid::Uuid::new_v4()));
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            // The screenshot is taken once the page is drawn, and the framed e-mail is drawn in the
            // page's own process: out of process (site isolation puts a sandboxed frame there), it
            // was sometimes still blank when the shot was taken on a loaded machine. The frame's
            // sandbox and policy apply the same in either process.
            "--run-all-compositor-stages-before-draw",
            "--disable-site-isolation-trials",
            "--disable-features=IsolateOrigins,site-per-process",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output()).await;
    let _ = std::fs::remove_dir_all(&profile);
    let output = output.expect("Chromium finishes within 60 s").unwrap_or_else(|e| {
        panic!("cannot run chromium ({e}): install Debian's package (`tools/ensure-debian-packages chromium`)")
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The page's DOM after Chromium parsed and laid it out.
async fn chromium_dom(url: &str) -> String {
    chromium(&["--window-size=1200,900", "--dump-dom", url]).await
}

/// A 1000×1600 screenshot of the page: the e-mail's frame whole.
async fn chromium_screenshot(url: &str, path: &Path) {
    let _ = std::fs::remove_file(path);
    chromium(&["--window-size=1000,1600", &format!("--screenshot={}", path.display()), url]).await;
    assert!(path.exists(), "no screenshot of {url}");
}

/// A decoded screenshot's RGB pixels.
struct Pixels(Vec<[u8; 3]>);

impl Pixels {
    fn read(path: &Path) -> Self {
        let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
        let mut reader = png::Decoder::new(file).read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buffer).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
        let samples = info.color_type.samples();
        assert!(samples >= 3, "{}: a colour screenshot", path.display());
        Self(buffer[..info.buffer_size()].chunks_exact(samples).map(|p| [p[0], p[1], p[2]]).collect())
    }

    /// How many pixels are within a small distance of `colour` (anti-aliasing aside).
    fn near(&self, colour: [u8; 3]) -> usize {
        self.0.iter().filter(|p| p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 8)).count()
    }

    fn colours(&self) -> usize {
        self.0.iter().collect::<HashSet<_>>().len()
    }

    fn non_white_share(&self) -> f64 {
        let non_white = self.0.iter().filter(|p| p.iter().any(|&c| c < 250)).count();
        non_white as f64 / self.0.len() as f64
    }
}

/// The development page beside a reset e-mail: its form posts here, the local runner sends the
/// update route the storefront's request with the e-mail's token, the notice follows in the viewer,
/// and the e-mail's own link still points at the storefront. A form from another origin is refused.
#[tokio::test]
async fn the_development_page_sets_a_new_password_through_the_update_route_and_the_notice_follows() {
    let local = Local::start(&[]).await;
    local.reset("customer", "dev-page@example.com", r#"{"locale":"de"}"#).await;
    local.wait_for_emails(1).await;
    let list = local.client.get(local.runner.url("/_dev/mail")).send().await.unwrap().text().await.unwrap();
    let id = list.split("href=\"/_dev/mail/").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();

    let email = local.client.get(local.runner.url(&format!("/_dev/mail/{id}"))).send().await.unwrap();
    let email = email.text().await.unwrap();
    assert!(email.contains(&format!("href=\"/_dev/mail/{id}/set-password\"")), "{email}");
    // (minijinja escapes `/` in HTML as `&#x2f;`.)
    let storefront = "http:&#x2f;&#x2f;localhost:8000&#x2f;reset-password?token=ey";
    assert!(email.contains(storefront), "the e-mail still links the storefront: {email}");

    let page = local.runner.url(&format!("/_dev/mail/{id}/set-password"));
    let form = local.client.get(&page).send().await.unwrap();
    assert!(form.headers()["content-security-policy"].to_str().unwrap().contains("form-action 'self'"));
    let form = form.text().await.unwrap();
    assert!(
        form.contains("<form id=\"set-password\" method=\"post\"") && form.contains("dev-page@example.com"),
        "{form}"
    );

    let post = |origin: Option<String>| {
        let mut request = local
            .client
            .post(&page)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("password=set+on+the+dev+page");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    let refused = post(Some("https://evil.example".to_owned())).await.unwrap();
    assert_eq!(refused.status(), 403, "a form from another origin");
    assert_eq!(post(None).await.unwrap().status(), 403, "a post without an origin");
    let done = post(Some(local.runner.base.clone())).await.unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("<h1 id=\"outcome\"") && done.contains("Password changed"), "{done}");
    assert!(done.contains("200 {&#34;success&#34;:true}") || done.contains("200 {&quot;success&quot;:true}"), "{done}");

    local.wait_for_emails(2).await;
    let list = local.client.get(local.runner.url("/_dev/mail")).send().await.unwrap().text().await.unwrap();
    let newest = list.split("<tr class=\"email\">").nth(1).unwrap();
    assert!(
        newest.contains("<td class=\"locale\" style=\"padding:8px 12px;border-bottom:1px solid #f4f4f5;\">de</td>"),
        "{newest}"
    );
    let notice = newest.split("href=\"/_dev/mail/").nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    let notice = local.client.get(local.runner.url(&format!("/_dev/mail/{notice}"))).send().await.unwrap();
    let notice = notice.text().await.unwrap();
    assert!(!notice.contains("id=\"set-password\""), "a notice carries no token to set a password with");
    let printed = local.stop().await;
    assert!(printed.contains("password_changed"), "{printed}");
    assert!(!printed.contains("set on the dev page"), "the password never reaches the log");
}

/// `make run`'s compiled runner, and a client for it.
struct Local {
    runner: LocalRunner,
    client: reqwest::Client,
}

impl Local {
    async fn start(env: &[(&str, &str)]) -> Self {
        Self { runner: LocalRunner::start(env).await, client: reqwest::Client::new() }
    }

    async fn reset(&self, actor_type: &str, identifier: &str, metadata: &str) {
        let response = self
            .client
            .post(self.runner.url(&format!("/auth/{actor_type}/emailpass/reset-password")))
            .header("content-type", "application/json")
            .body(format!(r#"{{"identifier":"{identifier}","metadata":{metadata}}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{actor_type} {identifier}");
    }

    /// Waits until the viewer lists `count` e-mails (the bus delivers them in the background).
    async fn wait_for_emails(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let list = self.client.get(self.runner.url("/_dev/mail")).send().await.unwrap();
            let listed = list.text().await.unwrap().matches("<tr class=\"email\">").count();
            if listed >= count {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{listed} of {count} e-mails listed after 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the runner and returns what it printed.
    async fn stop(self) -> String {
        self.runner.stop().await
    }
}
