//! Bridge addresses as users write them: `unix:/path/to/socket` or `tcp:host:port`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::BridgeError;

/// Where a bridge listens or connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix domain socket at this path (`unix:/run/app/bus.sock`).
    Unix(PathBuf),
    /// A TCP address as `host:port` (`tcp:127.0.0.1:7000`, `tcp:[::1]:7000`,
    /// `tcp:localhost:7000`); port 0 asks the system for a free port when listening.
    Tcp(String),
}

impl Endpoint {
    /// A Unix socket endpoint.
    pub fn unix(path: impl Into<PathBuf>) -> Endpoint {
        Endpoint::Unix(path.into())
    }

    /// A TCP endpoint; `addr` is `host:port` and is checked like a parsed `tcp:` address.
    pub fn tcp(addr: impl Into<String>) -> Result<Endpoint, BridgeError> {
        let addr = addr.into();
        check_tcp(&addr).map_err(|reason| BridgeError::BadEndpoint {
            input: format!("tcp:{addr}"),
            reason,
        })?;
        Ok(Endpoint::Tcp(addr))
    }
}

fn check_tcp(addr: &str) -> Result<(), String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("a TCP address needs a port, as in tcp:127.0.0.1:7000".into());
    };
    if host.is_empty() {
        return Err("the host is empty; write tcp:127.0.0.1:PORT for this machine".into());
    }
    port.parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number (0 to 65535)"))?;
    Ok(())
}

impl FromStr for Endpoint {
    type Err = BridgeError;

    fn from_str(input: &str) -> Result<Endpoint, BridgeError> {
        let bad = |reason: String| BridgeError::BadEndpoint {
            input: input.to_owned(),
            reason,
        };
        if let Some(path) = input.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("the socket path is empty".into()));
            }
            if path.contains('\0') {
                return Err(bad("the socket path contains a NUL byte".into()));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = input.strip_prefix("tcp:") {
            check_tcp(addr).map_err(bad)?;
            return Ok(Endpoint::Tcp(addr.to_owned()));
        }
        Err(bad("unknown scheme".into()))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_schemes() {
        for text in ["unix:/tmp/bus.sock", "tcp:127.0.0.1:7000", "tcp:[::1]:0"] {
            let endpoint: Endpoint = text.parse().unwrap();
            assert_eq!(endpoint.to_string(), text);
        }
        assert_eq!(
            "unix:rel/bus.sock".parse::<Endpoint>().unwrap(),
            Endpoint::unix("rel/bus.sock")
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let cases = [
            ("udp:1.2.3.4:5", "unknown scheme"),
            ("unix:", "path is empty"),
            ("tcp:127.0.0.1", "needs a port"),
            ("tcp::7000", "host is empty"),
            ("tcp:127.0.0.1:70000", "not a port number"),
            ("/tmp/x.sock", "unknown scheme"),
        ];
        for (input, expected) in cases {
            let message = input.parse::<Endpoint>().unwrap_err().to_string();
            assert!(message.contains(expected), "{input}: {message}");
            assert!(message.contains("unix:/path/to/socket"), "{message}");
        }
        assert!(Endpoint::tcp("localhost").is_err());
    }
}
