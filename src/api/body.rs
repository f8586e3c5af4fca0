//! Reads a request body as Medusa's JSON body parser does in strict mode (an object or an array),
//! with a bounded size, an `application/json` content type in UTF-8, and no duplicate keys.

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
    #[error("Invalid request: Content-Type must be application/json with UTF-8")]
    UnsupportedContentType,
    #[error("Invalid request: The body must be at most {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("Invalid request: The body could not be read")]
    Unreadable,
    #[error("Invalid request: The body is not valid JSON")]
    Malformed,
    #[error("Invalid request: The body has a duplicate field")]
    DuplicateField,
    /// JSON that is neither an object nor an array; the message is the one Node's parser gives.
    #[error("{0}")]
    NotAnObjectOrArray(String),
}

/// Reads the whole body (up to the bound) and parses it. An empty body without a content type or
/// with a JSON one is `{}`, as Medusa sees it.
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
    let blank = bytes.iter().all(|b| JSON_WHITESPACE.contains(b));
    match content_type(headers) {
        ContentType::Json => {}
        ContentType::Missing if blank => {}
        ContentType::Missing | ContentType::Other => return Err(BodyError::UnsupportedContentType),
    }
    if blank {
        return Ok(Value::Object(Map::new()));
    }
    // Medusa's parser is strict: a body that does not open an object or an array is refused
    // before it is parsed, with the message JSON.parse gives for it.
    if let Some(&first) = bytes.iter().find(|b| !JSON_WHITESPACE.contains(b))
        && first != b'{'
        && first != b'['
    {
        return Err(BodyError::NotAnObjectOrArray(node_unexpected_token(bytes)));
    }
    serde_json::from_slice::<Strict>(bytes).map(|Strict(value)| value).map_err(|e| match e.classify() {
        // Data errors come only from the visitor below, which raises nothing but duplicates.
        serde_json::error::Category::Data => BodyError::DuplicateField,
        _ => BodyError::Malformed,
    })
}

/// The bytes JSON counts as white space.
const JSON_WHITESPACE: &[u8] = b" \t\n\r";

enum ContentType {
    Json,
    Missing,
    Other,
}

/// `application/json` (any case) with no charset or a UTF-8 one is JSON; Medusa's parser takes no other.
fn content_type(headers: &HeaderMap) -> ContentType {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return ContentType::Missing;
    };
    let Ok(value) = value.to_str() else {
        return ContentType::Other;
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let utf8 = parts.filter_map(|p| p.split_once('=')).all(|(name, charset)| {
        !name.trim().eq_ignore_ascii_case("charset") || charset.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
    });
    if essence.eq_ignore_ascii_case("application/json") && utf8 { ContentType::Json } else { ContentType::Other }
}

/// V8's message for JSON.parse of a text that starts with something other than `{` or `[`: the
/// offending character and the whole text, or, from 21 characters on, ten characters either side
/// of it, with `...` outside the quotes where text was left out.
fn node_unexpected_token(bytes: &[u8]) -> String {
    const CONTEXT: usize = 10;
    let text: Vec<char> = String::from_utf8_lossy(bytes).chars().collect();
    let at = text.iter().position(|c| !matches!(c, ' ' | '\t' | '\n' | '\r')).unwrap_or(0);
    let token = text.get(at).copied().unwrap_or_default();
    let (start, end) = if text.len() <= 2 * CONTEXT {
        (0, text.len())
    } else {
        (at.saturating_sub(CONTEXT), (at + CONTEXT).min(text.len()))
    };
    let shown: String = text[start..end].iter().collect();
    let before = if start > 0 { "..." } else { "" };
    let after = if end < text.len() { "..." } else { "" };
    format!("Unexpected token '{token}', {before}\"{shown}\"{after} is not valid JSON")
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
    fn an_empty_body_without_a_content_type_or_with_json_is_an_empty_object() {
        assert_eq!(parse_json(&HeaderMap::new(), b""), Ok(json!({})));
        assert_eq!(parse_json(&json_headers(), b" \n"), Ok(json!({})));
    }

    #[test]
    fn a_body_without_a_utf8_json_content_type_is_refused() {
        let with = |value: &'static str| HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static(value))]);
        for refused in [
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/vnd.api+json",
            "application/json; charset=latin1",
            "multipart/form-data; boundary=x",
        ] {
            assert_eq!(parse_json(&with(refused), b"{}"), Err(BodyError::UnsupportedContentType), "{refused}");
            assert_eq!(parse_json(&with(refused), b""), Err(BodyError::UnsupportedContentType), "{refused}");
        }
        assert_eq!(parse_json(&HeaderMap::new(), b"{}"), Err(BodyError::UnsupportedContentType));
        for accepted in ["APPLICATION/JSON", "application/json;charset=\"UTF-8\"", "application/json; foo=bar"] {
            assert_eq!(parse_json(&with(accepted), b"{}"), Ok(json!({})), "{accepted}");
        }
    }

    #[test]
    fn json_that_is_not_an_object_or_an_array_gets_nodes_message() {
        let refused = |body: &str| parse_json(&json_headers(), body.as_bytes()).unwrap_err().to_string();
        // Measured against Medusa 2.21.2 on Node 20.
        assert_eq!(refused("null"), r#"Unexpected token 'n', "null" is not valid JSON"#);
        assert_eq!(refused(" null "), r#"Unexpected token 'n', " null " is not valid JSON"#);
        assert_eq!(refused(r#""a@x.com""#), r#"Unexpected token '"', ""a@x.com"" is not valid JSON"#);
        assert_eq!(
            refused("12345678901234567890"),
            r#"Unexpected token '1', "12345678901234567890" is not valid JSON"#
        );
        assert_eq!(
            refused(&format!("\"{}\"", "a".repeat(45))),
            r#"Unexpected token '"', ""aaaaaaaaa"... is not valid JSON"#
        );
        assert_eq!(parse_json(&json_headers(), b"[1]"), Ok(json!([1])));
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
        for body in [&b"{"[..], b"{\"a\":}", b"[\xff\xfe]", b"{\"a\":\"\xff\"}", b"{} {}", b"[NaN]"] {
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

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| json!(x)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_reads_back_as_itself_if_it_opens_an_object_or_an_array(value in any_json(), pad in "[ \t\r\n]{0,3}") {
            let body = format!("{pad}{value}{pad}");
            match (&value, parse_json(&json_headers(), body.as_bytes())) {
                (Value::Object(_) | Value::Array(_), Ok(parsed)) => prop_assert_eq!(parsed, value),
                (Value::Object(_) | Value::Array(_), Err(e)) => prop_assert!(false, "{body}: {e}"),
                (_, Err(BodyError::NotAnObjectOrArray(message))) => {
                    prop_assert!(message.starts_with("Unexpected token '"), "{}", message);
                    prop_assert!(message.ends_with("is not valid JSON"), "{}", message);
                }
                (_, other) => prop_assert!(false, "{body}: {other:?}"),
            }
        }

        #[test]
        fn a_repeated_key_anywhere_is_refused(value in any_json(), key in "[a-z]{1,4}") {
            let body = format!(r#"{{"{key}":{value},"{key}":{value}}}"#);
            prop_assert_eq!(parse_json(&json_headers(), body.as_bytes()), Err(BodyError::DuplicateField));
            let nested = format!(r#"[{{"x":[{body}]}}]"#);
            prop_assert_eq!(parse_json(&json_headers(), nested.as_bytes()), Err(BodyError::DuplicateField));
        }
    }
}
