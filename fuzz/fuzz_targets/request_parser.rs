//! Fuzzes the request parser: any bytes, with and without a JSON content type, through the strict
//! JSON reader and the reset-request validation. It must never panic, and whatever it accepts must
//! hold the bounds the types promise.
#![no_main]

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use medusa_reset::api::{MAX_BODY_BYTES, parse_json};
use medusa_reset::domain::identifier::MAX_IDENTIFIER_CHARS;
use medusa_reset::domain::reset_request::ResetRequest;

fuzz_target!(|data: &[u8]| {
    let (first, body) = data.split_first().unwrap_or((&0, data));
    let mut headers = HeaderMap::new();
    if first % 4 != 0 {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let Ok(value) = parse_json(&headers, body) else {
        return;
    };
    assert!(body.len() <= MAX_BODY_BYTES);
    if let Ok(request) = ResetRequest::from_json(value) {
        let identifier = request.identifier.as_str();
        assert!(!identifier.is_empty() && identifier.chars().count() <= MAX_IDENTIFIER_CHARS);
        assert!(!identifier.chars().any(char::is_control));
        if let Some(metadata) = request.metadata {
            assert!(serde_json::to_vec(&metadata).map(|v| v.len()).unwrap_or(0) <= 2048);
        }
    }
});
