//! Actor types and auth providers, and the configured allow-list that pairs them.

use std::collections::BTreeMap;
use std::fmt;

/// Longest actor type or provider name accepted from a path.
const MAX_NAME_LEN: usize = 64;

/// An actor type (`customer`, `user`, …) that the allow-list knows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActorType(String);

/// An auth provider (`emailpass`, …) that the allow-list pairs with an actor type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuthProvider(String);

impl ActorType {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AuthProvider {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for AuthProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path's actor type and provider were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    /// Medusa's own refusal; the names are echoed as Medusa does, since they passed `is_name`.
    #[error("The actor type {actor_type} is not allowed to use the auth provider {provider}")]
    Pair { actor_type: String, provider: String },
    /// A segment that cannot be a name at all is not echoed back.
    #[error("The actor type or auth provider is not a valid name")]
    InvalidName,
}

/// Which providers each actor type may use, e.g. `customer=emailpass;user=emailpass,github`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPolicy {
    allowed: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `actor=provider[,provider…][;actor=…]` with names of [a-z0-9_-], got `{0}`")]
pub struct PolicyError(String);

impl ProviderPolicy {
    pub fn parse(spec: &str) -> Result<Self, PolicyError> {
        let invalid = || PolicyError(spec.to_owned());
        let mut allowed = BTreeMap::new();
        for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (actor, providers) = entry.split_once('=').ok_or_else(invalid)?;
            let actor = actor.trim();
            let providers: Vec<String> =
                providers.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
            if !is_name(actor) || providers.is_empty() || !providers.iter().all(|p| is_name(p)) {
                return Err(invalid());
            }
            allowed.insert(actor.to_owned(), providers);
        }
        if allowed.is_empty() {
            return Err(invalid());
        }
        Ok(Self { allowed })
    }

    /// Parses the path's two segments into a pair the allow-list permits. A refused provider is
    /// echoed as Medusa echoes it (it is JSON-escaped in the answer), but only if it is printable
    /// and short; an actor type is echoed only if it could be a configured one.
    pub fn authorize(&self, actor_type: &str, provider: &str) -> Result<(ActorType, AuthProvider), NotAllowed> {
        if !is_name(actor_type) || !is_echoable(provider) {
            return Err(NotAllowed::InvalidName);
        }
        match self.allowed.get(actor_type) {
            Some(providers) if providers.iter().any(|p| p == provider) => {
                Ok((ActorType(actor_type.to_owned()), AuthProvider(provider.to_owned())))
            }
            _ => Err(NotAllowed::Pair { actor_type: actor_type.to_owned(), provider: provider.to_owned() }),
        }
    }

    /// The actor types the policy knows, for configuration checks elsewhere.
    pub fn actor_types(&self) -> impl Iterator<Item = &str> {
        self.allowed.keys().map(String::as_str)
    }
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        Self { allowed: BTreeMap::from([("customer".to_owned(), vec!["emailpass".to_owned()])]) }
    }
}

fn is_echoable(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_NAME_LEN && !s.chars().any(char::is_control)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_default_lets_customers_use_emailpass_only() {
        let policy = ProviderPolicy::default();
        let (actor, provider) = policy.authorize("customer", "emailpass").unwrap();
        assert_eq!((actor.as_str(), provider.as_str()), ("customer", "emailpass"));
        assert_eq!(
            policy.authorize("customer", "github").unwrap_err().to_string(),
            "The actor type customer is not allowed to use the auth provider github"
        );
        assert!(policy.authorize("user", "emailpass").is_err());
    }

    #[test]
    fn a_refused_provider_is_echoed_as_medusa_echoes_it_if_short_and_printable() {
        let policy = ProviderPolicy::default();
        assert_eq!(
            policy.authorize("customer", "Git hub").unwrap_err().to_string(),
            "The actor type customer is not allowed to use the auth provider Git hub"
        );
        assert_eq!(policy.authorize("customer", "a\nb"), Err(NotAllowed::InvalidName));
        assert_eq!(policy.authorize("customer", &"a".repeat(65)), Err(NotAllowed::InvalidName));
        assert_eq!(policy.authorize(&"a".repeat(65), "emailpass"), Err(NotAllowed::InvalidName));
        assert_eq!(policy.authorize("Customer", "emailpass"), Err(NotAllowed::InvalidName));
    }

    #[test]
    fn a_policy_with_several_actors_and_providers_parses() {
        let policy = ProviderPolicy::parse("customer=emailpass, google; user=emailpass").unwrap();
        assert!(policy.authorize("customer", "google").is_ok());
        assert!(policy.authorize("user", "emailpass").is_ok());
        assert!(policy.authorize("user", "google").is_err());
        assert_eq!(policy.actor_types().collect::<Vec<_>>(), ["customer", "user"]);
    }

    #[test]
    fn malformed_policies_are_refused() {
        for spec in ["", "customer", "customer=", "Customer=emailpass", "customer=email pass", ";"] {
            assert!(ProviderPolicy::parse(spec).is_err(), "{spec:?}");
        }
    }

    proptest! {
        #[test]
        fn authorize_never_accepts_a_pair_outside_the_policy(actor in "\\PC{0,20}", provider in "\\PC{0,20}") {
            let policy = ProviderPolicy::default();
            if policy.authorize(&actor, &provider).is_ok() {
                prop_assert_eq!((actor.as_str(), provider.as_str()), ("customer", "emailpass"));
            }
        }
    }
}
