//! The account identifier a reset is requested for (an e-mail address for `emailpass`).

use std::fmt;

/// Longest identifier accepted, in characters: the longest valid e-mail address (RFC 5321 path limit).
pub const MAX_IDENTIFIER_CHARS: usize = 254;

/// An identifier that is non-empty, bounded, free of control and bidi-override characters and of
/// surrounding white space, so it is safe to put in a token, an event, a log line or a mail header.
#[derive(Clone, PartialEq, Eq)]
pub struct Identifier(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_IDENTIFIER_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not start or end with white space")]
    SurroundingWhitespace,
}

impl Identifier {
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        if raw.is_empty() {
            return Err(IdentifierError::Empty);
        }
        if raw.chars().count() > MAX_IDENTIFIER_CHARS {
            return Err(IdentifierError::TooLong);
        }
        if raw.chars().any(is_forbidden) {
            return Err(IdentifierError::ControlCharacter);
        }
        if raw.trim() != raw {
            return Err(IdentifierError::SurroundingWhitespace);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A form fit for logs: `a***@example.com`, or `a***` when there is no domain.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks any identifier-like string for logs, keeping its first character and its domain.
pub fn mask(raw: &str) -> String {
    let first: String = raw.chars().take(1).collect();
    match raw.rsplit_once('@') {
        Some((_, domain)) => format!("{first}***@{domain}"),
        None => format!("{first}***"),
    }
}

/// Control characters (CR, LF, NUL, …), line separators and bidi overrides: header injection and
/// display spoofing, never part of a real identifier.
fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

// Debug shows the masked form so that a stray `{:?}` cannot leak an address into a log.
impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identifier({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_email_address_is_accepted_as_it_is() {
        assert_eq!(Identifier::parse("a@example.com").unwrap().as_str(), "a@example.com");
    }

    #[test]
    fn crlf_and_nul_are_refused() {
        for raw in ["a@b.c\r\nBcc: x@y.z", "a\0@b.c", "a@b.c\n", "\u{202E}moc.b@a"] {
            assert_eq!(Identifier::parse(raw), Err(IdentifierError::ControlCharacter), "{raw:?}");
        }
    }

    #[test]
    fn empty_long_and_padded_identifiers_are_refused() {
        assert_eq!(Identifier::parse(""), Err(IdentifierError::Empty));
        assert_eq!(Identifier::parse(&"a".repeat(255)), Err(IdentifierError::TooLong));
        assert!(Identifier::parse(&"a".repeat(254)).is_ok());
        assert_eq!(Identifier::parse(" a@b.c"), Err(IdentifierError::SurroundingWhitespace));
    }

    #[test]
    fn masking_keeps_the_first_character_and_the_domain() {
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("bob"), "b***");
        assert_eq!(mask(""), "***");
        let id = Identifier::parse("alice@example.com").unwrap();
        assert_eq!(format!("{id:?}"), "Identifier(a***@example.com)");
    }

    proptest! {
        #[test]
        fn whatever_parses_has_no_control_characters_and_is_bounded(raw in "\\PC{0,300}|[\\x00-\\x7f]{0,40}") {
            if let Ok(id) = Identifier::parse(&raw) {
                prop_assert!(!id.as_str().chars().any(char::is_control));
                prop_assert!(id.as_str().chars().count() <= MAX_IDENTIFIER_CHARS);
                prop_assert!(!id.as_str().is_empty());
            }
        }

        #[test]
        fn the_mask_never_shows_the_local_part_beyond_its_first_character(local in "[a-z]{2,20}", domain in "[a-z]{1,10}\\.com") {
            let masked = mask(&format!("{local}@{domain}"));
            prop_assert_eq!(masked, format!("{}***@{domain}", &local[..1]));
        }
    }
}
