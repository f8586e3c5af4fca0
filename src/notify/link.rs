//! Reset links from per-actor-type URL templates, e.g. `https://shop.example.com/reset?token={token}&email={email}`.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters is encoded, so a value cannot end the query
/// parameter it sits in or start another.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 2] = ["{token}", "{email}"];

/// One checked template per actor type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTemplates(BTreeMap<String, String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkTemplateError {
    #[error("must start with https:// (or http:// for local development)")]
    NotHttp,
    #[error("must contain {{token}}")]
    NoToken,
    #[error("has an unknown placeholder; only {{token}} and {{email}} are filled in")]
    UnknownPlaceholder,
}

impl LinkTemplates {
    pub fn new() -> Self {
        Self(BTreeMap::new())
    }

    /// Checks a template and files it under its actor type.
    pub fn insert(&mut self, actor_type: &str, template: &str) -> Result<(), LinkTemplateError> {
        check(template)?;
        self.0.insert(actor_type.to_owned(), template.to_owned());
        Ok(())
    }

    /// The link for a token and address, each value URL-encoded; `None` for an actor type without a template.
    pub fn link(&self, actor_type: &str, token: &str, email: &str) -> Option<String> {
        let template = self.0.get(actor_type)?;
        Some(template.replace("{token}", &encode(token)).replace("{email}", &encode(email)))
    }
}

impl Default for LinkTemplates {
    fn default() -> Self {
        Self::new()
    }
}

fn encode(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

fn check(template: &str) -> Result<(), LinkTemplateError> {
    if !(template.starts_with("https://") || template.starts_with("http://"))
        || template.chars().any(char::is_whitespace)
    {
        return Err(LinkTemplateError::NotHttp);
    }
    if !template.contains("{token}") {
        return Err(LinkTemplateError::NoToken);
    }
    let mut rest = template.to_owned();
    for placeholder in PLACEHOLDERS {
        rest = rest.replace(placeholder, "");
    }
    if rest.contains('{') || rest.contains('}') {
        return Err(LinkTemplateError::UnknownPlaceholder);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::percent_decode_str;
    use proptest::prelude::*;

    fn templates() -> LinkTemplates {
        let mut templates = LinkTemplates::new();
        templates.insert("customer", "https://shop.example.com/reset-password?token={token}&email={email}").unwrap();
        templates
    }

    #[test]
    fn values_are_url_encoded() {
        let link = templates().link("customer", "a.b_c-d", "o'neil+x@example.com").unwrap();
        assert_eq!(link, "https://shop.example.com/reset-password?token=a.b_c-d&email=o%27neil%2Bx%40example.com");
    }

    #[test]
    fn a_hostile_value_cannot_add_parameters_or_leave_the_query() {
        let link = templates().link("customer", "t", "a@b.c&token=evil#x\"><script>").unwrap();
        assert_eq!(link.matches('&').count(), 1);
        assert!(!link.contains('#') && !link.contains('<') && !link.contains('"'));
    }

    #[test]
    fn an_actor_type_without_a_template_has_no_link() {
        assert_eq!(templates().link("user", "t", "a@b.c"), None);
    }

    #[test]
    fn bad_templates_are_refused() {
        let mut templates = LinkTemplates::new();
        assert_eq!(templates.insert("customer", "ftp://x/{token}"), Err(LinkTemplateError::NotHttp));
        assert_eq!(templates.insert("customer", "https://x/reset"), Err(LinkTemplateError::NoToken));
        assert_eq!(
            templates.insert("customer", "https://x/?t={token}&n={name}"),
            Err(LinkTemplateError::UnknownPlaceholder)
        );
        assert_eq!(templates.insert("customer", "https://x/ ?t={token}"), Err(LinkTemplateError::NotHttp));
    }

    /// Strings that try hard to break out of a query value.
    fn hostile_value() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                "\\PC{1,6}",
                prop::sample::select(vec![
                    "&", "=", "#", "?", "/", "%", "%26", "+", " ", "\"", "<", "'", "\r\n", "é", "@"
                ])
                .prop_map(str::to_owned),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn the_link_holds_exactly_the_two_values_and_they_decode_back(token in hostile_value(), email in hostile_value()) {
            let link = templates().link("customer", &token, &email).unwrap();
            let query = link.strip_prefix("https://shop.example.com/reset-password?").unwrap();
            prop_assert!(!query.contains(|c: char| c.is_whitespace() || matches!(c, '#' | '<' | '"' | '\'')));
            let pairs: Vec<(&str, String)> = query
                .split('&')
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (name, percent_decode_str(value).decode_utf8().unwrap().into_owned())
                })
                .collect();
            prop_assert_eq!(pairs, vec![("token", token), ("email", email)]);
        }
    }
}
