//! Domain types: what a reset request is once parsed, the token it earns and the event it emits.

pub mod actor;
pub mod event;
pub mod identifier;
pub mod js_string;
pub mod metadata;
pub mod recipient;
pub mod reset_request;
pub mod token;
