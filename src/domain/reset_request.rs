//! Parses a reset request body into a `ResetRequest`, refusing it with Medusa's validation messages.
//!
//! Medusa validates `{identifier: string, metadata?: object}` strictly with zod and reports at most
//! three issues as `Invalid request: …; …`. The messages below are zod's, as Medusa formats them.

use serde_json::{Map, Value};

use super::identifier::{Identifier, IdentifierError};
use super::metadata::{Metadata, MetadataError};

/// Medusa joins at most this many issues into one message.
const MAX_ISSUES: usize = 3;
/// Unknown field names echoed back at most; the rest are counted, so a hostile body cannot bloat the answer.
const MAX_ECHOED_FIELDS: usize = 5;

/// A well-formed request: a usable identifier and bounded metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ResetRequest {
    pub identifier: Identifier,
    pub metadata: Option<Metadata>,
}

/// The request failed validation; `Display` is Medusa's `invalid_data` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid request: {}", .issues.join("; "))]
pub struct InvalidRequest {
    issues: Vec<String>,
}

impl ResetRequest {
    /// Parses a JSON body. A bare JSON string is the identifier (the route's published example).
    pub fn from_json(body: Value) -> Result<Self, InvalidRequest> {
        match body {
            Value::String(identifier) => parse_identifier(&identifier)
                .map(|identifier| Self { identifier, metadata: None })
                .map_err(|issue| InvalidRequest { issues: vec![issue] }),
            Value::Object(fields) => Self::from_fields(fields),
            other => Err(InvalidRequest { issues: vec![wrong_type("object", "", &other)] }),
        }
    }

    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, InvalidRequest> {
        let mut issues = Vec::new();
        let identifier = match fields.remove("identifier") {
            None => {
                issues.push("Field 'identifier' is required".to_owned());
                None
            }
            Some(Value::String(raw)) => parse_identifier(&raw).map_err(|issue| issues.push(issue)).ok(),
            Some(other) => {
                issues.push(wrong_type("string", "identifier", &other));
                None
            }
        };
        let metadata = match fields.remove("metadata") {
            None => None,
            Some(Value::Object(map)) => Metadata::parse(map).map_err(|e| issues.push(metadata_issue(&e))).ok(),
            Some(other) => {
                issues.push(wrong_type("object", "metadata", &other));
                None
            }
        };
        if !fields.is_empty() {
            let mut names: Vec<String> =
                fields.keys().take(MAX_ECHOED_FIELDS).map(|k| format!("'{}'", printable(k))).collect();
            if fields.len() > MAX_ECHOED_FIELDS {
                names.push(format!("and {} more", fields.len() - MAX_ECHOED_FIELDS));
            }
            issues.push(format!("Unrecognized fields: {}", names.join(", ")));
        }
        match identifier {
            Some(identifier) if issues.is_empty() => Ok(Self { identifier, metadata }),
            _ => {
                issues.truncate(MAX_ISSUES);
                Err(InvalidRequest { issues })
            }
        }
    }
}

fn parse_identifier(raw: &str) -> Result<Identifier, String> {
    Identifier::parse(raw).map_err(|e: IdentifierError| format!("Field 'identifier' {e}"))
}

fn metadata_issue(error: &MetadataError) -> String {
    format!("Field 'metadata' {error}")
}

fn wrong_type(expected: &str, field: &str, got: &Value) -> String {
    format!("Expected type: '{expected}' for field '{field}', got: '{}'", zod_type_name(got))
}

/// zod's names for the type it received.
fn zod_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Unknown field names are echoed as Medusa does, but bounded and without control characters so a
/// hostile key cannot forge log lines or bloat the answer.
fn printable(key: &str) -> String {
    const MAX_ECHO: usize = 40;
    let mut shown: String = key.chars().filter(|c| !c.is_control()).take(MAX_ECHO).collect();
    if key.chars().count() > MAX_ECHO {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn message(body: Value) -> String {
        ResetRequest::from_json(body).unwrap_err().to_string()
    }

    #[test]
    fn an_identifier_with_metadata_parses() {
        let req =
            ResetRequest::from_json(json!({"identifier": "a@example.com", "metadata": {"locale": "de"}})).unwrap();
        assert_eq!(req.identifier.as_str(), "a@example.com");
        assert_eq!(req.metadata.unwrap().get_str("locale"), Some("de"));
    }

    #[test]
    fn a_bare_string_is_the_identifier() {
        let req = ResetRequest::from_json(json!("customer@gmail.com")).unwrap();
        assert_eq!(req.identifier.as_str(), "customer@gmail.com");
        assert_eq!(req.metadata, None);
    }

    #[test]
    fn a_missing_identifier_gets_medusas_message() {
        assert_eq!(message(json!({})), "Invalid request: Field 'identifier' is required");
    }

    #[test]
    fn a_wrong_type_gets_medusas_message() {
        assert_eq!(
            message(json!({"identifier": 42})),
            "Invalid request: Expected type: 'string' for field 'identifier', got: 'number'"
        );
        assert_eq!(
            message(json!({"identifier": null})),
            "Invalid request: Expected type: 'string' for field 'identifier', got: 'null'"
        );
        assert_eq!(
            message(json!({"identifier": "a@b.c", "metadata": [1]})),
            "Invalid request: Expected type: 'object' for field 'metadata', got: 'array'"
        );
        assert_eq!(message(json!([1])), "Invalid request: Expected type: 'object' for field '', got: 'array'");
    }

    #[test]
    fn unknown_fields_are_named() {
        assert_eq!(
            message(json!({"identifier": "a@b.c", "email": "x"})),
            "Invalid request: Unrecognized fields: 'email'"
        );
    }

    #[test]
    fn at_most_three_issues_are_joined() {
        let body = json!({"metadata": {"a": {"b": {"c": {"d": {"e": {}}}}}}, "x": 1, "y": 2});
        assert_eq!(
            message(body),
            "Invalid request: Field 'identifier' is required; Field 'metadata' must be nested at most 5 levels deep; \
             Unrecognized fields: 'x', 'y'"
        );
        let four = json!({"identifier": 1, "metadata": 2, "z": 3});
        assert_eq!(message(four).matches("; ").count(), 2);
    }

    #[test]
    fn identifier_bounds_are_reported_as_field_issues() {
        assert_eq!(
            message(json!({"identifier": "a@b.c\r\nBcc: x@y.z"})),
            "Invalid request: Field 'identifier' must not contain control characters"
        );
        assert_eq!(message(json!("")), "Invalid request: Field 'identifier' must not be empty");
    }

    #[test]
    fn echoed_field_names_are_bounded_and_printable() {
        let msg = message(json!({"identifier": "a@b.c", "\u{1b}[31mred\n": 1, "k".repeat(500): 2}));
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.len() < 200, "{msg}");
        let many: Map<String, Value> = (0..50).map(|i| (format!("f{i:02}"), json!(1))).collect();
        let mut body = many;
        body.insert("identifier".into(), json!("a@b.c"));
        assert_eq!(
            message(Value::Object(body)),
            "Invalid request: Unrecognized fields: 'f00', 'f01', 'f02', 'f03', 'f04', and 45 more"
        );
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,30}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("identifier|metadata|[a-z]{1,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_either_parses_or_gets_at_most_three_issues(body in any_json()) {
            match ResetRequest::from_json(body) {
                Ok(req) => prop_assert!(!req.identifier.as_str().is_empty()),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with("Invalid request: "));
                    prop_assert!(msg.matches("; ").count() <= 2);
                }
            }
        }
    }
}
