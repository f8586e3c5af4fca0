//! Tests that run compiled binaries: the Lambda bootstraps under the Runtime API emulator, `make run`'s
//! local runner, cargo-lambda, the replay command; AWS on moto, PostgreSQL on 127.0.0.1.

mod support;

mod cargo_lambda;
mod database_secret;
mod idempotency;
mod lambda_bootstrap;
mod mail_viewer;
mod make_run;
mod notifier_ses;
mod observability;
mod rate_limits;
mod replay;
mod signing_secret;
mod time_budget;
