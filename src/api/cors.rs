//! The CORS allow-list, like Medusa's `authCors`: exact origins and `/regex/` entries, credentials allowed.

use http::{HeaderValue, Method};
use regex_lite::Regex;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// Origins allowed to call the route from a browser.
#[derive(Debug, Clone, Default)]
pub struct CorsPolicy {
    rules: Vec<OriginRule>,
}

#[derive(Debug, Clone)]
enum OriginRule {
    Exact(String),
    /// Unanchored, as JavaScript's `RegExp.test` is in Medusa's `parseCorsOrigins`.
    Pattern(Regex),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not a valid origin or /regex/: {reason}")]
pub struct CorsError {
    entry: String,
    reason: String,
}

impl CorsPolicy {
    /// Parses a comma-separated list; an empty list allows no cross-origin caller.
    pub fn parse(spec: &str) -> Result<Self, CorsError> {
        let rules = spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(parse_rule)
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.rules.iter().any(|rule| match rule {
            OriginRule::Exact(allowed) => allowed == origin,
            OriginRule::Pattern(pattern) => pattern.is_match(origin),
        })
    }

    /// The tower layer for this policy, or `None` when no origin is allowed.
    pub fn layer(&self) -> Option<CorsLayer> {
        if self.rules.is_empty() {
            return None;
        }
        let policy = self.clone();
        let allow = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|origin| policy.allows(origin))
        });
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_credentials(true)
                // The `cors` package's defaults, which Medusa uses.
                .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::PATCH, Method::POST, Method::DELETE])
                .allow_headers(AllowHeaders::mirror_request()),
        )
    }
}

fn parse_rule(entry: &str) -> Result<OriginRule, CorsError> {
    let error = |reason: String| CorsError { entry: entry.to_owned(), reason };
    match entry.strip_prefix('/').and_then(|rest| rest.strip_suffix('/')) {
        Some(pattern) if !pattern.is_empty() => {
            Regex::new(pattern).map(OriginRule::Pattern).map_err(|e| error(e.to_string()))
        }
        _ if entry.starts_with("http://") || entry.starts_with("https://") => {
            Ok(OriginRule::Exact(entry.trim_end_matches('/').to_owned()))
        }
        _ => Err(error("an origin starts with http:// or https://".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origins_and_regexes_are_both_honoured() {
        let policy = CorsPolicy::parse("http://localhost:8000, /\\.vercel\\.app$/").unwrap();
        assert!(policy.allows("http://localhost:8000"));
        assert!(policy.allows("https://shop-git-main.vercel.app"));
        assert!(!policy.allows("http://localhost:8001"));
        assert!(!policy.allows("https://vercel.app.evil.com"));
    }

    #[test]
    fn an_empty_list_allows_nobody_and_has_no_layer() {
        let policy = CorsPolicy::parse("").unwrap();
        assert!(!policy.allows("http://localhost:8000"));
        assert!(policy.layer().is_none());
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(CorsPolicy::parse("localhost:8000").is_err());
        assert!(CorsPolicy::parse("/(unclosed/").is_err());
    }
}
