//! E-mail templates per kind, locale and actor type: layouts written once, each locale's words, and
//! any part a directory overrides; what the directory gives is compiled and test-rendered at cold start.
//!
//! Two kinds of e-mail, each in a folder of its own laid out the same way: the reset e-mail with its
//! link (the folder's top level) and the notice that a password was changed, which has no link
//! (`notice/`). Within a kind, a part (`subject.txt`, `body.txt`, `body.html`) for locale `L` and
//! actor type `A` is the first of `L/A/<part>`, `L/<part>`, and `_layout/<part>` fed with
//! `L/A/words.txt` or else `L/words.txt`.

pub mod shop;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, context, escape_formatter};

use self::shop::Shop;
use crate::domain::error_chain::with_causes;
use crate::domain::locale::Locale;
use crate::domain::metadata::Metadata;
use crate::domain::recipient::Recipient;
use crate::mail::Email;

/// The three parts of every e-mail. `.html` templates are HTML-escaped automatically.
const PARTS: [&str; 3] = ["subject.txt", "body.txt", "body.html"];
/// A locale's sentences as plain-text `set`s, imported by the layouts (which escape them in HTML).
const WORDS: &str = "words.txt";
/// The folder of the layouts every locale of a kind shares.
const LAYOUT: &str = "_layout";
/// The folder of the password-changed notice's templates. Not a locale: a locale's language has
/// two or three letters.
const NOTICE: &str = "notice";

/// Embeds the files under `templates/`, named by their path there.
macro_rules! embedded {
    ($($path:literal),* $(,)?) => { &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $path)))),*] };
}

/// The defaults shipped in the binary: for each kind the layouts, and words for customers and
/// admin users.
const EMBEDDED: &[(&str, &str)] = embedded![
    "_layout/subject.txt",
    "_layout/body.txt",
    "_layout/body.html",
    "_layout/card.html",
    "en/words.txt",
    "en/user/words.txt",
    "de/words.txt",
    "de/user/words.txt",
    "fr/words.txt",
    "fr/user/words.txt",
    "es/words.txt",
    "es/user/words.txt",
    "it/words.txt",
    "it/user/words.txt",
    "nl/words.txt",
    "nl/user/words.txt",
    "pt-BR/words.txt",
    "pt-BR/user/words.txt",
    "pl/words.txt",
    "pl/user/words.txt",
    "notice/_layout/subject.txt",
    "notice/_layout/body.txt",
    "notice/_layout/body.html",
    "notice/en/words.txt",
    "notice/en/user/words.txt",
    "notice/de/words.txt",
    "notice/de/user/words.txt",
    "notice/fr/words.txt",
    "notice/fr/user/words.txt",
    "notice/es/words.txt",
    "notice/es/user/words.txt",
    "notice/it/words.txt",
    "notice/it/user/words.txt",
    "notice/nl/words.txt",
    "notice/nl/user/words.txt",
    "notice/pt-BR/words.txt",
    "notice/pt-BR/user/words.txt",
    "notice/pl/words.txt",
    "notice/pl/user/words.txt",
];

/// A subject is one header line; longer ones are cut.
const MAX_SUBJECT_CHARS: usize = 200;
/// From this many minutes on, the words say hours: "1440 minutes" is no way to say a day.
const HOURS_FROM_MINUTES: u64 = 120;

/// The kinds of e-mail the notifier sends, each with templates of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmailKind {
    /// The reset e-mail, with its link: the templates folder's top level.
    Reset,
    /// The notice that a password was changed, with no link: the templates folder's `notice/`.
    Notice,
}

impl EmailKind {
    pub const ALL: [Self; 2] = [Self::Reset, Self::Notice];

    /// How the kind's template names begin: its folder under the templates folder.
    fn prefix(self) -> &'static str {
        match self {
            Self::Reset => "",
            Self::Notice => "notice/",
        }
    }

    /// The kind a template name belongs to, and the name within the kind's folder.
    fn of(name: &str) -> (Self, &str) {
        match name.strip_prefix(Self::Notice.prefix()) {
            Some(rest) => (Self::Notice, rest),
            None => (Self::Reset, name),
        }
    }
}

/// What a reset e-mail's template may use.
#[derive(Debug, Clone, Copy)]
pub struct EmailContext<'a> {
    pub link: &'a str,
    pub email: &'a str,
    pub actor_type: &'a str,
    pub expires_minutes: u64,
    pub metadata: Option<&'a Metadata>,
}

/// What a password-changed notice's template may use: no link and no token, which it has none of.
#[derive(Debug, Clone, Copy)]
pub struct NoticeContext<'a> {
    pub email: &'a str,
    pub actor_type: &'a str,
    pub metadata: Option<&'a Metadata>,
}

/// One rendered e-mail.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl RenderedEmail {
    /// The e-mail to send to `to`, who has this actor type, written in `locale` (see `locale_for`).
    pub fn addressed_to(self, to: Recipient, actor_type: &str, locale: &str) -> Email {
        let Self { subject, text, html } = self;
        Email { to, subject, text, html, locale: locale.to_owned(), actor_type: actor_type.to_owned() }
    }
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
    #[error("{0} is not a locale folder name such as `de` or `fr-CA` (or `notice`, `_layout`)")]
    BadLocaleFolder(PathBuf),
    #[error("{0} is not an actor type folder name such as `user` (a-z, 0-9, `_`, `-`)")]
    BadActorFolder(PathBuf),
    #[error("locale `{locale}` lacks {part} (and words.txt for the shared layout)")]
    Incomplete { locale: String, part: &'static str },
    #[error("the default locale `{0}` has no templates")]
    NoDefaultLocale(String),
    #[error("the default locale `{0}` has no password-changed notice (notice/{0}/words.txt)")]
    NoDefaultNoticeLocale(String),
    #[error("template {}", with_causes(.0))]
    Template(#[from] minijinja::Error),
}

/// Which template renders each part, and the words they import (none for a locale's own parts).
#[derive(Debug, Clone)]
struct Plan {
    subject: String,
    text: String,
    html: String,
    words: Option<String>,
}

impl Plan {
    fn names(&self) -> impl Iterator<Item = &str> {
        [&self.subject, &self.text, &self.html].into_iter().map(String::as_str).chain(self.words.as_deref())
    }
}

/// One locale's plan, and those of the actor types that have files of their own.
#[derive(Debug)]
struct LocalePlans {
    base: Plan,
    actors: BTreeMap<String, Plan>,
}

/// A part a locale lacks (`TemplateError::Incomplete`), kept with the locale whose plans lack it.
#[derive(Debug, Clone)]
struct Missing {
    locale: String,
    part: &'static str,
}

impl From<Missing> for TemplateError {
    fn from(Missing { locale, part }: Missing) -> Self {
        Self::Incomplete { locale, part }
    }
}

/// One locale of a kind: its tag, the actor types with files of their own, and its plans, worked
/// out on first use. An invocation renders one locale, and working out every locale's would be
/// most of the catalogue's cost at cold start. With a template directory, every one is worked out
/// at load, so that an incomplete locale stops the start.
#[derive(Debug)]
struct LocaleEntry {
    tag: String,
    actors: BTreeSet<String>,
    plans: OnceLock<Result<LocalePlans, Missing>>,
}

impl LocaleEntry {
    fn plans(&self, names: &BTreeSet<String>, kind: EmailKind) -> Result<&LocalePlans, TemplateError> {
        let plans = self.plans.get_or_init(|| {
            let base = plan(names, kind, &self.tag, None)?;
            let actors = self
                .actors
                .iter()
                .map(|actor| Ok((actor.clone(), plan(names, kind, &self.tag, Some(actor))?)))
                .collect::<Result<_, Missing>>()?;
            Ok(LocalePlans { base, actors })
        });
        plans.as_ref().map_err(|missing| missing.clone().into())
    }
}

impl LocalePlans {
    /// The plan for `actor_type`: its own where it has files, else the locale's.
    fn for_actor(&self, actor_type: &str) -> &Plan {
        self.actors.get(actor_type).unwrap_or(&self.base)
    }

    /// Every plan, the locale's own as the customers'.
    fn each(&self) -> impl Iterator<Item = (&str, &Plan)> {
        let actors = self.actors.iter().map(|(actor, plan)| (actor.as_str(), plan));
        std::iter::once(("customer", &self.base)).chain(actors)
    }
}

/// One kind's locales, and the default one.
#[derive(Debug)]
struct Catalog {
    kind: EmailKind,
    locales: BTreeMap<String, LocaleEntry>,
    default: String,
}

impl Catalog {
    fn new(names: &BTreeSet<String>, kind: EmailKind, default_locale: &Locale) -> Result<Self, TemplateError> {
        let locales = locale_entries(names, kind);
        let tag = default_locale.as_str();
        if !locales.contains_key(tag) {
            return Err(match kind {
                EmailKind::Reset => TemplateError::NoDefaultLocale(tag.to_owned()),
                EmailKind::Notice => TemplateError::NoDefaultNoticeLocale(tag.to_owned()),
            });
        }
        Ok(Self { kind, locales, default: tag.to_owned() })
    }

    /// The plan for `actor_type` in the best locale for `requested`.
    fn plan(
        &self,
        names: &BTreeSet<String>,
        requested: Option<&Locale>,
        actor_type: &str,
    ) -> Result<&Plan, TemplateError> {
        Ok(self.pick(requested).plans(names, self.kind)?.for_actor(actor_type))
    }

    /// The tag, then its shorter prefixes, then any region of its language (`pt` and `pt-PT`
    /// read Brazilian Portuguese rather than the default), then the default.
    fn pick(&self, requested: Option<&Locale>) -> &LocaleEntry {
        // `new` made sure the default is one of the locales.
        let default = &self.locales[&self.default];
        let Some(requested) = requested else {
            return default;
        };
        requested
            .fallbacks()
            .find_map(|tag| self.locales.get(tag))
            .or_else(|| {
                let language = requested.language();
                self.locales
                    .iter()
                    .find(|(tag, _)| tag.strip_prefix(language).is_some_and(|rest| rest.starts_with('-')))
                    .map(|(_, entry)| entry)
            })
            .unwrap_or(default)
    }
}

/// Compiled templates for every kind, known locale and actor type.
#[derive(Debug)]
pub struct EmailTemplates {
    env: Environment<'static>,
    /// Every template's name, embedded or from the directory.
    names: BTreeSet<String>,
    reset: Catalog,
    notice: Catalog,
    shop: Value,
}

impl EmailTemplates {
    /// Loads the embedded templates, then `dir`'s files over them, and checks what `dir` gave; no shop
    /// name, logo or colour (the words then leave the shop out).
    pub fn load(dir: Option<&Path>, default_locale: &Locale) -> Result<Self, TemplateError> {
        Self::load_for_shop(dir, default_locale, &Shop::default())
    }

    /// As `load`, with the shop the e-mails show. Both kinds need the default locale.
    pub fn load_for_shop(dir: Option<&Path>, default_locale: &Locale, shop: &Shop) -> Result<Self, TemplateError> {
        // The embedded sources are borrowed: minijinja's loader copies one when it is first used.
        let mut sources: BTreeMap<String, Cow<'static, str>> = BTreeMap::new();
        for (path, source) in EMBEDDED {
            if let Some(name) = template_name(path) {
                sources.insert(name, Cow::Borrowed(*source));
            }
        }
        let mut overridden = BTreeSet::new();
        if let Some(dir) = dir {
            read_overrides(dir, EmailKind::Reset, &mut sources, &mut overridden)?;
        }
        let names: BTreeSet<String> = sources.keys().cloned().collect();
        let reset = Catalog::new(&names, EmailKind::Reset, default_locale)?;
        let notice = Catalog::new(&names, EmailKind::Notice, default_locale)?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(escape_html);
        // Compiled on first use, not at cold start: an invocation renders one kind in one locale,
        // and compiling every embedded file up front would lengthen each cold start (README:
        // Benchmarks); the tests render every one.
        env.set_loader(move |name| Ok(sources.get(name).map(|source| source.clone().into_owned())));
        let templates = Self { env, names, reset, notice, shop: shop.to_value() };
        if dir.is_some() {
            templates.check(&overridden)?;
        }
        Ok(templates)
    }

    /// The locales that have reset e-mail templates.
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.locales_of(EmailKind::Reset)
    }

    /// The locales that have templates of this kind.
    pub fn locales_of(&self, kind: EmailKind) -> impl Iterator<Item = &str> {
        self.catalog(kind).locales.keys().map(String::as_str)
    }

    /// The actor types with reset words or parts of their own in `locale` (the rest get the locale's).
    pub fn actor_types(&self, locale: &str) -> impl Iterator<Item = &str> {
        self.actor_types_of(EmailKind::Reset, locale)
    }

    /// The actor types with words or parts of their own for this kind in `locale`.
    pub fn actor_types_of(&self, kind: EmailKind, locale: &str) -> impl Iterator<Item = &str> {
        let entry = self.catalog(kind).locales.get(locale);
        entry.into_iter().flat_map(|entry| entry.actors.iter().map(String::as_str))
    }

    /// Renders the reset e-mail in the best locale for `requested` (see `Catalog::pick`), in the
    /// words for the event's actor type where the locale has them.
    pub fn render(&self, requested: Option<&Locale>, ctx: &EmailContext<'_>) -> Result<RenderedEmail, TemplateError> {
        let plan = self.reset.plan(&self.names, requested, ctx.actor_type)?;
        self.render_plan(plan, self.reset_values(plan, ctx))
    }

    /// Renders the password-changed notice as `render` does the reset e-mail.
    pub fn render_notice(
        &self,
        requested: Option<&Locale>,
        ctx: &NoticeContext<'_>,
    ) -> Result<RenderedEmail, TemplateError> {
        let plan = self.notice.plan(&self.names, requested, ctx.actor_type)?;
        self.render_plan(plan, self.notice_values(plan, ctx))
    }

    fn reset_values(&self, plan: &Plan, ctx: &EmailContext<'_>) -> Value {
        context! {
            link => ctx.link,
            email => ctx.email,
            actor_type => ctx.actor_type,
            expires_minutes => ctx.expires_minutes,
            expires_hours => (ctx.expires_minutes >= HOURS_FROM_MINUTES).then(|| (ctx.expires_minutes + 30) / 60),
            metadata => metadata_value(ctx.metadata),
            shop => self.shop.clone(),
            words => plan.words.as_deref(),
        }
    }

    fn notice_values(&self, plan: &Plan, ctx: &NoticeContext<'_>) -> Value {
        context! {
            email => ctx.email,
            actor_type => ctx.actor_type,
            metadata => metadata_value(ctx.metadata),
            shop => self.shop.clone(),
            words => plan.words.as_deref(),
        }
    }

    fn render_plan(&self, plan: &Plan, values: Value) -> Result<RenderedEmail, TemplateError> {
        let render = |name: &str| self.env.get_template(name)?.render(&values);
        Ok(RenderedEmail {
            subject: one_line(&render(&plan.subject)?),
            text: render(&plan.text)?,
            html: render(&plan.html)?,
        })
    }

    /// The locale `render` writes the reset e-mail in for `requested`, after fallbacks: `pt-br` for `pt`.
    pub fn locale_for(&self, requested: Option<&Locale>) -> &str {
        self.locale_of(EmailKind::Reset, requested)
    }

    /// The locale this kind of e-mail is written in for `requested`, after fallbacks.
    pub fn locale_of(&self, kind: EmailKind, requested: Option<&Locale>) -> &str {
        &self.catalog(kind).pick(requested).tag
    }

    fn catalog(&self, kind: EmailKind) -> &Catalog {
        match kind {
            EmailKind::Reset => &self.reset,
            EmailKind::Notice => &self.notice,
        }
    }

    /// Works out every kind's and locale's plans, so that a locale the template directory left
    /// incomplete stops the start, then renders with sample values every plan that uses a file
    /// from the directory, so that such a template fails at cold start and not on an event.
    fn check(&self, overridden: &BTreeSet<String>) -> Result<(), TemplateError> {
        let uses_an_override = |plan: &Plan| plan.names().any(|name| overridden.contains(name));
        for kind in EmailKind::ALL {
            let entries = self.catalog(kind).locales.values();
            let every = entries.map(|entry| entry.plans(&self.names, kind)).collect::<Result<Vec<_>, _>>()?;
            for (actor_type, plan) in
                every.into_iter().flat_map(LocalePlans::each).filter(|(_, plan)| uses_an_override(plan))
            {
                let email = "customer@example.com";
                let values = match kind {
                    EmailKind::Reset => {
                        let link = "https://shop.example.com/reset-password?token=t&email=e";
                        let sample = EmailContext { link, email, actor_type, expires_minutes: 15, metadata: None };
                        self.reset_values(plan, &sample)
                    }
                    EmailKind::Notice => self.notice_values(plan, &NoticeContext { email, actor_type, metadata: None }),
                };
                self.render_plan(plan, values)?;
            }
        }
        Ok(())
    }
}

/// `metadata` as the templates see it: the event's object, or none.
fn metadata_value(metadata: Option<&Metadata>) -> Value {
    metadata.map(|m| Value::from(Serde(m))).unwrap_or_else(|| Value::from(()))
}

/// minijinja's HTML escaping (`&`, `<`, `>`, `"`, `'`) but for `/`, which it writes `&#x2f;`: a slash
/// is harmless in text and quoted attributes, and a link's `href` then reads as the link to
/// click-tracking rewriters and mail filters that decode `&amp;` but no other character reference.
fn escape_html(out: &mut Output, state: &mut State, value: &Value) -> Result<(), minijinja::Error> {
    if !matches!(state.auto_escape(), AutoEscape::Html) || value.is_safe() {
        return escape_formatter(out, state, value);
    }
    let owned;
    let text = match value.as_str() {
        Some(text) => text,
        None => {
            owned = value.to_string();
            &owned
        }
    };
    let mut written = 0;
    for (at, c) in text.char_indices() {
        let entity = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#x27;",
            _ => continue,
        };
        out.write_str(&text[written..at])?;
        out.write_str(entity)?;
        written = at + 1;
    }
    out.write_str(&text[written..])?;
    Ok(())
}

/// `pt-BR/user/words.txt` → `pt-br/user/words.txt`, `notice/pt-BR/words.txt` →
/// `notice/pt-br/words.txt`: locale folders by their normal form.
fn template_name(path: &str) -> Option<String> {
    let (kind, path) = EmailKind::of(path);
    let (folder, rest) = path.split_once('/')?;
    let prefix = kind.prefix();
    if folder == LAYOUT {
        return Some(format!("{prefix}{path}"));
    }
    Some(format!("{prefix}{}/{rest}", Locale::parse(folder)?.as_str()))
}

/// Each locale of this kind of e-mail, with the actor types that have files of their own; their
/// plans are worked out on first use.
fn locale_entries(names: &BTreeSet<String>, kind: EmailKind) -> BTreeMap<String, LocaleEntry> {
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in names {
        let (of, name) = EmailKind::of(name);
        if of != kind {
            continue;
        }
        let segments: Vec<&str> = name.split('/').collect();
        match segments[..] {
            [LAYOUT, ..] => {}
            [locale, _] => {
                found.entry(locale.to_owned()).or_default();
            }
            [locale, actor, _] => {
                found.entry(locale.to_owned()).or_default().insert(actor.to_owned());
            }
            _ => {}
        }
    }
    found.into_iter().map(|(tag, actors)| (tag.clone(), LocaleEntry { tag, actors, plans: OnceLock::new() })).collect()
}

fn plan(names: &BTreeSet<String>, kind: EmailKind, locale: &str, actor: Option<&str>) -> Result<Plan, Missing> {
    let prefix = kind.prefix();
    let existing = |name: String| names.contains(name.as_str()).then_some(name);
    let own = |file: &str| actor.and_then(|actor| existing(format!("{prefix}{locale}/{actor}/{file}")));
    let local = |file: &str| own(file).or_else(|| existing(format!("{prefix}{locale}/{file}")));
    let words = local(WORDS);
    let part = |part: &'static str| {
        let layout = || words.as_ref().and_then(|_| existing(format!("{prefix}{LAYOUT}/{part}")));
        local(part).or_else(layout).ok_or_else(|| {
            let locale = actor.map_or_else(|| format!("{prefix}{locale}"), |actor| format!("{prefix}{locale}/{actor}"));
            Missing { locale, part }
        })
    };
    Ok(Plan { subject: part(PARTS[0])?, text: part(PARTS[1])?, html: part(PARTS[2])?, words })
}

/// Reads `dir/_layout/<part>`, `dir/<locale>/<file>` and `dir/<locale>/<actor type>/<file>` for
/// this kind; at the top level, `dir/notice/` the same way for the notice.
fn read_overrides(
    dir: &Path,
    kind: EmailKind,
    sources: &mut BTreeMap<String, Cow<'static, str>>,
    overridden: &mut BTreeSet<String>,
) -> Result<(), TemplateError> {
    let prefix = kind.prefix();
    for path in subfolders(dir)? {
        let Some(folder) = path.file_name().and_then(|name| name.to_str()) else {
            return Err(TemplateError::BadLocaleFolder(path));
        };
        if folder == LAYOUT {
            read_files(&path, &format!("{prefix}{LAYOUT}"), &PARTS, sources, overridden)?;
            continue;
        }
        if folder == NOTICE && kind == EmailKind::Reset {
            read_overrides(&path, EmailKind::Notice, sources, overridden)?;
            continue;
        }
        let locale = Locale::parse(folder).ok_or_else(|| TemplateError::BadLocaleFolder(path.clone()))?;
        let files = [PARTS[0], PARTS[1], PARTS[2], WORDS];
        let locale = format!("{prefix}{}", locale.as_str());
        read_files(&path, &locale, &files, sources, overridden)?;
        for actor_path in subfolders(&path)? {
            let actor = actor_path
                .file_name()
                .and_then(|name| name.to_str())
                .filter(|name| is_actor_type(name))
                .ok_or_else(|| TemplateError::BadActorFolder(actor_path.clone()))?;
            read_files(&actor_path, &format!("{locale}/{actor}"), &files, sources, overridden)?;
        }
    }
    Ok(())
}

fn subfolders(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let io = |source| TemplateError::Io { path: dir.to_owned(), source };
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            folders.push(path);
        }
    }
    Ok(folders)
}

fn read_files(
    folder: &Path,
    prefix: &str,
    files: &[&str],
    sources: &mut BTreeMap<String, Cow<'static, str>>,
    overridden: &mut BTreeSet<String>,
) -> Result<(), TemplateError> {
    for file in files {
        let path = folder.join(file);
        if path.exists() {
            let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::Io { path, source })?;
            let name = format!("{prefix}/{file}");
            sources.insert(name.clone(), Cow::Owned(source));
            overridden.insert(name);
        }
    }
    Ok(())
}

/// The names `AUTH_PROVIDERS` accepts for actor types.
fn is_actor_type(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A subject must stay one header line: control characters and line breaks become spaces.
fn one_line(rendered: &str) -> String {
    let cleaned: String = rendered.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_SUBJECT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::shop::{BrandColor, LogoUrl, ShopName};
    use super::*;
    use serde_json::json;

    fn english() -> Locale {
        Locale::parse("en").unwrap()
    }

    fn ctx<'a>(link: &'a str, email: &'a str) -> EmailContext<'a> {
        EmailContext { link, email, actor_type: "customer", expires_minutes: 15, metadata: None }
    }

    fn render(templates: &EmailTemplates, locale: &str, ctx: &EmailContext<'_>) -> RenderedEmail {
        templates.render(Locale::parse(locale).as_ref(), ctx).unwrap()
    }

    const LINK: &str = "https://shop.example.com/reset-password?token=abc&email=a%40example.com";

    #[test]
    fn the_embedded_defaults_cover_eight_locales_for_customers_and_admin_users() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        assert_eq!(templates.locales().collect::<Vec<_>>(), ["de", "en", "es", "fr", "it", "nl", "pl", "pt-br"]);
        for locale in templates.locales() {
            assert_eq!(templates.actor_types(locale).collect::<Vec<_>>(), ["user"], "{locale}");
        }
        let en = templates.render(None, &ctx(LINK, "a@example.com")).unwrap();
        assert_eq!(en.subject, "Reset your password");
        assert!(en.text.contains(LINK) && en.text.contains("15 minutes"));
        let de = render(&templates, "de-AT", &ctx(LINK, "a@example.com"));
        assert_eq!(de.subject, "Setzen Sie Ihr Passwort zurück");
        assert!(de.text.contains("15 Minuten"));
    }

    #[test]
    fn an_unknown_locale_falls_back_to_the_default() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        let email = render(&templates, "ja-JP", &ctx(LINK, "a@example.com"));
        assert_eq!(email.subject, "Reset your password");
        let written_in = |tag: &str| templates.locale_for(Locale::parse(tag).as_ref()).to_owned();
        assert_eq!(written_in("ja-JP"), "en", "the locale an e-mail is written in, after fallbacks");
        assert_eq!(written_in("pt_BR"), "pt-br");
        assert_eq!(written_in("pt-PT"), "pt-br");
        assert_eq!(written_in("de-AT"), "de");
        assert_eq!(templates.locale_for(None), "en");
    }

    #[test]
    fn every_spelling_of_portuguese_reads_brazilian_portuguese() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        for tag in ["pt-BR", "pt-br", "PT_BR", "pt_br", "pt", "pt-PT", "PT"] {
            let email = render(&templates, tag, &ctx(LINK, "a@example.com"));
            assert_eq!(email.subject, "Redefina sua senha", "{tag}");
            assert!(email.html.contains("<html lang=\"pt-BR\""), "{tag}");
        }
    }

    #[test]
    fn an_admin_user_is_told_about_the_dashboard_and_other_actor_types_get_the_locale_words() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        let dashboard = "https://admin.example.com/app/reset-password?token=abc";
        let admin = render(&templates, "en", &EmailContext { actor_type: "user", ..ctx(dashboard, "a@example.com") });
        assert_eq!(admin.subject, "Reset your admin password");
        assert!(admin.text.contains("admin dashboard") && !admin.text.contains("shop"), "{}", admin.text);
        let vendor = render(&templates, "en", &EmailContext { actor_type: "vendor", ..ctx(LINK, "a@example.com") });
        assert_eq!(vendor.subject, "Reset your password");
        let de = render(&templates, "de", &EmailContext { actor_type: "user", ..ctx(LINK, "a@example.com") });
        assert_eq!(de.subject, "Setzen Sie Ihr Admin-Passwort zurück");
    }

    #[test]
    fn the_expiry_is_said_with_each_language_plural_and_in_hours_from_two_hours_on() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        let text = |locale: &str, minutes: u64| {
            render(&templates, locale, &EmailContext { expires_minutes: minutes, ..ctx(LINK, "a@example.com") }).text
        };
        for (locale, minutes, said) in [
            ("en", 1, "expires in 1 minute."),
            ("en", 2, "expires in 2 minutes."),
            ("en", 119, "expires in 119 minutes."),
            ("en", 1439, "expires in 24 hours."),
            ("de", 1, "in einer Minute ab"),
            ("fr", 1, "dans 1 minute."),
            ("nl", 1440, "24 uur geldig"),
            ("pl", 1, "przez 1 minutę."),
            ("pl", 3, "przez 3 minuty."),
            ("pl", 5, "przez 5 minut."),
            ("pl", 12, "przez 12 minut."),
            ("pl", 22, "przez 22 minuty."),
            ("pl", 1440, "przez 24 godziny."),
            ("pl", 300, "przez 5 godzin."),
        ] {
            let text = text(locale, minutes);
            assert!(text.contains(said), "{locale} {minutes}: {text}");
        }
    }

    /// The embedded templates are compiled on first use, not at cold start: this renders each branch.
    #[test]
    fn every_embedded_locale_and_actor_type_renders_every_expiry_with_and_without_a_shop_name() {
        let named = Shop { name: Some(ShopName::parse("Acme").unwrap()), ..Shop::default() };
        for shop in [Shop::default(), named] {
            let templates = EmailTemplates::load_for_shop(None, &english(), &shop).unwrap();
            let locales: Vec<&str> = templates.locales().collect();
            for locale in locales {
                for actor_type in ["customer", "user", "vendor"] {
                    for minutes in [1, 2, 5, 12, 22, 119, 120, 1439] {
                        let context =
                            EmailContext { actor_type, expires_minutes: minutes, ..ctx(LINK, "a@example.com") };
                        let email = render(&templates, locale, &context);
                        let said = if minutes >= HOURS_FROM_MINUTES { (minutes + 30) / 60 } else { minutes };
                        let case = format!("{locale}/{actor_type}/{minutes}/{:?}", shop.name);
                        assert!(
                            email.text.contains(&format!("{said} ")) || (locale, minutes) == ("de", 1),
                            "{case}: {}",
                            email.text
                        );
                        for sloppy in ["  ", " .", " ,", "( ", " )"] {
                            assert!(!email.text.contains(sloppy), "{case}: `{sloppy}` in {}", email.text);
                        }
                        assert_eq!(email.text.contains("Acme"), shop.name.is_some(), "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_shop_name_logo_and_colour_appear_and_without_a_name_the_sentences_leave_it_out() {
        let shop = Shop {
            name: Some(ShopName::parse("Acme").unwrap()),
            logo: Some(LogoUrl::parse("https://cdn.example.com/logo.png").unwrap()),
            color: BrandColor::parse("#ffd60a").unwrap(),
        };
        let templates = EmailTemplates::load_for_shop(None, &english(), &shop).unwrap();
        let email = templates.render(None, &ctx(LINK, "a@example.com")).unwrap();
        assert!(email.text.contains("for your Acme account (a@example.com)"), "{}", email.text);
        assert!(email.text.ends_with("The Acme team"), "{}", email.text);
        assert!(email.html.contains("src=\"https://cdn.example.com/logo.png\" alt=\"Acme\""));
        assert!(email.html.contains("background-color:#ffd60a") && email.html.contains("color:#111111;"));

        let plain = EmailTemplates::load(None, &english()).unwrap();
        let email = plain.render(None, &ctx(LINK, "a@example.com")).unwrap();
        assert!(email.text.contains("for your account (a@example.com)"), "{}", email.text);
        assert!(!email.text.contains("team") && !email.html.contains("<img"), "{}", email.text);
        assert!(email.html.contains("background-color:#2563eb"), "the default colour");
    }

    #[test]
    fn html_escapes_hostile_values_and_text_keeps_them() {
        let shop = Shop { name: Some(ShopName::parse("<b>Acme</b> & \"Co\"").unwrap()), ..Shop::default() };
        let templates = EmailTemplates::load_for_shop(None, &english(), &shop).unwrap();
        let hostile = "<script>alert(1)</script>\"@example.com";
        let email = templates.render(None, &ctx(LINK, hostile)).unwrap();
        assert!(!email.html.contains("<script>") && !email.html.contains("<b>"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;") && email.html.contains("&lt;b&gt;Acme"));
        assert!(email.html.contains("&amp; &quot;Co&quot;"));
        assert!(email.html.contains("token=abc&amp;email=a%40example.com"), "the href is attribute-escaped");
        assert!(email.text.contains(hostile) && email.text.contains("<b>Acme</b> & \"Co\""));
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
        assert!(email.text.starts_with("Hello,"), "the parts not overridden stay embedded");
        let fr = render(&templates, "fr-CA", &ctx(LINK, "a@example.com"));
        assert_eq!(fr.subject, "Réinitialisez");
        assert_eq!(
            fr.html,
            "<a href=\"https://shop.example.com/reset-password?token=abc&amp;email=a%40example.com\">ici</a>"
        );
        let fr = render(&templates, "fr-FR", &ctx(LINK, "a@example.com"));
        assert_eq!(fr.subject, "Réinitialisez votre mot de passe", "fr-FR reads the embedded fr, not fr-CA");
    }

    #[test]
    fn an_actor_type_folder_overrides_only_that_actor_type_and_only_its_files() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("de/user")).unwrap();
        std::fs::write(dir.join("de/user/subject.txt"), "Admin: {{ email }}").unwrap();
        std::fs::create_dir_all(dir.join("de/vendor")).unwrap();
        let vendor_words = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/de/words.txt"))
            .replace("Hallo,", "Hallo Händler,");
        std::fs::write(dir.join("de/vendor/words.txt"), vendor_words).unwrap();
        let templates = EmailTemplates::load(Some(&dir), &english()).unwrap();
        let as_actor =
            |actor_type| render(&templates, "de", &EmailContext { actor_type, ..ctx(LINK, "a@example.com") });
        let admin = as_actor("user");
        assert_eq!(admin.subject, "Admin: a@example.com");
        assert!(admin.text.contains("Admin-Dashboard"), "the admin's words are still the embedded ones");
        let vendor = as_actor("vendor");
        assert!(vendor.text.starts_with("Hallo Händler,") && vendor.html.contains("Hallo Händler,"));
        assert_eq!(vendor.subject, "Setzen Sie Ihr Passwort zurück");
        assert!(as_actor("customer").text.starts_with("Hallo,\n"));
    }

    #[test]
    fn a_shared_layout_can_be_overridden_for_every_locale() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("_layout")).unwrap();
        std::fs::write(dir.join("_layout/subject.txt"), "{% import words as t %}[{{ shop.name }}] {{ t.subject }}")
            .unwrap();
        let shop = Shop { name: Some(ShopName::parse("Acme").unwrap()), ..Shop::default() };
        let templates = EmailTemplates::load_for_shop(Some(&dir), &english(), &shop).unwrap();
        assert_eq!(
            render(&templates, "nl", &ctx(LINK, "a@example.com")).subject,
            "[Acme] Stel je wachtwoord opnieuw in"
        );
    }

    #[test]
    fn an_incomplete_locale_a_bad_folder_or_missing_default_is_refused() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("sv")).unwrap();
        std::fs::write(dir.join("sv/subject.txt"), "Återställ").unwrap();
        assert!(matches!(EmailTemplates::load(Some(&dir), &english()), Err(TemplateError::Incomplete { .. })));
        let none = EmailTemplates::load(None, &Locale::parse("sv").unwrap());
        assert!(matches!(none, Err(TemplateError::NoDefaultLocale(_))));

        let dir = tempdir();
        std::fs::create_dir_all(dir.join("en/Admin Users")).unwrap();
        assert!(matches!(EmailTemplates::load(Some(&dir), &english()), Err(TemplateError::BadActorFolder(_))));
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("english")).unwrap();
        assert!(matches!(EmailTemplates::load(Some(&dir), &english()), Err(TemplateError::BadLocaleFolder(_))));
    }

    #[test]
    fn a_syntax_error_is_found_at_load() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("en")).unwrap();
        std::fs::write(dir.join("en/body.txt"), "{% if %}").unwrap();
        assert!(matches!(EmailTemplates::load(Some(&dir), &english()), Err(TemplateError::Template(_))));
    }

    fn notice(email: &str) -> NoticeContext<'_> {
        NoticeContext { email, actor_type: "customer", metadata: None }
    }

    fn render_notice(templates: &EmailTemplates, locale: &str, ctx: &NoticeContext<'_>) -> RenderedEmail {
        templates.render_notice(Locale::parse(locale).as_ref(), ctx).unwrap()
    }

    #[test]
    fn the_embedded_notice_covers_the_same_eight_locales_for_customers_and_admin_users() {
        let templates = EmailTemplates::load(None, &english()).unwrap();
        let reset: Vec<&str> = templates.locales().collect();
        assert_eq!(templates.locales_of(EmailKind::Notice).collect::<Vec<_>>(), reset);
        for locale in reset {
            assert_eq!(templates.actor_types_of(EmailKind::Notice, locale).collect::<Vec<_>>(), ["user"], "{locale}");
        }
        let en = templates.render_notice(None, &notice("a@example.com")).unwrap();
        assert_eq!(en.subject, "Your password was changed");
        assert!(en.text.contains("(a@example.com) was changed"), "{}", en.text);
        let admin = render_notice(&templates, "en", &NoticeContext { actor_type: "user", ..notice("a@example.com") });
        assert_eq!(admin.subject, "Your admin password was changed");
        assert_eq!(render_notice(&templates, "de-AT", &notice("a@example.com")).subject, "Ihr Passwort wurde geändert");
        let written_in = |tag: &str| templates.locale_of(EmailKind::Notice, Locale::parse(tag).as_ref()).to_owned();
        assert_eq!(
            (written_in("pt"), written_in("ja"), written_in("fr-CA")),
            ("pt-br".into(), "en".into(), "fr".into())
        );
    }

    /// The embedded templates are compiled on first use, not at cold start: this renders each notice.
    #[test]
    fn every_embedded_notice_renders_with_and_without_a_shop_name_tidily_and_without_a_link() {
        let named = Shop { name: Some(ShopName::parse("Acme").unwrap()), ..Shop::default() };
        for shop in [Shop::default(), named] {
            let templates = EmailTemplates::load_for_shop(None, &english(), &shop).unwrap();
            let locales: Vec<&str> = templates.locales_of(EmailKind::Notice).collect();
            for locale in locales {
                for actor_type in ["customer", "user", "vendor"] {
                    let email =
                        render_notice(&templates, locale, &NoticeContext { actor_type, ..notice("a@example.com") });
                    let case = format!("{locale}/{actor_type}/{:?}", shop.name);
                    for sloppy in ["  ", " .", " ,", "( ", " )"] {
                        assert!(!email.text.contains(sloppy), "{case}: `{sloppy}` in {}", email.text);
                    }
                    assert_eq!(email.text.contains("Acme"), shop.name.is_some(), "{case}");
                    assert!(email.text.contains("a@example.com") && email.html.contains("a@example.com"), "{case}");
                    for part in [&email.subject, &email.text, &email.html] {
                        assert!(!part.contains("http") && !part.contains("<a ") && !part.contains("href"), "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_notice_is_overridden_from_the_notice_folder_and_checked_at_load() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("notice/de")).unwrap();
        std::fs::write(dir.join("notice/de/subject.txt"), "{{ link }}").unwrap();
        // A notice has no link to show: the cold-start check renders it and finds that out.
        let refused = EmailTemplates::load(Some(&dir), &english());
        assert!(matches!(refused, Err(TemplateError::Template(_))), "{refused:?}");

        std::fs::write(dir.join("notice/de/subject.txt"), "Passwort geändert: {{ email }}").unwrap();
        std::fs::create_dir_all(dir.join("notice/_layout")).unwrap();
        std::fs::write(dir.join("notice/_layout/body.txt"), "{% import words as t %}{{ t.not_you }}").unwrap();
        let templates = EmailTemplates::load(Some(&dir), &english()).unwrap();
        let de = render_notice(&templates, "de", &notice("a@example.com"));
        assert_eq!(de.subject, "Passwort geändert: a@example.com");
        assert!(de.text.starts_with("Wenn Sie Ihr Passwort nicht selbst geändert haben"), "{}", de.text);
        let en = render_notice(&templates, "en", &notice("a@example.com"));
        assert!(en.text.starts_with("If you did not change your password"), "the notice layout is every locale's");
        let reset = render(&templates, "de", &ctx(LINK, "a@example.com"));
        assert_eq!(reset.subject, "Setzen Sie Ihr Passwort zurück", "the reset e-mail keeps its own");
    }

    #[test]
    fn an_overriding_body_may_fill_the_embedded_card_and_keeps_the_shops_look() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("_layout")).unwrap();
        let body = "{% extends \"_layout/card.html\" %}{% block message %}<p id=\"own\">{{ t.button }}: {{ link }}</p>{% endblock %}";
        std::fs::write(dir.join("_layout/body.html"), body).unwrap();
        let templates = EmailTemplates::load(Some(&dir), &english()).unwrap();
        let html = render(&templates, "de", &ctx(LINK, "a@example.com")).html;
        assert!(html.contains("<p id=\"own\">Neues Passwort wählen: https://shop.example.com/"), "{html}");
        assert!(
            html.contains("class=\"card\"") && html.contains("prefers-color-scheme: dark"),
            "the card's look: {html}"
        );
        assert!(!html.contains("sub-link"), "the embedded body's blocks are not the override's: {html}");
    }

    #[test]
    fn a_default_locale_without_a_notice_is_refused_naming_the_notice() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("sv")).unwrap();
        let words = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/en/words.txt"));
        std::fs::write(dir.join("sv/words.txt"), words).unwrap();
        let swedish = Locale::parse("sv").unwrap();
        let refused = EmailTemplates::load(Some(&dir), &swedish);
        let Err(error @ TemplateError::NoDefaultNoticeLocale(_)) = refused else { panic!("{refused:?}") };
        assert!(error.to_string().contains("notice/sv/words.txt"), "{error}");

        std::fs::create_dir_all(dir.join("notice/sv")).unwrap();
        let words = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/notice/en/words.txt"));
        std::fs::write(dir.join("notice/sv/words.txt"), words).unwrap();
        assert!(EmailTemplates::load(Some(&dir), &swedish).is_ok());
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("templates-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
