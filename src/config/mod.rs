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
