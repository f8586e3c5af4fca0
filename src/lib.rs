//! Medusa's password-reset token route as AWS Lambdas: the domain, its ports and their adapters.
//!
//! - `domain`: the parsed types (identifier, actor type, metadata, requests), the token, the events,
//!   and `clock` (epoch seconds) and `error_chain` (an error with its causes), which every layer uses.
//! - `reset`: the reset use case (lookup, rate limits, mint, record, publish) and its time budget.
//! - `update`: the update use case (per-IP limit, the token checked and the password hashed as Medusa
//!   does, the change announced).
//! - `notify`: the notifier use case, one event to one e-mail (a reset link, or a change's notice).
//! - `api`: the axum router both the Lambda and `make run` serve.
//! - `publish`: the event publisher port (EventBridge, an in-process channel).
//! - `identity`: the identity store port (Medusa's PostgreSQL tables, memory).
//! - `ratelimit`: the rate limiter port (DynamoDB, memory).
//! - `idempotency`: the claim store port, one e-mail per token (DynamoDB, memory).
//! - `mail`: the mailer port (SES, `.eml` files).
//! - `aws`: the SDK's loader and trust roots, Secrets Manager, KMS sealing.
//! - `observability`: logs, traces and metrics.
//! - `config`: the environment, read once into typed settings.
//! - `vars`: how the environment is read, and the error that names a variable.
//! - `app`: the wiring of each binary, and its exit.
//! - `local`: `make run`'s stand-ins (bus, mail viewer, backend proxy).
//! - `ops`: `make replay`, the dead-letter queue back through the notifier.

pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod domain;
pub mod idempotency;
pub mod identity;
pub mod local;
pub mod mail;
pub mod notify;
pub mod observability;
pub mod ops;
pub mod publish;
pub mod ratelimit;
pub mod reset;
pub mod update;
pub mod vars;
