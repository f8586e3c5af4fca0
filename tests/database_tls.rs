//! `sslmode` as libpq means it, against the machine's PostgreSQL with its TLS on (a self-signed
//! certificate, as a Debian install has it) and against a PgBouncer that offers no TLS.

mod support;

use std::time::{Duration, SystemTime};

use medusa_reset::config::Vars;
use medusa_reset::identity::{DatabaseSettings, IdentityStore, MedusaDatabase, TokenRecord};
use support::medusa_db::TestDb;
use support::pgbouncer::PgBouncer;
use uuid::Uuid;

const KNOWN: &str = "a@example.com";

async fn known_db() -> TestDb {
    let db = TestDb::create().await;
    db.add_identity(KNOWN, "emailpass").await;
    db
}

fn url(db: &TestDb, host: &str, query: &str) -> String {
    format!("postgres://postgres@{host}:5432/{}?{query}", db.name)
}

fn record() -> TokenRecord<'static> {
    TokenRecord {
        entity_id: KNOWN,
        provider: "emailpass",
        jti: Uuid::new_v4(),
        expires_at: SystemTime::now() + Duration::from_secs(900),
    }
}

/// An environment's store on `url` (and `MEDUSA_DATABASE_CA_FILE`), which connects on first use.
fn store(url: &str, ca_file: Option<&str>) -> MedusaDatabase {
    let (url, ca_file) = (url.to_owned(), ca_file.map(str::to_owned));
    let vars = Vars::new(move |var: &str| match var {
        "MEDUSA_DATABASE_URL" => Some(url.clone()),
        "MEDUSA_DATABASE_CA_FILE" => ca_file.clone(),
        _ => None,
    });
    MedusaDatabase::new(DatabaseSettings::from_vars(&vars).unwrap().unwrap())
}

/// Connects on `url` by recording a token for the known identity, then asks the server whether
/// that session is encrypted. Err: why the store could not connect.
async fn session(db: &TestDb, url: &str, ca_file: Option<&str>) -> Result<bool, String> {
    let name = format!("tls-test-{}", Uuid::new_v4().simple());
    let store = store(&format!("{url}&application_name={name}"), ca_file);
    let issued = store.issue(&record()).await.map_err(|e| e.to_string())?;
    assert!(issued.is_some(), "{url}: the known identity was found");
    let row = db
        .client
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&name],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

/// The server's certificate file (`SHOW ssl_cert_file`, relative to the data directory if not absolute).
async fn server_certificate(db: &TestDb) -> String {
    let show =
        async |setting: &str| -> String { db.client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap().get(0) };
    let file = show("ssl_cert_file").await;
    if file.starts_with('/') { file } else { format!("{}/{file}", show("data_directory").await) }
}

/// The certificate's subject alternative names as openssl prints them (`DNS:localhost`, `IP Address:…`);
/// these, not the common name, are what a host name is checked against.
fn alternative_names(cert: &str) -> Vec<String> {
    let output =
        std::process::Command::new("openssl").args(["x509", "-in", cert, "-noout", "-ext", "subjectAltName"]).output();
    let output = output.expect("openssl runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().skip(1).flat_map(|line| line.split(',')).map(|name| name.trim().to_owned()).collect()
}

/// One root that has nothing to do with the test server, as a PEM file.
fn unrelated_root() -> String {
    let path = std::env::temp_dir().join(format!("unrelated-root-{}.pem", Uuid::new_v4().simple()));
    let bundle = include_str!("../assets/rds-global-bundle.pem");
    let end = bundle.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----\n".len();
    std::fs::write(&path, &bundle[..end]).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn without_sslmode_and_with_prefer_or_require_the_session_is_encrypted_and_unverified() {
    let db = known_db().await;
    // The server's certificate is self-signed and trusted by nothing: these connect all the same.
    for query in ["", "sslmode=prefer", "sslmode=require"] {
        assert_eq!(session(&db, &url(&db, "127.0.0.1", query), None).await, Ok(true), "{query}");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn disable_and_allow_connect_in_plain() {
    let db = known_db().await;
    for query in ["sslmode=disable", "sslmode=allow"] {
        assert_eq!(session(&db, &url(&db, "127.0.0.1", query), None).await, Ok(false), "{query}");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn verifying_modes_refuse_a_server_whose_certificate_no_trusted_root_signed() {
    let db = known_db().await;
    for query in ["sslmode=verify-full", "sslmode=verify-ca", "sslrootcert=system"] {
        let refused = session(&db, &url(&db, "127.0.0.1", query), None).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{query}: {refused}");
    }
    // require verifies once a root is given: an unrelated one does not vouch for the server...
    let unrelated = unrelated_root();
    let refused = session(&db, &url(&db, "127.0.0.1", "sslmode=require"), Some(&unrelated)).await.unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    let query = format!("sslmode=require&sslrootcert={unrelated}");
    assert!(session(&db, &url(&db, "127.0.0.1", &query), None).await.unwrap_err().contains("UnknownIssuer"));
    // ...and the server's own certificate does.
    let cert = server_certificate(&db).await;
    assert_eq!(session(&db, &url(&db, "127.0.0.1", "sslmode=require"), Some(&cert)).await, Ok(true));
    std::fs::remove_file(unrelated).unwrap();
    db.drop_database().await;
}

#[tokio::test]
async fn with_the_servers_certificate_as_root_verify_ca_checks_the_chain_and_verify_full_the_name_too() {
    let db = known_db().await;
    let cert = server_certificate(&db).await;
    let names = alternative_names(&cert);
    let root = format!("sslrootcert={cert}");

    // Connecting by address: the chain is good, so verify-ca passes; verify-full passes only if the
    // certificate names that address.
    assert_eq!(session(&db, &url(&db, "127.0.0.1", &format!("sslmode=verify-ca&{root}")), None).await, Ok(true));
    let full = session(&db, &url(&db, "127.0.0.1", &format!("sslmode=verify-full&{root}")), None).await;
    if names.iter().any(|name| name == "IP Address:127.0.0.1") {
        assert_eq!(full, Ok(true));
    } else {
        let refused = full.unwrap_err();
        assert!(refused.contains("not valid for name"), "{names:?}: {refused}");
    }

    // Under a name the certificate carries (`host`), reached at the address (`hostaddr`), as libpq does.
    let dns_name = names.iter().find_map(|name| name.strip_prefix("DNS:")).expect("the certificate names a host");
    let query = format!("sslmode=verify-full&{root}&hostaddr=127.0.0.1");
    assert_eq!(session(&db, &url(&db, dns_name, &query), None).await, Ok(true), "{dns_name}");
    let wrong_name = session(&db, &url(&db, "db.invalid", &query), None).await.unwrap_err();
    assert!(wrong_name.contains("not valid for name"), "{wrong_name}");
    db.drop_database().await;
}

#[tokio::test]
async fn prefer_connects_in_plain_to_a_server_without_tls_and_require_refuses_it() {
    let db = known_db().await;
    let bouncer = PgBouncer::start(&db.name);
    let pooled = |query: &str| format!("postgres://postgres@127.0.0.1:{}/{}?{query}", bouncer.port, db.name);
    for query in ["", "sslmode=prefer", "sslmode=allow"] {
        let issued = store(&pooled(query), None).issue(&record()).await;
        assert!(matches!(issued, Ok(Some(_))), "{query}: {issued:?}\n{}", bouncer.log());
    }
    let refused = store(&pooled("sslmode=require"), None).issue(&record()).await.unwrap_err().to_string();
    assert!(refused.contains("TLS"), "{refused}");
    drop(bouncer);
    db.drop_database().await;
}
