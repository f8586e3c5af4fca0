//! A real PgBouncer in transaction mode (what Supabase's and Neon's pooled URLs are) in front of the
//! machine's PostgreSQL, started for one test on a free loopback port and stopped when dropped.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Debian's `pgbouncer` package; `make test` installs it with `tools/ensure-debian-packages`.
const BINARY: &str = "/usr/sbin/pgbouncer";

/// Server connections in the pool: enough that consecutive transactions of one client land on
/// different server sessions, which is what breaks session state.
const POOL_SIZE: u32 = 4;

pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl PgBouncer {
    /// Pools `dbname` on 127.0.0.1:5432 (trust authentication, plain TCP to the server) in
    /// transaction mode, handing server connections out in turn (`server_round_robin`).
    pub fn start(dbname: &str) -> Self {
        assert!(
            std::path::Path::new(BINARY).exists(),
            "{BINARY} is missing: run `tools/ensure-debian-packages pgbouncer` (make test does)"
        );
        let dir = std::env::temp_dir().join(format!("medusa-reset-pgbouncer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let users = dir.join("users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").unwrap();
        let config = dir.join("pgbouncer.ini");
        std::fs::write(
            &config,
            format!(
                "[databases]\n\
                 {dbname} = host=127.0.0.1 port=5432 dbname={dbname} user=postgres\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {users}\n\
                 pool_mode = transaction\n\
                 default_pool_size = {POOL_SIZE}\n\
                 min_pool_size = {POOL_SIZE}\n\
                 server_round_robin = 1\n\
                 server_tls_sslmode = disable\n\
                 max_client_conn = 100\n",
                users = users.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("pgbouncer.log")).unwrap();
        let mut command = Command::new(BINARY);
        // PgBouncer refuses to run as root; its own `-u` drops to an unprivileged user after start.
        if std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false) {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));
        let mut bouncer = Self { child, dir, port };
        bouncer.wait_until_listening();
        bouncer
    }

    /// A URL of the pooled database, as a transaction-pooled provider hands it out.
    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}?sslmode=disable", self.port)
    }

    /// The last lines PgBouncer logged, for failure messages.
    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("pgbouncer exited with {status}:\n{}", self.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbouncer did not listen on 127.0.0.1:{} within 10 s:\n{}", self.port, self.log());
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
