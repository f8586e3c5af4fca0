//! Configuration of the notifier: sender, reset-link templates per actor type, e-mail templates
//! (the reset e-mail's and the password-changed notice's) and the shop they show, and where the
//! claims that keep it to one e-mail per token, and one notice per event, live.

use std::path::PathBuf;

use lettre::message::Mailbox;

use crate::domain::event::{PASSWORD_RESET, PASSWORD_UPDATED};
use crate::domain::locale::Locale;
use crate::idempotency::IdempotencySettings;
use crate::mail::Sender;
use crate::notify::link::LinkTemplates;
use crate::notify::templates::EmailTemplates;
use crate::notify::templates::shop::{BrandColor, LogoUrl, Shop, ShopName};
use crate::observability::logs::LogSettings;

use crate::vars::{ConfigError, Lookup, Profile, Vars};

/// The sender `make run` uses.
const DEVELOPMENT_FROM: &str = "Medusa Store <no-reply@shop.localhost>";
/// The storefront page `make run` links customers to: the Next.js starter's default port.
const DEVELOPMENT_LINK: &str = "http://localhost:8000/reset-password?token={token}&email={email}";
/// The page `make run` links admin users to: Medusa admin's, on Medusa's default port.
const DEVELOPMENT_ADMIN_LINK: &str = "http://localhost:9000/app/reset-password?token={token}&email={email}";

#[derive(Debug)]
pub struct NotifierConfig {
    pub sender: Sender,
    pub configuration_set: Option<String>,
    pub links: LinkTemplates,
    pub templates: EmailTemplates,
    /// The detail-type of the reset events (`EVENT_DETAIL_TYPE`); `auth.password_updated` events
    /// are always the notice's.
    pub detail_type: String,
    /// The KMS key that opens sealed tokens (`TOKEN_KMS_KEY_ID`), when the reset route seals them.
    pub kms_key_id: Option<String>,
    /// The DynamoDB table of claims (`IDEMPOTENCY_TABLE`); in memory without one.
    pub idempotency: IdempotencySettings,
    pub log: LogSettings,
    /// `make run`, or `DEVELOPMENT_MODE=true`: `http://` reset links are accepted.
    pub development_mode: bool,
}

/// `RESET_URL_TEMPLATE_CUSTOMER` for `customer`: one variable per actor type.
pub fn link_variable(actor_type: &str) -> String {
    format!("RESET_URL_TEMPLATE_{}", actor_type.to_ascii_uppercase().replace('-', "_"))
}

impl NotifierConfig {
    pub fn from_env(profile: Profile) -> Result<Self, ConfigError> {
        Self::from_vars(profile, &Vars::from_env())
    }

    pub fn from_vars<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<Self, ConfigError> {
        let development_mode = super::development_mode(profile, vars)?;
        let from = match vars.get("MAIL_FROM")? {
            Some(from) => from,
            None if profile == Profile::Local => DEVELOPMENT_FROM.to_owned(),
            None => return Err(ConfigError::new("MAIL_FROM", "is required: the SES-verified sender address")),
        };
        let sender = Sender {
            from: mailbox("MAIL_FROM", from)?,
            reply_to: vars.get("MAIL_REPLY_TO")?.map(|r| mailbox("MAIL_REPLY_TO", r)).transpose()?,
        };
        let links = links(profile, vars, development_mode)?;
        let templates = templates(vars, &sender.from)?;
        Ok(Self {
            sender,
            configuration_set: vars.get("SES_CONFIGURATION_SET")?,
            links,
            templates,
            detail_type: reset_detail_type(vars)?,
            kms_key_id: vars.get("TOKEN_KMS_KEY_ID")?,
            idempotency: IdempotencySettings { table: vars.get("IDEMPOTENCY_TABLE")?.map(|t| t.trim().to_owned()) },
            log: LogSettings::from_vars(profile, vars)?,
            development_mode,
        })
    }
}

/// `EVENT_DETAIL_TYPE`, which cannot be the notice's: a password-updated event has no token to
/// link with.
fn reset_detail_type<L: Lookup>(vars: &Vars<L>) -> Result<String, ConfigError> {
    let detail_type = vars.get_or("EVENT_DETAIL_TYPE", PASSWORD_RESET)?;
    if detail_type == PASSWORD_UPDATED {
        return Err(ConfigError::new(
            "EVENT_DETAIL_TYPE",
            format!("must not be `{PASSWORD_UPDATED}`, which the notifier reads as the password-changed notice's"),
        ));
    }
    Ok(detail_type)
}

/// A reset-link template for every actor type that may ask for a reset: finding a gap now beats
/// failing at send time.
fn links<L: Lookup>(profile: Profile, vars: &Vars<L>, development_mode: bool) -> Result<LinkTemplates, ConfigError> {
    let mut links = LinkTemplates::new();
    for actor_type in super::auth_providers(profile, vars)?.actor_types() {
        let var = link_variable(actor_type);
        let template = match vars.get(&var)? {
            Some(template) => template,
            None if profile == Profile::Local && actor_type == "user" => DEVELOPMENT_ADMIN_LINK.to_owned(),
            None if profile == Profile::Local => DEVELOPMENT_LINK.to_owned(),
            None => {
                return Err(ConfigError::new(
                    var,
                    format!("is required: the reset page URL for `{actor_type}`, with {{token}}"),
                ));
            }
        };
        // A link in clear would hand the token to anyone on the shopper's network.
        if !development_mode && template.starts_with("http://") {
            return Err(ConfigError::new(
                var,
                "must start with https://: an http:// link sends the token in clear (DEVELOPMENT_MODE=true \
                 accepts it, for local use only)",
            ));
        }
        links.insert(actor_type, &template).map_err(|e| ConfigError::new(var.clone(), e))?;
    }
    Ok(links)
}

/// The e-mail templates: `TEMPLATE_DIR`'s or the embedded ones, in `DEFAULT_LOCALE` where an
/// event names none, showing the shop.
fn templates<L: Lookup>(vars: &Vars<L>, from: &str) -> Result<EmailTemplates, ConfigError> {
    let default_locale = vars.get_or("DEFAULT_LOCALE", "en")?;
    let default_locale = Locale::parse(&default_locale).ok_or_else(|| {
        ConfigError::new("DEFAULT_LOCALE", format!("`{default_locale}` is not a locale such as `en`"))
    })?;
    let dir = vars.get("TEMPLATE_DIR")?.map(PathBuf::from);
    let shop = shop(vars, from)?;
    EmailTemplates::load_for_shop(dir.as_deref(), &default_locale, &shop).map_err(|e| {
        let var = if dir.is_some() { "TEMPLATE_DIR" } else { "DEFAULT_LOCALE" };
        ConfigError::new(var, e)
    })
}

/// The shop the e-mails show. Its name is `SHOP_NAME`, else the sender's display name (what the
/// inbox already shows), else the sender's domain; logo and colour only when set.
fn shop<L: Lookup>(vars: &Vars<L>, from: &str) -> Result<Shop, ConfigError> {
    let name = match vars.get("SHOP_NAME")? {
        Some(name) => ShopName::parse(&name).map_err(|e| ConfigError::new("SHOP_NAME", e))?,
        None => {
            let from = from.parse::<Mailbox>().map_err(|e| ConfigError::new("MAIL_FROM", e))?;
            let display = from.name.as_deref().and_then(|name| ShopName::parse(name).ok());
            match display {
                Some(name) => name,
                None => ShopName::parse(from.email.domain()).map_err(|e| ConfigError::new("MAIL_FROM", e))?,
            }
        }
    };
    let logo = vars.get("SHOP_LOGO_URL")?.map(|raw| LogoUrl::parse(&raw)).transpose();
    let color = vars.get("SHOP_BRAND_COLOR")?.map(|raw| BrandColor::parse(&raw)).transpose();
    Ok(Shop {
        name: Some(name),
        logo: logo.map_err(|e| ConfigError::new("SHOP_LOGO_URL", e))?,
        color: color.map_err(|e| ConfigError::new("SHOP_BRAND_COLOR", e))?.unwrap_or_default(),
    })
}

fn mailbox(var: &'static str, raw: String) -> Result<String, ConfigError> {
    if raw.chars().any(char::is_control) {
        return Err(ConfigError::new(var, "must not contain control characters"));
    }
    raw.parse::<Mailbox>().map_err(|e| ConfigError::new(var, format!("is not an e-mail address ({e})")))?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::templates::EmailContext;

    fn config(profile: Profile, pairs: &[(&str, &str)]) -> Result<NotifierConfig, ConfigError> {
        NotifierConfig::from_vars(profile, &Vars::from_pairs(pairs))
    }

    const LINK: &str = "https://shop.example.com/reset-password?token={token}&email={email}";

    #[test]
    fn local_runs_with_embedded_defaults() {
        let config = config(Profile::Local, &[]).unwrap();
        assert_eq!(config.sender.from, DEVELOPMENT_FROM);
        assert!(config.links.link("customer", "t", "a@b.c").unwrap().starts_with("http://localhost:8000/"));
    }

    #[test]
    fn lambda_refuses_an_http_link_naming_its_variable_unless_in_development_mode() {
        let http = "http://shop.example.com/reset-password?token={token}";
        let pairs = [("MAIL_FROM", "no-reply@shop.example.com"), ("RESET_URL_TEMPLATE_CUSTOMER", http)];
        let error = config(Profile::Lambda, &pairs).unwrap_err();
        assert_eq!(error.var, "RESET_URL_TEMPLATE_CUSTOMER");
        assert!(error.reason.contains("https://") && error.reason.contains("DEVELOPMENT_MODE"), "{error}");
        let development = [pairs.as_slice(), &[("DEVELOPMENT_MODE", "true")]].concat();
        assert!(config(Profile::Lambda, &development).unwrap().development_mode);
        assert!(!config(Profile::Lambda, &[pairs[0], ("RESET_URL_TEMPLATE_CUSTOMER", LINK)]).unwrap().development_mode);
        assert_eq!(config(Profile::Local, &pairs).map(|c| c.development_mode), Ok(true), "make run keeps it");
        let bad = [pairs.as_slice(), &[("DEVELOPMENT_MODE", "yes")]].concat();
        assert_eq!(config(Profile::Lambda, &bad).unwrap_err().var, "DEVELOPMENT_MODE");
    }

    #[test]
    fn the_idempotency_table_is_read_and_optional() {
        let base = [("MAIL_FROM", "no-reply@shop.example.com"), ("RESET_URL_TEMPLATE_CUSTOMER", LINK)];
        assert_eq!(config(Profile::Lambda, &base).unwrap().idempotency.table, None);
        let table = |value| {
            let with_table = [base.as_slice(), &[("IDEMPOTENCY_TABLE", value)]].concat();
            config(Profile::Lambda, &with_table).unwrap().idempotency.table
        };
        assert_eq!(table(" reset-claims ").as_deref(), Some("reset-claims"), "trimmed");
        assert_eq!(table(""), None, "empty is unset");
    }

    #[test]
    fn lambda_needs_a_sender_and_a_link_per_actor_type() {
        assert_eq!(config(Profile::Lambda, &[("RESET_URL_TEMPLATE_CUSTOMER", LINK)]).unwrap_err().var, "MAIL_FROM");
        let error = config(
            Profile::Lambda,
            &[
                ("MAIL_FROM", "no-reply@shop.example.com"),
                ("AUTH_PROVIDERS", "customer=emailpass;user=emailpass"),
                ("RESET_URL_TEMPLATE_CUSTOMER", LINK),
            ],
        )
        .unwrap_err();
        assert_eq!(error.var, "RESET_URL_TEMPLATE_USER");
        let ok = config(
            Profile::Lambda,
            &[("MAIL_FROM", "Shop <no-reply@shop.example.com>"), ("RESET_URL_TEMPLATE_CUSTOMER", LINK)],
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn the_shop_is_shop_name_else_the_senders_display_name_else_its_domain() {
        let intro = |pairs: &[(&str, &str)]| {
            let mut all = vec![("RESET_URL_TEMPLATE_CUSTOMER", LINK)];
            all.extend_from_slice(pairs);
            let config = config(Profile::Lambda, &all).unwrap();
            let context = EmailContext {
                link: "https://shop.example.com/r?token=t",
                email: "a@example.com",
                actor_type: "customer",
                expires_minutes: 15,
                metadata: None,
            };
            config.templates.render(None, &context).unwrap()
        };
        let from_name = intro(&[("MAIL_FROM", "Acme Store <no-reply@shop.example.com>")]);
        assert!(from_name.text.contains("your Acme Store account"), "{}", from_name.text);
        let from_domain = intro(&[("MAIL_FROM", "no-reply@shop.example.com")]);
        assert!(from_domain.text.contains("your shop.example.com account"), "{}", from_domain.text);
        let set = intro(&[
            ("MAIL_FROM", "Acme Store <no-reply@shop.example.com>"),
            ("SHOP_NAME", " Bolt & Co "),
            ("SHOP_LOGO_URL", "https://cdn.example.com/bolt.png"),
            ("SHOP_BRAND_COLOR", "#0a0"),
        ]);
        assert!(set.text.contains("your Bolt & Co account") && set.html.contains("Bolt &amp; Co"), "{}", set.text);
        assert!(
            set.html.contains("src=\"https://cdn.example.com/bolt.png\"")
                && set.html.contains("background-color:#00aa00")
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let base = [("MAIL_FROM", "no-reply@shop.example.com"), ("RESET_URL_TEMPLATE_CUSTOMER", LINK)];
        let cases = [
            ("MAIL_FROM", "not an address"),
            ("MAIL_REPLY_TO", "help@shop.example.com\r\nBcc: x@y.z"),
            ("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset"),
            ("DEFAULT_LOCALE", "../etc"),
            ("DEFAULT_LOCALE", "sv"),
            ("SHOP_NAME", "Acme\r\nBcc: x@y.z"),
            ("SHOP_LOGO_URL", "http://cdn.example.com/logo.png"),
            ("SHOP_LOGO_URL", "javascript:alert(1)"),
            ("SHOP_BRAND_COLOR", "red"),
            ("SHOP_BRAND_COLOR", "#12345"),
            ("TEMPLATE_DIR", "/no/such/dir"),
            ("EVENT_DETAIL_TYPE", "auth.password_updated"),
        ];
        for (var, value) in cases {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            assert_eq!(config(Profile::Lambda, &pairs).unwrap_err().var, var, "{value}");
        }
    }
}
