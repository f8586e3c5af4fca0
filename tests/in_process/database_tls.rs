//! `sslmode`, `sslrootcert` and `channel_binding` as libpq means them, against the machine's
//! PostgreSQL with its TLS on (a self-signed certificate, as a Debian install has it), a TLS front
//! for it that serves certificates of the test's own roots, and a PgBouncer that offers no TLS.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::medusa_db::TestDb;
use crate::support::pgbouncer::PgBouncer;
use crate::support::tls_front::{Authority, TlsFront};
use medusa_reset::config::Vars;
use medusa_reset::identity::{DatabaseSettings, IdentityStore, PostgresIdentityStore, TokenRecord};
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
fn store(url: &str, ca_file: Option<&str>) -> PostgresIdentityStore {
    let ca_file = ca_file.map(|ca_file| ("MEDUSA_DATABASE_CA_FILE", ca_file));
    let pairs: Vec<_> = [("MEDUSA_DATABASE_URL", url)].into_iter().chain(ca_file).collect();
    PostgresIdentityStore::new(DatabaseSettings::from_vars(&Vars::from_pairs(&pairs)).unwrap().unwrap())
}

/// Records a token for the known identity through a store on `url`. Err: why it could not connect.
async fn issue(url: &str, ca_file: Option<&Path>) -> Result<(), String> {
    let ca_file = ca_file.map(|path| path.display().to_string());
    let issued = store(url, ca_file.as_deref()).issue(&record()).await.map_err(|e| e.to_string())?;
    assert!(issued.is_some(), "{url}: the known identity was found");
    Ok(())
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
    let bundle = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/rds-global-bundle.pem"));
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

#[tokio::test]
async fn verify_ca_refuses_a_certificate_whose_root_was_not_given() {
    let db = known_db().await;
    // Stands for a public CA: anyone may hold one of its certificates, under a name of their own.
    let public = Authority::new("Test Public Root R1");
    let other = Authority::new("Test Other Root");
    let front = TlsFront::start(&public.issue(&["db.attacker.example"]));
    let at = |query: &str| format!("postgres://postgres@127.0.0.1:{}/{}?sslmode=verify-ca{query}", front.port, db.name);

    let refusals = [
        // No root given: the shipped RDS bundle alone, not the public roots.
        (at(""), None),
        (at(&format!("&sslrootcert={}", other.root.display())), None),
        (at(""), Some(other.root.as_path())),
    ];
    for (url, ca_file) in refusals {
        let refused = issue(&url, ca_file).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{url} with {ca_file:?}: {refused}");
    }
    // Its own root, given either way, vouches for the chain: verify-ca asks no more, so the name
    // (127.0.0.1 is not on the certificate) does not matter.
    assert_eq!(issue(&at(&format!("&sslrootcert={}", public.root.display())), None).await, Ok(()));
    assert_eq!(issue(&at(""), Some(&public.root)).await, Ok(()));
    db.drop_database().await;
}

#[tokio::test]
async fn medusa_database_ca_file_is_the_only_root_the_verifying_modes_trust() {
    let db = known_db().await;
    let server = Authority::new("Test Server Root");
    let given = Authority::new("Test Given Root");
    let front = TlsFront::start(&server.issue(&["db.internal.example"]));
    let at = |query: &str| {
        format!("postgres://postgres@db.internal.example:{}/{}?hostaddr=127.0.0.1&{query}", front.port, db.name)
    };
    for query in ["sslmode=require", "sslmode=verify-ca", "sslmode=verify-full"] {
        let refused = issue(&at(query), Some(&given.root)).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{query}: {refused}");
        assert_eq!(issue(&at(query), Some(&server.root)).await, Ok(()), "{query}");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn an_rds_endpoint_named_without_sslmode_is_verified_in_full() {
    let db = known_db().await;
    let endpoint = "mydb.c9akciq32.us-east-1.rds.amazonaws.com";
    let machine =
        |host: &str, query: &str| format!("postgres://postgres@{host}:5432/{}?hostaddr=127.0.0.1{query}", db.name);
    // The machine's self-signed server: under another name it connects unverified (libpq's
    // prefer); under an RDS name, in any case or with the root's dot, it is refused.
    assert_eq!(issue(&machine("db.example.com", ""), None).await, Ok(()));
    for host in [endpoint, "MYDB.C9AKCIQ32.US-EAST-1.RDS.AMAZONAWS.COM", "mydb.c9akciq32.us-east-1.rds.amazonaws.com."]
    {
        let refused = issue(&machine(host, ""), None).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{host}: {refused}");
    }
    // A mode that is given is kept.
    assert_eq!(issue(&machine(endpoint, "&sslmode=require"), None).await, Ok(()));

    // With the certificate's root given, the name is checked too: verify-full, not verify-ca.
    let rds = Authority::new("Test RDS Root");
    let front = TlsFront::start(&rds.issue(&[endpoint]));
    let fronted = |host: &str| format!("postgres://postgres@{host}:{}/{}?hostaddr=127.0.0.1", front.port, db.name);
    assert_eq!(issue(&fronted(endpoint), Some(&rds.root)).await, Ok(()));
    let refused = issue(&fronted("other.c9akciq32.us-east-1.rds.amazonaws.com"), Some(&rds.root)).await.unwrap_err();
    assert!(refused.contains("not valid for name"), "{refused}");
    db.drop_database().await;
}

#[tokio::test]
async fn channel_binding_required_refuses_a_server_that_authenticates_without_it_on_every_path() {
    let db = known_db().await;
    // The machine's server trusts 127.0.0.1: it authenticates with no SCRAM, so with no binding.
    let cert = server_certificate(&db).await;
    for mode in ["", "&sslmode=prefer", "&sslmode=allow", "&sslmode=require", "&sslmode=verify-ca"] {
        let url = url(&db, "127.0.0.1", &format!("channel_binding=require{mode}&sslrootcert={cert}"));
        let refused = issue(&url, None).await.unwrap_err();
        assert!(refused.contains("channel binding"), "{mode}: {refused}");
        let preferred = url.replace("channel_binding=require", "channel_binding=prefer");
        assert_eq!(issue(&preferred, None).await, Ok(()), "{mode}");
    }
    // A server without TLS: prefer falls back to plain, where there is no channel to bind to, and
    // allow does not try plain at all.
    let bouncer = PgBouncer::start(&db.name);
    let pooled = |query: &str| format!("postgres://postgres@127.0.0.1:{}/{}?{query}", bouncer.port, db.name);
    let refused = issue(&pooled("channel_binding=require"), None).await.unwrap_err();
    assert!(refused.contains("channel binding"), "{refused}");
    let refused = issue(&pooled("sslmode=allow&channel_binding=require"), None).await.unwrap_err();
    assert!(refused.contains("TLS"), "{refused}");
    assert_eq!(issue(&pooled("sslmode=allow&channel_binding=prefer"), None).await, Ok(()));
    drop(bouncer);
    db.drop_database().await;
}
