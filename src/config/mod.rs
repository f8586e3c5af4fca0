//! Configuration, read and checked once at cold start; a bad value names its variable, never its value.

mod api;
mod local;
mod notifier;

pub use crate::vars::{ConfigError, Profile, Vars, check_utf8, env_var};
pub use api::{ApiConfig, DEVELOPMENT_CORS, DEVELOPMENT_SECRET};
pub use local::LocalSettings;
pub use notifier::{NotifierConfig, link_variable};

/// Which actor types may ask for a reset, with which providers, unless `AUTH_PROVIDERS` says: on
/// Lambda customers only, as the template's default; `make run` also serves Medusa admin's users.
pub(crate) fn default_auth_providers(profile: Profile) -> &'static str {
    match profile {
        Profile::Lambda => "customer=emailpass",
        Profile::Local => "customer=emailpass;user=emailpass",
    }
}

/// The variable that lets a Lambda-profile binary accept the development defaults (the public
/// signing secret, `http://` reset links): the cargo-lambda loop sets it beside those defaults; the
/// template never does.
pub const DEVELOPMENT_MODE_VAR: &str = "DEVELOPMENT_MODE";

/// Whether development-only settings are accepted: always for `make run`; on Lambda only with
/// `DEVELOPMENT_MODE=true`.
pub(crate) fn development_mode<F: Fn(&str) -> Option<String>>(
    profile: Profile,
    vars: &Vars<F>,
) -> Result<bool, ConfigError> {
    match (profile, vars.get(DEVELOPMENT_MODE_VAR).as_deref()) {
        (Profile::Local, _) => Ok(true),
        (Profile::Lambda, None | Some("false")) => Ok(false),
        (Profile::Lambda, Some("true")) => Ok(true),
        (Profile::Lambda, Some(_)) => Err(ConfigError::new(DEVELOPMENT_MODE_VAR, "must be true or false")),
    }
}

/// Said at every cold start of a Lambda-profile binary running with `DEVELOPMENT_MODE=true`.
pub const DEVELOPMENT_MODE_WARNING: &str = "DEVELOPMENT_MODE=true: development-only settings (the public signing \
     secret, http:// reset links) are accepted; this must never be set on a deployed function";
