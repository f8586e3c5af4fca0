//! The notifier: from an `auth.password_reset` event to a reset e-mail with a working link.

pub mod link;
pub mod locale;
pub mod notifier;
pub mod pacing;
pub mod templates;
pub mod token_check;

pub use notifier::{Delivery, DropReason, FailedInvocation, Handled, Inbound, Notifier, NotifyError};
