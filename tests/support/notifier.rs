//! The notifier's settings as the tests' Lambda has them.

use medusa_reset::config::{NotifierConfig, Profile, Vars};

/// The customer reset link the tests' notifiers are configured with.
pub const LINK_TEMPLATE: &str = "https://shop.example.com/reset-password?token={token}&email={email}";

/// The notifier's configuration sending as `sender` with `LINK_TEMPLATE` for customers, and the
/// given overrides (`IDEMPOTENCY_TABLE`, the shop's settings, another link).
pub fn notifier_config(sender: &str, overrides: &[(&str, &str)]) -> NotifierConfig {
    let defaults = [("MAIL_FROM", sender), ("RESET_URL_TEMPLATE_CUSTOMER", LINK_TEMPLATE)];
    // The first pair for a name wins, so the overrides come first.
    let vars = Vars::from_pairs(&[overrides, &defaults].concat());
    NotifierConfig::from_vars(Profile::Lambda, &vars).expect("valid notifier configuration")
}
