//! `make run`'s compiled local runner: Medusa admin's users get the dashboard's link, and a taken
//! address is named with the way out.

use std::process::Stdio;
use std::time::Duration;

use crate::support::local_runner::LocalRunner;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn an_admin_users_reset_link_points_at_medusa_admins_page_and_a_customers_at_the_storefront() {
    let local = LocalRunner::start(&[]).await;
    let client = reqwest::Client::new();
    for (actor, identifier) in [("user", "admin@example.com"), ("customer", "shopper@example.com")] {
        let response = client
            .post(local.url(&format!("/auth/{actor}/emailpass/reset-password")))
            .header("content-type", "application/json")
            .body(format!(r#"{{"identifier":"{identifier}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{actor}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let printed = local.stop().await;
    assert!(
        printed.contains("http://localhost:9000/app/reset-password?token=")
            && printed.contains("email=admin%40example.com"),
        "{printed}"
    );
    assert!(printed.contains("http://localhost:8000/reset-password?token="), "{printed}");
}

#[tokio::test]
async fn a_taken_address_stops_make_run_naming_local_addr() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to occupy");
    let addr = taken.local_addr().unwrap().to_string();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_local"))
        .env_clear()
        .env("LOCAL_ADDR", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("it stops").unwrap();
    assert!(!status.success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(stderr.contains(&addr) && stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("LOCAL_ADDR=127.0.0.1:9001"), "{stderr}");
}
