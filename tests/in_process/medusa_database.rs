//! Medusa-database mode against the machine's PostgreSQL: only real accounts get a token, each token
//! has its row in `auth_password_reset_token`, and Medusa's own check accepts it exactly once. With
//! a fault proxy in front of the server, a reused connection that died silently or was reset is
//! replaced without the shopper noticing, and nothing written is ever written twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::support::behind_proxy;
use crate::support::faults::TcpFaultProxy;
use crate::support::medusa_db::{TestDb, settings_for};
use crate::support::pgbouncer::PgBouncer;
use crate::support::{Logs, ROUTE, SECRET, TestApp, api_config, post_json, unreachable_endpoint, verify_independently};
use http::StatusCode;
use medusa_reset::domain::event::AuthEvent;
use medusa_reset::identity::{DatabaseSettings, PostgresIdentityStore};
use medusa_reset::publish::ChannelPublisher;
use medusa_reset::ratelimit::{LimitError, RateLimiter, Subject, Verdict};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

/// What only these tests read of the captured log lines.
impl Logs {
    /// The schemas the store reported, in order.
    fn schemas(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|line| line.get("schema").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }
}

fn app(db: &TestDb) -> (TestApp, UnboundedReceiver<AuthEvent>) {
    app_on(db.settings())
}

/// One execution environment: its router and the events it publishes.
fn app_on(settings: DatabaseSettings) -> (TestApp, UnboundedReceiver<AuthEvent>) {
    TestApp::with_channel(&api_config(&[]), PostgresIdentityStore::new(settings))
}

async fn request(app: &TestApp, identifier: &str) -> StatusCode {
    app.reset(identifier).await.0.status()
}

/// Medusa's own reads and writes of its tables, which only these tests make.
impl TestDb {
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

/// The claims of the next event's token, verified independently; panics on any other event.
fn next_token_claims(events: &mut UnboundedReceiver<AuthEvent>) -> Value {
    match events.try_recv() {
        Ok(AuthEvent::PasswordReset(event)) => verify_independently(event.token.expose(), SECRET, None).unwrap(),
        other => panic!("expected a password reset event, got {other:?}"),
    }
}

fn sha256_hex(text: &str) -> String {
    // Computed by the system's sha256sum, independently of the code under test.
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_known_identity_gets_exactly_one_row_whose_hash_matches_the_tokens_jti() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (app, mut events) = app(&db);

    assert_eq!(request(&app, "a@example.com").await, StatusCode::CREATED);
    let claims = next_token_claims(&mut events);
    let rows = db.reset_rows("a@example.com").await;
    assert_eq!(rows.len(), 1);
    let (id, hash, expires_in) = &rows[0];
    assert!(id.starts_with("authprt_") && id.len() == "authprt_".len() + 26, "{id}");
    assert_eq!(*hash, sha256_hex(claims["jti"].as_str().unwrap()));
    assert!((890..=900).contains(expires_in), "the row expires with the token: {expires_in}");
    db.drop_database().await;
}

#[tokio::test]
async fn a_second_request_replaces_the_first_row() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (app, mut events) = app(&db);
    request(&app, "a@example.com").await;
    let first = next_token_claims(&mut events);
    request(&app, "a@example.com").await;
    let second = next_token_claims(&mut events);

    let rows = db.reset_rows("a@example.com").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, sha256_hex(second["jti"].as_str().unwrap()));
    assert_ne!(rows[0].1, sha256_hex(first["jti"].as_str().unwrap()));
    db.drop_database().await;
}

#[tokio::test]
async fn an_unknown_identity_gets_201_no_row_and_only_the_unknown_event() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (app, mut events) = app(&db);

    assert_eq!(request(&app, "nobody@example.com").await, StatusCode::CREATED);
    match events.try_recv() {
        Ok(AuthEvent::UnknownIdentity(event)) => assert_eq!(event.about.entity_id, "nobody@example.com"),
        other => panic!("expected the unknown-identity event, got {other:?}"),
    }
    assert!(events.try_recv().is_err());
    assert!(db.reset_rows("nobody@example.com").await.is_empty());
    // Same address, other provider: not that account either.
    db.add_identity("other@example.com", "google").await;
    request(&app, "other@example.com").await;
    assert!(matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(_))));
    db.drop_database().await;
}

#[tokio::test]
async fn spellings_medusa_does_not_know_leave_the_accounts_share_for_its_own_request() {
    let db = TestDb::create().await;
    db.add_identity("alice@example.com", "emailpass").await;
    // The shipped limits: one token a minute, five an hour, per identifier.
    let config = api_config(&[("RATE_LIMIT_PER_IDENTIFIER", "1/60,5/3600")]);
    let (app, mut events) = TestApp::with_channel(&config, PostgresIdentityStore::new(db.settings()));
    for spelling in
        ["ALICE@example.com", "alice@EXAMPLE.com", "Alice@Example.com", "ALICE@EXAMPLE.COM", "aLiCe@example.com"]
    {
        assert_eq!(request(&app, spelling).await, StatusCode::CREATED, "{spelling}");
    }
    assert_eq!(request(&app, "alice@example.com").await, StatusCode::CREATED);
    let mut tokens = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let AuthEvent::PasswordReset(event) = event {
            tokens.push(event.about.entity_id);
        }
    }
    assert_eq!(tokens, ["alice@example.com"], "her own request gets its e-mail");
    assert_eq!(db.reset_rows("alice@example.com").await.len(), 1);
    db.drop_database().await;
}

#[tokio::test]
async fn a_soft_deleted_identity_counts_as_unknown() {
    let db = TestDb::create().await;
    db.add_identity("gone@example.com", "emailpass").await;
    db.add_identity("closed@example.com", "emailpass").await;
    db.client
        .execute("UPDATE provider_identity SET deleted_at = now() WHERE entity_id = 'gone@example.com'", &[])
        .await
        .unwrap();
    db.client
        .execute(
            "UPDATE auth_identity SET deleted_at = now() WHERE id = \
             (SELECT auth_identity_id FROM provider_identity WHERE entity_id = 'closed@example.com')",
            &[],
        )
        .await
        .unwrap();
    let (app, mut events) = app(&db);
    for identifier in ["gone@example.com", "closed@example.com"] {
        assert_eq!(request(&app, identifier).await, StatusCode::CREATED);
        assert!(matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(_))), "{identifier}");
        assert!(db.reset_rows(identifier).await.is_empty(), "{identifier}");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn a_publish_failure_leaves_no_row() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (app, events) = app(&db);
    drop(events);
    assert_eq!(request(&app, "a@example.com").await, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(db.reset_rows("a@example.com").await.is_empty());
    db.drop_database().await;
}

#[tokio::test]
async fn a_database_that_is_down_is_a_500_quickly_and_publishes_nothing() {
    let down = unreachable_endpoint().replace("http://", "postgres://postgres@") + "/medusa?sslmode=disable";
    let config = api_config(&[("MEDUSA_DATABASE_URL", &down), ("MEDUSA_DATABASE_TIMEOUT_MS", "500")]);
    let (app, mut events) =
        TestApp::with_channel(&config, PostgresIdentityStore::new(crate::support::database_settings(&config)));
    let started = Instant::now();
    let (response, body) = app.reset("a@example.com").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "unknown_error");
    assert!(!body.contains("postgres"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_stuck_database_times_out_instead_of_hanging() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    // Another session holds the row lock Medusa's tables need: our statements must give up in time.
    let blocker = TestDb {
        name: String::new(),
        url: db.url.clone(),
        client: crate::support::medusa_db::connect_to(&db.url).await,
    };
    blocker.client.batch_execute("BEGIN; LOCK TABLE auth_password_reset_token IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let url = db.url.clone();
    let config = api_config(&[("MEDUSA_DATABASE_URL", &url), ("MEDUSA_DATABASE_TIMEOUT_MS", "300")]);
    let (app, mut events) =
        TestApp::with_channel(&config, PostgresIdentityStore::new(crate::support::database_settings(&config)));
    let started = Instant::now();
    assert_eq!(request(&app, "a@example.com").await, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(events.try_recv().is_err());
    blocker.client.batch_execute("ROLLBACK").await.unwrap();
    drop(blocker);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_from_many_environments_leave_exactly_one_live_row() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    // Eight apps, eight connections: as eight Lambda execution environments would be.
    let apps: Vec<(TestApp, UnboundedReceiver<AuthEvent>)> = (0..8).map(|_| app(&db)).collect();
    let mut requests = tokio::task::JoinSet::new();
    for (app, _) in &apps {
        for _ in 0..4 {
            let app = app.clone();
            requests.spawn(async move { request(&app, "a@example.com").await });
        }
    }
    let statuses: Vec<StatusCode> = requests.join_all().await;
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED), "{statuses:?}");
    let rows = db.reset_rows("a@example.com").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    drop(apps);
    db.drop_database().await;
}

#[tokio::test]
async fn medusa_accepts_the_token_exactly_once_and_only_the_newest() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (app, mut events) = app(&db);
    request(&app, "a@example.com").await;
    let older = next_token_claims(&mut events);
    request(&app, "a@example.com").await;
    let newer = next_token_claims(&mut events);

    let jti = |claims: &Value| claims["jti"].as_str().unwrap().to_owned();
    assert_eq!(newer["entity_id"], "a@example.com");
    assert_eq!(newer["provider"], "emailpass");
    assert!(!db.medusa_consumes(&jti(&older), "a@example.com", "emailpass").await, "a replaced token is dead");
    assert!(!db.medusa_consumes(&jti(&newer), "a@example.com", "google").await, "another provider's route refuses it");
    assert!(db.medusa_consumes(&jti(&newer), "a@example.com", "emailpass").await, "Medusa accepts the newest token");
    assert!(!db.medusa_consumes(&jti(&newer), "a@example.com", "emailpass").await, "and only once");
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_succeeds_through_pgbouncer_in_transaction_mode() {
    let db = TestDb::create().await;
    let known = ["a@example.com", "b@example.com", "c@example.com"];
    for identity in known {
        db.add_identity(identity, "emailpass").await;
    }
    let identifiers = [known[0], known[1], known[2], "nobody@example.com"];
    let bouncer = PgBouncer::start(&db.name);
    // Four environments, each with its one connection to the pooler, which hands each transaction to
    // whichever of its server connections is next.
    let mut environments: Vec<(TestApp, UnboundedReceiver<AuthEvent>)> =
        (0..4).map(|_| app_on(settings_for(&bouncer.url(&db.name)))).collect();
    let mut statuses = Vec::new();

    // A burst: every environment, every identifier, three times, all at once.
    let mut burst = tokio::task::JoinSet::new();
    for (app, _) in &environments {
        for _ in 0..3 {
            for identifier in identifiers {
                let app = app.clone();
                burst.spawn(async move { request(&app, identifier).await });
            }
        }
    }
    statuses.extend(burst.join_all().await);
    let mut tokens = 0;
    for (_, events) in &mut environments {
        while let Ok(event) = events.try_recv() {
            tokens += usize::from(matches!(event, AuthEvent::PasswordReset(_)));
        }
    }

    // Then one request at a time, round the environments, remembering each identity's last token.
    let mut last_jti = std::collections::HashMap::new();
    for round in 0..3 {
        for (index, (app, events)) in environments.iter_mut().enumerate() {
            for identifier in identifiers {
                let status = request(app, identifier).await;
                statuses.push(status);
                if status != StatusCode::CREATED {
                    continue;
                }
                match events.try_recv() {
                    Ok(AuthEvent::PasswordReset(event)) => {
                        let claims = verify_independently(event.token.expose(), SECRET, None).unwrap();
                        last_jti.insert(identifier, claims["jti"].as_str().unwrap().to_owned());
                    }
                    Ok(AuthEvent::UnknownIdentity(_)) => assert!(!known.contains(&identifier), "{identifier}"),
                    other => panic!("round {round}, environment {index}, {identifier}: no event ({other:?})"),
                }
            }
        }
    }
    let failed = statuses.iter().filter(|s| **s != StatusCode::CREATED).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed through PgBouncer:\n{}", statuses.len(), bouncer.log());
    assert_eq!(tokens, 4 * 3 * known.len(), "one token per request for a known identity in the burst");
    for identity in known {
        let rows = db.reset_rows(identity).await;
        assert_eq!(rows.len(), 1, "{identity}: {rows:?}");
        assert_eq!(rows[0].1, sha256_hex(&last_jti[identity]), "{identity}: the row is its last token's");
    }
    assert!(db.reset_rows("nobody@example.com").await.is_empty());

    // A publish failure takes the row back through the pooler too.
    let (app, events) = environments.pop().unwrap();
    drop(events);
    assert_eq!(request(&app, known[0]).await, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(db.reset_rows(known[0]).await.is_empty(), "the withdrawn row is gone");
    drop((app, environments, bouncer));
    db.drop_database().await;
}

#[tokio::test]
async fn known_and_unknown_identifiers_get_identical_answers_no_sooner_than_the_floor() {
    const FLOOR: Duration = Duration::from_millis(80);
    const ORIGIN: &str = "https://shop.example.com";
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let config = api_config(&[
        ("MEDUSA_DATABASE_URL", &db.url),
        ("RESPONSE_FLOOR_MS", &FLOOR.as_millis().to_string()),
        ("AUTH_CORS", ORIGIN),
    ]);
    assert_eq!(config.response_floor, FLOOR);
    let (app, mut events) =
        TestApp::with_channel(&config, PostgresIdentityStore::new(crate::support::database_settings(&config)));
    // Status, body and every header, names and values in order, with the CORS headers an allowed
    // storefront gets; and how long the answer took.
    let answer = async |identifier: &str| {
        let mut post = post_json(ROUTE, &serde_json::json!({ "identifier": identifier }).to_string());
        post.headers_mut().insert("origin", ORIGIN.parse().unwrap());
        let started = Instant::now();
        let (response, body) = app.send(post).await;
        let elapsed = started.elapsed();
        let headers: Vec<(String, Vec<u8>)> =
            response.headers().iter().map(|(name, value)| (name.to_string(), value.as_bytes().to_vec())).collect();
        ((response.status(), body, headers), elapsed)
    };

    for round in 0..4 {
        let (known, known_took) = answer("a@example.com").await;
        assert!(matches!(events.try_recv(), Ok(AuthEvent::PasswordReset(_))), "round {round}: the known path ran");
        let (unknown, unknown_took) = answer("nobody@example.com").await;
        assert!(matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(_))), "round {round}: the unknown path ran");

        assert_eq!(known.0, StatusCode::CREATED, "round {round}");
        assert_eq!(known, unknown, "round {round}: status, body and headers");
        assert!(known.2.iter().any(|(name, _)| name == "access-control-allow-origin"), "{:?}", known.2);
        for took in [known_took, unknown_took] {
            // The floor is a lower bound; above it, only a bound a loaded machine still keeps.
            assert!(took >= FLOOR, "round {round}: answered after {took:?}, before the floor");
            assert!(took < FLOOR + Duration::from_secs(5), "round {round}: {took:?}");
        }
    }
    db.drop_database().await;
}

const LOOKUP_ONLY: &str = "medusa 2.6–2.15, lookup only";
const WITH_TOKEN_TABLE: &str = "medusa >= 2.16 with reset-token table";

#[tokio::test]
async fn on_a_medusa_2_15_database_only_known_identities_get_a_token_and_nothing_is_written() {
    let db = TestDb::create_2_15().await;
    db.add_identity("a@example.com", "emailpass").await;
    db.add_identity("gone@example.com", "emailpass").await;
    db.client
        .execute("UPDATE provider_identity SET deleted_at = now() WHERE entity_id = 'gone@example.com'", &[])
        .await
        .unwrap();
    let before = db.auth_tables_snapshot().await;
    let (logs, _guard) = Logs::capture();
    let (app, mut events) = app(&db);

    for _ in 0..2 {
        assert_eq!(request(&app, "a@example.com").await, StatusCode::CREATED);
        let claims = next_token_claims(&mut events);
        assert_eq!(claims["entity_id"], "a@example.com");
        assert_eq!(claims["provider"], "emailpass");
        for unknown in ["nobody@example.com", "gone@example.com"] {
            assert_eq!(request(&app, unknown).await, StatusCode::CREATED);
            match events.try_recv() {
                Ok(AuthEvent::UnknownIdentity(event)) => assert_eq!(event.about.entity_id, unknown),
                other => panic!("{unknown}: expected the unknown-identity event, got {other:?}"),
            }
        }
    }
    assert!(events.try_recv().is_err());
    assert!(!db.has_reset_token_table().await, "no table was created");
    assert_eq!(db.auth_tables_snapshot().await, before, "the auth tables are untouched");
    assert_eq!(logs.schemas(), [LOOKUP_ONLY], "the schema is logged once");
    assert!(!logs.text().contains("a@example.com"), "{}", logs.text());
    db.drop_database().await;
}

#[tokio::test]
async fn the_schema_is_found_once_per_connection() {
    let db = TestDb::create_2_15().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (logs, _guard) = Logs::capture();
    let (app, mut events) = app(&db);
    assert_eq!(request(&app, "a@example.com").await, StatusCode::CREATED);
    next_token_claims(&mut events);

    // Medusa is upgraded to 2.16 while the environment is warm: its open connection keeps to what it
    // found, so the new table gets no row yet...
    db.add_reset_token_table().await;
    assert_eq!(request(&app, "a@example.com").await, StatusCode::CREATED);
    next_token_claims(&mut events);
    assert!(db.reset_rows("a@example.com").await.is_empty());

    // ...and the next connection finds the table and records the token there.
    db.end_other_sessions().await;
    assert_eq!(request(&app, "a@example.com").await, StatusCode::CREATED);
    let claims = next_token_claims(&mut events);
    let rows = db.reset_rows("a@example.com").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, sha256_hex(claims["jti"].as_str().unwrap()));
    assert_eq!(logs.schemas(), [LOOKUP_ONLY, WITH_TOKEN_TABLE]);
    db.drop_database().await;
}

/// The time-out and the first try on a reused connection, as the environment's settings have them.
fn limits(settings: &DatabaseSettings) -> (Duration, Duration) {
    (settings.timeout(), DatabaseSettings::first_try_limit(settings.timeout()))
}

/// A request for a known identity that must succeed: its token's row is the identity's only one.
async fn assert_recorded(db: &TestDb, app: &TestApp, events: &mut UnboundedReceiver<AuthEvent>, identifier: &str) {
    assert_eq!(request(app, identifier).await, StatusCode::CREATED, "{identifier}");
    assert_row_is_the_new_tokens(db, events, identifier).await;
}

/// The identity's only row is the token of the event just published.
async fn assert_row_is_the_new_tokens(db: &TestDb, events: &mut UnboundedReceiver<AuthEvent>, identifier: &str) {
    let claims = next_token_claims(events);
    let rows = db.reset_rows(identifier).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, sha256_hex(claims["jti"].as_str().unwrap()), "the row is the new token's");
}

/// A request for an identifier without an account that must succeed as one.
async fn assert_unknown(app: &TestApp, events: &mut UnboundedReceiver<AuthEvent>, identifier: &str) {
    assert_eq!(request(app, identifier).await, StatusCode::CREATED, "{identifier}");
    assert!(matches!(events.try_recv(), Ok(AuthEvent::UnknownIdentity(e)) if e.about.entity_id == identifier));
}

/// A known identity's request after `fault` struck the environment's connection, then an unknown
/// one's after it struck again: each answered `201` over one fresh connection, the known one's row
/// its new token's. Returns how long the known one took, and the time-out and first-try limit.
async fn served_after(fault: fn(&TcpFaultProxy)) -> (Duration, Duration, Duration) {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (proxy, url) = behind_proxy(&db).await;
    let settings = settings_for(&url);
    let (timeout, first_try) = limits(&settings);
    let (app, mut events) = app_on(settings);
    assert_recorded(&db, &app, &mut events, "a@example.com").await;

    fault(&proxy);
    let started = Instant::now();
    assert_eq!(request(&app, "a@example.com").await, StatusCode::CREATED);
    let elapsed = started.elapsed();
    assert_row_is_the_new_tokens(&db, &mut events, "a@example.com").await;
    assert_eq!(proxy.accepted(), 2, "one fresh connection");

    fault(&proxy);
    assert_unknown(&app, &mut events, "nobody@example.com").await;
    assert_eq!(proxy.accepted(), 3);
    db.drop_database().await;
    (elapsed, timeout, first_try)
}

#[tokio::test]
async fn a_connection_that_died_silently_is_given_up_after_a_quarter_of_the_time_out_and_shoppers_get_201() {
    // Frozen, the environment's connection died: what is sent on it vanishes, and nothing says so.
    let (elapsed, timeout, first_try) = served_after(TcpFaultProxy::kill_silently).await;
    assert!(elapsed >= first_try, "it waited for the dead connection first: {elapsed:?}");
    assert!(elapsed < timeout, "and not the whole time-out: {elapsed:?}");
}

#[tokio::test]
async fn a_connection_reset_as_the_request_reaches_it_is_replaced_at_once_and_shoppers_get_201() {
    // An idle time-out at a proxy or NAT on the way: the request's first bytes are answered with an RST.
    let (elapsed, _, first_try) = served_after(TcpFaultProxy::reset_all).await;
    assert!(elapsed < first_try, "an RST needs no waiting: {elapsed:?}");
}

/// Lets every request through; once armed, silently kills the proxy's connections as it does, so
/// the connection the lookup has just used is dead when the issue begins.
struct KillingLimiter {
    proxy: Arc<TcpFaultProxy>,
    armed: Arc<AtomicBool>,
}

impl RateLimiter for KillingLimiter {
    async fn check(&self, _: &Subject, _: SystemTime) -> Result<Verdict, LimitError> {
        if self.armed.load(Ordering::SeqCst) {
            self.proxy.kill_silently();
        }
        Ok(Verdict::Allowed)
    }

    async fn release(&self, _: &Subject, _: SystemTime) -> Result<(), LimitError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_connection_that_dies_between_the_lookup_and_the_issue_is_replaced_before_anything_is_written() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (proxy, url) = behind_proxy(&db).await;
    let armed = Arc::new(AtomicBool::new(false));
    let limiter = KillingLimiter { proxy: proxy.clone(), armed: armed.clone() };
    let (publisher, mut events) = ChannelPublisher::new();
    let store = PostgresIdentityStore::new(settings_for(&url));
    let app = TestApp::with_limiter(&api_config(&[]), publisher, store, limiter);
    assert_recorded(&db, &app, &mut events, "a@example.com").await;

    armed.store(true, Ordering::SeqCst);
    assert_recorded(&db, &app, &mut events, "a@example.com").await;
    assert_eq!(proxy.accepted(), 2, "the issue began again on one fresh connection");
    db.drop_database().await;
}

/// Waits until a session of the test database waits for a lock.
async fn until_a_session_waits_for_a_lock(db: &TestDb) {
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    for _ in 0..200 {
        if db.client.query_one(waiting, &[]).await.unwrap().get::<_, i64>(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no session waited for the lock");
}

#[tokio::test]
async fn an_issue_whose_connection_dies_after_it_began_is_not_tried_again_and_frees_the_identity_in_time() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (proxy, url) = behind_proxy(&db).await;
    let (app, mut events) = app_on(settings_for(&url));
    assert_recorded(&db, &app, &mut events, "a@example.com").await;
    let first_row = db.reset_rows("a@example.com").await.remove(0).0;

    // Another session holds the identity's row, so the issue stops mid-transaction, its first
    // statement answered; the connection then dies, and the issue's statements run on unseen.
    let blocker = crate::support::medusa_db::connect_to(&db.url).await;
    blocker.batch_execute("BEGIN; SELECT id FROM auth_password_reset_token FOR UPDATE").await.unwrap();
    let pending = tokio::spawn({
        let app = app.clone();
        async move { request(&app, "a@example.com").await }
    });
    until_a_session_waits_for_a_lock(&db).await;
    proxy.kill_silently();
    blocker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(pending.await.unwrap(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(proxy.accepted(), 1, "what may have committed is never sent again");
    assert!(events.try_recv().is_err(), "nothing published");

    // The session left idle mid-transaction is ended within the time-out, its lock with it: the
    // shopper's retry succeeds, and the failed attempt's row was never committed.
    let rows = db.reset_rows("a@example.com").await;
    assert_eq!(rows.iter().map(|row| &row.0).collect::<Vec<_>>(), [&first_row]);
    assert_recorded(&db, &app, &mut events, "a@example.com").await;
    drop(blocker);
    db.drop_database().await;
}

#[tokio::test]
async fn a_database_that_went_down_behind_a_dead_connection_is_a_500_well_within_the_time_out() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (proxy, url) = behind_proxy(&db).await;
    let settings = settings_for(&url);
    let (timeout, first_try) = limits(&settings);
    let (app, mut events) = app_on(settings);
    assert_recorded(&db, &app, &mut events, "a@example.com").await;

    proxy.kill_silently();
    // The server turns every new connection to the database away, as one that is down does.
    let maintenance = db.url.replacen(&format!("/{}?", db.name), "/postgres?", 1);
    let admin = crate::support::medusa_db::connect_to(&maintenance).await;
    admin.batch_execute(&format!("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false", db.name)).await.unwrap();
    let started = Instant::now();
    let (response, body) = app.reset("a@example.com").await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["type"], "unknown_error");
    assert!(elapsed >= first_try, "it waited for the dead connection first: {elapsed:?}");
    assert!(elapsed < timeout, "the refused fresh connection ends it: {elapsed:?}");
    assert!(events.try_recv().is_err());
    assert_eq!(proxy.accepted(), 2);
    db.drop_database().await;
}

/// The keepalive timer of the test process's connections to `port`, as `ss` shows it.
fn keepalive_timers(port: u16) -> Vec<Duration> {
    let filter = format!("( dport = :{port} )");
    let output = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established", &filter])
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines()
        .map(|line| {
            let timer = line.split("timer:(keepalive,").nth(1).unwrap_or_else(|| panic!("no keepalive timer: {line}"));
            parse_ss_duration(timer.split(',').next().unwrap())
        })
        .collect()
}

/// `ss`'s durations: `29sec`, `1min59sec`, `119min`, `950ms`.
fn parse_ss_duration(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut unit = String::new();
    for c in text.chars().chain(std::iter::once('0')) {
        if c.is_ascii_digit() && !unit.is_empty() {
            let n: u64 = number.parse().unwrap();
            total += match unit.as_str() {
                "min" => Duration::from_secs(n * 60),
                "sec" => Duration::from_secs(n),
                "ms" => Duration::from_millis(n),
                other => panic!("unit {other} in {text}"),
            };
            (number, unit) = (String::new(), String::new());
        }
        if c.is_ascii_digit() { number.push(c) } else { unit.push(c) }
    }
    total
}

#[tokio::test]
async fn connections_to_the_database_probe_the_server_after_30_seconds_of_silence() {
    let db = TestDb::create().await;
    db.add_identity("a@example.com", "emailpass").await;
    let (proxy, url) = behind_proxy(&db).await;
    let (app, mut events) = app_on(settings_for(&url));
    assert_recorded(&db, &app, &mut events, "a@example.com").await;

    let timers = keepalive_timers(proxy.addr.port());
    assert_eq!(timers.len(), 1, "the environment's one connection: {timers:?}");
    assert!(
        timers[0] <= Duration::from_secs(30),
        "the first probe within 30 s, not the system's two hours: {timers:?}"
    );
    db.drop_database().await;
}
