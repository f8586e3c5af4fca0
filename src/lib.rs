//! Medusa's password-reset token route as AWS Lambdas: the domain, its ports and their adapters.
//!
//! `domain` holds the parsed types and the token; `publish` is the event port with its EventBridge
//! and in-process adapters; `reset` is the use case; `api` is the axum router that both the Lambda
//! and the local server run; `config` reads the environment once at start-up.

pub mod api;
pub mod aws;
pub mod aws_roots;
pub mod config;
pub mod domain;
pub mod exit;
pub mod idempotency;
pub mod identity;
pub mod local;
pub mod mail;
pub mod metrics;
pub mod notify;
pub mod publish;
pub mod ratelimit;
pub mod replay;
pub mod reset;
pub mod seal;
pub mod secret;
pub mod telemetry;
pub mod trace;
pub mod vars;
pub mod wiring;
