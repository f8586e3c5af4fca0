//! The shop as its e-mails show it: name, logo and button colour, each parsed once at cold start.

use minijinja::Value;
use minijinja::value::Serde;
use serde::Serialize;

/// The button's colour when none is configured: a blue that reads on light and dark backgrounds.
const DEFAULT_COLOR: BrandColor = BrandColor([0x25, 0x63, 0xeb]);
/// A name is a header line and a few words in sentences, not a paragraph.
const MAX_NAME_CHARS: usize = 100;
/// Longer than any logo URL a CDN hands out, short enough to keep the e-mail small.
const MAX_URL_BYTES: usize = 2048;

/// Why a shop setting was refused. The messages never quote the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShopError {
    #[error("must be 1 to {MAX_NAME_CHARS} characters with no control characters")]
    Name,
    #[error("must be an https:// URL of at most {MAX_URL_BYTES} bytes")]
    Logo,
    #[error("must be a colour written #rgb or #rrggbb")]
    Color,
}

/// The shop's name, trimmed, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopName(String);

impl ShopName {
    pub fn parse(raw: &str) -> Result<Self, ShopError> {
        let name = raw.trim();
        let fits = !name.is_empty() && name.chars().count() <= MAX_NAME_CHARS;
        if !fits || name.chars().any(char::is_control) {
            return Err(ShopError::Name);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An `https://` URL with a host: mail clients block or warn about images over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoUrl(String);

impl LogoUrl {
    pub fn parse(raw: &str) -> Result<Self, ShopError> {
        let raw = raw.trim();
        if raw.len() > MAX_URL_BYTES {
            return Err(ShopError::Logo);
        }
        // RFC 3986's characters only: `http::Uri` lets `"`, `<` and `>` through, which have no place in an `src`.
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)) {
            return Err(ShopError::Logo);
        }
        let uri: http::Uri = raw.parse().map_err(|_| ShopError::Logo)?;
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().is_some_and(|host| !host.is_empty());
        // `Uri` keeps user-info in the authority; a logo URL has no business carrying credentials.
        let credentials = uri.authority().is_some_and(|a| a.as_str().contains('@'));
        if !https || !host || credentials {
            return Err(ShopError::Logo);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An sRGB colour from `#rgb` or `#rrggbb`, written back as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrandColor([u8; 3]);

impl BrandColor {
    pub fn parse(raw: &str) -> Result<Self, ShopError> {
        let hex = raw.trim().strip_prefix('#').ok_or(ShopError::Color)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ShopError::Color);
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).map_err(|_| ShopError::Color);
        let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| ShopError::Color);
        match hex.len() {
            3 => Ok(Self([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])),
            6 => Ok(Self([pair(0)?, pair(2)?, pair(4)?])),
            _ => Err(ShopError::Color),
        }
    }

    pub fn css(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// White or near-black, whichever contrasts more with this colour (WCAG's contrast ratio), so
    /// a pale brand colour still gets a readable button.
    pub fn text_css(self) -> &'static str {
        const DARK: f64 = 0.0056; // the relative luminance of #111111
        let luminance = self.luminance();
        let with_white = 1.05 / (luminance + 0.05);
        let with_dark = (luminance + 0.05) / (DARK + 0.05);
        if with_white >= with_dark { "#ffffff" } else { "#111111" }
    }

    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }
}

impl Default for BrandColor {
    fn default() -> Self {
        DEFAULT_COLOR
    }
}

/// What the e-mail shows of the shop. Without a name the words leave it out of their sentences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shop {
    pub name: Option<ShopName>,
    pub logo: Option<LogoUrl>,
    pub color: BrandColor,
}

/// `shop` as the templates see it.
#[derive(Serialize)]
struct ShopValues<'a> {
    name: Option<&'a str>,
    logo_url: Option<&'a str>,
    color: String,
    color_text: &'static str,
}

impl Shop {
    /// The template value, built once: rendering clones a reference to it.
    pub(super) fn to_value(&self) -> Value {
        Value::from(Serde(ShopValues {
            name: self.name.as_ref().map(ShopName::as_str),
            logo_url: self.logo.as_ref().map(LogoUrl::as_str),
            color: self.color.css(),
            color_text: self.color.text_css(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed_and_one_line() {
        assert_eq!(ShopName::parse("  Acme & Co  ").unwrap().as_str(), "Acme & Co");
        for bad in ["", "   ", "Acme\nBcc: x", "Acme\u{7}", &"x".repeat(MAX_NAME_CHARS + 1)] {
            assert_eq!(ShopName::parse(bad), Err(ShopError::Name), "{bad:?}");
        }
        assert!(ShopName::parse(&"é".repeat(MAX_NAME_CHARS)).is_ok(), "characters are counted, not bytes");
    }

    #[test]
    fn a_logo_must_be_an_https_url_with_a_host() {
        let ok = LogoUrl::parse("https://cdn.example.com/logo.png?v=2").unwrap();
        assert_eq!(ok.as_str(), "https://cdn.example.com/logo.png?v=2");
        for bad in [
            "http://cdn.example.com/logo.png",
            "cdn.example.com/logo.png",
            "/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "https://",
            "https://user:pass@cdn.example.com/logo.png",
            "https://cdn.example.com/a b.png",
            "https://cdn.example.com/\"onerror=\"x",
            "https://cdn.example.com/<x>.png",
        ] {
            assert_eq!(LogoUrl::parse(bad), Err(ShopError::Logo), "{bad:?}");
        }
        let long = format!("https://cdn.example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(LogoUrl::parse(&long), Err(ShopError::Logo));
    }

    #[test]
    fn a_colour_is_three_or_six_hex_digits_and_comes_back_as_six() {
        assert_eq!(BrandColor::parse("#0af").unwrap().css(), "#00aaff");
        assert_eq!(BrandColor::parse("#12ABef").unwrap().css(), "#12abef");
        for bad in ["", "0af", "#0a", "#0afe", "#12345g", "#1234567", "red", "#+1+2+3", "#ééé"] {
            assert_eq!(BrandColor::parse(bad), Err(ShopError::Color), "{bad:?}");
        }
    }

    #[test]
    fn the_button_text_contrasts_with_the_brand_colour() {
        assert_eq!(BrandColor::parse("#000").unwrap().text_css(), "#ffffff");
        assert_eq!(BrandColor::parse("#1d4ed8").unwrap().text_css(), "#ffffff");
        assert_eq!(BrandColor::parse("#fff").unwrap().text_css(), "#111111");
        assert_eq!(BrandColor::parse("#ffd60a").unwrap().text_css(), "#111111", "a yellow gets dark text");
        assert_eq!(BrandColor::default().text_css(), "#ffffff");
    }
}
