//! The one place that puts the adapters together for each binary: the reset-password Lambda, the
//! notifier Lambda, `make run` and `make replay`. Configuration comes in typed; nothing here reads
//! the environment.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use axum::middleware;
use either::Either;

use crate::api::{self, ApiState};
use crate::aws::seal::{KmsOpener, KmsSealer, SubjectKey};
use crate::aws::secrets;
use crate::config::{ApiConfig, LocalSettings, NotifierConfig};
use crate::domain::password::PasswordHasher;
use crate::domain::token::{SigningSecret, TokenMinter};
use crate::idempotency::{DynamoDbClaimStore, IdempotencySettings, MemoryClaimStore};
use crate::identity::{DatabaseSettings, IdentityStore, MemoryIdentityStore, PostgresIdentityStore};
use crate::local::proxy::{BackendProxy, OwnRoutes};
use crate::mail::{Mailer, SentMail, SesMailer};
use crate::notify::Notifier;
use crate::observability::metrics::{Latency, Timed};
use crate::observability::trace;
use crate::ops::replay::{ReplaySettings, Replayer};
use crate::publish::{EventBridgePublisher, EventPublisher};
use crate::ratelimit::{DynamoDbRateLimiter, MemoryRateLimiter, RateLimitSettings, RateLimiter};
use crate::reset::ResetService;
use crate::update::{TokenVerifier, UpdateService};
use crate::vars::ConfigError;

/// The reset and update routes over any three ports, each shared by both: what the Lambda,
/// `make run`, tests and benchmarks serve.
pub fn app<P: EventPublisher, S: IdentityStore, L: RateLimiter>(
    config: &ApiConfig,
    secret: &SigningSecret,
    publisher: P,
    store: S,
    limiter: L,
) -> Router {
    let (publisher, store, limiter) = (Arc::new(publisher), Arc::new(store), Arc::new(limiter));
    let minter = TokenMinter::new(secret, &config.token);
    let service = ResetService::new(minter, publisher.clone(), store.clone(), limiter.clone(), config.response_floor);
    let update = config.serves_update_route().then(|| {
        let hasher = PasswordHasher::new(config.password_hash);
        UpdateService::new(TokenVerifier::new(secret), hasher, publisher, store, limiter)
    });
    let state = ApiState { service, update, providers: config.providers.clone() };
    api::router(state, &config.cors)
}

/// The signing secret and the database settings, both secrets read at once (each is a round trip to
/// Secrets Manager on the cold start's path).
pub async fn secrets(
    config: &ApiConfig,
    sdk: &SdkConfig,
) -> Result<(SigningSecret, Option<DatabaseSettings>), ConfigError> {
    let (secret, database) =
        tokio::try_join!(config.secret.resolve(sdk), secrets::resolve_database(config.database.clone(), sdk))?;
    config.check_resolved_secret(&secret)?;
    Ok((secret, database))
}

/// The reset-password Lambda's router: EventBridge (sealing with KMS when configured), Medusa's
/// database, DynamoDB's rate limits, each call timed into its metric; each request carries its
/// invocation's trace header to `PutEvents`.
pub async fn reset_password_lambda(config: &ApiConfig, sdk: &SdkConfig) -> Result<Router, ConfigError> {
    let (secret, database) = secrets(config, sdk).await?;
    warn_about_open_doors(config, database.as_ref());
    let store = Timed::new(identity_store(database), Latency::Database);
    let publisher = reset_publisher(config, &secret, sdk);
    let limiter = Timed::new(rate_limiter(&config.limits, sdk), Latency::RateLimiter);
    Ok(app(config, &secret, publisher, store, limiter).layer(middleware::from_fn(trace::from_lambda_context)))
}

/// The identity store: Medusa's database when one is configured, else the open in-memory store.
pub fn identity_store(database: Option<DatabaseSettings>) -> Either<PostgresIdentityStore, MemoryIdentityStore> {
    match database {
        Some(settings) => Either::Left(PostgresIdentityStore::new(settings)),
        None => Either::Right(MemoryIdentityStore::open()),
    }
}

/// The rate limiter: the DynamoDB table when one is configured, else memory.
pub fn rate_limiter(settings: &RateLimitSettings, sdk: &SdkConfig) -> Either<DynamoDbRateLimiter, MemoryRateLimiter> {
    match &settings.table {
        Some(table) => {
            let client = aws_sdk_dynamodb::Client::new(sdk);
            Either::Left(DynamoDbRateLimiter::new(client, table.clone(), settings.limits.clone()))
        }
        None => Either::Right(MemoryRateLimiter::new(settings.limits.clone())),
    }
}

/// The reset-password Lambda's publisher: EventBridge, sealing with KMS when configured (the
/// encryption context's subject keyed by the signing secret), timed.
pub fn reset_publisher(config: &ApiConfig, secret: &SigningSecret, sdk: &SdkConfig) -> Timed<EventBridgePublisher> {
    let mut publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(sdk), config.events.clone());
    if let Some(key_id) = &config.token_kms_key_id {
        let subjects = SubjectKey::new(&secret.derive_key(SubjectKey::LABEL));
        publisher = publisher.sealing_with(KmsSealer::new(aws_sdk_kms::Client::new(sdk), key_id.clone(), subjects));
    }
    Timed::new(publisher, Latency::Publish)
}

/// The notifier Lambda's notifier: SES v2 (each call timed into its metric), opening sealed tokens
/// with KMS when configured, claiming each reset in DynamoDB when `IDEMPOTENCY_TABLE` is set.
pub fn notifier_lambda(config: NotifierConfig, sdk: &SdkConfig) -> Notifier<Timed<SesMailer>> {
    if config.development_mode {
        tracing::warn!("{}", crate::config::DEVELOPMENT_MODE_WARNING);
    }
    let ses = SesMailer::new(aws_sdk_sesv2::Client::new(sdk), config.sender.clone(), config.configuration_set.clone());
    let mailer = Timed::new(ses, Latency::Ses);
    let opener = config.kms_key_id.clone().map(|key_id| KmsOpener::new(aws_sdk_kms::Client::new(sdk), key_id));
    let claims = claim_store(&config.idempotency, sdk);
    notifier(config, mailer, opener).claiming_with(claims)
}

/// The claims store: the DynamoDB table when one is configured, else memory (one execution
/// environment's duplicates only, which a deployment should not settle for, so it says so).
pub fn claim_store(settings: &IdempotencySettings, sdk: &SdkConfig) -> Either<DynamoDbClaimStore, MemoryClaimStore> {
    match &settings.table {
        Some(table) => Either::Left(DynamoDbClaimStore::new(aws_sdk_dynamodb::Client::new(sdk), table.clone())),
        None => {
            tracing::warn!(
                "IDEMPOTENCY_TABLE is not set: a redelivered event is caught only by the execution environment \
                 that sent it, so a retry elsewhere can send a second e-mail"
            );
            Either::Right(MemoryClaimStore::default())
        }
    }
}

/// `make replay`'s replayer: the dead-letter queue and the notifier function, through the SDK's
/// own defaults (an operator's command, not held to a Lambda's time budget).
pub fn replayer(settings: ReplaySettings, sdk: &SdkConfig) -> Replayer {
    Replayer::new(aws_sdk_sqs::Client::new(sdk), aws_sdk_lambda::Client::new(sdk), settings)
}

/// A notifier over any mailer: the Lambda's SES, `make run`'s outbox.
pub fn notifier<M: Mailer>(config: NotifierConfig, mailer: M, opener: Option<KmsOpener>) -> Notifier<M> {
    let notifier = Notifier::new(config.links, config.templates, mailer, config.detail_type);
    match opener {
        Some(opener) => notifier.unsealing_with(opener),
        None => notifier,
    }
}

/// Logs a warning at the Lambda's cold start for each setting that leaves a door open; the function
/// still starts, because each was asked for. (`make run` says its own.)
fn warn_about_open_doors(config: &ApiConfig, database: Option<&DatabaseSettings>) {
    if config.development_mode {
        tracing::warn!("{}", crate::config::DEVELOPMENT_MODE_WARNING);
    }
    if config.identity_check_skipped {
        tracing::warn!(
            "SKIP_IDENTITY_CHECK=true: every well-formed identifier gets a token and an e-mail, whether or not \
             Medusa has the account; set MEDUSA_DATABASE_SECRET_ARN to send only to Medusa's accounts"
        );
    }
    if let Some(database) = database
        && !database.verifies_server()
    {
        tracing::warn!(
            "the Medusa database connection does not verify the server (sslmode below verify-full, or require \
             without a root certificate): use sslmode=verify-full, which works for RDS, Aurora and RDS Proxy \
             with no extra file"
        );
    }
}

/// `make run`'s router: the mail viewer over the outbox's e-mails with its development page that
/// sets a new password through `api`'s update route (when listening on loopback only), and the
/// reset and update routes, in front of the Medusa backend when one is configured (which then
/// answers the update route itself unless Medusa's database is configured here: without it the
/// password could not reach Medusa). (The Lambda's router has neither.)
pub fn local_router(api: Router, config: &ApiConfig, settings: &LocalSettings, sent: SentMail) -> Router {
    let viewer = settings.serves_mail_viewer().then(|| crate::local::mail_viewer::routes(sent, api.clone()));
    let ours = match &settings.backend {
        Some(backend) => {
            let own = OwnRoutes { update: config.database.is_some() };
            crate::local::proxy::in_front_of(api, BackendProxy::new(backend.clone()), own)
        }
        None => api,
    };
    match viewer {
        Some(viewer) => viewer.merge(ours),
        None => ours,
    }
}

/// Says what the server is and how to use it.
pub fn announce_local(config: &ApiConfig, settings: &LocalSettings, bound: SocketAddr) {
    if config.uses_development_secret {
        tracing::warn!("JWT_SECRET is not set: signing with the built-in DEVELOPMENT secret, for development only");
    }
    if config.identity_check_skipped {
        tracing::warn!(
            "no Medusa database (MEDUSA_DATABASE_URL): every well-formed identifier gets a token and an e-mail, \
             for development only; a deployed function refuses to start like this"
        );
    }
    if let Some(backend) = &settings.backend {
        tracing::info!(
            "every other path goes to the Medusa backend at {backend}: point the storefront's one baseUrl here"
        );
    }
    if settings.serves_mail_viewer() {
        tracing::info!("mail viewer: http://{bound}{}", crate::local::mail_viewer::PATH);
    } else {
        tracing::warn!(
            "the mail viewer is off: LOCAL_ADDR {} is not a loopback address, and the viewer shows live reset \
             links to whoever can reach it; the e-mails are still written to {}/",
            settings.addr,
            settings.outbox.display()
        );
    }
    tracing::info!(
        "listening on http://{bound}; e-mails go to {}/. Try: curl -i -X POST http://{bound}/auth/customer/emailpass/reset-password \
         -H 'content-type: application/json' -d '{{\"identifier\":\"a@example.com\"}}'",
        settings.outbox.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DatabaseOptions;
    use crate::ratelimit::Limits;

    #[test]
    fn without_a_table_the_counters_and_claims_live_in_memory_and_with_one_in_dynamodb() {
        let sdk = SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let limits =
            |table: Option<&str>| RateLimitSettings { limits: Limits::default(), table: table.map(Into::into) };
        assert!(rate_limiter(&limits(None), &sdk).is_right());
        assert!(rate_limiter(&limits(Some("limits")), &sdk).is_left());
        assert!(claim_store(&IdempotencySettings { table: None }, &sdk).is_right());
        assert!(claim_store(&IdempotencySettings { table: Some("claims".into()) }, &sdk).is_left());
    }

    #[test]
    fn a_database_selects_medusas_and_none_the_open_store_in_memory() {
        let options = DatabaseOptions::new(DatabaseOptions::DEFAULT_TIMEOUT, None).unwrap();
        let database = DatabaseSettings::from_url("postgres://medusa@db.example.com/medusa", &options).unwrap();
        assert!(identity_store(Some(database)).is_left());
        assert!(identity_store(None).is_right());
    }
}
