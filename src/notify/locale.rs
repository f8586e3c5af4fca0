//! Locales for e-mail templates: `de`, `fr-CA`, …, parsed from request metadata with fallbacks.

/// A BCP 47-like tag (`language[-region…]`), lower-cased, safe to use as a template name part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Locale(String);

impl Locale {
    /// Accepts `en`, `de`, `fr-CA`, `pt_BR`, `zh-Hant-TW`; refuses anything else (no paths, no spaces).
    pub fn parse(raw: &str) -> Option<Self> {
        let normalized = raw.trim().replace('_', "-").to_ascii_lowercase();
        let mut parts = normalized.split('-');
        let language = parts.next()?;
        let language_ok = (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
        let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        (language_ok && rest_ok && normalized.len() <= 35).then_some(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag, then each shorter prefix: `zh-hant-tw`, `zh-hant`, `zh`.
    pub fn fallbacks(&self) -> impl Iterator<Item = &str> {
        let tag = self.0.as_str();
        std::iter::once(tag).chain(tag.rmatch_indices('-').map(move |(i, _)| &tag[..i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_are_normalized() {
        assert_eq!(Locale::parse("fr-CA").unwrap().as_str(), "fr-ca");
        assert_eq!(Locale::parse("pt_BR").unwrap().as_str(), "pt-br");
        assert_eq!(Locale::parse(" de ").unwrap().as_str(), "de");
    }

    #[test]
    fn anything_but_a_tag_is_refused() {
        for raw in ["", "e", "english", "../en", "en/..", "en-", "de DE", "en-x", "1a"] {
            assert_eq!(Locale::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn fallbacks_go_from_specific_to_general() {
        let locale = Locale::parse("zh-Hant-TW").unwrap();
        assert_eq!(locale.fallbacks().collect::<Vec<_>>(), ["zh-hant-tw", "zh-hant", "zh"]);
        assert_eq!(Locale::parse("de").unwrap().fallbacks().collect::<Vec<_>>(), ["de"]);
    }

    proptest! {
        #[test]
        fn a_parsed_locale_is_safe_as_a_file_name(raw in "\\PC{0,40}") {
            if let Some(locale) = Locale::parse(&raw) {
                prop_assert!(locale.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
                prop_assert!(!locale.as_str().starts_with('-'));
            }
        }
    }
}
