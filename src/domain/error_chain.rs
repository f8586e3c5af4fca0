//! An error as one line with the causes it carries: libraries often say only what failed ("error
//! performing TLS handshake", "could not render include") and keep why in `source()`.

use std::error::Error;

/// `error: cause: cause's cause…`, leaving out a cause whose text the line already holds (some
/// errors, tokio-postgres's among them, repeat their source in their own message).
pub fn with_causes(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text = format!("{text}: {inner_text}");
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(text: &'static str, source: Option<Layer>) -> Layer {
        Layer { text, source: source.map(Box::new) }
    }

    #[test]
    fn each_cause_is_appended_once() {
        let chain = layer("handshake failed", Some(layer("bad certificate", Some(layer("unknown issuer", None)))));
        assert_eq!(with_causes(&chain), "handshake failed: bad certificate: unknown issuer");
        let repeating = layer("connect failed: refused", Some(layer("refused", None)));
        assert_eq!(with_causes(&repeating), "connect failed: refused");
    }
}
