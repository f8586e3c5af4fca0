//! Checks a reset token the way Medusa's update route does (`validateToken`, 2.21.2, over Node's
//! `jsonwebtoken`): the bearer credential of `Authorization`, its HMAC with the shared secret under
//! the header's `alg` (HS256, HS384 or HS512), `exp` and `nbf` with no leeway, the path's actor type,
//! `purpose` "reset" and a `jti`.
//!
//! The signature is aws-lc-rs's constant-time HMAC check; the rest is the three base64url parts
//! read with serde. `jsonwebtoken::decode` would do the same, but it brings its whole header parser
//! (JSON Web Keys) and a verifier for every algorithm, which the reset function's 3 MiB zip has no
//! room for (README: Benchmarks), to check an HMAC.

use std::time::SystemTime;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::actor::ActorType;
use crate::domain::clock::epoch_seconds;
use crate::domain::locale::Locale;
use crate::domain::token::{RESET_PURPOSE, SigningSecret};

/// Node decodes base64url with or without padding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The token did not pass; Medusa answers every such case alike, so the reason is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no valid reset token for this actor type")]
pub struct InvalidToken;

/// What a token that passed says: whose password it may change, the row it spends, and the
/// locale the reset was asked in. `Debug` shows no identifier.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub entity_id: String,
    pub jti: String,
    pub locale: Option<Locale>,
}

impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedToken").field("locale", &self.locale).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
}

/// Built once: the secret as a key of each HMAC algorithm Node's `jsonwebtoken` accepts for a secret.
pub struct TokenVerifier {
    hs256: hmac::Key,
    hs384: hmac::Key,
    hs512: hmac::Key,
}

impl TokenVerifier {
    pub fn new(secret: &SigningSecret) -> Self {
        let key = |algorithm| hmac::Key::new(algorithm, secret.as_bytes());
        Self { hs256: key(hmac::HMAC_SHA256), hs384: key(hmac::HMAC_SHA384), hs512: key(hmac::HMAC_SHA512) }
    }

    /// The `Authorization` header's bearer token, checked for the path's actor type at `now`.
    pub fn verify(
        &self,
        authorization: Option<&[u8]>,
        actor_type: &ActorType,
        now: SystemTime,
    ) -> Result<VerifiedToken, InvalidToken> {
        let token = bearer(authorization).ok_or(InvalidToken)?;
        let claims = self.signed_claims(token).ok_or(InvalidToken)?;
        if !in_force(&claims, epoch_seconds(now)) {
            return Err(InvalidToken);
        }
        // Values of another JSON type than Medusa compares against fail later in Medusa (a number
        // never equals the row's text), so they fail here at once.
        let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|value| !value.is_empty());
        if text("actor_type") != Some(actor_type.as_str()) || text("purpose") != Some(RESET_PURPOSE) {
            return Err(InvalidToken);
        }
        Ok(VerifiedToken {
            entity_id: text("entity_id").ok_or(InvalidToken)?.to_owned(),
            jti: text("jti").ok_or(InvalidToken)?.to_owned(),
            locale: text("locale").and_then(Locale::parse),
        })
    }

    /// The claims object of a token whose signature is the shared secret's under its header's `alg`.
    fn signed_claims(&self, token: &str) -> Option<serde_json::Map<String, Value>> {
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.split_once('.')?;
        let header: JoseHeader = serde_json::from_slice(&BASE64URL.decode(header).ok()?).ok()?;
        let key = match header.alg.as_str() {
            "HS256" => &self.hs256,
            "HS384" => &self.hs384,
            "HS512" => &self.hs512,
            _ => return None,
        };
        hmac::verify(key, message.as_bytes(), &BASE64URL.decode(signature).ok()?).ok()?;
        match serde_json::from_slice(&BASE64URL.decode(payload).ok()?).ok()? {
            Value::Object(claims) => Some(claims),
            _ => None,
        }
    }
}

/// Node's checks of the registered times, without leeway: `iat`, `exp` and `nbf` must be numbers
/// where present; expired when `now >= exp`, not yet valid while `nbf > now`.
fn in_force(claims: &serde_json::Map<String, Value>, now: u64) -> bool {
    let time = |name: &str| claims.get(name).map(Value::as_f64);
    let now = now as f64;
    match (time("iat"), time("exp"), time("nbf")) {
        (Some(None), _, _) | (_, Some(None), _) | (_, _, Some(None)) => false,
        (_, exp, nbf) => exp.flatten().is_none_or(|exp| now < exp) && nbf.flatten().is_none_or(|nbf| nbf <= now),
    }
}

/// Medusa's reading of the header, `/(\S+)\s+(\S+)/` unanchored: the first two runs of
/// non-space, the first of them `bearer` in any case. Anything after them is ignored.
fn bearer(header: Option<&[u8]>) -> Option<&str> {
    let header = std::str::from_utf8(header?).ok()?;
    let mut words = header.split_whitespace();
    let (scheme, token) = (words.next()?, words.next()?);
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::ProviderPolicy;
    use crate::domain::clock::at_epoch_seconds;
    use base64::engine::general_purpose;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: u64 = 2_000_000_000;

    fn customer() -> ActorType {
        ProviderPolicy::default().authorize("customer", "emailpass").unwrap().0
    }

    fn claims() -> Value {
        json!({"entity_id": "a@example.com", "actor_type": "customer", "provider": "emailpass",
            "purpose": "reset", "jti": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "iat": NOW - 10, "exp": NOW + 900})
    }

    fn signed_with(algorithm: Algorithm, secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    fn verify(header: &str) -> Result<VerifiedToken, InvalidToken> {
        let verifier = TokenVerifier::new(&SigningSecret::parse(SECRET).unwrap());
        verifier.verify(Some(header.as_bytes()), &customer(), at_epoch_seconds(NOW))
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut claims = claims();
        change(&mut claims);
        format!("Bearer {}", signed_with(Algorithm::HS256, SECRET, &claims))
    }

    #[test]
    fn a_fresh_reset_token_for_the_paths_actor_type_passes() {
        let verified = verify(&with(|_| {})).unwrap();
        assert_eq!(verified.entity_id, "a@example.com");
        assert_eq!(verified.jti, "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
        assert_eq!(verified.locale, None);
        assert!(!format!("{verified:?}").contains("example.com"));
    }

    #[test]
    fn the_locale_claim_is_read_when_it_is_a_tag() {
        assert_eq!(verify(&with(|c| c["locale"] = json!("de"))).unwrap().locale, Locale::parse("de"));
        assert_eq!(verify(&with(|c| c["locale"] = json!("../x"))).unwrap().locale, None);
    }

    #[test]
    fn every_hmac_algorithm_passes_as_node_lets_it() {
        for algorithm in [Algorithm::HS384, Algorithm::HS512] {
            let header = format!("Bearer {}", signed_with(algorithm, SECRET, &claims()));
            assert!(verify(&header).is_ok(), "{algorithm:?}");
        }
    }

    #[test]
    fn a_token_medusa_refuses_is_refused() {
        let other_secret =
            format!("Bearer {}", signed_with(Algorithm::HS256, "another-secret-another-secret-32b", &claims()));
        let refused = [
            other_secret,
            with(|c| c["exp"] = json!(NOW)),
            with(|c| c["exp"] = json!(NOW - 1)),
            with(|c| c["nbf"] = json!(NOW + 60)),
            with(|c| c["actor_type"] = json!("user")),
            with(|c| c["purpose"] = json!("login")),
            with(|c| c.as_object_mut().unwrap().remove("purpose").map(|_| ()).unwrap()),
            with(|c| c["jti"] = json!("")),
            with(|c| c.as_object_mut().unwrap().remove("jti").map(|_| ()).unwrap()),
            with(|c| c["entity_id"] = json!("")),
            with(|c| c["entity_id"] = json!(42)),
        ];
        for header in refused {
            assert_eq!(verify(&header), Err(InvalidToken), "{header}");
        }
    }

    #[test]
    fn an_unsigned_token_or_registered_times_that_are_not_numbers_are_refused() {
        let token = signed_with(Algorithm::HS256, SECRET, &claims());
        let payload = token.split('.').nth(1).unwrap();
        let none = general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        assert_eq!(verify(&format!("Bearer {none}.{payload}.")), Err(InvalidToken));
        for claim in ["exp", "nbf", "iat"] {
            assert_eq!(verify(&with(|c| c[claim] = json!("soon"))), Err(InvalidToken), "{claim}");
        }
        assert!(verify(&with(|c| c["exp"] = json!((NOW + 60) as f64 + 0.5))).is_ok(), "a fractional exp is a number");
    }

    #[test]
    fn a_token_without_exp_passes_as_node_lets_it() {
        assert!(verify(&with(|c| c.as_object_mut().unwrap().remove("exp").map(|_| ()).unwrap())).is_ok());
    }

    #[test]
    fn the_header_is_read_as_medusas_pattern_reads_it() {
        let token = signed_with(Algorithm::HS256, SECRET, &claims());
        for good in [format!("Bearer {token}"), format!("bearer {token}"), format!("  BEARER\t{token} trailing")] {
            assert!(verify(&good).is_ok(), "{good}");
        }
        for bad in
            [token.clone(), format!("Basic {token}"), "Bearer".to_owned(), format!("Bearer: {token}"), String::new()]
        {
            assert_eq!(verify(&bad), Err(InvalidToken), "{bad}");
        }
        let verifier = TokenVerifier::new(&SigningSecret::parse(SECRET).unwrap());
        assert_eq!(verifier.verify(None, &customer(), at_epoch_seconds(NOW)), Err(InvalidToken));
        assert_eq!(verifier.verify(Some(b"Bearer \xff\xfe"), &customer(), at_epoch_seconds(NOW)), Err(InvalidToken));
    }

    proptest! {
        #[test]
        fn any_header_is_answered_without_a_panic(header in proptest::collection::vec(any::<u8>(), 0..200)) {
            let verifier = TokenVerifier::new(&SigningSecret::parse(SECRET).unwrap());
            prop_assert_eq!(verifier.verify(Some(&header), &customer(), at_epoch_seconds(NOW)), Err(InvalidToken));
        }
    }
}
