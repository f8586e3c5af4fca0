//! The notifier: from an `auth.password_reset` event to a reset e-mail with a working link, and
//! from an `auth.password_updated` event to a notice, with no link, that the password was changed.

pub mod link;
pub mod notifier;
pub mod pacing;
pub mod templates;
pub mod token_check;

pub use notifier::{
    Delivery, DropReason, FailedInvocation, Handled, Inbound, LocalEvent, NOTICE_CLAIM_KEPT, Notifier, NotifyError,
};
