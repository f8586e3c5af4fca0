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

    /// The language subtag: `pt` of `pt-br`.
    pub fn language(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
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
        assert_eq!(Locale::parse("PT_BR").unwrap().as_str(), "pt-br");
        assert_eq!(Locale::parse("pt-BR").unwrap().language(), "pt");
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

    /// A tag built from BCP 47's shape: a language, then up to three subtags, in either case and
    /// with either separator, maybe padded.
    fn tag() -> impl Strategy<Value = (String, Vec<String>)> {
        ("[a-zA-Z]{2,3}", prop::collection::vec(("[-_]", "[a-zA-Z0-9]{2,8}"), 0..=3), "[ ]{0,2}").prop_map(
            |(language, subtags, pad)| {
                let raw = format!(
                    "{pad}{language}{}{pad}",
                    subtags.iter().map(|(s, t)| format!("{s}{t}")).collect::<String>()
                );
                let mut parts = vec![language.to_ascii_lowercase()];
                parts.extend(subtags.into_iter().map(|(_, t)| t.to_ascii_lowercase()));
                (raw, parts)
            },
        )
    }

    proptest! {
        #[test]
        fn every_well_formed_tag_parses_to_its_normal_form_and_language_with_one_fallback_per_subtag((raw, parts) in tag()) {
            let locale = Locale::parse(&raw);
            prop_assert!(locale.is_some(), "{:?}", raw);
            let locale = locale.unwrap();
            prop_assert_eq!(locale.as_str(), parts.join("-"));
            prop_assert_eq!(locale.language(), parts[0].as_str());
            let fallbacks: Vec<&str> = locale.fallbacks().collect();
            let want: Vec<String> = (1..=parts.len()).rev().map(|n| parts[..n].join("-")).collect();
            prop_assert_eq!(fallbacks, want);
        }

        #[test]
        fn a_tag_with_a_path_or_space_character_inside_is_refused(
            (raw, _) in tag(),
            bad in prop::sample::select(vec!["/", "\\", ".", "..", " ", "%", "\u{0}", ":", "é"]),
            position in any::<prop::sample::Index>(),
        ) {
            let inner = raw.trim();
            // Inside the tag, not at its (trimmed) ends, where a space would only be padding.
            let at = 1 + position.index(inner.len() - 1);
            let hostile = format!("{}{bad}{}", &inner[..at], &inner[at..]);
            prop_assert_eq!(Locale::parse(&hostile), None, "{:?}", hostile);
        }
    }
}
