//! Domain types: what a reset request is once parsed, the token it earns and the event it emits;
//! and the two helpers every layer shares, `clock` (epoch seconds) and `error_chain` (an error with
//! its causes), here because everything else already depends on `domain`.

pub mod actor;
pub mod clock;
pub mod error_chain;
pub mod event;
pub mod identifier;
pub mod js_string;
pub mod locale;
pub mod metadata;
pub mod password;
pub mod recipient;
pub mod reset_request;
pub mod token;
pub mod update_request;
