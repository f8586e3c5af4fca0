//! Medusa's PostgreSQL: the identity lookup and, on Medusa ≥ 2.16, the `auth_password_reset_token`
//! row, through one connection per execution environment, opened on first use and reused. Nothing is kept in the
//! server session between transactions (no named prepared statements, no session settings) and no
//! start-up options are sent, so a transaction pooler (PgBouncer, Supavisor) may hand each
//! transaction to another server connection and RDS Proxy can multiplex it without pinning.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Mutex;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{IdentityStore, IssuedToken, StoreError, TokenRecord, new_row_id};
use crate::config::{ConfigError, Vars};
use crate::domain::token::jti_hash;

/// Serializes requests for one identity across every execution environment, so that two at once
/// still leave exactly one live row. A transaction-level advisory lock touches none of Medusa's rows
/// and costs the same for known and unknown identifiers. Taking a transaction id makes the commit
/// write and flush WAL on both paths too: without it an unknown identifier's read-only commit is
/// measurably faster than a known one's, which would tell them apart.
const LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_current_xact_id()::text";

/// Medusa's lookup (`provider_identity` by `entity_id` and provider, neither it nor its
/// `auth_identity` soft-deleted), the removal of the identity's older reset rows and the new row,
/// in one statement. For an unknown identity it does nothing and returns no row.
const ISSUE_SQL: &str = "
WITH identity AS (
    SELECT pi.id AS provider_identity_id, pi.auth_identity_id
    FROM provider_identity pi
    JOIN auth_identity ai ON ai.id = pi.auth_identity_id AND ai.deleted_at IS NULL
    WHERE pi.entity_id = $1 AND pi.provider = $2 AND pi.deleted_at IS NULL
),
older AS (
    DELETE FROM auth_password_reset_token t
    USING identity
    WHERE t.auth_identity_id = identity.auth_identity_id
)
INSERT INTO auth_password_reset_token (id, auth_identity_id, provider_identity_id, entity_id, token_hash, expires_at)
SELECT $3, auth_identity_id, provider_identity_id, $1, $4, $5 FROM identity
RETURNING id";

/// Medusa's lookup alone, for the schemas without the token table.
const LOOKUP_SQL: &str = "
SELECT pi.id
FROM provider_identity pi
JOIN auth_identity ai ON ai.id = pi.auth_identity_id AND ai.deleted_at IS NULL
WHERE pi.entity_id = $1 AND pi.provider = $2 AND pi.deleted_at IS NULL";

/// Resolved through the connection's `search_path`, as the statements that use the table are.
const SCHEMA_SQL: &str = "SELECT to_regclass('auth_password_reset_token') IS NOT NULL";

const WITHDRAW_SQL: &str = "DELETE FROM auth_password_reset_token WHERE id = $1";

const DEFAULT_TIMEOUT_MS: u64 = 2_000;
const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=10_000;

/// How to reach Medusa's database. `Debug` shows no credentials.
#[derive(Clone)]
pub struct DatabaseSettings {
    config: tokio_postgres::Config,
    extra_roots: Vec<CertificateDer<'static>>,
    timeout: Duration,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("dbname", &self.config.get_dbname())
            .field("ssl_mode", &self.config.get_ssl_mode())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DatabaseSettings {
    /// `MEDUSA_DATABASE_URL` (unset: no database mode), `MEDUSA_DATABASE_TIMEOUT_MS` for connecting
    /// and for each statement, and `MEDUSA_DATABASE_CA_FILE` with extra PEM roots (e.g. RDS's bundle).
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Option<Self>, ConfigError> {
        const URL: &str = "MEDUSA_DATABASE_URL";
        let Some(url) = vars.get(URL) else {
            return Ok(None);
        };
        // The URL holds a password: no part of it goes into the message.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            ConfigError::new(
                URL,
                "is not a PostgreSQL URL such as postgres://user:password@host:5432/medusa?sslmode=require",
            )
        })?;
        let timeout_ms = vars.parse_or("MEDUSA_DATABASE_TIMEOUT_MS", DEFAULT_TIMEOUT_MS)?;
        if !TIMEOUT_RANGE_MS.contains(&timeout_ms) {
            return Err(ConfigError::new("MEDUSA_DATABASE_TIMEOUT_MS", "must be between 100 and 10000"));
        }
        let timeout = Duration::from_millis(timeout_ms);
        config.connect_timeout(timeout);
        let extra_roots = match vars.get("MEDUSA_DATABASE_CA_FILE") {
            None => Vec::new(),
            Some(path) => {
                CertificateDer::pem_file_iter(&path).and_then(|certs| certs.collect::<Result<Vec<_>, _>>()).map_err(
                    |e| ConfigError::new("MEDUSA_DATABASE_CA_FILE", format!("cannot read PEM certificates: {e}")),
                )?
            }
        };
        Ok(Some(Self { config, extra_roots, timeout }))
    }

    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }

    /// TLS verifying the server against the web PKI roots plus any configured ones.
    fn tls(&self) -> Result<MakeRustlsConnect, StoreError> {
        let tls_error = |e: rustls::Error| StoreError::Connect(format!("TLS set-up: {e}"));
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for cert in &self.extra_roots {
            roots.add(cert.clone()).map_err(tls_error)?;
        }
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(tls_error)?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// Which of Medusa's auth schemas the database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Schema {
    /// Medusa ≥ 2.16: its update route also wants the token's row.
    WithTokenTable = 1,
    /// Medusa 2.6–2.15: no token table; the update route checks the token's signature alone.
    LookupOnly = 2,
}

impl Schema {
    fn describe(self) -> &'static str {
        match self {
            Self::WithTokenTable => "medusa >= 2.16 with reset-token table",
            Self::LookupOnly => "medusa 2.6–2.15, lookup only",
        }
    }
}

/// An open connection and the schema found when it opened (a migration takes effect with the next
/// connection). It holds no prepared statements: each statement is sent with its parameter types as
/// the protocol's unnamed statement (parse, bind and execute in one round trip), which lives only
/// until the next one, so it cannot be missing on whichever server session runs it.
struct Connection {
    client: Client,
    schema: Schema,
}

/// Medusa's database as the identity store.
pub struct MedusaDatabase {
    settings: DatabaseSettings,
    connection: Mutex<Option<Connection>>,
    /// The schema last logged (`Schema as u8`, 0 for none), so a reconnection does not repeat it.
    logged_schema: AtomicU8,
}

impl MedusaDatabase {
    /// Does no I/O: the connection opens on the first request, outside the cold start.
    pub fn new(settings: DatabaseSettings) -> Self {
        Self { settings, connection: Mutex::new(None), logged_schema: AtomicU8::new(0) }
    }

    async fn connect(&self) -> Result<Connection, StoreError> {
        let connect_error = |e: tokio_postgres::Error| StoreError::Connect(e.to_string());
        let client = if self.settings.config.get_ssl_mode() == SslMode::Disable {
            let (client, connection) = self.settings.config.connect(NoTls).await.map_err(connect_error)?;
            tokio::spawn(watch(connection));
            client
        } else {
            let (client, connection) =
                self.settings.config.connect(self.settings.tls()?).await.map_err(connect_error)?;
            tokio::spawn(watch(connection));
            client
        };
        let has_table: bool = client
            .query_typed_one(SCHEMA_SQL, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| StoreError::Query(e.to_string()))?;
        let schema = if has_table { Schema::WithTokenTable } else { Schema::LookupOnly };
        if self.logged_schema.swap(schema as u8, Ordering::Relaxed) != schema as u8 {
            tracing::info!(schema = schema.describe(), "found Medusa's auth schema");
        }
        Ok(Connection { client, schema })
    }

    /// Runs `work` on the environment's connection, opening it if needed, within an overall limit.
    /// A connection that failed or timed out is dropped, so the next request starts afresh (and
    /// the server rolls back whatever it left open).
    async fn with_connection<T>(
        &self,
        work: impl AsyncFnOnce(&mut Connection) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut slot = self.connection.lock().await;
        // Connecting and each statement have their own timeout; this bounds the whole exchange.
        let limit = self.settings.timeout * 3;
        let attempt = async {
            if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
                *slot = Some(self.connect().await?);
            }
            let connection = slot.as_mut().ok_or_else(|| StoreError::Connect("no connection".into()))?;
            work(connection).await.map_err(|e| StoreError::Query(e.to_string()))
        };
        let result = tokio::time::timeout(limit, attempt)
            .await
            .unwrap_or_else(|_| Err(StoreError::Timeout(self.settings.timeout_ms())));
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

async fn watch<C: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: C) {
    if let Err(error) = connection.await {
        tracing::warn!(%error, "the Medusa database connection closed");
    }
}

impl IdentityStore for MedusaDatabase {
    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        let row_id = new_row_id();
        let token_hash = jti_hash(&record.jti);
        let lock_key = format!("{}\n{}", record.provider, record.entity_id);
        let timeout_ms = self.settings.timeout_ms();
        self.with_connection(async |c: &mut Connection| {
            // One round trip opens the transaction with its own time limits (SET LOCAL ends with it).
            // Both schemas take the lock and a transaction id, so neither path is quicker.
            c.client
                .batch_execute(&format!(
                    "BEGIN; SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL lock_timeout = {timeout_ms}"
                ))
                .await?;
            c.client.query_typed_one(LOCK_SQL, &[(&lock_key, Type::TEXT)]).await?;
            let params: [(&(dyn ToSql + Sync), Type); 5] = [
                (&record.entity_id, Type::TEXT),
                (&record.provider, Type::TEXT),
                (&row_id, Type::TEXT),
                (&token_hash, Type::TEXT),
                (&record.expires_at, Type::TIMESTAMPTZ),
            ];
            let issued = match c.schema {
                Schema::WithTokenTable => {
                    c.client.query_typed_opt(ISSUE_SQL, &params).await?.map(|_| IssuedToken { row_id: Some(row_id) })
                }
                Schema::LookupOnly => {
                    c.client.query_typed_opt(LOOKUP_SQL, &params[..2]).await?.map(|_| IssuedToken { row_id: None })
                }
            };
            c.client.batch_execute("COMMIT").await?;
            Ok(issued)
        })
        .await
    }

    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        let Some(row_id) = &issued.row_id else {
            return Ok(());
        };
        self.with_connection(async |c: &mut Connection| {
            c.client.execute_typed(WITHDRAW_SQL, &[(row_id, Type::TEXT)]).await.map(|_| ())
        })
        .await
    }
}
