//! Mints the reset token: an HS256 JWT with the claims Medusa's update route accepts.

use std::fmt;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actor::{ActorType, AuthProvider};
use super::clock::checked_epoch_seconds;
use super::identifier::Identifier;
use super::locale::Locale;

/// HS256 keys shorter than the hash output weaken the MAC; Medusa's own guidance agrees.
pub const MIN_SECRET_BYTES: usize = 32;

/// The shared signing secret. Never printed: `Debug` is redacted and there is no `Display`.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be at least {MIN_SECRET_BYTES} bytes, got {0}")]
pub struct SecretTooShort(pub usize);

impl SigningSecret {
    pub fn parse(raw: impl Into<Vec<u8>>) -> Result<Self, SecretTooShort> {
        let bytes = raw.into();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A key for another use of the signing secret: HMAC-SHA256(secret, label). Each label gives an
    /// independent key, none of which reveals the secret or signs a token, so no new setting is needed.
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        let derivation = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let mut key = [0u8; 32];
        key.copy_from_slice(aws_lc_rs::hmac::sign(&derivation, label.as_bytes()).as_ref());
        key
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

/// How tokens are minted: their lifetime and the optional `iss`/`aud` claims.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub lifetime: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The claims of a reset token. Field names are Medusa's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetClaims {
    pub entity_id: String,
    pub provider: String,
    pub actor_type: String,
    pub purpose: String,
    pub jti: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The locale the reset request asked for, so that the notice of the change the token makes
    /// speaks the reset e-mail's language. Medusa ignores claims it does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// The `purpose` claim of every token this system mints.
pub const RESET_PURPOSE: &str = "reset";

/// A signed token as it travels in the event. `Debug` is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResetToken(String);

impl ResetToken {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `exp` claim, read without checking the signature: the notifier only decides whether a
    /// link is still worth sending, and has no business holding the secret. Medusa verifies.
    pub fn expires_at(&self) -> Option<u64> {
        #[derive(Deserialize)]
        struct Expiry {
            exp: u64,
        }
        jsonwebtoken::dangerous::insecure_decode_claims::<Expiry>(&self.0).ok().map(|claims| claims.exp)
    }

    /// The `jti` claim, read the same way (for binding a sealed token to its identity).
    pub fn jti(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Id {
            jti: String,
        }
        jsonwebtoken::dangerous::insecure_decode_claims::<Id>(&self.0).ok().map(|claims| claims.jti)
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken(<redacted>)")
    }
}

/// A freshly minted token with the facts about it that callers need without decoding it.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: ResetToken,
    pub jti: Uuid,
    pub expires_at: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the system clock is before 1970")]
    Clock,
    #[error("signing the token failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Whom a token is for, and the locale their e-mails are in.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject<'a> {
    pub identifier: &'a Identifier,
    pub actor_type: &'a ActorType,
    pub provider: &'a AuthProvider,
    pub locale: Option<&'a Locale>,
}

/// Mints tokens; built once at cold start so the key and header are not rebuilt per request.
pub struct TokenMinter {
    key: EncodingKey,
    /// For deriving keys of other uses from it.
    secret: SigningSecret,
    header: Header,
    lifetime_secs: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl TokenMinter {
    pub fn new(secret: &SigningSecret, settings: &TokenSettings) -> Self {
        Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            secret: secret.clone(),
            header: Header::new(Algorithm::HS256),
            lifetime_secs: settings.lifetime.as_secs(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        }
    }

    /// A key for another use of the signing secret (`SigningSecret::derive_key`).
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        self.secret.derive_key(label)
    }

    /// The `exp` a token minted at `now` gets, in seconds since the epoch.
    pub fn expiry(&self, now: SystemTime) -> Result<u64, TokenError> {
        Ok(unix_seconds(now)? + self.lifetime_secs)
    }

    /// Mints a token with the given `jti`, which the caller may have recorded first (Medusa ≥ 2.16).
    pub fn mint(&self, subject: &TokenSubject<'_>, jti: Uuid, now: SystemTime) -> Result<MintedToken, TokenError> {
        let TokenSubject { identifier, actor_type, provider, locale } = *subject;
        let iat = unix_seconds(now)?;
        let claims = ResetClaims {
            entity_id: identifier.as_str().to_owned(),
            provider: provider.as_str().to_owned(),
            actor_type: actor_type.as_str().to_owned(),
            purpose: RESET_PURPOSE.to_owned(),
            jti: jti.to_string(),
            iat,
            exp: iat + self.lifetime_secs,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            locale: locale.map(|locale| locale.as_str().to_owned()),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key)?;
        Ok(MintedToken { token: ResetToken(token), jti, expires_at: claims.exp })
    }
}

/// A token's `iat` and `exp`: a clock before 1970 is refused rather than read as the epoch, which
/// would mint a token that expired long ago.
fn unix_seconds(now: SystemTime) -> Result<u64, TokenError> {
    checked_epoch_seconds(now).ok_or(TokenError::Clock)
}

/// What Medusa ≥ 2.16 stores in `auth_password_reset_token.token_hash`: the SHA-256 hex of the `jti`.
pub fn jti_hash(jti: &Uuid) -> String {
    sha256_hex(jti.to_string().as_bytes())
}

/// Lower-case hex SHA-256, the one digest the project stores in place of what it must not keep.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ProviderPolicy;
    use crate::domain::clock::at_epoch_seconds;
    use jsonwebtoken::{DecodingKey, Validation, decode};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn settings() -> TokenSettings {
        TokenSettings { lifetime: Duration::from_secs(900), issuer: Some("shop".into()), audience: None }
    }

    fn minter() -> TokenMinter {
        TokenMinter::new(&SigningSecret::parse(SECRET).unwrap(), &settings())
    }

    fn subject<'a>(
        identifier: &'a Identifier,
        actor_type: &'a ActorType,
        provider: &'a AuthProvider,
    ) -> TokenSubject<'a> {
        TokenSubject { identifier, actor_type, provider, locale: None }
    }

    #[test]
    fn the_locale_the_request_asked_for_travels_in_the_token() {
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let id = Identifier::parse("a@example.com").unwrap();
        let locale = Locale::parse("pt-BR").unwrap();
        let with = TokenSubject { locale: Some(&locale), ..subject(&id, &actor, &provider) };
        let minted = minter().mint(&with, Uuid::new_v4(), SystemTime::now()).unwrap();
        let claims = jsonwebtoken::dangerous::insecure_decode_claims::<ResetClaims>(minted.token.expose()).unwrap();
        assert_eq!(claims.locale.as_deref(), Some("pt-br"));
        let without = minter().mint(&subject(&id, &actor, &provider), Uuid::new_v4(), SystemTime::now()).unwrap();
        let claims =
            jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(without.token.expose()).unwrap();
        assert!(claims.get("locale").is_none(), "{claims}");
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert_eq!(SigningSecret::parse("short").unwrap_err(), SecretTooShort(5));
        assert!(SigningSecret::parse(SECRET).is_ok());
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let shown = format!("{:?}", SigningSecret::parse(SECRET).unwrap());
        assert!(!shown.contains(SECRET), "{shown}");
    }

    #[test]
    fn a_minted_token_carries_medusas_claims() {
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let id = Identifier::parse("a@example.com").unwrap();
        let now = at_epoch_seconds(2_000_000_000);
        let minted = minter().mint(&subject(&id, &actor, &provider), Uuid::new_v4(), now).unwrap();

        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.set_issuer(&["shop"]);
        let claims =
            decode::<ResetClaims>(minted.token.expose(), &DecodingKey::from_secret(SECRET.as_bytes()), &validation)
                .unwrap()
                .claims;
        assert_eq!(claims.entity_id, "a@example.com");
        assert_eq!((claims.actor_type.as_str(), claims.provider.as_str()), ("customer", "emailpass"));
        assert_eq!(claims.purpose, "reset");
        assert_eq!((claims.iat, claims.exp), (2_000_000_000, 2_000_000_900));
        assert_eq!(claims.jti, minted.jti.to_string());
        assert_eq!(claims.aud, None);
        assert_eq!(minted.expires_at, claims.exp);
    }

    #[test]
    fn derived_keys_are_hmac_of_the_label_and_differ_per_label() {
        let key = minter().derive_key("medusa-reset/rate-limit-identity/v1");
        // printf %s medusa-reset/rate-limit-identity/v1 | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
        assert_eq!(hex::encode(key), "9098483f220bee1058e45a5cfd44e936f1ccbe8fda41050047aaa6eac1ee9d7f");
        assert_ne!(key, minter().derive_key("another use"));
        assert_ne!(key.as_slice(), SECRET.as_bytes());
    }

    #[test]
    fn the_jti_hash_is_sha256_hex_of_the_hyphenated_jti() {
        let jti = Uuid::parse_str("6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap();
        // printf %s 6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f | sha256sum
        assert_eq!(jti_hash(&jti), "4f3d477345e38532368ff2320e67a6a00b1052461bdce4b5a529ba5f6536de55");
    }

    #[test]
    fn expiry_is_read_back_from_the_token() {
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let id = Identifier::parse("a@example.com").unwrap();
        let now = at_epoch_seconds(2_000_000_000);
        let minted = minter().mint(&subject(&id, &actor, &provider), Uuid::new_v4(), now).unwrap();
        assert_eq!(minted.token.expires_at(), Some(2_000_000_900));
        assert_eq!(minted.token.jti(), Some(minted.jti.to_string()));
        assert_eq!(ResetToken::new("not.a.token".into()).expires_at(), None);
        assert_eq!(ResetToken::new(String::new()).expires_at(), None);
    }

    #[test]
    fn the_token_carries_the_jti_it_is_given() {
        let (actor, provider) = ProviderPolicy::default().authorize("customer", "emailpass").unwrap();
        let id = Identifier::parse("a@example.com").unwrap();
        let minter = minter();
        let jti = Uuid::new_v4();
        let minted = minter.mint(&subject(&id, &actor, &provider), jti, SystemTime::now()).unwrap();
        assert_eq!(minted.jti, jti);
        assert_eq!(minter.expiry(at_epoch_seconds(100)).unwrap(), 1000);
    }
}
