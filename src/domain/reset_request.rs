//! Parses a reset request body into a `ResetRequest`, refusing it with Medusa's validation messages.
//!
//! Medusa 2.21 validates `{identifier: string, metadata?: record}` strictly with zod 4 and reports at
//! most three issues as `Invalid request: …; …`. The messages below were measured against a running
//! Medusa 2.21.2 (the differential tests in `tests/medusa/medusa_differential.rs` keep them so).

use serde_json::{Map, Value};

use super::identifier::{Identifier, IdentifierError};
use super::js_string::js_string;
use super::metadata::{Metadata, MetadataError};

/// Medusa joins at most this many issues into one message.
const MAX_ISSUES: usize = 3;

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
    /// Parses a JSON body as Medusa's validator sees it: an object, or else (an array) nothing usable.
    pub fn from_json(body: Value) -> Result<Self, InvalidRequest> {
        match body {
            Value::Object(fields) => Self::from_fields(fields),
            // zod 4 reports a body that is not an object as a missing field with an empty path.
            _ => Err(InvalidRequest { issues: vec!["Field '' is required".to_owned()] }),
        }
    }

    fn from_fields(mut fields: Map<String, Value>) -> Result<Self, InvalidRequest> {
        // The body's own order (the map keeps it), in one pair of quotes, as Medusa lists them.
        let unknown: Vec<&str> =
            fields.keys().map(String::as_str).filter(|k| !matches!(*k, "identifier" | "metadata")).collect();
        let unknown = (!unknown.is_empty()).then(|| format!("Unrecognized fields: '{}'", unknown.join(", ")));
        // Medusa reads the received value back from the body only if the body passes its
        // `isObject` (`body.constructor.name === "Object"`); a body with its own `constructor` key
        // fails that, and then a wrong type is reported as a missing field.
        let readable = match fields.get("constructor") {
            None => true,
            Some(Value::Object(constructor)) => constructor.get("name").and_then(Value::as_str) == Some("Object"),
            Some(_) => false,
        };
        let wrong_type = |expected: &str, field: &str, got: &Value| {
            if readable { wrong_type(expected, field, got) } else { format!("Field '{field}' is required") }
        };
        let mut issues = Vec::new();
        let identifier = match fields.get("identifier") {
            None => {
                issues.push("Field 'identifier' is required".to_owned());
                None
            }
            Some(Value::String(raw)) => parse_identifier(raw).map_err(|issue| issues.push(issue)).ok(),
            Some(other) => {
                issues.push(wrong_type("string", "identifier", other));
                None
            }
        };
        let metadata = match fields.remove("metadata") {
            None => None,
            Some(Value::Object(map)) => Metadata::parse(map).map_err(|e| issues.push(metadata_issue(&e))).ok(),
            Some(other) => {
                issues.push(wrong_type("record", "metadata", &other));
                None
            }
        };
        issues.extend(unknown);
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

/// zod 4 prints the received value as JavaScript's `String(value)` does, not its type.
fn wrong_type(expected: &str, field: &str, got: &Value) -> String {
    format!("Expected type: '{expected}' for field '{field}', got: '{}'", js_string(got))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn message(body: Value) -> String {
        ResetRequest::from_json(body).unwrap_err().to_string()
    }

    /// A body parsed the way the route parses it, keeping its key order.
    fn parsed(body: &str) -> Value {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn an_identifier_with_metadata_parses() {
        let req =
            ResetRequest::from_json(json!({"identifier": "a@example.com", "metadata": {"locale": "de"}})).unwrap();
        assert_eq!(req.identifier.as_str(), "a@example.com");
        assert_eq!(req.metadata.unwrap().get_str("locale"), Some("de"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_missing_field_with_an_empty_name() {
        for body in [json!([]), json!([1]), json!(["a@x.com"]), json!("a@x.com")] {
            assert_eq!(message(body), "Invalid request: Field '' is required");
        }
    }

    #[test]
    fn a_missing_identifier_gets_medusas_message() {
        assert_eq!(message(json!({})), "Invalid request: Field 'identifier' is required");
    }

    #[test]
    fn a_wrong_type_prints_the_received_value_as_javascript_does() {
        let cases = [
            (r#"{"identifier":123}"#, "'string' for field 'identifier', got: '123'"),
            (r#"{"identifier":null}"#, "'string' for field 'identifier', got: 'null'"),
            (r#"{"identifier":true}"#, "'string' for field 'identifier', got: 'true'"),
            (r#"{"identifier":[1,2]}"#, "'string' for field 'identifier', got: '1,2'"),
            (r#"{"identifier":[]}"#, "'string' for field 'identifier', got: ''"),
            (r#"{"identifier":{}}"#, "'string' for field 'identifier', got: '[object Object]'"),
            (r#"{"identifier":12345678901234567890}"#, "'string' for field 'identifier', got: '12345678901234567000'"),
            (r#"{"identifier":"a@x.com","metadata":"x"}"#, "'record' for field 'metadata', got: 'x'"),
            (r#"{"identifier":"a@x.com","metadata":null}"#, "'record' for field 'metadata', got: 'null'"),
        ];
        for (body, expected) in cases {
            assert_eq!(message(parsed(body)), format!("Invalid request: Expected type: {expected}"), "{body}");
        }
    }

    #[test]
    fn unknown_fields_are_listed_in_the_bodys_order_in_one_pair_of_quotes() {
        assert_eq!(
            message(parsed(r#"{"identifier":"a@x.com","b":1,"a":2}"#)),
            "Invalid request: Unrecognized fields: 'b, a'"
        );
        assert_eq!(
            message(parsed(r#"{"__proto__":{},"identifier":"x"}"#)),
            "Invalid request: Unrecognized fields: '__proto__'"
        );
    }

    #[test]
    fn issues_come_identifier_first_then_metadata_then_unknown_fields_whatever_the_bodys_order() {
        let expected = "Invalid request: Expected type: 'string' for field 'identifier', got: '1'; \
                        Expected type: 'record' for field 'metadata', got: '2'; Unrecognized fields: 'z'";
        assert_eq!(message(parsed(r#"{"identifier":1,"metadata":2,"z":3}"#)), expected);
        assert_eq!(message(parsed(r#"{"z":3,"metadata":2,"identifier":1}"#)), expected);
        assert_eq!(
            message(parsed(r#"{"z":3}"#)),
            "Invalid request: Field 'identifier' is required; Unrecognized fields: 'z'"
        );
    }

    #[test]
    fn a_body_with_its_own_constructor_gets_medusas_missing_field_message_for_a_wrong_type() {
        assert_eq!(
            message(parsed(r#"{"identifier":null,"constructor":null}"#)),
            "Invalid request: Field 'identifier' is required; Unrecognized fields: 'constructor'"
        );
        assert_eq!(
            message(parsed(r#"{"constructor":1,"identifier":"a@x.com","metadata":2}"#)),
            "Invalid request: Field 'metadata' is required; Unrecognized fields: 'constructor'"
        );
        assert_eq!(
            message(parsed(r#"{"constructor":{"name":"Object"},"identifier":1}"#)),
            "Invalid request: Expected type: 'string' for field 'identifier', got: '1'; Unrecognized fields: 'constructor'"
        );
    }

    #[test]
    fn our_stricter_bounds_are_reported_as_field_issues() {
        assert_eq!(
            message(json!({"identifier": "a@b.c\r\nBcc: x@y.z"})),
            "Invalid request: Field 'identifier' must not contain control characters"
        );
        assert_eq!(message(json!({"identifier": ""})), "Invalid request: Field 'identifier' must not be empty");
        assert_eq!(
            message(json!({"metadata": {"a": {"b": {"c": {"d": {"e": {}}}}}}, "x": 1, "y": 2})),
            "Invalid request: Field 'identifier' is required; Field 'metadata' must be nested at most 5 levels deep; \
             Unrecognized fields: 'x, y'"
        );
    }

    /// A field of a request body: the two known ones with values of every JSON type, or another name.
    fn field() -> impl Strategy<Value = (String, Value)> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z@.]{0,8}".prop_map(Value::String),
        ];
        let value = scalar.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(("[a-z]{1,3}", inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        });
        let name = prop_oneof![
            Just("identifier".to_owned()),
            Just("metadata".to_owned()),
            Just("constructor".to_owned()),
            "[a-z_]{1,6}"
        ];
        (name, value)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// An oracle written from the rules, not from the parser: which issues a body must get.
        #[test]
        fn every_body_gets_exactly_the_issues_its_fields_call_for(fields in prop::collection::vec(field(), 0..5)) {
            let body: Map<String, Value> = fields.into_iter().collect();
            let readable = !body.contains_key("constructor");
            let got = |field: &str, expected: &str, value: &Value| if readable {
                format!("Expected type: '{expected}' for field '{field}', got: '{}'", js_string(value))
            } else {
                format!("Field '{field}' is required")
            };
            let mut expected = Vec::new();
            match body.get("identifier") {
                None => expected.push("Field 'identifier' is required".to_owned()),
                Some(Value::String(s)) if s.is_empty() => expected.push("Field 'identifier' must not be empty".to_owned()),
                Some(Value::String(_)) => {}
                Some(other) => expected.push(got("identifier", "string", other)),
            }
            match body.get("metadata") {
                None | Some(Value::Object(_)) => {}
                Some(other) => expected.push(got("metadata", "record", other)),
            }
            let unknown: Vec<&str> = body.keys().map(String::as_str).filter(|k| *k != "identifier" && *k != "metadata").collect();
            if !unknown.is_empty() {
                expected.push(format!("Unrecognized fields: '{}'", unknown.join(", ")));
            }
            match ResetRequest::from_json(Value::Object(body.clone())) {
                Ok(request) => {
                    prop_assert!(expected.is_empty(), "accepted {body:?}, expected {expected:?}");
                    prop_assert_eq!(Some(request.identifier.as_str()), body["identifier"].as_str());
                    prop_assert_eq!(request.metadata.is_some(), body.contains_key("metadata"));
                }
                Err(error) => prop_assert_eq!(error.to_string(), format!("Invalid request: {}", expected.join("; "))),
            }
        }
    }
}
