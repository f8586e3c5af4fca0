//! Reads a request body as strict JSON: a JSON content type, a bounded size, no duplicate keys.

use axum::body::Body;
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use http_body_util::LengthLimitError;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Largest body accepted. A valid request is far smaller: an identifier and 2 KiB of metadata.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("Invalid request: Content-Type must be application/json")]
    UnsupportedContentType,
    #[error("Invalid request: The body must be at most {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("Invalid request: The body could not be read")]
    Unreadable,
    #[error("Invalid request: The body is not valid JSON")]
    Malformed,
    #[error("Invalid request: The body has a duplicate field")]
    DuplicateField,
}

/// Reads the whole body (up to the bound) and parses it. An empty body is `{}`, as Medusa sees it.
pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, BodyError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>());
        if too_large { BodyError::TooLarge } else { BodyError::Unreadable }
    })?;
    parse_json(headers, &bytes)
}

/// Parses a body already in memory; see [`read_json`].
pub fn parse_json(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, BodyError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    if !is_json_content_type(headers) {
        return Err(BodyError::UnsupportedContentType);
    }
    serde_json::from_slice::<Strict>(bytes).map(|Strict(value)| value).map_err(|e| match e.classify() {
        // Data errors come only from the visitor below, which raises nothing but duplicates.
        serde_json::error::Category::Data => BodyError::DuplicateField,
        _ => BodyError::Malformed,
    })
}

/// `application/json`, optionally with parameters, or any `application/…+json`.
fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON value whose objects have no duplicate keys. `JSON.parse` would keep the last one silently;
/// refusing is safer than guessing which `identifier` the client meant.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Strict(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate field"));
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;
    use serde_json::json;

    fn json_headers() -> HeaderMap {
        HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))])
    }

    #[test]
    fn a_json_object_parses() {
        assert_eq!(parse_json(&json_headers(), br#"{"identifier":"a@b.c"}"#), Ok(json!({"identifier": "a@b.c"})));
    }

    #[test]
    fn an_empty_body_is_an_empty_object_whatever_the_content_type() {
        assert_eq!(parse_json(&HeaderMap::new(), b""), Ok(json!({})));
        assert_eq!(parse_json(&HeaderMap::new(), b" \n"), Ok(json!({})));
    }

    #[test]
    fn a_body_without_a_json_content_type_is_refused() {
        let form =
            HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))]);
        assert_eq!(parse_json(&form, b"identifier=a"), Err(BodyError::UnsupportedContentType));
        assert_eq!(parse_json(&HeaderMap::new(), b"{}"), Err(BodyError::UnsupportedContentType));
        let vendor = HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("application/vnd.api+json"))]);
        assert!(parse_json(&vendor, b"{}").is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let headers = json_headers();
        assert_eq!(parse_json(&headers, br#"{"identifier":"a","identifier":"b"}"#), Err(BodyError::DuplicateField));
        assert_eq!(parse_json(&headers, br#"{"metadata":{"k":1,"k":2}}"#), Err(BodyError::DuplicateField));
    }

    #[test]
    fn malformed_and_over_deep_json_is_refused() {
        let headers = json_headers();
        for body in [&b"{"[..], b"{\"a\":}", b"\xff\xfe", b"{\"a\":\"\xff\"}", b"{} {}", b"NaN"] {
            assert_eq!(parse_json(&headers, body), Err(BodyError::Malformed), "{body:?}");
        }
        let deep = "[".repeat(200);
        assert_eq!(parse_json(&headers, deep.as_bytes()), Err(BodyError::Malformed));
    }

    #[test]
    fn an_over_large_body_is_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_json(&json_headers(), &big), Err(BodyError::TooLarge));
    }

    proptest! {
        #[test]
        fn strict_parsing_agrees_with_serde_json_when_there_are_no_duplicates(body in "\\PC{0,64}") {
            let strict = parse_json(&json_headers(), body.as_bytes());
            let loose = serde_json::from_str::<Value>(&body);
            if let (Ok(value), false) = (strict, body.trim().is_empty()) {
                prop_assert_eq!(Some(value), loose.ok());
            }
        }
    }
}
