//! A fresh PostgreSQL database with Medusa's auth tables, on the machine's server (127.0.0.1:5432), for
//! one test.

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
    let vars = Vars::from_pairs(&[("MEDUSA_DATABASE_URL", url)]);
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
}
