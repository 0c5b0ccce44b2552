//! What a bridge is told: limits and timeouts per connection, the listen side's sockets and
//! the connect side's reconnect policy. Every field is public and has a documented default;
//! [`Limits::validate`] (called by `listen`/`connect`) refuses values that cannot work.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use mycelium_protocol::MAX_PAYLOAD;
use mycelium_transport::{OverflowPolicy, MAX_QUEUE_CAPACITY};

use crate::endpoint::Endpoint;
use crate::error::BridgeError;

/// Mode of a Unix socket a bridge creates, unless configured otherwise: owner read/write only.
pub const DEFAULT_SOCKET_MODE: u32 = 0o600;

/// Largest frame accepted before the handshake has succeeded (the hello carries the schema's
/// canonical description, a few KiB for large schemas). Keeps an unauthenticated peer from
/// making the server hold a full `max_frame` buffer.
pub const HANDSHAKE_MAX_FRAME: usize = 1 << 20;

/// Largest shared-secret token, in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Per-connection limits and timeouts, the same for both sides of a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload accepted in one frame, in bytes (`1..=16 MiB`, default 16 MiB, also
    /// capped by the bus's `max_payload`). A header announcing more closes the connection
    /// before anything is allocated; a peer can never make this side allocate more.
    pub max_frame: usize,
    /// Messages queued per forwarded type per connection before `overflow` applies
    /// (default 1024).
    pub queue_capacity: usize,
    /// What a full per-connection queue does (default `Block`: local publishers wait for the
    /// peer, at most until `write_timeout` cuts a peer that stopped reading).
    pub overflow: OverflowPolicy,
    /// Time allowed from the socket connecting to the end of the handshake (default 5 s).
    pub handshake_timeout: Duration,
    /// Longest time without a complete frame from the peer before the connection is closed
    /// (default 30 s). Each side sends a ping after a third of it without traffic, so only a
    /// dead or stalled peer hits it — including one that trickles a frame byte by byte.
    pub idle_timeout: Duration,
    /// Longest time one write to the peer may take (default 10 s); a peer that does not read
    /// is cut after it.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: MAX_PAYLOAD,
            queue_capacity: 1024,
            overflow: OverflowPolicy::Block,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Checks every value; the error names the field and the accepted range.
    pub fn validate(&self) -> Result<(), BridgeError> {
        if !(1..=MAX_PAYLOAD).contains(&self.max_frame) {
            return Err(BridgeError::Config(format!(
                "max_frame {} is out of range; use 1 to {MAX_PAYLOAD} bytes",
                self.max_frame
            )));
        }
        if !(1..=MAX_QUEUE_CAPACITY).contains(&self.queue_capacity) {
            return Err(BridgeError::Config(format!(
                "queue_capacity {} is out of range; use 1 to {MAX_QUEUE_CAPACITY}",
                self.queue_capacity
            )));
        }
        for (name, value) in [
            ("handshake_timeout", self.handshake_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if value < Duration::from_millis(10) {
                return Err(BridgeError::Config(format!(
                    "{name} of {value:?} is too short; use at least 10 ms"
                )));
            }
        }
        Ok(())
    }

    /// How long without writing before a ping is sent: a third of the idle timeout, so two
    /// pings may be lost or late before the peer gives up.
    pub(crate) fn ping_interval(&self) -> Duration {
        self.idle_timeout / 3
    }
}

/// A shared secret both sides must hold. Compared in constant time; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Vec<u8>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<{} bytes, redacted>)", self.0.len())
    }
}

impl Token {
    /// A token of 1 to [`MAX_TOKEN_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Token, BridgeError> {
        let secret = secret.into();
        if secret.is_empty() || secret.len() > MAX_TOKEN_LEN {
            return Err(BridgeError::Config(format!(
                "a token must be 1 to {MAX_TOKEN_LEN} bytes, not {}",
                secret.len()
            )));
        }
        Ok(Token(secret))
    }

    /// Reads a token file; trailing whitespace (the final newline editors add) is not part of
    /// the token.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Token, BridgeError> {
        let path = path.as_ref();
        let bad = |reason: String| BridgeError::TokenFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        while bytes.last().is_some_and(u8::is_ascii_whitespace) {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(bad("the file is empty".into()));
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(bad(format!(
                "the token is {} bytes; at most {MAX_TOKEN_LEN} are allowed",
                bytes.len()
            )));
        }
        Ok(Token(bytes))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// How a listening bridge accepts peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// Where to listen; at least one.
    pub endpoints: Vec<Endpoint>,
    /// Mode of created Unix sockets (default [`DEFAULT_SOCKET_MODE`], 0600). The socket is
    /// created in a private directory, given this mode and only then moved to its path, so no
    /// other user can connect in between.
    pub socket_mode: u32,
    /// Allow TCP addresses outside 127.0.0.0/8 and ::1 (default false).
    pub allow_remote: bool,
    /// If set, peers must present the same token in their hello.
    pub token: Option<Token>,
    /// Per-connection limits.
    pub limits: Limits,
    /// Peers served at once (default 64); more are refused with a "busy" reason.
    pub max_connections: usize,
    /// Name sent to peers and used in logs.
    pub name: String,
}

impl ListenConfig {
    /// Listens on `endpoints` with every other setting at its default.
    pub fn new(endpoints: impl IntoIterator<Item = Endpoint>) -> ListenConfig {
        ListenConfig {
            endpoints: endpoints.into_iter().collect(),
            socket_mode: DEFAULT_SOCKET_MODE,
            allow_remote: false,
            token: None,
            limits: Limits::default(),
            max_connections: 64,
            name: default_name(),
        }
    }

    /// Requires peers to present `token`.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        if self.endpoints.is_empty() {
            return Err(BridgeError::NoEndpoints);
        }
        if self.socket_mode > 0o777 {
            return Err(BridgeError::Config(format!(
                "socket_mode {:o} is not a permission mode (0000 to 0777)",
                self.socket_mode
            )));
        }
        if self.max_connections == 0 {
            return Err(BridgeError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        self.limits.validate()
    }
}

/// Delay between connection attempts: starts at `min`, doubles after each failure up to
/// `max`, and goes back to `min` once a connection has been established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay (default 100 ms).
    pub min: Duration,
    /// Largest delay (default 5 s).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The delay after `delay`.
    pub(crate) fn next(&self, delay: Duration) -> Duration {
        delay.saturating_mul(2).clamp(self.min, self.max)
    }
}

/// How a connecting bridge reaches its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// The listening bridge to connect to.
    pub endpoint: Endpoint,
    /// Token to present, if the listener requires one.
    pub token: Option<Token>,
    /// Delay between attempts.
    pub backoff: Backoff,
    /// Per-connection limits.
    pub limits: Limits,
    /// Keep retrying after the peer refused the handshake (schema, token or version
    /// mismatch). Off by default: such a refusal needs a human, so the connector stops and
    /// `join` returns the reason.
    pub retry_refused: bool,
    /// Name sent to the peer and used in logs.
    pub name: String,
}

impl ConnectConfig {
    /// Connects to `endpoint` with every other setting at its default.
    pub fn new(endpoint: Endpoint) -> ConnectConfig {
        ConnectConfig {
            endpoint,
            token: None,
            backoff: Backoff::default(),
            limits: Limits::default(),
            retry_refused: false,
            name: default_name(),
        }
    }

    /// Presents `token` in the handshake.
    pub fn with_token(mut self, token: Token) -> Self {
        self.token = Some(token);
        self
    }

    /// Replaces the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the reconnect backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BridgeError> {
        if self.backoff.min.is_zero() || self.backoff.min > self.backoff.max {
            return Err(BridgeError::Config(format!(
                "backoff min {:?} must be above zero and at most max {:?}",
                self.backoff.min, self.backoff.max
            )));
        }
        self.limits.validate()
    }
}

fn default_name() -> String {
    format!("pid-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_the_field() {
        Limits::default().validate().unwrap();
        let cases = [
            (
                Limits {
                    max_frame: 0,
                    ..Limits::default()
                },
                "max_frame",
            ),
            (
                Limits {
                    max_frame: MAX_PAYLOAD + 1,
                    ..Limits::default()
                },
                "max_frame",
            ),
            (
                Limits {
                    queue_capacity: 0,
                    ..Limits::default()
                },
                "queue_capacity",
            ),
            (
                Limits {
                    idle_timeout: Duration::ZERO,
                    ..Limits::default()
                },
                "idle_timeout",
            ),
        ];
        for (limits, field) in cases {
            let message = limits.validate().unwrap_err().to_string();
            assert!(message.contains(field), "{message}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let backoff = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(350),
        };
        let mut delay = backoff.min;
        let mut seen = Vec::new();
        for _ in 0..4 {
            delay = backoff.next(delay);
            seen.push(delay.as_millis());
        }
        assert_eq!(seen, [200, 350, 350, 350]);
    }

    #[test]
    fn token_files_lose_the_trailing_newline_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let token = Token::from_file(&path).unwrap();
        assert_eq!(token.as_bytes(), b"s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));

        std::fs::write(&path, " \n").unwrap();
        let message = Token::from_file(&path).unwrap_err().to_string();
        assert!(message.contains("empty"), "{message}");
        let missing = Token::from_file(dir.path().join("none")).unwrap_err();
        assert!(missing.to_string().contains("none"), "{missing}");
        assert!(Token::new(Vec::new()).is_err());
    }

    #[test]
    fn listen_config_needs_an_endpoint_and_a_sane_mode() {
        assert!(matches!(
            ListenConfig::new([]).validate(),
            Err(BridgeError::NoEndpoints)
        ));
        let mut config = ListenConfig::new([Endpoint::unix("/tmp/x")]);
        config.socket_mode = 0o1777;
        assert!(config.validate().is_err());
    }
}
