//! Checks a reset token the way Medusa's update route does (`validateToken`, 2.21.2): the bearer
//! credential of `Authorization`, its signature with the shared secret, `exp` and `nbf` with no
//! leeway, the path's actor type, `purpose` "reset" and a `jti`.

use std::collections::HashSet;
use std::time::SystemTime;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::domain::actor::ActorType;
use crate::domain::clock::epoch_seconds;
use crate::domain::locale::Locale;
use crate::domain::token::{RESET_PURPOSE, SigningSecret};

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

/// The claims Medusa reads. Values of another JSON type than Medusa compares against fail later
/// in Medusa (a number never equals the row's text), so they fail here at once.
#[derive(Deserialize)]
struct Claims {
    entity_id: Option<String>,
    actor_type: Option<String>,
    purpose: Option<String>,
    jti: Option<String>,
    exp: Option<u64>,
    locale: Option<String>,
}

/// Built once: the key and the rules `jsonwebtoken.verify` applies with a secret and Medusa's options.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &SigningSecret) -> Self {
        // Node's jsonwebtoken accepts every HMAC algorithm for a secret, checks `exp` and `nbf`
        // when present without leeway, requires no claim, and Medusa sets no audience or issuer.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Self { key: DecodingKey::from_secret(secret.as_bytes()), validation }
    }

    /// The `Authorization` header's bearer token, checked for the path's actor type at `now`.
    pub fn verify(
        &self,
        authorization: Option<&[u8]>,
        actor_type: &ActorType,
        now: SystemTime,
    ) -> Result<VerifiedToken, InvalidToken> {
        let token = bearer(authorization).ok_or(InvalidToken)?;
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|_| InvalidToken)?.claims;
        // Node's check is `now >= exp`; jsonwebtoken's here lets `exp == now` pass.
        if claims.exp.is_some_and(|exp| epoch_seconds(now) >= exp) {
            return Err(InvalidToken);
        }
        let present = |claim: Option<String>| claim.filter(|value| !value.is_empty()).ok_or(InvalidToken);
        if claims.actor_type.as_deref() != Some(actor_type.as_str()) || claims.purpose.as_deref() != Some(RESET_PURPOSE)
        {
            return Err(InvalidToken);
        }
        Ok(VerifiedToken {
            entity_id: present(claims.entity_id)?,
            jti: present(claims.jti)?,
            locale: claims.locale.as_deref().and_then(Locale::parse),
        })
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
    use jsonwebtoken::{EncodingKey, Header};
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
