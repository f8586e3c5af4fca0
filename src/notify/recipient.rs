//! The address a reset e-mail goes to, parsed from the event's `entity_id`.

use std::fmt;
use std::str::FromStr;

use lettre::Address;

use crate::domain::identifier::{MAX_IDENTIFIER_CHARS, mask};

/// A bare `local@domain` address: no display name, no list, no control characters, sane length.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(Address);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the identifier is not a deliverable e-mail address")]
pub struct NotAnEmail;

impl Recipient {
    pub fn parse(raw: &str) -> Result<Self, NotAnEmail> {
        let suspicious = |c: char| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"');
        if raw.is_empty() || raw.chars().count() > MAX_IDENTIFIER_CHARS || raw.chars().any(suspicious) {
            return Err(NotAnEmail);
        }
        let address = Address::from_str(raw).map_err(|_| NotAnEmail)?;
        // A single-label domain (`root@localhost`) is not deliverable on the internet.
        if !address.domain().contains('.') {
            return Err(NotAnEmail);
        }
        Ok(Self(address))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub fn address(&self) -> &Address {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask(self.as_str())
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_addresses_are_accepted() {
        for raw in ["a@example.com", "first.last+tag@sub.example.co.uk", "o'neil@example.ie"] {
            assert_eq!(Recipient::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn header_injection_display_names_and_lists_are_refused() {
        for raw in [
            "a@example.com\r\nBcc: victim@example.com",
            "a@example.com\n",
            "Eve <eve@example.com>",
            "\"a@example.com\" <eve@evil.test>",
            "a@example.com, b@example.com",
            "a@example.com;b@example.com",
            "a @example.com",
            "not-an-address",
            "@example.com",
            "a@",
            "root@localhost",
            "",
        ] {
            assert_eq!(Recipient::parse(raw), Err(NotAnEmail), "{raw:?}");
        }
        assert_eq!(Recipient::parse(&format!("{}@example.com", "a".repeat(250))), Err(NotAnEmail));
    }

    #[test]
    fn debug_output_is_masked() {
        let recipient = Recipient::parse("alice@example.com").unwrap();
        assert_eq!(format!("{recipient:?}"), "Recipient(a***@example.com)");
    }

    proptest! {
        #[test]
        fn whatever_parses_is_one_bare_address(raw in "\\PC{0,60}|[a-z.+]{1,10}@[a-z]{1,8}\\.[a-z]{2,3}") {
            if let Ok(recipient) = Recipient::parse(&raw) {
                prop_assert_eq!(recipient.as_str().matches('@').count(), 1);
                prop_assert!(!recipient.as_str().chars().any(|c| c.is_control() || c.is_whitespace() || c == '<'));
            }
        }
    }
}
