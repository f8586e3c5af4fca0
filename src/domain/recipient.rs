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

    /// A plain address built from a grammar: local part with the usual punctuation, a dotted domain.
    fn plain_address() -> impl Strategy<Value = String> {
        (
            "[a-z0-9]{1,10}",
            prop::option::of(("[.+_'-]", "[a-z0-9]{1,6}")),
            "[a-z0-9]{1,10}(\\.[a-z0-9]{1,8}){0,2}",
            "[a-z]{2,6}",
        )
            .prop_map(|(local, tail, domain, tld)| {
                let tail = tail.map(|(sep, rest)| format!("{sep}{rest}")).unwrap_or_default();
                format!("{local}{tail}@{domain}.{tld}")
            })
    }

    /// What an attacker adds to an address to reach someone else or forge a header.
    fn hostile_fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "\r\nBcc: x@evil.test",
            "\n",
            "\r",
            " ",
            "\t",
            "\u{0}",
            "<",
            ">",
            ",",
            ";",
            "\"",
            ", other@evil.test",
            "\u{85}",
        ])
    }

    proptest! {
        #[test]
        fn every_plain_address_parses_unchanged(raw in plain_address()) {
            prop_assert_eq!(Recipient::parse(&raw).map(|r| r.as_str().to_owned()), Ok(raw.clone()));
        }

        #[test]
        fn an_address_with_a_hostile_fragment_anywhere_is_refused(
            raw in plain_address(),
            fragment in hostile_fragment(),
            position in any::<prop::sample::Index>(),
        ) {
            let boundaries: Vec<usize> = (0..=raw.len()).filter(|i| raw.is_char_boundary(*i)).collect();
            let at = boundaries[position.index(boundaries.len())];
            let hostile = format!("{}{fragment}{}", &raw[..at], &raw[at..]);
            prop_assert_eq!(Recipient::parse(&hostile), Err(NotAnEmail), "{:?}", hostile);
        }

        #[test]
        fn a_display_name_or_a_single_label_domain_is_refused(raw in plain_address(), name in "[A-Za-z]{1,10}") {
            prop_assert_eq!(Recipient::parse(&format!("{name} <{raw}>")), Err(NotAnEmail));
            let local = raw.split('@').next().unwrap_or_default();
            prop_assert_eq!(Recipient::parse(&format!("{local}@{name}")), Err(NotAnEmail));
        }
    }
}
