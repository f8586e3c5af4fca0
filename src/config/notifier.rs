//! Configuration of the notifier: sender, reset-link templates per actor type, e-mail templates.

use std::path::PathBuf;

use lettre::message::Mailbox;

use crate::domain::actor::ProviderPolicy;
use crate::domain::event::PASSWORD_RESET;
use crate::mail::Sender;
use crate::notify::link::LinkTemplates;
use crate::notify::locale::Locale;
use crate::notify::templates::EmailTemplates;
use crate::telemetry::LogSettings;
use crate::vars::{ConfigError, Profile, Vars, check_utf8, env_var};

/// The sender `make run` uses.
const DEVELOPMENT_FROM: &str = "Medusa Store <no-reply@shop.localhost>";
/// The storefront page `make run` links to: the Next.js starter's default port.
const DEVELOPMENT_LINK: &str = "http://localhost:8000/reset-password?token={token}&email={email}";

#[derive(Debug)]
pub struct NotifierConfig {
    pub sender: Sender,
    pub configuration_set: Option<String>,
    pub links: LinkTemplates,
    pub templates: EmailTemplates,
    pub detail_type: String,
    /// The KMS key that opens sealed tokens (`TOKEN_KMS_KEY_ID`), when the reset route seals them.
    pub kms_key_id: Option<String>,
    pub log: LogSettings,
}

/// `RESET_URL_TEMPLATE_CUSTOMER` for `customer`: one variable per actor type.
pub fn link_variable(actor_type: &str) -> String {
    format!("RESET_URL_TEMPLATE_{}", actor_type.to_ascii_uppercase().replace('-', "_"))
}

impl NotifierConfig {
    pub fn from_env(profile: Profile) -> Result<Self, ConfigError> {
        check_utf8(&["MAIL_FROM", "MAIL_REPLY_TO", "TEMPLATE_DIR", "AUTH_PROVIDERS"])?;
        Self::from_vars(profile, &Vars::new(env_var))
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(profile: Profile, vars: &Vars<F>) -> Result<Self, ConfigError> {
        let from = match vars.get("MAIL_FROM") {
            Some(from) => from,
            None if profile == Profile::Local => DEVELOPMENT_FROM.to_owned(),
            None => return Err(ConfigError::new("MAIL_FROM", "is required: the SES-verified sender address")),
        };
        let sender = Sender {
            from: mailbox("MAIL_FROM", from)?,
            reply_to: vars.get("MAIL_REPLY_TO").map(|r| mailbox("MAIL_REPLY_TO", r)).transpose()?,
        };

        // Every actor type that may ask for a reset needs a link; finding a gap now beats failing at send time.
        let providers = ProviderPolicy::parse(&vars.get_or("AUTH_PROVIDERS", "customer=emailpass"))
            .map_err(|e| ConfigError::new("AUTH_PROVIDERS", e))?;
        let mut links = LinkTemplates::new();
        for actor_type in providers.actor_types() {
            let var = link_variable(actor_type);
            let template = match vars.get(&var) {
                Some(template) => template,
                None if profile == Profile::Local => DEVELOPMENT_LINK.to_owned(),
                None => {
                    return Err(ConfigError::new(
                        var,
                        format!("is required: the reset page URL for `{actor_type}`, with {{token}}"),
                    ));
                }
            };
            links.insert(actor_type, &template).map_err(|e| ConfigError::new(var.clone(), e))?;
        }

        let default_locale = vars.get_or("DEFAULT_LOCALE", "en");
        let default_locale = Locale::parse(&default_locale).ok_or_else(|| {
            ConfigError::new("DEFAULT_LOCALE", format!("`{default_locale}` is not a locale such as `en`"))
        })?;
        let dir = vars.get("TEMPLATE_DIR").map(PathBuf::from);
        let templates = EmailTemplates::load(dir.as_deref(), &default_locale).map_err(|e| {
            let var = if dir.is_some() { "TEMPLATE_DIR" } else { "DEFAULT_LOCALE" };
            ConfigError::new(var, e)
        })?;

        Ok(Self {
            sender,
            configuration_set: vars.get("SES_CONFIGURATION_SET"),
            links,
            templates,
            detail_type: vars.get_or("EVENT_DETAIL_TYPE", PASSWORD_RESET),
            kms_key_id: vars.get("TOKEN_KMS_KEY_ID"),
            log: LogSettings::from_vars(profile, vars)?,
        })
    }
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
    use std::collections::HashMap;

    fn config(profile: Profile, pairs: &[(&str, &str)]) -> Result<NotifierConfig, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        NotifierConfig::from_vars(profile, &Vars::new(|k: &str| map.get(k).cloned()))
    }

    const LINK: &str = "https://shop.example.com/reset-password?token={token}&email={email}";

    #[test]
    fn local_runs_with_embedded_defaults() {
        let config = config(Profile::Local, &[]).unwrap();
        assert_eq!(config.sender.from, DEVELOPMENT_FROM);
        assert!(config.links.link("customer", "t", "a@b.c").unwrap().starts_with("http://localhost:8000/"));
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
    fn bad_values_name_their_variable() {
        let base = [("MAIL_FROM", "no-reply@shop.example.com"), ("RESET_URL_TEMPLATE_CUSTOMER", LINK)];
        let cases = [
            ("MAIL_FROM", "not an address"),
            ("MAIL_REPLY_TO", "help@shop.example.com\r\nBcc: x@y.z"),
            ("RESET_URL_TEMPLATE_CUSTOMER", "https://shop.example.com/reset"),
            ("DEFAULT_LOCALE", "../etc"),
            ("DEFAULT_LOCALE", "it"),
            ("TEMPLATE_DIR", "/no/such/dir"),
        ];
        for (var, value) in cases {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            assert_eq!(config(Profile::Lambda, &pairs).unwrap_err().var, var, "{value}");
        }
    }
}
