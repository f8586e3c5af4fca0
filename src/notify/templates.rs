//! E-mail templates (subject, text, HTML) per locale: embedded defaults that a directory may
//! override or extend, all compiled and test-rendered at cold start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior, context};

use super::locale::Locale;
use crate::domain::metadata::Metadata;

/// The three parts of every locale. `.html` templates are HTML-escaped automatically.
const PARTS: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

/// The defaults shipped in the binary: English and German.
const EMBEDDED: [(&str, &str, &str); 6] = [
    ("en", "subject.txt", include_str!("../../templates/en/subject.txt")),
    ("en", "body.txt", include_str!("../../templates/en/body.txt")),
    ("en", "body.html", include_str!("../../templates/en/body.html")),
    ("de", "subject.txt", include_str!("../../templates/de/subject.txt")),
    ("de", "body.txt", include_str!("../../templates/de/body.txt")),
    ("de", "body.html", include_str!("../../templates/de/body.html")),
];

/// A subject is one header line; longer ones are cut.
const MAX_SUBJECT_CHARS: usize = 200;

/// What a template may use.
#[derive(Debug, Clone, Copy)]
pub struct EmailContext<'a> {
    pub link: &'a str,
    pub email: &'a str,
    pub actor_type: &'a str,
    pub expires_minutes: u64,
    pub metadata: Option<&'a Metadata>,
}

/// One rendered e-mail.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

// The body carries the reset link, which is as good as the token: never in Debug output.
impl std::fmt::Debug for RenderedEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedEmail").field("subject", &self.subject).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} is not a locale folder name such as `de` or `fr-CA`")]
    BadLocaleFolder(PathBuf),
    #[error("locale `{locale}` lacks {part}")]
    Incomplete { locale: String, part: &'static str },
    #[error("the default locale `{0}` has no templates")]
    NoDefaultLocale(String),
    #[error("template {0}")]
    Template(#[from] minijinja::Error),
}

/// Compiled templates for every known locale.
#[derive(Debug)]
pub struct EmailTemplates {
    env: Environment<'static>,
    locales: BTreeSet<String>,
    default_locale: String,
}

impl EmailTemplates {
    /// Loads the embedded templates, then `dir/<locale>/<part>` files over them, and checks them all.
    pub fn load(dir: Option<&Path>, default_locale: &Locale) -> Result<Self, TemplateError> {
        let mut sources: BTreeMap<(String, &'static str), String> =
            EMBEDDED.iter().map(|(locale, part, source)| ((locale.to_string(), *part), source.to_string())).collect();
        if let Some(dir) = dir {
            read_overrides(dir, &mut sources)?;
        }
        let locales: BTreeSet<String> = sources.keys().map(|(locale, _)| locale.clone()).collect();
        for locale in &locales {
            if let Some(part) = PARTS.iter().find(|part| !sources.contains_key(&(locale.clone(), **part))) {
                return Err(TemplateError::Incomplete { locale: locale.clone(), part });
            }
        }
        if !locales.contains(default_locale.as_str()) {
            return Err(TemplateError::NoDefaultLocale(default_locale.as_str().to_owned()));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for ((locale, part), source) in sources {
            env.add_template_owned(format!("{locale}/{part}"), source)?;
        }
        let templates = Self { env, locales, default_locale: default_locale.as_str().to_owned() };
        templates.check()?;
        Ok(templates)
    }

    /// The locales that have templates.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.locales.iter().map(String::as_str)
    }

    /// Renders the e-mail in the best locale for `requested`: the tag, its prefixes, then the default.
    pub fn render(&self, requested: Option<&Locale>, ctx: &EmailContext<'_>) -> Result<RenderedEmail, TemplateError> {
        let locale = requested
            .and_then(|locale| locale.fallbacks().find(|tag| self.locales.contains(*tag)))
            .unwrap_or(&self.default_locale);
        let values = context! {
            link => ctx.link,
            email => ctx.email,
            actor_type => ctx.actor_type,
            expires_minutes => ctx.expires_minutes,
            metadata => ctx.metadata.map(|m| Value::from(Serde(m))).unwrap_or_else(|| Value::from(())),
        };
        let render = |part: &str| self.env.get_template(&format!("{locale}/{part}"))?.render(values.clone());
        Ok(RenderedEmail {
            subject: one_line(&render("subject.txt")?),
            text: render("body.txt")?,
            html: render("body.html")?,
        })
    }

    /// Renders every locale once with sample values, so a template that fails does so at cold start.
    fn check(&self) -> Result<(), TemplateError> {
        let sample = EmailContext {
            link: "https://shop.example.com/reset-password?token=t&email=e",
            email: "customer@example.com",
            actor_type: "customer",
            expires_minutes: 15,
            metadata: None,
        };
        for locale in &self.locales {
            if let Some(locale) = Locale::parse(locale) {
                self.render(Some(&locale), &sample)?;
            }
        }
        Ok(())
    }
}

fn read_overrides(dir: &Path, sources: &mut BTreeMap<(String, &'static str), String>) -> Result<(), TemplateError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TemplateError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if !path.is_dir() {
            continue;
        }
        let locale = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(Locale::parse)
            .ok_or_else(|| TemplateError::BadLocaleFolder(path.clone()))?;
        for part in PARTS {
            let file = path.join(part);
            if file.exists() {
                let source = std::fs::read_to_string(&file).map_err(io(&file))?;
                sources.insert((locale.as_str().to_owned(), part), source);
            }
        }
    }
    Ok(())
}

/// A subject must stay one header line: control characters and line breaks become spaces.
fn one_line(rendered: &str) -> String {
    let cleaned: String = rendered.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_SUBJECT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn english() -> Locale {
        Locale::parse("en").unwrap()
    }

    fn ctx<'a>(link: &'a str, email: &'a str) -> EmailContext<'a> {
        EmailContext { link, email, actor_type: "customer", expires_minutes: 15, metadata: None }
    }

    const LINK: &str = "https://shop.example.com/reset-password?token=abc&email=a%40example.com";

    #[test]
    fn the_embedded_defaults_render_in_english_and_german() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        assert_eq!(templates.locales().collect::<Vec<_>>(), ["de", "en"]);
        let en = templates.render(None, &ctx(LINK, "a@example.com")).unwrap();
        assert_eq!(en.subject, "Reset your password");
        assert!(en.text.contains(LINK) && en.text.contains("15 minutes"));
        let de = templates.render(Locale::parse("de-AT").as_ref(), &ctx(LINK, "a@example.com")).unwrap();
        assert_eq!(de.subject, "Setzen Sie Ihr Passwort zurück");
        assert!(de.text.contains("15 Minuten"));
    }

    #[test]
    fn an_unknown_locale_falls_back_to_the_default() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        let email = templates.render(Locale::parse("ja-JP").as_ref(), &ctx(LINK, "a@example.com")).unwrap();
        assert_eq!(email.subject, "Reset your password");
    }

    #[test]
    fn html_escapes_hostile_values_and_text_keeps_them() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        let hostile = "<script>alert(1)</script>\"@example.com";
        let email = templates.render(None, &ctx(LINK, hostile)).unwrap();
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;"));
        assert!(email.html.contains("token=abc&amp;email=a%40example.com"), "the href is attribute-escaped");
        assert!(email.text.contains(hostile));
    }

    #[test]
    fn a_template_directory_overrides_and_adds_locales() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("en")).unwrap();
        std::fs::write(dir.join("en/subject.txt"), "{{ metadata.shop }}:\nreset\r\n").unwrap();
        std::fs::create_dir_all(dir.join("fr-CA")).unwrap();
        for (part, source) in [
            ("subject.txt", "Réinitialisez"),
            ("body.txt", "{{ link }}"),
            ("body.html", "<a href=\"{{ link }}\">ici</a>"),
        ] {
            std::fs::write(dir.join("fr-CA").join(part), source).unwrap();
        }
        let templates = EmailTemplates::load(Some(&dir), &english());
        // The override uses metadata.shop, which the cold-start check's sample does not have.
        assert!(matches!(templates, Err(TemplateError::Template(_))), "{templates:?}");

        std::fs::write(dir.join("en/subject.txt"), "{{ metadata.shop | default('Shop') }}:\nreset\r\n").unwrap();
        let templates = EmailTemplates::load(Some(&dir), &english()).unwrap();
        let meta = Metadata::parse(json!({"shop": "<b>Acme</b>"}).as_object().cloned().unwrap()).unwrap();
        let email =
            templates.render(None, &EmailContext { metadata: Some(&meta), ..ctx(LINK, "a@example.com") }).unwrap();
        assert_eq!(email.subject, "<b>Acme</b>: reset", "one line, not escaped: a subject is not HTML");
        let fr = templates.render(Locale::parse("fr-CA").as_ref(), &ctx(LINK, "a@example.com")).unwrap();
        assert_eq!(fr.subject, "Réinitialisez");
        // minijinja also escapes `/` (as `&#x2f;`), which browsers decode in attributes like any entity.
        assert!(
            fr.html.starts_with("<a href=\"https:")
                && fr.html.contains("?token=abc&amp;email=a%40example.com\">ici</a>")
        );
    }

    #[test]
    fn an_incomplete_locale_or_missing_default_is_refused() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("it")).unwrap();
        std::fs::write(dir.join("it/subject.txt"), "Reimposta").unwrap();
        assert!(matches!(EmailTemplates::load(Some(&dir), &english()), Err(TemplateError::Incomplete { .. })));
        let none = EmailTemplates::load(None, &Locale::parse("it").unwrap());
        assert!(matches!(none, Err(TemplateError::NoDefaultLocale(_))));
    }

    #[test]
    fn a_syntax_error_is_found_at_load() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("en")).unwrap();
        std::fs::write(dir.join("en/body.txt"), "{% if %}").unwrap();
        assert!(matches!(EmailTemplates::load(Some(&dir), &english()), Err(TemplateError::Template(_))));
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
