//! The optional `metadata` object a storefront may attach to a reset request, bounded in size and depth.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest metadata accepted, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 2048;
/// Deepest nesting of objects and arrays accepted inside metadata (the object itself is level 1).
pub const MAX_METADATA_DEPTH: usize = 5;

/// A JSON object of bounded size and depth; it travels unchanged into the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata(Map<String, Value>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("must be at most {MAX_METADATA_BYTES} bytes of JSON")]
    TooLarge,
    #[error("must be nested at most {MAX_METADATA_DEPTH} levels deep")]
    TooDeep,
}

impl Metadata {
    pub fn parse(map: Map<String, Value>) -> Result<Self, MetadataError> {
        if 1 + map.values().map(depth).max().unwrap_or(0) > MAX_METADATA_DEPTH {
            return Err(MetadataError::TooDeep);
        }
        // Serializing a map of Values cannot fail: its keys are strings.
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |bytes| bytes.len());
        if size > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge);
        }
        Ok(Self(map))
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_small_object_is_kept_as_it_is() {
        let meta = Metadata::parse(object(json!({"locale": "de", "n": 1}))).unwrap();
        assert_eq!(meta.get_str("locale"), Some("de"));
    }

    #[test]
    fn nesting_deeper_than_the_bound_is_refused() {
        let ok = json!({"a": {"b": {"c": {"d": {}}}}});
        assert!(Metadata::parse(object(ok)).is_ok());
        let deep = json!({"a": {"b": {"c": {"d": {"e": {}}}}}});
        assert_eq!(Metadata::parse(object(deep)), Err(MetadataError::TooDeep));
    }

    #[test]
    fn more_bytes_than_the_bound_are_refused() {
        let big = json!({"blob": "x".repeat(MAX_METADATA_BYTES)});
        assert_eq!(Metadata::parse(object(big)), Err(MetadataError::TooLarge));
    }
}
