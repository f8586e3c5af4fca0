//! Where the signing secret comes from: the environment (`make run`, tests), or AWS Secrets Manager,
//! read once per cold start.

use aws_config::SdkConfig;

use crate::config::ConfigError;
use crate::domain::token::SigningSecret;

/// The configured source of the signing secret.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `JWT_SECRET`, already checked.
    Value(SigningSecret),
    /// `JWT_SECRET_ARN`: a Secrets Manager secret whose value is the signing secret.
    SecretsManager { arn: String },
}

impl SecretSource {
    /// The secret itself. A secret that cannot be read, or is too short, stops start-up with a
    /// message naming `JWT_SECRET_ARN`; there is no fallback.
    pub async fn resolve(&self, sdk: &SdkConfig) -> Result<SigningSecret, ConfigError> {
        let arn = match self {
            Self::Value(secret) => return Ok(secret.clone()),
            Self::SecretsManager { arn } => arn,
        };
        let error = |reason: String| ConfigError::new("JWT_SECRET_ARN", reason);
        let output =
            aws_sdk_secretsmanager::Client::new(sdk).get_secret_value().secret_id(arn).send().await.map_err(|e| {
                error(format!("cannot read the secret: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))
            })?;
        let bytes = match (output.secret_string(), output.secret_binary()) {
            (Some(text), _) => text.as_bytes().to_vec(),
            (None, Some(binary)) => binary.as_ref().to_vec(),
            (None, None) => return Err(error("the secret has no value".into())),
        };
        SigningSecret::parse(bytes).map_err(|e| error(format!("the secret {e}")))
    }
}
