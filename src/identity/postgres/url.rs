//! A PostgreSQL connection URL read as libpq reads it (`postgres://` or `postgresql://`, percent-encoded
//! parts, `sslmode` with all six of libpq's values, `sslrootcert`, `channel_binding`, the TCP
//! keepalive parameters), into tokio-postgres settings. tokio-postgres's own parser knows only
//! three `sslmode`s, so this one stands in for it. One departure from libpq's defaults: an RDS
//! endpoint named without `sslmode` is verified in full, since RDS's certificates are known (the
//! shipped bundle) and a connection to RDS that anyone on the path could answer is never what was
//! meant. The keepalive figures are handed on as given; the settings fill in their own defaults.
//! A database named field by field (`Endpoint`, from RDS's secret JSON) goes through the same checks.

use percent_encoding::percent_decode_str;
use tokio_postgres::config::{ChannelBinding, TargetSessionAttrs};

/// libpq's `sslmode`, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// Plain first; TLS (unverified) only if the server refuses a plain connection.
    Allow,
    /// TLS if the server offers it, unverified; else plain. libpq's default.
    Prefer,
    /// TLS or nothing; the certificate is checked (chain only) only when root certificates are given.
    Require,
    /// TLS with the certificate's chain checked, not its host name.
    VerifyCa,
    /// TLS with the certificate's chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// Where `sslrootcert` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// libpq's `system`: the usual public roots.
    System,
    /// A PEM file whose certificates are the only roots trusted.
    File(String),
}

/// libpq's TCP keepalive parameters as the URL gives them: `None` where it says nothing, and for the
/// three figures `Some(0)` where it asks for the system's default, as libpq reads a zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keepalive {
    /// `keepalives`: a whole number, 0 turning the probes off and any other turning them on.
    pub on: Option<bool>,
    /// `keepalives_idle`: seconds of silence before the first probe.
    pub idle_secs: Option<u64>,
    /// `keepalives_interval`: seconds between unanswered probes.
    pub interval_secs: Option<u64>,
    /// `keepalives_count`: unanswered probes before the connection is given up.
    pub count: Option<u32>,
}

/// What a URL asks for.
#[derive(Debug)]
pub struct ParsedUrl {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub root_cert: Option<RootCert>,
    pub keepalive: Keepalive,
}

/// Why a URL was refused. The text never repeats a value from the URL, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

fn refuse(reason: impl Into<String>) -> UrlError {
    UrlError(reason.into())
}

fn decode(part: &str, what: &str) -> Result<String, UrlError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| refuse(format!("its {what} is not UTF-8")))
}

/// A parameter name fit to show in a message: short and made of the characters libpq's names use.
fn shown(name: &str) -> String {
    if name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("`{name}`")
    } else {
        "a parameter".to_owned()
    }
}

/// Whether `host` is an Amazon RDS endpoint (an instance, a cluster, or RDS Proxy):
/// `*.rds.amazonaws.com`, in any case, with or without the root's trailing dot.
pub fn is_rds_endpoint(host: &str) -> bool {
    const SUFFIX: &str = ".rds.amazonaws.com";
    let host = host.strip_suffix('.').unwrap_or(host);
    host.len() > SUFFIX.len()
        && host.is_char_boundary(host.len() - SUFFIX.len())
        && host[host.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
}

/// The parts the authority and path give, which the query's parameters may override.
#[derive(Default)]
struct Parts {
    user: Option<String>,
    password: Option<Vec<u8>>,
    host: Option<String>,
    port: Option<u16>,
    dbname: Option<String>,
    ssl_mode: Option<SslMode>,
    root_cert: Option<RootCert>,
    keepalive: Keepalive,
}

/// Reads `postgres[ql]://[user[:password]@][host][:port][/dbname][?param=value&...]`.
pub fn parse(url: &str) -> Result<ParsedUrl, UrlError> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| refuse("must start with postgres:// or postgresql://"))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // The last `@` ends the credentials, so an unencoded `@` in a password still reads as meant.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };

    let mut parts = Parts::default();
    if let Some(userinfo) = userinfo {
        let (name, secret) = match userinfo.split_once(':') {
            Some((name, secret)) => (name, Some(secret)),
            None => (userinfo, None),
        };
        parts.user = Some(decode(name, "user name")?).filter(|u| !u.is_empty());
        parts.password = secret.map(|s| percent_decode_str(s).collect::<Vec<u8>>());
    }
    (parts.host, parts.port) = split_host_port(hostport)?;
    parts.dbname = Some(decode(path, "database name")?).filter(|d| !d.is_empty());

    let mut config = tokio_postgres::Config::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').ok_or_else(|| refuse("has a query parameter without a value"))?;
        apply(&mut parts, &mut config, &decode(name, "parameter name")?, raw)?;
    }

    finish(parts, config)
}

/// A database named field by field, as RDS's secret JSON names it, rather than by a URL. `Debug`
/// shows no password.
#[derive(Clone)]
pub struct Endpoint {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub dbname: Option<String>,
    /// libpq's name for the mode; unset, the same default as a URL without `sslmode`.
    pub ssl_mode: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("user", &self.user)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("ssl_mode", &self.ssl_mode)
            .finish_non_exhaustive()
    }
}

/// Reads `endpoint` as the URL with the same parts is read; its fields are taken as they are, with
/// nothing percent-decoded.
pub fn from_endpoint(endpoint: Endpoint) -> Result<ParsedUrl, UrlError> {
    if endpoint.host.contains(',') {
        return Err(refuse("names several hosts; one is supported"));
    }
    let ssl_mode =
        endpoint.ssl_mode.as_deref().map(|mode| SslMode::parse(mode).ok_or_else(bad_ssl_mode)).transpose()?;
    let parts = Parts {
        user: Some(endpoint.user).filter(|u| !u.is_empty()),
        password: Some(endpoint.password.into_bytes()),
        host: Some(endpoint.host),
        port: Some(endpoint.port),
        dbname: endpoint.dbname.filter(|d| !d.is_empty()),
        ssl_mode,
        ..Parts::default()
    };
    finish(parts, tokio_postgres::Config::new())
}

fn bad_ssl_mode() -> UrlError {
    refuse("sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full")
}

/// The settings `parts` make, checked as libpq would check them at connection time.
fn finish(parts: Parts, mut config: tokio_postgres::Config) -> Result<ParsedUrl, UrlError> {
    let host = parts.host.filter(|h| !h.is_empty()).ok_or_else(|| refuse("names no host"))?;
    if host.starts_with('/') {
        return Err(refuse("names a Unix socket; a host name or address is needed"));
    }
    let user = parts.user.ok_or_else(|| refuse("names no user"))?;
    let ssl_mode = resolve_ssl_mode(parts.ssl_mode, parts.root_cert.as_ref(), &host)?;
    // libpq would fail at every connection; saying so at start-up is kinder.
    if ssl_mode == SslMode::Disable && config.get_channel_binding() == ChannelBinding::Require {
        return Err(refuse("channel_binding=require needs TLS, which sslmode=disable turns off"));
    }
    config.host(host).port(parts.port.unwrap_or(5432)).user(user);
    if let Some(password) = parts.password {
        config.password(password);
    }
    if let Some(dbname) = parts.dbname {
        config.dbname(dbname);
    }
    Ok(ParsedUrl { config, ssl_mode, root_cert: parts.root_cert, keepalive: parts.keepalive })
}

/// One query parameter, `raw` still percent-encoded, into `parts` or `config`.
fn apply(parts: &mut Parts, config: &mut tokio_postgres::Config, name: &str, raw: &str) -> Result<(), UrlError> {
    let value = || decode(raw, &format!("{} value", shown(name)));
    match name {
        "sslmode" => {
            parts.ssl_mode = Some(SslMode::parse(&value()?).ok_or_else(bad_ssl_mode)?);
        }
        "sslrootcert" => {
            let value = value()?;
            parts.root_cert = Some(if value == "system" { RootCert::System } else { RootCert::File(value) });
        }
        "host" => parts.host = Some(value()?),
        // libpq's hostaddr: connect to this address, and check the certificate against `host`.
        "hostaddr" => {
            config.hostaddr(value()?.parse().map_err(|_| refuse("hostaddr must be an IP address"))?);
        }
        "port" => parts.port = Some(parse_port(&value()?)?),
        "user" => parts.user = Some(value()?),
        "password" => parts.password = Some(percent_decode_str(raw).collect()),
        "dbname" => parts.dbname = Some(value()?),
        "application_name" => {
            config.application_name(value()?);
        }
        // The settings' own time-out bounds connecting; libpq's is accepted so its URLs work.
        "connect_timeout" => {
            value()?.parse::<u64>().map_err(|_| refuse("connect_timeout must be whole seconds"))?;
        }
        "keepalives" => parts.keepalive.on = Some(whole_number(&value()?, name)? != 0),
        "keepalives_idle" => parts.keepalive.idle_secs = Some(whole_number(&value()?, name)?),
        "keepalives_interval" => parts.keepalive.interval_secs = Some(whole_number(&value()?, name)?),
        "keepalives_count" => {
            let count =
                u32::try_from(whole_number(&value()?, name)?).map_err(|_| refuse("keepalives_count is too large"))?;
            parts.keepalive.count = Some(count);
        }
        // tokio-postgres enforces it: `require` fails any authentication that is not SCRAM bound
        // to the TLS channel (tls-server-end-point), trust and plain connections included.
        "channel_binding" => {
            config.channel_binding(match value()?.as_str() {
                "disable" => ChannelBinding::Disable,
                "prefer" => ChannelBinding::Prefer,
                "require" => ChannelBinding::Require,
                _ => return Err(refuse("channel_binding must be one of disable, prefer, require")),
            });
        }
        "target_session_attrs" => {
            config.target_session_attrs(match value()?.as_str() {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                _ => return Err(refuse("target_session_attrs must be any or read-write")),
            });
        }
        // Start-up options would pin RDS Proxy sessions; client certificates are not supported.
        _ => return Err(refuse(format!("{} is not a supported parameter", shown(name)))),
    }
    Ok(())
}

/// The mode the URL means. As in libpq 16, `sslrootcert=system` means verify-full unless a mode is
/// given, and no weaker one; otherwise libpq's default, prefer, except for an RDS endpoint.
fn resolve_ssl_mode(given: Option<SslMode>, root_cert: Option<&RootCert>, host: &str) -> Result<SslMode, UrlError> {
    match (given, root_cert) {
        (None, Some(RootCert::System)) => Ok(SslMode::VerifyFull),
        (Some(mode), Some(RootCert::System)) if mode != SslMode::VerifyFull => {
            Err(refuse("sslrootcert=system needs sslmode=verify-full"))
        }
        (Some(mode), _) => Ok(mode),
        (None, _) if is_rds_endpoint(host) => Ok(SslMode::VerifyFull),
        (None, _) => Ok(SslMode::Prefer),
    }
}

fn split_host_port(hostport: &str) -> Result<(Option<String>, Option<u16>), UrlError> {
    if hostport.contains(',') {
        return Err(refuse("names several hosts; one is supported"));
    }
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (address, after) = bracketed.split_once(']').ok_or_else(|| refuse("has an unclosed [ in its host"))?;
        match after {
            "" => (address, None),
            _ => (address, Some(after.strip_prefix(':').ok_or_else(|| refuse("has text after its [address]"))?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    let host = Some(decode(host, "host")?).filter(|h| !h.is_empty());
    let port = port.filter(|p| !p.is_empty()).map(parse_port).transpose()?;
    Ok((host, port))
}

/// A keepalive parameter's value: a whole number, 0 or more.
fn whole_number(value: &str, name: &str) -> Result<u64, UrlError> {
    value.trim().parse::<u64>().map_err(|_| refuse(format!("{name} must be a whole number, 0 or more")))
}

fn parse_port(port: &str) -> Result<u16, UrlError> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| refuse("has a port that is not a number from 1 to 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::Host;

    fn host(parsed: &ParsedUrl) -> String {
        match &parsed.config.get_hosts()[0] {
            Host::Tcp(host) => host.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn medusas_own_url_means_prefer_on_port_5432() {
        let parsed = parse("postgres://medusa:secret@db.example.com/medusa").unwrap();
        assert_eq!(parsed.ssl_mode, SslMode::Prefer);
        assert_eq!(host(&parsed), "db.example.com");
        assert_eq!(parsed.config.get_ports(), [5432]);
        assert_eq!(parsed.config.get_user(), Some("medusa"));
        assert_eq!(parsed.config.get_password(), Some(&b"secret"[..]));
        assert_eq!(parsed.config.get_dbname(), Some("medusa"));
        assert_eq!(parsed.root_cert, None);
    }

    #[test]
    fn every_libpq_sslmode_is_understood() {
        for (value, mode) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let parsed = parse(&format!("postgresql://u@h:6543/d?sslmode={value}")).unwrap();
            assert_eq!(parsed.ssl_mode, mode, "{value}");
            assert_eq!(parsed.config.get_ports(), [6543]);
        }
    }

    #[test]
    fn percent_encoded_parts_are_decoded() {
        let parsed = parse("postgres://me%40corp:p%40ss%3Aw%2Frd%3F%25@h/my%20db?sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(parsed.config.get_user(), Some("me@corp"));
        assert_eq!(parsed.config.get_password(), Some(&b"p@ss:w/rd?%"[..]));
        assert_eq!(parsed.config.get_dbname(), Some("my db"));
        assert_eq!(parsed.root_cert, Some(RootCert::File("/etc/ca.pem".to_owned())));
        // A plus sign is a plus sign, as in libpq (not a space, as in HTML forms).
        let plus = parse("postgres://u:a+b@h/d").unwrap();
        assert_eq!(plus.config.get_password(), Some(&b"a+b"[..]));
    }

    #[test]
    fn an_unencoded_at_sign_in_the_password_still_reads_as_meant() {
        let parsed = parse("postgres://u:p@ss@h/d").unwrap();
        assert_eq!(parsed.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(host(&parsed), "h");
    }

    #[test]
    fn ipv6_hosts_and_query_overrides_are_read() {
        let parsed = parse("postgres://u@[::1]:5433/d").unwrap();
        assert_eq!(host(&parsed), "::1");
        assert_eq!(parsed.config.get_ports(), [5433]);
        let parsed =
            parse("postgres:///d?host=db.internal&hostaddr=10.0.0.5&port=6000&user=app&password=x%26y&dbname=other")
                .unwrap();
        assert_eq!(parsed.config.get_hostaddrs(), ["10.0.0.5".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(host(&parsed), "db.internal");
        assert_eq!(parsed.config.get_ports(), [6000]);
        assert_eq!(parsed.config.get_user(), Some("app"));
        assert_eq!(parsed.config.get_password(), Some(&b"x&y"[..]));
        assert_eq!(parsed.config.get_dbname(), Some("other"));
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        let parsed = parse("postgres://u@h/d?sslrootcert=system").unwrap();
        assert_eq!((parsed.ssl_mode, parsed.root_cert), (SslMode::VerifyFull, Some(RootCert::System)));
        assert!(parse("postgres://u@h/d?sslrootcert=system&sslmode=require").is_err());
    }

    #[test]
    fn an_rds_endpoint_without_sslmode_means_verify_full_and_other_hosts_keep_prefer() {
        for host in [
            "mydb.c9akciq32.us-east-1.rds.amazonaws.com",
            "MyCluster.Cluster-RO-C9AKCIQ32.EU-WEST-1.RDS.AMAZONAWS.COM",
            "proxy.proxy-c9akciq32.us-east-1.rds.amazonaws.com.",
        ] {
            let parsed = parse(&format!("postgres://u@{host}/d")).unwrap();
            assert_eq!(parsed.ssl_mode, SslMode::VerifyFull, "{host}");
            let by_parameter = parse(&format!("postgres://u@/d?host={host}&hostaddr=10.0.0.5")).unwrap();
            assert_eq!(by_parameter.ssl_mode, SslMode::VerifyFull, "{host} as host=");
        }
        for host in [
            "db.example.com",
            "rds.amazonaws.com",
            ".rds.amazonaws.com",
            "mydb.rds.amazonaws.com.example.org",
            "mydbrds.amazonaws.com",
            "10.0.0.5",
        ] {
            assert_eq!(parse(&format!("postgres://u@{host}/d")).unwrap().ssl_mode, SslMode::Prefer, "{host}");
        }
        // A mode that is given is kept, for RDS too; only its absence is read differently.
        let explicit = parse("postgres://u@mydb.c9akciq32.us-east-1.rds.amazonaws.com/d?sslmode=require").unwrap();
        assert_eq!(explicit.ssl_mode, SslMode::Require);
        // The RDS name decides even when the address is given apart.
        let by_address = parse("postgres://u@10.0.0.5/d?host=mydb.c9akciq32.us-east-1.rds.amazonaws.com").unwrap();
        assert_eq!(by_address.ssl_mode, SslMode::VerifyFull);
    }

    #[test]
    fn channel_binding_reaches_the_connection_settings() {
        assert_eq!(parse("postgres://u@h/d").unwrap().config.get_channel_binding(), ChannelBinding::Prefer);
        for (value, binding) in [
            ("disable", ChannelBinding::Disable),
            ("prefer", ChannelBinding::Prefer),
            ("require", ChannelBinding::Require),
        ] {
            for mode in ["", "&sslmode=allow", "&sslmode=prefer", "&sslmode=require", "&sslmode=verify-full"] {
                let parsed = parse(&format!("postgres://u@h/d?channel_binding={value}{mode}")).unwrap();
                assert_eq!(parsed.config.get_channel_binding(), binding, "{value}{mode}");
            }
        }
    }

    #[test]
    fn libpqs_keepalive_parameters_are_read_as_libpq_reads_them() {
        assert_eq!(parse("postgres://u@h/d").unwrap().keepalive, Keepalive::default());
        let given = parse("postgres://u@h/d?keepalives=1&keepalives_idle=45&keepalives_interval=5&keepalives_count=4");
        let expected = Keepalive { on: Some(true), idle_secs: Some(45), interval_secs: Some(5), count: Some(4) };
        assert_eq!(given.unwrap().keepalive, expected);
        // Any integer but 0 turns them on; a zero figure asks for the system's default.
        let zeros = parse("postgres://u@h/d?keepalives=0&keepalives_idle=0&keepalives_interval=0&keepalives_count=0");
        let expected = Keepalive { on: Some(false), idle_secs: Some(0), interval_secs: Some(0), count: Some(0) };
        assert_eq!(zeros.unwrap().keepalive, expected);
        assert_eq!(parse("postgres://u@h/d?keepalives=7").unwrap().keepalive.on, Some(true));
        for bad in ["keepalives=on", "keepalives_idle=-1", "keepalives_interval=1.5", "keepalives_count=4294967296"] {
            let error = parse(&format!("postgres://u:hunter2@h/d?{bad}")).unwrap_err().to_string();
            assert!(error.contains(bad.split('=').next().unwrap()) && !error.contains("hunter2"), "{bad}: {error}");
        }
    }

    #[test]
    fn channel_binding_required_over_a_plain_connection_is_refused() {
        let error = parse("postgres://u:hunter2@h/d?sslmode=disable&channel_binding=require").unwrap_err().to_string();
        assert!(error.contains("channel_binding=require") && error.contains("sslmode=disable"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(parse("postgres://u@h/d?sslmode=disable&channel_binding=prefer").is_ok());
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_them() {
        let secret = "hunter2-secret";
        for url in [
            format!("mysql://u:{secret}@h/d"),
            format!("postgres://u:{secret}@h/d?sslmode=verify_full"),
            format!("postgres://u:{secret}@h/d?sslmode={secret}"),
            format!("postgres://u:{secret}@h:port/d"),
            format!("postgres://u:{secret}@h1,h2/d"),
            format!("postgres://u:{secret}@/d"),
            format!("postgres://:{secret}@h/d"),
            format!("postgres://u:{secret}@h/d?options=-c%20search_path%3Dx"),
            format!("postgres://u:{secret}@h/d?{secret}=1"),
            format!("postgres://u:{secret}@h/d?sslmode"),
            format!("postgres://u:{secret}@[::1/d"),
            format!("postgres://u:{secret}@h/%FF"),
            format!("postgres://u:{secret}@h/d?host=%2Ftmp"),
            format!("postgres://u:{secret}@h/d?channel_binding={secret}"),
            format!("postgres://u:{secret}@h/d?hostaddr={secret}"),
        ] {
            let error = parse(&url).expect_err(&url).to_string();
            assert!(!error.contains(secret) && !error.contains("h1"), "{url}: {error}");
        }
        let error = parse("postgres://u@h/d?sslmode=verify_full").unwrap_err().to_string();
        assert!(error.contains("verify-full"), "the message lists the values: {error}");
        let error = parse("postgres://u@h/d?options=x").unwrap_err().to_string();
        assert!(error.contains("`options`"), "{error}");
    }
}
