//! Tests that drive the library in process (the router, the notifier, the adapters) against real parts:
//! moto's AWS APIs, the machine's PostgreSQL, the template's own tools.

mod support;

mod database_tls;
mod email_templates;
mod end_to_end;
mod eventbridge_publish;
mod feature_pins;
mod log_hygiene;
mod medusa_database;
mod reset_route;
mod sealed_token;
mod sealing_parity;
mod template;
mod update_route;
