//! Certificates of a test's own making (openssl, which `make test` installs) and a TLS front that
//! serves one of them for the machine's PostgreSQL: it answers PostgreSQL's `SSLRequest`, completes
//! the handshake with rustls, and relays the session in plain to 127.0.0.1:5432. So a test can give
//! the database any certificate chain, which the machine's own server (one self-signed
//! certificate) cannot.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// PostgreSQL's `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A certificate authority of the test's own: a root no one else trusts, named as the test likes
/// (say, like a public CA).
pub struct Authority {
    dir: PathBuf,
    /// The root certificate, PEM: what `sslrootcert` or `MEDUSA_DATABASE_CA_FILE` may name.
    pub root: PathBuf,
}

/// A server certificate an `Authority` issued, with its key.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Authority {
    /// A fresh P-256 root, valid for two days, called `common_name`.
    pub fn new(common_name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("medusa-reset-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("root.cnf"),
            "[req]\ndistinguished_name = dn\nx509_extensions = ca\nprompt = no\n[dn]\n[ca]\n\
             basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\n",
        )
        .unwrap();
        let subject = format!("/O=Test Trust Services/CN={common_name}");
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"];
        let files = ["-subj", &subject, "-keyout", "root.key", "-out", "root.pem"];
        openssl(&dir, &[&["req", "-x509", "-config", "root.cnf"][..], &key, &files].concat());
        Self { root: dir.join("root.pem"), dir }
    }

    /// A server certificate for `dns_names` (its subject alternative names), signed by the root.
    pub fn issue(&self, dns_names: &[&str]) -> Issued {
        let name = uuid::Uuid::new_v4().simple().to_string();
        let names = dns_names.iter().map(|n| format!("DNS:{n}")).collect::<Vec<_>>().join(",");
        std::fs::write(
            self.dir.join(format!("{name}.ext")),
            format!(
                "subjectAltName = {names}\nbasicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n"
            ),
        )
        .unwrap();
        let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        let subject = format!("/CN={}", dns_names.first().copied().unwrap_or("server"));
        let new_key = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(&self.dir, &[&new_key[..], &["-subj", &subject, "-keyout", &key, "-out", &csr]].concat());
        let ext = format!("{name}.ext");
        let sign = ["x509", "-req", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial", "-days", "2"];
        openssl(&self.dir, &[&sign[..], &["-in", &csr, "-extfile", &ext, "-out", &cert]].concat());
        Issued { cert: self.dir.join(cert), key: self.dir.join(key) }
    }
}

impl Drop for Authority {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The TLS front, on a free loopback port until dropped.
pub struct TlsFront {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl TlsFront {
    /// Serves `issued` (no client certificates asked for) in front of 127.0.0.1:5432.
    pub fn start(issued: &Issued) -> Self {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(&issued.cert).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    return;
                }
                let config = config.clone();
                // A client that gives up on the certificate ends its relay; that is the point.
                thread::spawn(move || client.and_then(|client| relay(client, config)));
            }
        });
        Self { port, stop }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One client: `SSLRequest`, the handshake, then both directions until either side closes.
fn relay(mut client: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    let mut request = [0; 8];
    client.read_exact(&mut request)?;
    if request != SSL_REQUEST {
        return Ok(());
    }
    client.write_all(b"S")?;
    let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
    while tls.is_handshaking() {
        tls.complete_io(&mut client)?;
    }
    let server = TcpStream::connect("127.0.0.1:5432")?;
    let tls = Arc::new(Mutex::new(tls));
    let (to_client, client_out, mut server_in) = (tls.clone(), client.try_clone()?, server.try_clone()?);
    thread::spawn(move || server_to_client(&mut server_in, &to_client, client_out));
    let result = client_to_server(&mut client, &tls, &server);
    let _ = server.shutdown(Shutdown::Both);
    result
}

fn client_to_server(client: &mut TcpStream, tls: &Mutex<ServerConnection>, mut server: &TcpStream) -> io::Result<()> {
    let mut buffer = [0; 16 * 1024];
    // What the handshake read past its end (the start-up message may come with the client's
    // Finished) is relayed before anything more is read.
    let mut read = 0;
    loop {
        let mut tls = tls.lock().unwrap();
        let mut received = &buffer[..read];
        loop {
            // An empty read would tell rustls the client hung up.
            if !received.is_empty() {
                tls.read_tls(&mut received)?;
            }
            let state = tls.process_new_packets().map_err(io::Error::other)?;
            let mut plain = vec![0; state.plaintext_bytes_to_read()];
            tls.reader().read_exact(&mut plain)?;
            server.write_all(&plain)?;
            if state.peer_has_closed() {
                return Ok(());
            }
            if received.is_empty() {
                break;
            }
        }
        while tls.wants_write() {
            tls.write_tls(client)?;
        }
        drop(tls);
        read = client.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
    }
}

fn server_to_client(server: &mut TcpStream, tls: &Mutex<ServerConnection>, mut client: TcpStream) -> io::Result<()> {
    let mut buffer = [0; 16 * 1024];
    loop {
        let read = server.read(&mut buffer)?;
        let mut tls = tls.lock().unwrap();
        if read == 0 {
            tls.send_close_notify();
        } else {
            tls.writer().write_all(&buffer[..read])?;
        }
        while tls.wants_write() {
            tls.write_tls(&mut client)?;
        }
        if read == 0 {
            let _ = client.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}
