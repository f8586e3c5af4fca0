//! Medusa's password-reset token route as AWS Lambdas: the domain, its ports and their adapters.
//!
//! - `domain`: the parsed types (identifier, actor type, metadata, request), the token and the events;
//!   `clock` (epoch seconds) and `error_chain` (an error with its causes), which every layer uses.
//! - `reset`: the reset use case (lookup, rate limits, mint, record, publish) and its time budget.
//! - `update`: the update use case (per-IP limit, the token checked as Medusa checks it, the
//!   password hashed and written as Medusa writes it, the change announced).
//! - `notify`: the notifier use case, one event to one e-mail (a reset link, or a change's notice).
//! - `api`: the axum router both the Lambda and `make run` serve.
//! - Ports, each with an AWS or PostgreSQL adapter and an in-process one: `publish` (events),
//!   `identity` (Medusa's accounts), `ratelimit`, `idempotency` (one e-mail per token), `mail`.
//! - `aws`: the SDK's loader and trust roots, Secrets Manager, KMS sealing.
//! - `observability`: logs, traces and metrics.
//! - `config`: the environment, read once into typed settings; `vars`: how it is read.
//! - `app`: the wiring of each binary, and its exit; `local`: `make run`'s stand-ins; `ops`: `make replay`.

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
