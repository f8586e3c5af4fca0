//! What the tests of the compiled binaries use of `tests/support`, and what only they share: the
//! notifier's bootstrap, its events and claims, and Secrets Manager. Each binary includes only the
//! files its tests use, so that nothing in them is dead code there.

#[path = "../support/mod.rs"]
mod shared;
pub use shared::*;

#[path = "../support/aws_fixtures.rs"]
pub mod aws_fixtures;
#[path = "../support/faults.rs"]
pub mod faults;
#[path = "../support/local_runner.rs"]
pub mod local_runner;
#[path = "../support/medusa_db.rs"]
pub mod medusa_db;
#[path = "../support/notifier.rs"]
mod notifier;
#[path = "../support/pyjwt.rs"]
mod pyjwt;
#[path = "../support/runtime_api.rs"]
pub mod runtime_api;

pub use aws_fixtures::{moto_endpoint, moto_sdk_config, read_event, sdk_config_for};
use notifier::LINK_TEMPLATE;
pub use notifier::notifier_config;
pub use pyjwt::verify_independently;

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_fixtures::{idempotency_table, verified_sender};
use runtime_api::RuntimeApi;
use serde_json::{Value, json};

/// moto, set up for a notifier that claims each reset: a verified sender and a claims table, both
/// the test's own.
pub struct NotifierOnMoto {
    pub moto: SdkConfig,
    pub sender: String,
    pub table: String,
}

impl NotifierOnMoto {
    pub async fn create() -> Self {
        let moto = moto_sdk_config().await;
        let (sender, table) = (verified_sender(&moto).await, idempotency_table(&moto).await);
        Self { moto, sender, table }
    }
}

/// Only these tests count the requests the fault proxy saw.
impl faults::HttpFaultProxy {
    /// How many requests whose operation contains `matches` were seen.
    pub fn count(&self, matches: &str) -> usize {
        self.seen().iter().filter(|seen| seen.operation.contains(matches)).count()
    }
}

/// The compiled notifier under `api` as Lambda runs it: sending as `sender` through moto's SES,
/// claiming in `table`, logging JSON, output captured. Callers add what differs and spawn it.
pub fn notifier_command(api: &RuntimeApi, sender: &str, table: &str) -> tokio::process::Command {
    let mut command = api.command(std::path::Path::new(env!("CARGO_BIN_EXE_notifier")), "notifier");
    command
        .env("MAIL_FROM", sender)
        .env("RESET_URL_TEMPLATE_CUSTOMER", LINK_TEMPLATE)
        .env("IDEMPOTENCY_TABLE", table)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Runs a bootstrap that must refuse to start: asserts it exits non-zero within 10 s and returns
/// what it printed to standard error.
pub async fn failed_start(command: &mut tokio::process::Command) -> String {
    let output = tokio::time::timeout(std::time::Duration::from_secs(10), command.output())
        .await
        .expect("start-up ends within 10 s")
        .expect("the bootstrap runs");
    assert!(!output.status.success(), "the bootstrap started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An `auth.password_reset` event as EventBridge hands it to the notifier, for `entity_id`, with a
/// fresh token (its own `jti`, valid for 15 minutes); returns the event and the `jti`.
pub fn password_reset_event(entity_id: &str) -> (Value, String) {
    use medusa_reset::domain::token::{RESET_PURPOSE, ResetClaims};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = ResetClaims {
        entity_id: entity_id.to_owned(),
        provider: "emailpass".to_owned(),
        actor_type: "customer".to_owned(),
        purpose: RESET_PURPOSE.to_owned(),
        jti: jti.clone(),
        iat: now,
        exp: now + 900,
        iss: None,
        aud: None,
        locale: None,
    };
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key)
        .expect("a signed token");
    let event = json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "auth.password_reset",
        "source": "medusa.auth", "account": "123456789012", "time": "2026-11-28T10:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {"entity_id": entity_id, "actor_type": "customer", "provider": "emailpass", "token": token,
            "metadata": {}},
    });
    (event, jti)
}

/// The notifier's claim of the reset whose token has this `jti`: its attributes as strings
/// (`state`, `owner`, `expires_at`), `None` when there is none.
pub async fn claim_record(config: &SdkConfig, table: &str, jti: &str) -> Option<HashMap<String, String>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = aws_sdk_dynamodb::Client::new(config)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("reset#{jti}")))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item?;
    let text = |value: &AttributeValue| match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        other => format!("{other:?}"),
    };
    Some(item.iter().map(|(name, value)| (name.clone(), text(value))).collect())
}

/// A Secrets Manager secret holding `value`; returns its ARN.
pub async fn secret(config: &SdkConfig, value: &str) -> String {
    let name = format!("jwt-{}", uuid::Uuid::new_v4().simple());
    let created = aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("create secret");
    created.arn().expect("an ARN").to_owned()
}
