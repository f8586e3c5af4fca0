//! What a deployed function says at cold start about settings that leave a door open: the identity
//! check skipped, or a database connection that does not verify the server it talks to.

use crate::config::ApiConfig;
use crate::identity::DatabaseSettings;

/// Logs a warning for each open door; the function still starts, because each was asked for.
pub fn warn_about_open_doors(config: &ApiConfig, database: Option<&DatabaseSettings>) {
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
