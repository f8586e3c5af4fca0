//! Configuration, read and checked once at cold start; a bad value names its variable, never its value.
//!
//! Every read of the environment is here (through `crate::vars`, which the adapters share for
//! `ConfigError`). The settings types live beside the adapters they set up
//! and know nothing of variables; their `from_vars` constructors are written here, one file per
//! concern, so that an adapter never depends on how it is configured:
//!
//! - `api`: the reset route (`ApiConfig`); `notifier`: the notifier (`NotifierConfig`, its claims table);
//! - `database`: Medusa's database (`DatabaseSettings`, `DatabaseSource`);
//! - `limits`: the rate limits (`RateLimitSettings`);
//! - `password_hash`: the scrypt work of a new password (`HashParams`);
//! - `logs` and `metrics`: `LogSettings`, `MetricsSettings`;
//! - `aws`: the roots the SDK trusts (`SdkRoots`);
//! - `local`: `make run`'s server (`LocalSettings`); `replay`: `make replay` (`ReplaySettings`).

mod api;
mod aws;
mod database;
mod limits;
mod local;
mod logs;
mod metrics;
mod notifier;
mod password_hash;
mod replay;

pub use crate::vars::{ConfigError, Lookup, Profile, Vars};
pub use api::{ApiConfig, DEVELOPMENT_CORS, DEVELOPMENT_SECRET};
pub use local::LocalSettings;
pub use notifier::{NotifierConfig, link_variable};

use crate::domain::actor::{PolicyError, ProviderPolicy};

/// Which actor types may ask for a reset, with which providers, unless `AUTH_PROVIDERS` says: on
/// Lambda customers only, as the template's default; `make run` also serves Medusa admin's users.
fn default_auth_providers(profile: Profile) -> &'static str {
    match profile {
        Profile::Lambda => "customer=emailpass",
        Profile::Local => "customer=emailpass;user=emailpass",
    }
}

/// `AUTH_PROVIDERS`: read by the route, which refuses the others, and by the notifier, which needs
/// a link for each actor type in it.
fn auth_providers<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<ProviderPolicy, ConfigError> {
    ProviderPolicy::parse(&vars.get_or("AUTH_PROVIDERS", default_auth_providers(profile))?)
        .map_err(|e: PolicyError| ConfigError::new("AUTH_PROVIDERS", e))
}

/// The variable that lets a Lambda-profile binary accept the development defaults (the public
/// signing secret, `http://` reset links): the cargo-lambda loop sets it beside those defaults; the
/// template never does.
pub const DEVELOPMENT_MODE_VAR: &str = "DEVELOPMENT_MODE";

/// Whether development-only settings are accepted: always for `make run`; on Lambda only with
/// `DEVELOPMENT_MODE=true`.
pub(crate) fn development_mode<L: Lookup>(profile: Profile, vars: &Vars<L>) -> Result<bool, ConfigError> {
    match (profile, vars.get(DEVELOPMENT_MODE_VAR)?.as_deref()) {
        (Profile::Local, _) => Ok(true),
        (Profile::Lambda, None | Some("false")) => Ok(false),
        (Profile::Lambda, Some("true")) => Ok(true),
        (Profile::Lambda, Some(_)) => Err(ConfigError::new(DEVELOPMENT_MODE_VAR, "must be true or false")),
    }
}

/// Said at every cold start of a Lambda-profile binary running with `DEVELOPMENT_MODE=true`.
pub const DEVELOPMENT_MODE_WARNING: &str = "DEVELOPMENT_MODE=true: development-only settings (the public signing \
     secret, http:// reset links) are accepted; this must never be set on a deployed function";
