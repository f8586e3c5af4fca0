//! What the notifier can check of a reset token it cannot verify: that its claims are about the
//! event that carries it. Without the signing secret a forged token cannot be told from a real one,
//! but a token moved onto another event (another address, actor type or provider) can. Its `jti`
//! keys the claim that keeps a redelivered event from sending a second e-mail.

use serde::Deserialize;

use crate::domain::event::PasswordResetEvent;
use crate::domain::token::RESET_PURPOSE;

/// The claims compared with the event, read without checking the signature.
#[derive(Deserialize)]
struct Claims {
    entity_id: String,
    actor_type: String,
    provider: String,
    purpose: String,
    exp: u64,
    jti: String,
}

/// What the notifier takes from a token that belongs to its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
    pub jti: String,
}

/// Why a token does not belong to its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a JWT, or one of the claims is missing.
    Unreadable,
    /// This claim says something other than the event (the values are not kept: they are personal).
    Disagrees(&'static str),
}

/// The token's `exp` and `jti`, when its claims are about this event and it is a reset token.
pub fn check(event: &PasswordResetEvent) -> Result<TokenFacts, TokenProblem> {
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(event.token.expose())
        .map_err(|_| TokenProblem::Unreadable)?;
    let disagreements = [
        ("entity_id", claims.entity_id == event.about.entity_id),
        ("actor_type", claims.actor_type == event.about.actor_type),
        ("provider", claims.provider == event.about.provider),
        ("purpose", claims.purpose == RESET_PURPOSE),
    ];
    match disagreements.iter().find(|(_, agrees)| !agrees) {
        Some((claim, _)) => Err(TokenProblem::Disagrees(claim)),
        None => Ok(TokenFacts { expires_at: claims.exp, jti: claims.jti }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventSubject;
    use crate::domain::token::ResetToken;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};

    fn token(claims: Value) -> ResetToken {
        let key = EncodingKey::from_secret(b"claims-test-secret-0123456789abcdef");
        ResetToken::new(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap())
    }

    fn event(token: ResetToken) -> PasswordResetEvent {
        let about = EventSubject {
            entity_id: "a@example.com".into(),
            actor_type: "customer".into(),
            provider: "emailpass".into(),
        };
        PasswordResetEvent { about, token, metadata: None }
    }

    fn agreeing() -> Value {
        json!({"entity_id": "a@example.com", "actor_type": "customer", "provider": "emailpass",
            "purpose": "reset", "jti": "j", "iat": 1, "exp": 2_000_000_900u64})
    }

    #[test]
    fn a_token_about_its_event_gives_its_expiry_and_jti() {
        assert_eq!(check(&event(token(agreeing()))), Ok(TokenFacts { expires_at: 2_000_000_900, jti: "j".to_owned() }));
    }

    #[test]
    fn each_claim_that_disagrees_is_named() {
        for (claim, value) in [
            ("entity_id", json!("attacker@example.com")),
            ("entity_id", json!("A@example.com")),
            ("actor_type", json!("user")),
            ("provider", json!("google")),
            ("purpose", json!("verify")),
        ] {
            let mut claims = agreeing();
            claims[claim] = value;
            assert_eq!(check(&event(token(claims))), Err(TokenProblem::Disagrees(claim)), "{claim}");
        }
    }

    #[test]
    fn a_token_without_a_claim_or_not_a_jwt_is_unreadable() {
        for claim in ["entity_id", "actor_type", "provider", "purpose", "exp", "jti"] {
            let mut claims = agreeing();
            claims.as_object_mut().unwrap().remove(claim);
            assert_eq!(check(&event(token(claims))), Err(TokenProblem::Unreadable), "without {claim}");
        }
        assert_eq!(check(&event(ResetToken::new("garbage".into()))), Err(TokenProblem::Unreadable));
        let mut claims = agreeing();
        claims["exp"] = json!("tomorrow");
        assert_eq!(check(&event(token(claims))), Err(TokenProblem::Unreadable));
    }
}
