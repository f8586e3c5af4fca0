//! Configuration, read and checked once at cold start; a bad value names its variable, never its value.

mod api;
mod local;
mod notifier;

pub use crate::vars::{ConfigError, Profile, Vars, check_utf8, env_var};
pub use api::{ApiConfig, DEVELOPMENT_CORS, DEVELOPMENT_SECRET};
pub use local::LocalSettings;
pub use notifier::{NotifierConfig, link_variable};
