//! Medusa's PostgreSQL: the identity lookup, on Medusa ≥ 2.16 the `auth_password_reset_token` row,
//! and the new password the update route writes, through one connection per execution environment, opened on first use and reused. Nothing is kept in the
//! server session between transactions (no named prepared statements, no session settings) and no
//! start-up options are sent, so a transaction pooler (PgBouncer, Supavisor) may hand each
//! transaction to another server connection and RDS Proxy can multiplex it without pinning.
//!
//! A reused connection may have died while the environment was frozen: reset (the next bytes meet an
//! RST) or silently (they vanish). A lookup, and an issue up to its first statement, have written
//! nothing yet, so when the reused connection fails there, or gives no answer within a quarter of the
//! time-out, they start over once on a fresh connection with the whole time-out. TCP keepalive probes
//! close a connection that dies while the environment runs, so the next request does not meet it.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Mutex;
use tokio_postgres::config::{ChannelBinding, SslMode as TlsMode};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

use self::tls::{TrustedRoots, Verification};
pub use self::url::{Endpoint, UrlError};
use self::url::{Keepalive, ParsedUrl, RootCert, SslMode};

use super::{ChangeOutcome, IdentityStore, IssuedToken, Lookup, PasswordChange, StoreError, TokenRecord, new_row_id};
use crate::domain::error_chain::with_causes;
use crate::domain::token::{jti_hash, sha256_hex};

mod tls;
mod url;

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

/// Medusa's lookup alone: before the rate limits, and as the whole work on the schemas without
/// the token table.
const LOOKUP_SQL: &str = "
SELECT pi.id
FROM provider_identity pi
JOIN auth_identity ai ON ai.id = pi.auth_identity_id AND ai.deleted_at IS NULL
WHERE pi.entity_id = $1 AND pi.provider = $2 AND pi.deleted_at IS NULL";

/// Resolved through the connection's `search_path`, as the statements that use the table are.
const SCHEMA_SQL: &str = "SELECT to_regclass('auth_password_reset_token') IS NOT NULL";

const WITHDRAW_SQL: &str = "DELETE FROM auth_password_reset_token WHERE id = $1";

/// Medusa's update route on ≥ 2.16, in one statement: the token's live row (`$3`, the SHA-256 of
/// its `jti`), locked so that two uses of one token cannot both pass; removed when it is this
/// identity's or has expired (Medusa removes an expired one as it refuses it); and, when it is this
/// identity's and a password came (`$4`), the password merged into `provider_metadata` as the
/// emailpass provider merges it. One row (`accepted`, rows changed) when a row was found, none
/// otherwise.
const CHANGE_SQL: &str = "
WITH found AS (
    SELECT t.id,
           t.expires_at > now() AS live,
           coalesce(pi.provider = $2 AND pi.entity_id = $1, false) AS ours
    FROM auth_password_reset_token t
    LEFT JOIN provider_identity pi ON pi.id = t.provider_identity_id AND pi.deleted_at IS NULL
    WHERE t.token_hash = $3 AND t.deleted_at IS NULL
    LIMIT 1
    FOR UPDATE OF t
),
spent AS (
    DELETE FROM auth_password_reset_token t USING found
    WHERE t.id = found.id AND (found.ours OR NOT found.live)
),
changed AS (
    UPDATE provider_identity pi
    SET provider_metadata = CASE WHEN jsonb_typeof(pi.provider_metadata) = 'object'
                                 THEN pi.provider_metadata ELSE '{}'::jsonb END
                            || jsonb_build_object('password', $4::text),
        updated_at = now()
    FROM found
    WHERE found.live AND found.ours AND $4::text IS NOT NULL
      AND pi.entity_id = $1 AND pi.provider = $2 AND pi.deleted_at IS NULL
    RETURNING pi.id
)
SELECT found.live AND found.ours, (SELECT count(*) FROM changed) FROM found";

/// The same on 2.6–2.15, which have no token table: the identity the token names, its password
/// written when one came (`$3`).
const CHANGE_UNRECORDED_SQL: &str = "
WITH target AS (
    SELECT id FROM provider_identity
    WHERE entity_id = $1 AND provider = $2 AND deleted_at IS NULL
    LIMIT 1
),
changed AS (
    UPDATE provider_identity pi
    SET provider_metadata = CASE WHEN jsonb_typeof(pi.provider_metadata) = 'object'
                                 THEN pi.provider_metadata ELSE '{}'::jsonb END
                            || jsonb_build_object('password', $3::text),
        updated_at = now()
    FROM target
    WHERE pi.id = target.id AND $3::text IS NOT NULL
    RETURNING pi.id
)
SELECT true, (SELECT count(*) FROM changed) FROM target";

/// The first try on a reused connection gets this share of the time-out (a quarter: 250 ms by
/// default). It is one statement that waits for no other session (a read, or `BEGIN` and its
/// settings), which a live connection answers in a few milliseconds; a silently dead one never
/// answers, and waiting the whole time-out on it would leave the fresh connection nothing within
/// the function's time.
const FIRST_TRY_DIVISOR: u32 = 4;

/// TCP keepalive where the URL says nothing: the first probe after 30 s of silence, then one every
/// 10 s, the connection given up after 3 unanswered. A connection that dies while the environment
/// runs is so closed within a minute, and the next request opens a fresh one at once; the probes
/// also keep a running environment's connection known to a NAT gateway, which forgets one idle for
/// 350 s. A frozen environment's probes may not go out, which the short first try covers.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_COUNT: u32 = 3;

/// How to reach Medusa's database: from a URL or RDS's fields, and the options. `Debug` shows no
/// credentials. Read from the environment in `config::database`.
#[derive(Clone)]
pub struct DatabaseSettings {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    roots: TrustedRoots,
    timeout: Duration,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("dbname", &self.config.get_dbname())
            .field("ssl_mode", &self.ssl_mode)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What the configuration adds to a URL: each exchange's time-out (connecting included), and roots
/// from a PEM file to trust as the URL's `sslrootcert` file is trusted.
#[derive(Clone)]
pub struct DatabaseOptions {
    timeout: Duration,
    ca_roots: Option<Vec<CertificateDer<'static>>>,
}

impl DatabaseOptions {
    /// The longest one exchange with the database may take unless configured otherwise. A warm
    /// exchange is a few round trips of a millisecond or two, and opening a TLS connection a few more;
    /// a second leaves room for a cold connection through RDS Proxy and a short wait on the identity's
    /// lock, and keeps a stuck database from holding the request (`reset::budget` counts it three
    /// times: the lookup, the issue and, after a failed publish, the withdrawal, and the first tries of
    /// the lookup and the issue on a reused connection on top).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// The file is read now, so that an unusable one stops start-up before any secret is read.
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> Result<Self, SettingsError> {
        let ca_roots = ca_file.map(read_pem).transpose().map_err(SettingsError::CaFile)?;
        Ok(Self { timeout, ca_roots })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self { timeout: Self::DEFAULT_TIMEOUT, ca_roots: None }
    }
}

impl fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("timeout", &self.timeout)
            .field("ca_roots", &self.ca_roots.as_ref().map(Vec::len))
            .finish()
    }
}

/// Why database settings cannot be built. The text never repeats a value from the URL or the
/// fields, which hold a password; the configuration names the setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The URL, with an example of one, since the refused one cannot be shown.
    #[error("{0} (expected e.g. postgres://user:password@host:5432/medusa?sslmode=verify-full)")]
    Url(UrlError),
    /// RDS's fields, refused as the URL made of them would be.
    #[error("{0}")]
    Endpoint(UrlError),
    /// The file the URL's `sslrootcert` names.
    #[error("its sslrootcert {0}")]
    RootCert(String),
    /// The options' PEM file.
    #[error("{0}")]
    CaFile(String),
    #[error("cannot go with sslrootcert=system in the database URL, which trusts the public roots: give one")]
    CaFileWithSystemRoots,
}

impl SettingsError {
    /// Whether the options' PEM file is at fault rather than the URL or the fields.
    pub fn concerns_ca_file(&self) -> bool {
        matches!(self, Self::CaFile(_) | Self::CaFileWithSystemRoots)
    }
}

impl DatabaseSettings {
    /// A URL read as libpq reads it.
    pub fn from_url(url: &str, options: &DatabaseOptions) -> Result<Self, SettingsError> {
        Self::new(url::parse(url).map_err(SettingsError::Url)?, options)
    }

    /// RDS's fields, read as the URL made of them would be.
    pub fn from_endpoint(endpoint: Endpoint, options: &DatabaseOptions) -> Result<Self, SettingsError> {
        Self::new(url::from_endpoint(endpoint).map_err(SettingsError::Endpoint)?, options)
    }

    fn new(parsed: ParsedUrl, options: &DatabaseOptions) -> Result<Self, SettingsError> {
        let ParsedUrl { mut config, ssl_mode, root_cert, keepalive } = parsed;
        // Only the TCP connect; the overall limit in `exchange` covers DNS, TLS and start-up.
        config.connect_timeout(options.timeout);
        apply_keepalive(&mut config, keepalive);
        let roots = trusted_roots(root_cert, options.ca_roots.as_deref())?;
        Ok(Self { config, ssl_mode, roots, timeout: options.timeout })
    }

    /// Whether connections check the server's certificate (verify-ca, verify-full, or require with
    /// root certificates given); otherwise an active attacker on the path could pose as the database.
    pub fn verifies_server(&self) -> bool {
        match self.ssl_mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            SslMode::Require => self.roots.are_given(),
            SslMode::Disable | SslMode::Allow | SslMode::Prefer => false,
        }
    }

    /// `MEDUSA_DATABASE_TIMEOUT_MS`: the longest a fresh connection's exchange takes, connecting
    /// included, and a withdrawal's on any connection.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long the first statement of a lookup or an issue waits on a connection an earlier exchange
    /// opened before the exchange starts over on a fresh connection: a quarter of `timeout`.
    pub fn first_try_limit(timeout: Duration) -> Duration {
        timeout / FIRST_TRY_DIVISOR
    }

    /// Opens a connection as the `sslmode` says: plain, TLS if offered, or TLS checked as far as asked.
    async fn open(&self) -> Result<Client, StoreError> {
        let connect_error = |e: tokio_postgres::Error| StoreError::Connect(with_causes(&e));
        // Channel binding needs TLS, so a plain attempt that is bound to fail is not made.
        let binding_required = self.config.get_channel_binding() == ChannelBinding::Require;
        match self.ssl_mode {
            SslMode::Disable => self.open_plain().await.map_err(connect_error),
            SslMode::Allow if binding_required => self.open_tls(TlsMode::Require, Verification::Nothing).await,
            // libpq's allow: plain first; TLS when the server answered and turned that away.
            SslMode::Allow => match self.open_plain().await {
                Err(e) if e.as_db_error().is_some() => self.open_tls(TlsMode::Require, Verification::Nothing).await,
                other => other.map_err(connect_error),
            },
            SslMode::Prefer => self.open_tls(TlsMode::Prefer, Verification::Nothing).await,
            SslMode::Require if !self.roots.are_given() => self.open_tls(TlsMode::Require, Verification::Nothing).await,
            SslMode::Require | SslMode::VerifyCa => self.open_tls(TlsMode::Require, Verification::Chain).await,
            SslMode::VerifyFull => self.open_tls(TlsMode::Require, Verification::ChainAndName).await,
        }
    }

    async fn open_plain(&self) -> Result<Client, tokio_postgres::Error> {
        let mut config = self.config.clone();
        let (client, connection) = config.ssl_mode(TlsMode::Disable).connect(NoTls).await?;
        tokio::spawn(watch(connection));
        Ok(client)
    }

    async fn open_tls(&self, mode: TlsMode, verification: Verification) -> Result<Client, StoreError> {
        let tls =
            tls::connector(verification, &self.roots).map_err(|e| StoreError::Connect(format!("TLS set-up: {e}")))?;
        let mut config = self.config.clone();
        let (client, connection) =
            config.ssl_mode(mode).connect(tls).await.map_err(|e| StoreError::Connect(with_causes(&e)))?;
        tokio::spawn(watch(connection));
        Ok(client)
    }
}

/// The URL's keepalive parameters, and ours where it gives none. A zero asks for the system's
/// default: tokio-postgres always sets the idle time, so there it is two hours, Linux's default.
fn apply_keepalive(config: &mut tokio_postgres::Config, asked: Keepalive) {
    let seconds = |asked: Option<u64>, ours: Duration| match asked {
        None => Some(ours),
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
    };
    config.keepalives(asked.on.unwrap_or(true));
    config.keepalives_idle(seconds(asked.idle_secs, KEEPALIVE_IDLE).unwrap_or(Duration::from_secs(2 * 60 * 60)));
    if let Some(interval) = seconds(asked.interval_secs, KEEPALIVE_INTERVAL) {
        config.keepalives_interval(interval);
    }
    if let Some(count) = asked.count.or(Some(KEEPALIVE_COUNT)).filter(|count| *count != 0) {
        config.keepalives_retries(count);
    }
}

/// The roots `sslrootcert` and the options' PEM file give. Either restricts them to its
/// certificates (both, to the two files'), as libpq's `sslrootcert` does; with neither, the shipped ones.
fn trusted_roots(
    root_cert: Option<RootCert>,
    ca_roots: Option<&[CertificateDer<'static>]>,
) -> Result<TrustedRoots, SettingsError> {
    let mut given = match root_cert {
        Some(RootCert::System) if ca_roots.is_some() => return Err(SettingsError::CaFileWithSystemRoots),
        Some(RootCert::System) => return Ok(TrustedRoots::System),
        Some(RootCert::File(path)) => read_pem(Path::new(&path)).map_err(SettingsError::RootCert)?,
        None => Vec::new(),
    };
    given.extend(ca_roots.into_iter().flatten().cloned());
    Ok(if given.is_empty() { TrustedRoots::Shipped } else { TrustedRoots::Given(given) })
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot be read as PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(certs)
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
pub struct PostgresIdentityStore {
    settings: DatabaseSettings,
    connection: Mutex<Option<Connection>>,
    /// The schema last logged (`Schema as u8`, 0 for none), so a reconnection does not repeat it.
    logged_schema: AtomicU8,
}

impl PostgresIdentityStore {
    /// Does no I/O: the connection opens on the first request, outside the cold start.
    pub fn new(settings: DatabaseSettings) -> Self {
        Self { settings, connection: Mutex::new(None), logged_schema: AtomicU8::new(0) }
    }

    async fn connect(&self) -> Result<Connection, StoreError> {
        let client = self.settings.open().await?;
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

    /// Runs an exchange on the environment's connection, opening one where there is none: `first`,
    /// the statement that opens it, then `rest` with what that returned. All of it (the wait for the
    /// connection, DNS, TLS, start-up, every statement) is held to the time-out, plus the first-try
    /// limit where `retry` allows one: the figures the time budget counts. A connection that failed
    /// or was cut is dropped, so the next exchange starts afresh (and the server rolls back what it
    /// left open).
    async fn exchange<A, T>(
        &self,
        retry: Retry,
        first: impl AsyncFnOnce(&mut Connection) -> Result<A, tokio_postgres::Error> + Clone,
        rest: impl AsyncFnOnce(&mut Connection, A) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let first_try = match retry {
            Retry::FirstStatement => DatabaseSettings::first_try_limit(self.settings.timeout),
            Retry::Never => Duration::ZERO,
        };
        let started = tokio::time::Instant::now();
        let limit = self.settings.timeout + first_try;
        let attempt = async {
            let mut slot = self.connection.lock().await;
            // Out of the slot while in use, so an exchange cut anywhere drops it too.
            let reused = slot.take().filter(|connection| !connection.client.is_closed());
            // Only a reused connection gets the first try on top of the time-out.
            let own_limit = if reused.is_some() { limit } else { self.settings.timeout };
            let work = async {
                let (mut connection, opened) = self.begin(reused, first_try, first).await?;
                let result = rest(&mut connection, opened).await.map_err(query_error)?;
                Ok((connection, result))
            };
            let (connection, result) = tokio::time::timeout_at(started + own_limit, work)
                .await
                .unwrap_or_else(|_| Err(StoreError::Timeout(millis(own_limit))))?;
            *slot = Some(connection);
            Ok(result)
        };
        tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| Err(StoreError::Timeout(millis(limit))))
    }

    /// `first` on the reused connection, if there is one; with a first try, where that fails as a
    /// lost connection does or gives no answer within it, `first` once more on a fresh connection.
    /// Nothing is written until `first` has answered, so starting over cannot write twice.
    async fn begin<A>(
        &self,
        reused: Option<Connection>,
        first_try: Duration,
        first: impl AsyncFnOnce(&mut Connection) -> Result<A, tokio_postgres::Error> + Clone,
    ) -> Result<(Connection, A), StoreError> {
        if let Some(mut connection) = reused {
            if first_try.is_zero() {
                let opened = first(&mut connection).await.map_err(query_error)?;
                return Ok((connection, opened));
            }
            let reason = match tokio::time::timeout(first_try, first.clone()(&mut connection)).await {
                Ok(Ok(opened)) => return Ok((connection, opened)),
                Ok(Err(error)) if !connection_lost(&error) => return Err(query_error(error)),
                Ok(Err(error)) => with_causes(&error),
                Err(_) => format!("no answer within {} ms", first_try.as_millis()),
            };
            drop(connection);
            tracing::warn!(%reason, "the reused Medusa database connection failed before writing; trying a fresh one");
        }
        let mut connection = self.connect().await?;
        let opened = first(&mut connection).await.map_err(query_error)?;
        Ok((connection, opened))
    }
}

/// Whether an exchange may start over on a fresh connection when its reused one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Its first statement writes nothing (a lookup; an issue's `BEGIN`), so a reused connection gets
    /// the first-try limit for it, and a fresh one the whole time-out after.
    FirstStatement,
    /// A withdrawal: it follows the issue on the connection the issue has just used, and the time
    /// budget counts no second try for it.
    Never,
}

/// Whether `error` says the connection is gone (closed, a socket error, the server ending the
/// session), rather than that the server answered and refused the statement, which a fresh
/// connection would not change.
fn connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(db) = error.as_db_error() {
        // Class 08 is connection exceptions; 57P the server ending the session (a shutdown, a
        // crash, `idle_session_timeout`).
        let code = db.code().code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>())
}

fn query_error(error: tokio_postgres::Error) -> StoreError {
    StoreError::Query(error.to_string())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

async fn watch<C: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: C) {
    if let Err(error) = connection.await {
        tracing::warn!(%error, "the Medusa database connection closed");
    }
}

impl IdentityStore for PostgresIdentityStore {
    /// One statement, on either schema: the rate limits count against the id it finds.
    async fn find(&self, entity_id: &str, provider: &str) -> Result<Lookup, StoreError> {
        let lookup = async |c: &mut Connection| {
            let params: [(&(dyn ToSql + Sync), Type); 2] = [(&entity_id, Type::TEXT), (&provider, Type::TEXT)];
            c.client.query_typed_opt(LOOKUP_SQL, &params).await?.map(|row| row.try_get::<_, String>(0)).transpose()
        };
        let found = self.exchange(Retry::FirstStatement, lookup, async |_: &mut Connection, found| Ok(found)).await?;
        Ok(found.map_or(Lookup::NoAccount, Lookup::Account))
    }

    async fn issue(&self, record: &TokenRecord<'_>) -> Result<Option<IssuedToken>, StoreError> {
        let row_id = new_row_id();
        let token_hash = jti_hash(&record.jti);
        let lock_key = format!("{}\n{}", record.provider, record.entity_id);
        let begin = self.begin_sql();
        let open = async |c: &mut Connection| c.client.batch_execute(&begin).await;
        let write = async |c: &mut Connection, ()| {
            // Both schemas take the lock and a transaction id, so neither path is quicker.
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
            // Once sent it may have committed, whatever becomes of its answer: nothing after `open`
            // starts over.
            c.client.batch_execute("COMMIT").await?;
            Ok(issued)
        };
        self.exchange(Retry::FirstStatement, open, write).await
    }

    /// Without a row (`IssuedToken::nothing()`, the unknown path's) a fresh id is deleted: it matches
    /// nothing and costs the round trip a withdrawal costs. The lookup-only schema has no rows.
    async fn withdraw(&self, issued: &IssuedToken) -> Result<(), StoreError> {
        let row_id = issued.row_id.clone().unwrap_or_else(new_row_id);
        let delete = async |c: &mut Connection| match c.schema {
            Schema::WithTokenTable => c.client.execute_typed(WITHDRAW_SQL, &[(&row_id, Type::TEXT)]).await.map(|_| ()),
            Schema::LookupOnly => Ok(()),
        };
        self.exchange(Retry::Never, delete, async |_: &mut Connection, _| Ok(())).await
    }

    /// One statement between `BEGIN` and `COMMIT`, so that the row lock it waits on is held to the
    /// transaction's time limits like the issue's.
    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<ChangeOutcome, StoreError> {
        let token_hash = sha256_hex(change.jti.as_bytes());
        let begin = self.begin_sql();
        let open = async |c: &mut Connection| c.client.batch_execute(&begin).await;
        let write = async |c: &mut Connection, ()| {
            let found = match c.schema {
                Schema::WithTokenTable => {
                    let params: [(&(dyn ToSql + Sync), Type); 4] = [
                        (&change.entity_id, Type::TEXT),
                        (&change.provider, Type::TEXT),
                        (&token_hash, Type::TEXT),
                        (&change.password_hash, Type::TEXT),
                    ];
                    c.client.query_typed_opt(CHANGE_SQL, &params).await?
                }
                Schema::LookupOnly => {
                    let params: [(&(dyn ToSql + Sync), Type); 3] = [
                        (&change.entity_id, Type::TEXT),
                        (&change.provider, Type::TEXT),
                        (&change.password_hash, Type::TEXT),
                    ];
                    c.client.query_typed_opt(CHANGE_UNRECORDED_SQL, &params).await?
                }
            };
            let outcome = match found {
                Some(row) => match (row.try_get::<_, bool>(0)?, row.try_get::<_, i64>(1)?) {
                    (true, 1..) => ChangeOutcome::Changed,
                    (true, _) if change.password_hash.is_none() => ChangeOutcome::Spent,
                    _ => ChangeOutcome::Refused,
                },
                None => ChangeOutcome::Refused,
            };
            // Once sent it may have committed, whatever becomes of its answer: nothing after `open`
            // starts over.
            c.client.batch_execute("COMMIT").await?;
            Ok(outcome)
        };
        self.exchange(Retry::FirstStatement, open, write).await
    }
}

impl PostgresIdentityStore {
    /// `BEGIN` with the transaction's own time limits (SET LOCAL ends with it), in one round trip. A
    /// connection that dies silently mid-transaction leaves its session idle there, holding its
    /// locks until the server ends it: the idle limit has it do so within the time-out.
    fn begin_sql(&self) -> String {
        let timeout_ms = millis(self.settings.timeout);
        format!(
            "BEGIN; SET LOCAL statement_timeout = {timeout_ms}; SET LOCAL lock_timeout = {timeout_ms}; \
             SET LOCAL idle_in_transaction_session_timeout = {timeout_ms}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, ca_file: Option<&Path>) -> Result<DatabaseSettings, SettingsError> {
        DatabaseSettings::from_url(url, &DatabaseOptions::new(DatabaseOptions::DEFAULT_TIMEOUT, ca_file)?)
    }

    fn url(query: &str) -> String {
        format!("postgres://medusa:s3cret-pw@db.example.com/medusa{query}")
    }

    /// One of the RDS roots, as a PEM file of its own.
    fn pem_file() -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("root-{}.pem", uuid::Uuid::new_v4().simple()));
        let bundle =
            std::str::from_utf8(include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/rds-global-bundle.pem")))
                .unwrap();
        let end = bundle.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
        std::fs::write(&path, &bundle[..end]).unwrap();
        path
    }

    #[test]
    fn only_verifying_modes_say_they_verify_the_server() {
        let pem = pem_file();
        let root = format!("&sslrootcert={}", pem.display());
        let cases = [
            (url(""), None, false),
            (url("?sslmode=disable"), None, false),
            (url("?sslmode=allow"), None, false),
            (url("?sslmode=prefer"), None, false),
            (url("?sslmode=require"), None, false),
            (url(&format!("?sslmode=require{root}")), None, true),
            (url("?sslmode=require"), Some(&pem), true),
            (url("?sslmode=prefer"), Some(&pem), false),
            (url("?sslmode=verify-ca"), None, true),
            (url("?sslmode=verify-full"), None, true),
            (url("?sslrootcert=system"), None, true),
        ];
        for (url, ca_file, verifies) in cases {
            let settings = settings(&url, ca_file.map(|p| p.as_path())).unwrap();
            assert_eq!(settings.verifies_server(), verifies, "{url} with CA file {ca_file:?}");
        }
        std::fs::remove_file(pem).unwrap();
    }

    #[test]
    fn medusa_database_ca_file_restricts_the_roots_as_sslrootcert_does() {
        let (first, second) = (pem_file(), pem_file());
        let first_path = first.display().to_string();
        let given = |settings: DatabaseSettings| match settings.roots {
            TrustedRoots::Given(certs) => certs.len(),
            other => panic!("{other:?}"),
        };
        let ca_only = settings(&url(""), Some(&first));
        assert_eq!(given(ca_only.unwrap()), 1);
        let root_only = settings(&url(&format!("?sslrootcert={first_path}")), None);
        assert_eq!(given(root_only.unwrap()), 1);
        let both = settings(&url(&format!("?sslrootcert={first_path}")), Some(&second));
        assert_eq!(given(both.unwrap()), 2);
        let neither = settings(&url("?sslmode=verify-ca"), None).unwrap();
        assert!(matches!(neither.roots, TrustedRoots::Shipped), "{:?}", neither.roots);
        let system = settings(&url("?sslrootcert=system"), None).unwrap();
        assert!(matches!(system.roots, TrustedRoots::System), "{:?}", system.roots);
        let error = settings(&url("?sslrootcert=system"), Some(&first)).unwrap_err();
        assert_eq!(error, SettingsError::CaFileWithSystemRoots);
        assert!(error.concerns_ca_file() && !error.to_string().contains("s3cret-pw"), "{error}");
        std::fs::remove_file(first).unwrap();
        std::fs::remove_file(second).unwrap();
    }

    #[test]
    fn an_rds_endpoint_without_sslmode_verifies_the_server_in_full() {
        let rds = "postgres://medusa:s3cret-pw@mydb.c9akciq32.us-east-1.rds.amazonaws.com/medusa";
        let settings = settings(rds, None).unwrap();
        assert_eq!(settings.ssl_mode, SslMode::VerifyFull);
        assert!(matches!(settings.roots, TrustedRoots::Shipped), "the RDS bundle is among the shipped roots");
        assert!(settings.verifies_server());
    }

    #[test]
    fn connections_probe_a_silent_server_after_30_seconds_unless_the_url_says_otherwise() {
        let secs = Duration::from_secs;
        let ours = settings(&url(""), None).unwrap().config;
        assert!(ours.get_keepalives());
        assert_eq!(ours.get_keepalives_idle(), secs(30));
        assert_eq!(ours.get_keepalives_interval(), Some(secs(10)));
        assert_eq!(ours.get_keepalives_retries(), Some(3));
        let query = "?keepalives_idle=120&keepalives_interval=20&keepalives_count=5";
        let given = settings(&url(query), None).unwrap().config;
        assert_eq!(given.get_keepalives_idle(), secs(120));
        assert_eq!(given.get_keepalives_interval(), Some(secs(20)));
        assert_eq!(given.get_keepalives_retries(), Some(5));
        // libpq's zero: the system's defaults (Linux's two hours for the idle time, which is always set).
        let query = "?keepalives_idle=0&keepalives_interval=0&keepalives_count=0";
        let system = settings(&url(query), None).unwrap().config;
        assert_eq!(system.get_keepalives_idle(), secs(7_200));
        assert_eq!((system.get_keepalives_interval(), system.get_keepalives_retries()), (None, None));
        let off = settings(&url("?keepalives=0"), None).unwrap().config;
        assert!(!off.get_keepalives());
    }

    #[test]
    fn channel_binding_from_the_url_stays_in_the_settings() {
        let required = settings(&url("?sslmode=allow&channel_binding=require"), None).unwrap();
        assert_eq!(required.config.get_channel_binding(), ChannelBinding::Require);
        let error = settings(&url("?sslmode=disable&channel_binding=require"), None).unwrap_err();
        assert!(matches!(error, SettingsError::Url(_)) && error.to_string().contains("channel_binding"), "{error}");
    }

    #[test]
    fn a_bad_url_or_root_file_is_refused_saying_which_and_not_showing_the_url() {
        let empty = std::env::temp_dir().join(format!("empty-{}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&empty, "").unwrap();
        let cases = [
            (url("?sslmode=verify_full"), None, false),
            ("medusa:s3cret-pw@db.example.com".to_owned(), None, false),
            (url("?sslmode=verify-full&sslrootcert=/nonexistent/root.pem"), None, false),
            (url("?sslmode=verify-full"), Some(&empty), true),
        ];
        for (url, ca_file, ca_file_at_fault) in cases {
            let error = settings(&url, ca_file.map(|p| p.as_path())).unwrap_err();
            assert_eq!(error.concerns_ca_file(), ca_file_at_fault, "{url}");
            let shown = error.to_string();
            assert!(!shown.contains("s3cret-pw") && !shown.contains("db.example.com"), "{shown}");
        }
        std::fs::remove_file(empty).unwrap();
    }

    #[test]
    fn rds_fields_are_read_as_the_url_made_of_them() {
        let endpoint = |host: &str, ssl_mode: Option<&str>| Endpoint {
            user: "medusa".to_owned(),
            password: "p@ss:w/rd?#%".to_owned(),
            host: host.to_owned(),
            port: 6432,
            dbname: Some("shop".to_owned()),
            ssl_mode: ssl_mode.map(str::to_owned),
        };
        let options = DatabaseOptions::default();
        let rds = DatabaseSettings::from_endpoint(endpoint("db.cluster.rds.amazonaws.com", None), &options).unwrap();
        assert_eq!(rds.ssl_mode, SslMode::VerifyFull, "an RDS endpoint is verified in full");
        assert_eq!(rds.config.get_password(), Some(b"p@ss:w/rd?#%".as_slice()), "taken as it is");
        assert_eq!((rds.config.get_user(), rds.config.get_dbname()), (Some("medusa"), Some("shop")));
        assert_eq!(rds.config.get_ports(), [6432]);
        assert_eq!(rds.config.get_keepalives_idle(), Duration::from_secs(30), "the URL's defaults apply");
        let other = DatabaseSettings::from_endpoint(endpoint("db.example.com", None), &options).unwrap();
        assert_eq!(other.ssl_mode, SslMode::Prefer);
        let given = DatabaseSettings::from_endpoint(endpoint("db.example.com", Some("require")), &options).unwrap();
        assert_eq!(given.ssl_mode, SslMode::Require);
        for (host, ssl_mode) in [("db.example.com", Some("verify_full")), ("a,b", None), ("/tmp", None)] {
            let error = DatabaseSettings::from_endpoint(endpoint(host, ssl_mode), &options).unwrap_err();
            assert!(matches!(error, SettingsError::Endpoint(_)), "{host} {ssl_mode:?}: {error}");
            assert!(!error.to_string().contains("p@ss"), "{error}");
        }
    }
}
