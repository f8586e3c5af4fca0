//! Every embedded locale and actor type rendered through the notifier's configuration: each reset
//! e-mail has its link (in the text and in the HTML's hrefs), its expiry and the shop; each
//! password-changed notice has the account, the shop and what to do if the change was not the
//! reader's, and no link at all; none has English left over unless it is English, and whatever is
//! interpolated is HTML-escaped in the HTML part.
//!
//! With `EMAIL_PREVIEW_DIR` set, the test also writes each locale's e-mails there
//! (`<locale>.html` for customers, `<locale>-user.html` for admin users, `notice-<locale>.html` and
//! `notice-<locale>-user.html` for the notices) for a look in a browser.

use std::collections::HashMap;

use crate::support::notifier_config;
use medusa_reset::config::NotifierConfig;
use medusa_reset::domain::locale::Locale;
use medusa_reset::domain::metadata::Metadata;
use medusa_reset::notify::templates::{EmailContext, EmailTemplates, NoticeContext, RenderedEmail};
use serde_json::json;

/// The shipped locales as a storefront would send them, and how each says "15 minutes".
const LOCALES: [(&str, &str); 8] = [
    ("en", "15 minutes"),
    ("de", "15 Minuten"),
    ("fr", "15 minutes"),
    ("es", "15 minutos"),
    ("it", "15 minuti"),
    ("nl", "15 minuten"),
    ("pt-BR", "15 minutos"),
    ("pl", "15 minut"),
];

const ACTOR_TYPES: [&str; 2] = ["customer", "user"];

/// Phrases of the English words (each is checked to be there) that no other locale may contain.
/// Words other languages share ("link", "e-mail", "browser", "team", "password") are left out.
const ENGLISH: [&str; 14] = [
    "Hello",
    "We received",
    "request to reset",
    "your password",
    "Choose a new",
    "button below",
    "Open this link",
    "expires in",
    "If you did not ask",
    "ignore this",
    "stays as it is",
    "paste it into",
    "Thanks",
    "sign in to",
];

/// Phrases of the English notices (each is checked to be there) that no other locale's may contain.
const ENGLISH_NOTICE: [&str; 13] = [
    "Hello",
    "password was changed",
    "was changed",
    "If you made this change",
    "nothing else to do",
    "did not change",
    "request a new",
    "at once",
    "contact us",
    "tell your team",
    "We send this notice",
    "whenever",
    "sign in to",
];

/// How each locale tells a customer, and an admin user, what to do if the change was not theirs:
/// a new reset at once, and a word to the shop (to their team, for an admin user).
const NOT_YOU: [(&str, &str, &str); 8] = [
    (
        "en",
        "If you did not change your password, request a new password reset at once and contact us.",
        "If you did not change your password, request a new password reset at once and tell your team.",
    ),
    (
        "de",
        "Wenn Sie Ihr Passwort nicht selbst geändert haben, setzen Sie es bitte sofort erneut zurück und wenden Sie sich an uns.",
        "Wenn Sie Ihr Passwort nicht selbst geändert haben, setzen Sie es bitte sofort erneut zurück und informieren Sie Ihr Team.",
    ),
    (
        "fr",
        "Si vous n’avez pas modifié votre mot de passe, demandez immédiatement une nouvelle réinitialisation et contactez-nous.",
        "Si vous n’avez pas modifié votre mot de passe, demandez immédiatement une nouvelle réinitialisation et prévenez votre équipe.",
    ),
    (
        "es",
        "Si no has cambiado tu contraseña, solicita de inmediato un nuevo restablecimiento y ponte en contacto con nosotros.",
        "Si no has cambiado tu contraseña, solicita de inmediato un nuevo restablecimiento y avisa a tu equipo.",
    ),
    (
        "it",
        "Se non hai modificato tu la password, richiedi subito una nuova reimpostazione e contattaci.",
        "Se non hai modificato tu la password, richiedi subito una nuova reimpostazione e avvisa il tuo team.",
    ),
    (
        "nl",
        "Heb je je wachtwoord niet zelf gewijzigd? Vraag dan meteen een nieuwe wachtwoordreset aan en neem contact met ons op.",
        "Heb je je wachtwoord niet zelf gewijzigd? Vraag dan meteen een nieuwe wachtwoordreset aan en laat het je team weten.",
    ),
    (
        "pt-BR",
        "Se você não alterou sua senha, peça uma nova redefinição imediatamente e entre em contato conosco.",
        "Se você não alterou sua senha, peça uma nova redefinição imediatamente e avise sua equipe.",
    ),
    (
        "pl",
        "Jeśli ta zmiana nie pochodzi od Ciebie, natychmiast poproś o\u{a0}ponowne zresetowanie hasła i\u{a0}skontaktuj się z\u{a0}nami.",
        "Jeśli ta zmiana nie pochodzi od Ciebie, natychmiast poproś o\u{a0}ponowne zresetowanie hasła i\u{a0}powiadom swój zespół.",
    ),
];

/// A link with everything that needs care: `&` between parameters, percent-escapes, a JWT's dots.
const LINK: &str = "https://shop.example.com/reset-password?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln&email=o%27brien%2Btest%40example.com";
const EMAIL: &str = "o'brien+test@example.com";

/// The notifier's configuration for both actor types, with `pairs` on top.
fn templates_config(pairs: &[(&str, &str)]) -> NotifierConfig {
    let both_actor_types = [
        ("AUTH_PROVIDERS", "customer=emailpass;user=emailpass"),
        ("RESET_URL_TEMPLATE_USER", "https://admin.example.com/app/r?token={token}"),
    ];
    notifier_config("Acme <no-reply@shop.example.com>", &[pairs, &both_actor_types].concat())
}

fn render(templates: &EmailTemplates, locale: &str, actor_type: &str, metadata: Option<&Metadata>) -> RenderedEmail {
    let context = EmailContext { link: LINK, email: EMAIL, actor_type, expires_minutes: 15, metadata };
    templates.render(Locale::parse(locale).as_ref(), &context).unwrap()
}

fn render_notice(templates: &EmailTemplates, locale: &str, actor_type: &str) -> RenderedEmail {
    let context = NoticeContext { email: EMAIL, actor_type, metadata: None };
    templates.render_notice(Locale::parse(locale).as_ref(), &context).unwrap()
}

/// Undoes the entities minijinja writes and the few the layout writes itself.
fn unescape(html: &str) -> String {
    let mut out = html.to_owned();
    for (entity, char) in [
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#x27;", "'"),
        ("&nbsp;", " "),
        ("&zwnj;", ""),
        ("&#847;", ""),
        ("&amp;", "&"),
    ] {
        out = out.replace(entity, char);
    }
    out
}

/// What a reader sees of the HTML: no style sheet, comments or tags, entities decoded.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = if rest.starts_with("<style") {
            rest.find("</style>").map(|i| i + "</style>".len())
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + "-->".len())
        } else {
            rest.find('>').map(|i| i + 1)
        };
        rest = &rest[end.unwrap_or(rest.len())..];
        text.push(' ');
    }
    text.push_str(rest);
    unescape(&text)
}

/// Every `href` of the HTML, decoded as a browser reads the attribute.
fn hrefs(html: &str) -> Vec<String> {
    html.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(unescape).collect()
}

#[test]
fn every_locale_and_actor_type_has_its_link_expiry_and_shop_and_no_english_left_over() {
    let config = templates_config(&[("SHOP_NAME", "Acme Outdoor")]);
    let templates = &config.templates;
    let english: Vec<String> = ACTOR_TYPES
        .iter()
        .map(|actor| {
            let email = render(templates, "en", actor, None);
            format!("{} {} {}", email.subject, email.text, visible_text(&email.html))
        })
        .collect();
    for phrase in ENGLISH {
        assert!(english.iter().any(|words| words.contains(phrase)), "`{phrase}` is not in the English e-mails");
    }

    let mut subjects = HashMap::new();
    for (locale, fifteen_minutes) in LOCALES {
        for actor_type in ACTOR_TYPES {
            let email = render(templates, locale, actor_type, None);
            let seen = visible_text(&email.html);
            let case = format!("{locale}/{actor_type}");

            assert!(email.text.contains(&format!("\n{LINK}\n")), "{case}: the link on a line of its own");
            let links = hrefs(&email.html);
            assert_eq!(links, [LINK, LINK], "{case}: the button and the fallback link");
            let attribute = format!("href=\"{}\"", LINK.replace('&', "&amp;"));
            assert_eq!(email.html.matches(&attribute).count(), 2, "{case}: only `&` needs escaping in the href");
            assert!(seen.contains(LINK), "{case}: the fallback link is shown in full");

            for (part, words) in [("text", &email.text), ("html", &seen)] {
                assert!(words.contains(fifteen_minutes), "{case} {part}: the expiry");
                assert!(words.contains("Acme Outdoor"), "{case} {part}: the shop");
                assert!(words.contains(EMAIL), "{case} {part}: the account");
            }
            assert!(email.html.contains(&format!("<html lang=\"{locale}\"")), "{case}");

            if locale != "en" {
                let all = format!("{} {} {}", email.subject, email.text, seen);
                for phrase in ENGLISH {
                    assert!(!all.contains(phrase), "{case}: English `{phrase}` left over:\n{all}");
                }
            }
            let subject = subjects.insert(email.subject.clone(), case.clone());
            assert_eq!(subject, None, "{case}: a subject of its own");
        }
    }
    if let Ok(dir) = std::env::var("EMAIL_PREVIEW_DIR") {
        write_previews(std::path::Path::new(&dir));
    }
}

#[test]
fn admin_users_are_told_about_the_dashboard_not_the_shop() {
    let config = templates_config(&[]);
    // How each locale names the admin dashboard, and how it names the shop to customers.
    let wording = [
        ("en", "admin dashboard", "account"),
        ("de", "Admin-Dashboard", "Kontos"),
        ("fr", "tableau de bord d’administration", "compte"),
        ("es", "panel de administración", "cuenta"),
        ("it", "pannello di amministrazione", "account"),
        ("nl", "beheeromgeving", "account"),
        ("pt-BR", "painel de administração", "conta"),
        ("pl", "panelu administracyjnego", "konta"),
    ];
    for (locale, dashboard, account) in wording {
        let admin = render(&config.templates, locale, "user", None);
        let customer = render(&config.templates, locale, "customer", None);
        assert!(admin.text.contains(dashboard), "{locale}: {}", admin.text);
        assert!(!customer.text.contains(dashboard), "{locale}: {}", customer.text);
        assert!(customer.text.contains(account), "{locale}: {}", customer.text);
        assert_ne!(admin.subject, customer.subject, "{locale}");
    }
}

#[test]
fn html_special_characters_in_the_shop_name_address_and_metadata_are_escaped_in_html_only() {
    let shop = "Acme <Outdoor> & \"Sons\"";
    let dir = std::env::temp_dir().join(format!("email-templates-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("en")).unwrap();
    // A locale's words are plain text; the layout escapes them, metadata included.
    let words = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/en/words.txt")).replace(
        r#"{% set greeting = "Hello," %}"#,
        "{% set greeting %}Hello {{ metadata.first_name | default('there') }},{% endset %}",
    );
    std::fs::write(dir.join("en/words.txt"), words).unwrap();
    let config = templates_config(&[("SHOP_NAME", shop), ("TEMPLATE_DIR", dir.to_str().unwrap())]);
    let _ = std::fs::remove_dir_all(&dir);

    let hostile = "<img src=x onerror=alert(1)>";
    let metadata = Metadata::parse(json!({"first_name": hostile}).as_object().cloned().unwrap()).unwrap();
    let email = render(&config.templates, "en", "customer", Some(&metadata));
    assert!(email.text.starts_with(&format!("Hello {hostile},")), "the text part is not HTML: {}", email.text);
    assert!(email.text.contains(shop) && email.text.contains(EMAIL));
    for raw in [hostile, "<Outdoor>", "\"Sons\"", "o'brien"] {
        assert!(!email.html.contains(raw), "`{raw}` unescaped in the HTML");
    }
    for escaped in
        ["Hello &lt;img src=x onerror=alert(1)&gt;,", "Acme &lt;Outdoor&gt; &amp; &quot;Sons&quot;", "o&#x27;brien"]
    {
        assert!(email.html.contains(escaped), "`{escaped}` missing from the HTML");
    }
    assert_eq!(hrefs(&email.html), [LINK, LINK], "the href is the link, attribute-escaped");
    assert!(email.html.contains("token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln&amp;email=o%27brien"));
}

#[test]
fn the_html_is_a_card_of_at_most_600_px_with_a_preheader_a_button_in_the_brand_colour_and_a_dark_mode() {
    let config =
        templates_config(&[("SHOP_LOGO_URL", "https://cdn.example.com/acme.png"), ("SHOP_BRAND_COLOR", "#e11d48")]);
    let email = render(&config.templates, "fr", "customer", None);
    let html = &email.html;
    assert!(html.contains("max-width:600px") && html.contains("<table role=\"presentation\""));
    assert!(html.contains("<!--[if mso]><table role=\"presentation\" width=\"600\""), "Outlook's fixed width");
    assert!(html.contains("@media (prefers-color-scheme: dark)"));
    let preheader = html.split("mso-hide:all;\">").nth(1).and_then(|rest| rest.split('&').next()).unwrap();
    assert!(preheader.starts_with("Choisissez un nouveau mot de passe") && preheader.contains("15 minutes"));
    assert!(html.contains("bgcolor=\"#e11d48\"") && html.contains("border-top:12px solid #e11d48"));
    assert!(html.contains("<img src=\"https://cdn.example.com/acme.png\" alt=\"Acme\""));
    assert!(html.contains("word-break:break-all"), "the fallback link breaks anywhere");
    // The button comes before the fallback link, which sits in the small print below it.
    let button = html.find("Choisir un nouveau mot de passe</a>").unwrap();
    let fallback = html.find("Si le bouton ne fonctionne pas").unwrap();
    assert!(button < fallback);
}

#[test]
fn every_locale_and_actor_type_has_a_notice_with_the_account_the_shop_and_what_to_do_and_no_link() {
    let config = templates_config(&[("SHOP_NAME", "Acme Outdoor")]);
    let templates = &config.templates;
    let english: Vec<String> = ACTOR_TYPES
        .iter()
        .map(|actor| {
            let notice = render_notice(templates, "en", actor);
            format!("{} {} {}", notice.subject, notice.text, visible_text(&notice.html))
        })
        .collect();
    for phrase in ENGLISH_NOTICE {
        assert!(english.iter().any(|words| words.contains(phrase)), "`{phrase}` is not in the English notices");
    }

    let mut subjects = HashMap::new();
    for (locale, customer_not_you, admin_not_you) in NOT_YOU {
        for (actor_type, not_you) in [("customer", customer_not_you), ("user", admin_not_you)] {
            let notice = render_notice(templates, locale, actor_type);
            let seen = visible_text(&notice.html);
            let case = format!("{locale}/{actor_type}");
            for (part, text) in [("subject", &notice.subject), ("text", &notice.text), ("html", &notice.html)] {
                assert!(!text.contains("http") && !text.contains("<a ") && !text.contains("href"), "{case} {part}");
            }
            for (part, words) in [("text", &notice.text), ("html", &seen)] {
                assert!(words.contains(not_you), "{case} {part}: what to do if it was not them:\n{words}");
                assert!(words.contains("Acme Outdoor"), "{case} {part}: the shop");
                assert!(words.contains(EMAIL), "{case} {part}: the account");
            }
            assert!(notice.html.contains(&format!("<html lang=\"{locale}\">")), "{case}");
            assert_ne!(notice.subject, render(templates, locale, actor_type, None).subject, "{case}: not the reset's");
            if locale != "en" {
                let all = format!("{} {} {}", notice.subject, notice.text, seen);
                for phrase in ENGLISH_NOTICE {
                    assert!(!all.contains(phrase), "{case}: English `{phrase}` left over:\n{all}");
                }
            }
            let subject = subjects.insert(notice.subject.clone(), case.clone());
            assert_eq!(subject, None, "{case}: a subject of its own");
        }
    }
}

#[test]
fn the_notice_has_the_reset_emails_look_with_the_brand_colour_and_no_button() {
    let config =
        templates_config(&[("SHOP_LOGO_URL", "https://cdn.example.com/acme.png"), ("SHOP_BRAND_COLOR", "#e11d48")]);
    let notice = render_notice(&config.templates, "fr", "customer");
    let html = &notice.html;
    assert!(html.contains("max-width:600px") && html.contains("<table role=\"presentation\""));
    assert!(html.contains("<!--[if mso]><table role=\"presentation\" width=\"600\""), "Outlook's fixed width");
    assert!(html.contains("@media (prefers-color-scheme: dark)"));
    let preheader = html.split("mso-hide:all;\">").nth(1).and_then(|rest| rest.split('&').next()).unwrap();
    assert_eq!(preheader, "Le mot de passe de votre compte Acme a été modifié.");
    assert!(html.contains("border-left:4px solid #e11d48"), "what to do sits in a box edged in the shop's colour");
    assert!(html.contains("<img src=\"https://cdn.example.com/acme.png\" alt=\"Acme\""));
    assert_eq!(html.matches("http").count(), 1, "the logo's address is the one URL: {html}");
    assert!(!html.contains("bgcolor"), "no button");
}

#[test]
fn html_special_characters_in_the_notice_are_escaped_in_html_only() {
    let shop = "Acme <Outdoor> & \"Sons\"";
    let config = templates_config(&[("SHOP_NAME", shop)]);
    let notice = render_notice(&config.templates, "en", "customer");
    assert!(notice.text.contains(shop) && notice.text.contains(EMAIL), "the text part is not HTML: {}", notice.text);
    for raw in ["<Outdoor>", "\"Sons\"", "o'brien"] {
        assert!(!notice.html.contains(raw), "`{raw}` unescaped in the HTML");
    }
    for escaped in ["Acme &lt;Outdoor&gt; &amp; &quot;Sons&quot;", "o&#x27;brien"] {
        assert!(notice.html.contains(escaped), "`{escaped}` missing from the HTML");
    }
}

/// Each locale's e-mails as a shop would send them, for a look in a browser.
fn write_previews(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let config = templates_config(&[("SHOP_NAME", "Medusa Store")]);
    for (locale, _) in LOCALES {
        for (actor_type, suffix) in [("customer", ""), ("user", "-user")] {
            let reset = render(&config.templates, locale, actor_type, None).html;
            let notice = render_notice(&config.templates, locale, actor_type).html;
            for (path, html) in
                [(format!("{locale}{suffix}.html"), reset), (format!("notice-{locale}{suffix}.html"), notice)]
            {
                let path = dir.join(path);
                std::fs::write(&path, &html).unwrap();
                assert_eq!(std::fs::read_to_string(&path).unwrap(), html);
            }
        }
    }
}
