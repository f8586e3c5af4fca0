//! A PostgreSQL connection URL read as libpq reads it (`postgres://` or `postgresql://`, percent-encoded
//! parts, `sslmode` with all six of libpq's values, `sslrootcert`), into tokio-postgres settings.
//! tokio-postgres's own parser knows only three `sslmode`s, so this one stands in for it.

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

/// What a URL asks for.
#[derive(Debug)]
pub struct ParsedUrl {
    pub config: tokio_postgres::Config,
    pub ssl_mode: SslMode,
    pub root_cert: Option<RootCert>,
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

    let mut user = None;
    let mut password = None;
    if let Some(userinfo) = userinfo {
        let (name, secret) = match userinfo.split_once(':') {
            Some((name, secret)) => (name, Some(secret)),
            None => (userinfo, None),
        };
        user = Some(decode(name, "user name")?).filter(|u| !u.is_empty());
        password = secret.map(|s| percent_decode_str(s).collect::<Vec<u8>>());
    }
    let (mut host, mut port) = split_host_port(hostport)?;
    let mut dbname = Some(decode(path, "database name")?).filter(|d| !d.is_empty());

    let mut config = tokio_postgres::Config::new();
    let mut ssl_mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').ok_or_else(|| refuse("has a query parameter without a value"))?;
        let name = decode(name, "parameter name")?;
        let value = || decode(raw, &format!("{} value", shown(&name)));
        match name.as_str() {
            "sslmode" => {
                let mode = SslMode::parse(&value()?).ok_or_else(|| {
                    refuse("sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full")
                })?;
                ssl_mode = Some(mode);
            }
            "sslrootcert" => {
                let value = value()?;
                root_cert = Some(if value == "system" { RootCert::System } else { RootCert::File(value) });
            }
            "host" => host = Some(value()?),
            // libpq's hostaddr: connect to this address, and check the certificate against `host`.
            "hostaddr" => {
                config.hostaddr(value()?.parse().map_err(|_| refuse("hostaddr must be an IP address"))?);
            }
            "port" => port = Some(parse_port(&value()?)?),
            "user" => user = Some(value()?),
            "password" => password = Some(percent_decode_str(raw).collect()),
            "dbname" => dbname = Some(value()?),
            "application_name" => {
                config.application_name(value()?);
            }
            // The settings' own time-out bounds connecting; libpq's is accepted so its URLs work.
            "connect_timeout" => {
                value()?.parse::<u64>().map_err(|_| refuse("connect_timeout must be whole seconds"))?;
            }
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
            _ => return Err(refuse(format!("{} is not a supported parameter", shown(&name)))),
        }
    }

    let host = host.filter(|h| !h.is_empty()).ok_or_else(|| refuse("names no host"))?;
    if host.starts_with('/') {
        return Err(refuse("names a Unix socket; a host name or address is needed"));
    }
    let user = user.ok_or_else(|| refuse("names no user"))?;
    // libpq 16: `sslrootcert=system` means verify-full unless a mode is given, and no weaker one.
    let ssl_mode = match (ssl_mode, &root_cert) {
        (None, Some(RootCert::System)) => SslMode::VerifyFull,
        (Some(mode), Some(RootCert::System)) if mode != SslMode::VerifyFull => {
            return Err(refuse("sslrootcert=system needs sslmode=verify-full"));
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };
    config.host(host).port(port.unwrap_or(5432)).user(user);
    if let Some(password) = password {
        config.password(password);
    }
    if let Some(dbname) = dbname {
        config.dbname(dbname);
    }
    Ok(ParsedUrl { config, ssl_mode, root_cert })
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
