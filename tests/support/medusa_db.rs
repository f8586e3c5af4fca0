//! A fresh PostgreSQL database with Medusa's auth tables, on the machine's server (127.0.0.1:5432),
//! and Medusa's own checks written independently of the code under test.

use medusa_reset::config::Vars;
use medusa_reset::identity::DatabaseSettings;
use tokio_postgres::{Client, NoTls};

/// The server's maintenance database; `PG_ADMIN_URL` overrides it.
fn admin_url() -> String {
    std::env::var("PG_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A plain connection for the test's own statements.
pub async fn connect_to(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (run `make test`, which starts it): {e}"));
    tokio::spawn(connection);
    client
}

/// The project's settings for a database URL (a test database's, or a pooler's in front of it).
pub fn settings_for(url: &str) -> DatabaseSettings {
    let url = url.to_owned();
    let vars = Vars::new(move |var: &str| (var == "MEDUSA_DATABASE_URL").then(|| url.clone()));
    DatabaseSettings::from_vars(&vars).expect("valid settings").expect("a database is configured")
}

/// A database of its own for one test, dropped by `drop_database`.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub client: Client,
}

impl TestDb {
    /// A Medusa ≥ 2.16 database: the auth tables and the reset-token table.
    pub async fn create() -> Self {
        let db = Self::create_2_15().await;
        db.add_reset_token_table().await;
        db
    }

    /// A Medusa 2.6–2.15 database: the auth tables without the reset-token table.
    pub async fn create_2_15() -> Self {
        let name = format!("medusa_reset_test_{}", uuid::Uuid::new_v4().simple());
        connect_to(&admin_url())
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let base = admin_url();
        let url = format!("{}/{name}?sslmode=disable", base.rsplit_once('/').expect("a URL with a database").0);
        let client = connect_to(&url).await;
        client.batch_execute(include_str!("../sql/medusa_auth_schema.sql")).await.expect("Medusa's schema");
        Self { name, url, client }
    }

    /// What Medusa 2.16's migration adds: the reset-token table.
    pub async fn add_reset_token_table(&self) {
        self.client.batch_execute(include_str!("../sql/medusa_reset_token_table.sql")).await.expect("the token table");
    }

    /// Does the reset-token table exist?
    pub async fn has_reset_token_table(&self) -> bool {
        let row = self.client.query_one("SELECT to_regclass('auth_password_reset_token') IS NOT NULL", &[]).await;
        row.expect("catalog lookup").get(0)
    }

    /// Every row of the auth tables, as text in a fixed order: equal snapshots mean nothing was written.
    pub async fn auth_tables_snapshot(&self) -> Vec<String> {
        let rows = self
            .client
            .query(
                "SELECT 'auth_identity ' || a::text FROM auth_identity a \
                 UNION ALL SELECT 'provider_identity ' || p::text FROM provider_identity p ORDER BY 1",
                &[],
            )
            .await
            .expect("snapshot");
        rows.iter().map(|row| row.get(0)).collect()
    }

    /// Ends every other session on this database, as a restart or failover would, and waits until
    /// the server has closed them.
    pub async fn end_other_sessions(&self) {
        let others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
        self.client.execute(&format!("SELECT pg_terminate_backend(pid) {others}"), &[]).await.expect("terminate");
        for _ in 0..100 {
            let left: i64 = self.client.query_one(&format!("SELECT count(*) {others}"), &[]).await.unwrap().get(0);
            if left == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("other sessions did not end");
    }

    pub async fn drop_database(self) {
        drop(self.client);
        let admin = connect_to(&admin_url()).await;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .await
            .expect("drop database");
    }

    /// The project's settings for this database.
    pub fn settings(&self) -> DatabaseSettings {
        settings_for(&self.url)
    }

    /// An account as Medusa's emailpass provider creates it; returns the provider identity's id.
    pub async fn add_identity(&self, entity_id: &str, provider: &str) -> String {
        let auth_id = format!("authid_{}", ulid::Ulid::generate());
        let provider_id = ulid::Ulid::generate().to_string();
        self.client
            .execute(
                "INSERT INTO auth_identity (id, app_metadata) VALUES ($1, '{\"customer_id\":\"cus_1\"}')",
                &[&auth_id],
            )
            .await
            .expect("auth identity");
        self.client
            .execute(
                "INSERT INTO provider_identity (id, entity_id, provider, auth_identity_id, provider_metadata) \
                 VALUES ($1, $2, $3, $4, '{\"password\":\"hash\"}')",
                &[&provider_id, &entity_id, &provider, &auth_id],
            )
            .await
            .expect("provider identity");
        provider_id
    }

    /// The reset rows of an identity: (id, token_hash, seconds until expiry), oldest first.
    pub async fn reset_rows(&self, entity_id: &str) -> Vec<(String, String, i64)> {
        self.client
            .query(
                "SELECT id, token_hash, extract(epoch FROM expires_at - now())::bigint \
                 FROM auth_password_reset_token WHERE entity_id = $1 ORDER BY created_at",
                &[&entity_id],
            )
            .await
            .expect("rows")
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    }

    /// What Medusa's update route does with a reset token whose signature and claims have been
    /// verified: find a live, unexpired row whose `token_hash` is the SHA-256 hex of the `jti` and
    /// whose provider identity matches the token's `entity_id` and the route's provider, then delete
    /// it. True when the token was accepted (and so used up).
    pub async fn medusa_consumes(&self, jti: &str, entity_id: &str, provider: &str) -> bool {
        let found = self
            .client
            .query_opt(
                "SELECT t.id FROM auth_password_reset_token t \
                 JOIN provider_identity pi ON pi.id = t.provider_identity_id \
                 WHERE t.token_hash = encode(sha256(convert_to($1, 'UTF8')), 'hex') \
                   AND t.deleted_at IS NULL AND t.expires_at > now() \
                   AND pi.entity_id = $2 AND pi.provider = $3",
                &[&jti, &entity_id, &provider],
            )
            .await
            .expect("Medusa's lookup");
        match found {
            Some(row) => {
                let id: String = row.get(0);
                self.client.execute("DELETE FROM auth_password_reset_token WHERE id = $1", &[&id]).await.expect("use");
                true
            }
            None => false,
        }
    }
}
