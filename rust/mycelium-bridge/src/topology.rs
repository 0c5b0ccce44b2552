//! The topology file: one process's bridges in a few lines of YAML, read by
//! `mycelium bridge --config FILE` and usable from Rust ([`Topology::from_path`],
//! [`Topology::start`]). Relative paths in it are relative to the file. The format is
//! documented in `docs/bridges.md`; `examples/bridge/topology.yaml` is a commented example.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mycelium_protocol::Schema;
use mycelium_transport::{MessageBus, OverflowPolicy};
use serde::Deserialize;

use crate::config::{Backoff, ConnectConfig, Limits, ListenConfig, Token, DEFAULT_SOCKET_MODE};
use crate::endpoint::Endpoint;
use crate::error::BridgeError;
use crate::handle::{Bridge, BridgeHandle};

/// Everything a topology file says, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The schema file, if the topology names one.
    pub schema: Option<PathBuf>,
    /// Name sent to peers (default: `pid-<pid>`).
    pub name: Option<String>,
    /// Endpoints to listen on.
    pub listen: Vec<Endpoint>,
    /// Endpoints to connect to, one connector each.
    pub connect: Vec<Endpoint>,
    /// File holding the shared-secret token, for listening and connecting alike.
    pub token_file: Option<PathBuf>,
    /// Mode of created Unix sockets.
    pub socket_mode: u32,
    /// Allow non-loopback TCP listen addresses.
    pub allow_remote: bool,
    /// Peers served at once by the listener.
    pub max_connections: usize,
    /// Reconnect delays of the connectors.
    pub backoff: Backoff,
    /// Whether connectors retry after a refused handshake.
    pub retry_refused: bool,
    /// Per-connection limits and timeouts.
    pub limits: Limits,
    /// NATS joins (`nats:`). This crate only reads them: `mycelium bridge` (the mycelium CLI,
    /// which has the NATS client) makes them; plain `mycelium-bridge` refuses a file with any.
    pub nats: Vec<NatsJoinSpec>,
}

/// One NATS join of a topology file. Secrets come from files, never from the file itself;
/// relative paths are relative to the topology file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsJoinSpec {
    /// Server address, options after `?` as for `--nats` (docs/distributed.md).
    pub url: String,
    /// File holding the server's auth token.
    pub token_file: Option<PathBuf>,
    /// User name, with `password_file`.
    pub user: Option<String>,
    /// File holding the user's password.
    pub password_file: Option<PathBuf>,
    /// File holding an nkey seed.
    pub nkey_seed_file: Option<PathBuf>,
    /// PEM file of the certificate authorities to trust (requires TLS).
    pub ca: Option<PathBuf>,
    /// PEM client certificate, with `key`.
    pub cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    pub key: Option<PathBuf>,
    /// First subject token(s) (default mycelium).
    pub prefix: Option<String>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology {
            schema: None,
            name: None,
            listen: Vec::new(),
            connect: Vec::new(),
            token_file: None,
            socket_mode: DEFAULT_SOCKET_MODE,
            allow_remote: false,
            max_connections: 64,
            backoff: Backoff::default(),
            retry_refused: false,
            limits: Limits::default(),
            nats: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFile {
    schema: Option<PathBuf>,
    name: Option<String>,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    connect: Vec<String>,
    token_file: Option<PathBuf>,
    socket_mode: Option<String>,
    allow_remote: Option<bool>,
    max_connections: Option<usize>,
    backoff: Option<BackoffFile>,
    retry_refused: Option<bool>,
    limits: Option<LimitsFile>,
    #[serde(default)]
    nats: Vec<NatsJoinSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackoffFile {
    min_ms: Option<u64>,
    max_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_frame: Option<usize>,
    queue_capacity: Option<usize>,
    overflow: Option<String>,
    handshake_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
}

/// Parses an overflow policy name (`block`, `drop_oldest` or `fail`; see
/// [`OverflowPolicy::from_name`]). An old spelling such as `fail_publish` still works, with a
/// warning on standard error: this runs while flags and topology files are read, before any
/// log subscriber exists.
pub fn parse_overflow(text: &str) -> Result<OverflowPolicy, String> {
    let (policy, note) = OverflowPolicy::from_name(text)?;
    if let Some(note) = note {
        eprintln!("warning: {note}");
    }
    Ok(policy)
}

/// Parses an octal permission mode such as `0600`, `600` or `0o660`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "'{text}' is not an octal permission mode such as 0600 or 0660"
        )),
    }
}

impl Topology {
    /// Reads and checks a topology file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Topology, BridgeError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| BridgeError::Topology {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Topology::from_yaml_str(&text, base).map_err(|reason| BridgeError::Topology {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses topology YAML; relative paths are resolved against `base`.
    pub fn from_yaml_str(text: &str, base: &Path) -> Result<Topology, String> {
        let file: TopologyFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let defaults = Topology::default();
        let endpoints = |list: Vec<String>, key: &str| -> Result<Vec<Endpoint>, String> {
            list.iter()
                .map(|text| text.parse().map_err(|e| format!("{key}: {e}")))
                .map(|r| {
                    r.map(|endpoint| match endpoint {
                        Endpoint::Unix(p) if p.is_relative() => Endpoint::Unix(base.join(p)),
                        other => other,
                    })
                })
                .collect()
        };
        let backoff = match file.backoff {
            Some(b) => Backoff {
                min: b.min_ms.map_or(defaults.backoff.min, Duration::from_millis),
                max: b.max_ms.map_or(defaults.backoff.max, Duration::from_millis),
            },
            None => defaults.backoff,
        };
        let limits = match file.limits {
            Some(l) => {
                let d = Limits::default();
                Limits {
                    max_frame: l.max_frame.unwrap_or(d.max_frame),
                    queue_capacity: l.queue_capacity.unwrap_or(d.queue_capacity),
                    overflow: match l.overflow {
                        Some(text) => {
                            parse_overflow(&text).map_err(|e| format!("limits.overflow: {e}"))?
                        }
                        None => d.overflow,
                    },
                    handshake_timeout: l
                        .handshake_timeout_ms
                        .map_or(d.handshake_timeout, Duration::from_millis),
                    idle_timeout: l
                        .idle_timeout_ms
                        .map_or(d.idle_timeout, Duration::from_millis),
                    write_timeout: l
                        .write_timeout_ms
                        .map_or(d.write_timeout, Duration::from_millis),
                }
            }
            None => defaults.limits.clone(),
        };
        limits.validate().map_err(|e| e.to_string())?;
        let topology = Topology {
            schema: file.schema.map(|p| base.join(p)),
            name: file.name,
            listen: endpoints(file.listen, "listen")?,
            connect: endpoints(file.connect, "connect")?,
            token_file: file.token_file.map(|p| base.join(p)),
            socket_mode: match file.socket_mode {
                Some(text) => parse_mode(&text).map_err(|e| format!("socket_mode: {e}"))?,
                None => defaults.socket_mode,
            },
            allow_remote: file.allow_remote.unwrap_or(defaults.allow_remote),
            max_connections: file.max_connections.unwrap_or(defaults.max_connections),
            backoff,
            retry_refused: file.retry_refused.unwrap_or(defaults.retry_refused),
            limits,
            nats: file
                .nats
                .into_iter()
                .map(|spec| {
                    if spec.user.is_some() != spec.password_file.is_some() {
                        return Err(format!(
                            "nats {}: give user and password_file together",
                            spec.url
                        ));
                    }
                    if spec.cert.is_some() != spec.key.is_some() {
                        return Err(format!("nats {}: give cert and key together", spec.url));
                    }
                    let at = |p: Option<PathBuf>| p.map(|p| base.join(p));
                    Ok(NatsJoinSpec {
                        token_file: at(spec.token_file),
                        password_file: at(spec.password_file),
                        nkey_seed_file: at(spec.nkey_seed_file),
                        ca: at(spec.ca),
                        cert: at(spec.cert),
                        key: at(spec.key),
                        ..spec
                    })
                })
                .collect::<Result<_, String>>()?,
        };
        Ok(topology)
    }

    fn token(&self) -> Result<Option<Token>, BridgeError> {
        self.token_file.as_ref().map(Token::from_file).transpose()
    }

    /// The listener's configuration, if the topology listens anywhere.
    pub fn listen_config(&self) -> Result<Option<ListenConfig>, BridgeError> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let mut config =
            ListenConfig::new(self.listen.iter().cloned()).with_limits(self.limits.clone());
        config.token = self.token()?;
        config.socket_mode = self.socket_mode;
        config.allow_remote = self.allow_remote;
        config.max_connections = self.max_connections;
        if let Some(name) = &self.name {
            config.name = name.clone();
        }
        Ok(Some(config))
    }

    /// One configuration per `connect` endpoint.
    pub fn connect_configs(&self) -> Result<Vec<ConnectConfig>, BridgeError> {
        let token = self.token()?;
        Ok(self
            .connect
            .iter()
            .map(|endpoint| {
                let mut config = ConnectConfig::new(endpoint.clone())
                    .with_limits(self.limits.clone())
                    .with_backoff(self.backoff);
                config.token = token.clone();
                config.retry_refused = self.retry_refused;
                if let Some(name) = &self.name {
                    config.name = name.clone();
                }
                config
            })
            .collect())
    }

    /// Starts every bridge of the topology on `bus`: the listener first (if `listen` is not
    /// empty), then one connector per `connect` endpoint, in order. On an error the bridges
    /// already started are closed.
    pub async fn start(
        &self,
        bus: &MessageBus,
        schema: &Schema,
    ) -> Result<Vec<BridgeHandle>, BridgeError> {
        let mut handles = Vec::new();
        if let Some(config) = self.listen_config()? {
            handles.push(Bridge::listen(bus, schema, config).await?);
        }
        for config in self.connect_configs()? {
            handles.push(Bridge::connect(bus, schema, config).await?);
        }
        Ok(handles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_is_read_with_paths_relative_to_it() {
        let yaml = r#"
schema: ../contracts.yaml
name: gateway
listen: [unix:bus.sock, "tcp:127.0.0.1:7000"]
connect: ["tcp:127.0.0.1:7001"]
token_file: secret.token
socket_mode: "0660"
allow_remote: false
max_connections: 8
backoff: { min_ms: 50, max_ms: 800 }
retry_refused: true
limits:
  max_frame: 65536
  queue_capacity: 16
  overflow: drop_oldest
  handshake_timeout_ms: 1000
  idle_timeout_ms: 3000
  write_timeout_ms: 2000
"#;
        let t = Topology::from_yaml_str(yaml, Path::new("/etc/app")).unwrap();
        assert_eq!(
            t.schema.as_deref(),
            Some(Path::new("/etc/app/../contracts.yaml"))
        );
        assert_eq!(t.listen[0], Endpoint::unix("/etc/app/bus.sock"));
        assert_eq!(t.listen[1], Endpoint::tcp("127.0.0.1:7000").unwrap());
        assert_eq!(
            t.token_file.as_deref(),
            Some(Path::new("/etc/app/secret.token"))
        );
        assert_eq!(t.socket_mode, 0o660);
        assert_eq!(t.backoff.max, Duration::from_millis(800));
        assert_eq!(t.limits.overflow, OverflowPolicy::DropOldest);
        assert_eq!(t.limits.idle_timeout, Duration::from_secs(3));
        assert!(t.retry_refused);
        let connect = t.connect_configs().err();
        // The token file does not exist here; the error names it.
        assert!(connect.unwrap().to_string().contains("secret.token"));
    }

    #[test]
    fn an_empty_file_means_defaults() {
        let t = Topology::from_yaml_str("{}", Path::new(".")).unwrap();
        assert_eq!(t, Topology::default());
        assert!(t.listen_config().unwrap().is_none());
        assert!(t.connect_configs().unwrap().is_empty());
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("lisen: []", "unknown field `lisen`"),
            ("listen: [udp:1]", "listen: invalid bridge address"),
            ("socket_mode: \"0999\"", "socket_mode"),
            ("limits: { overflow: sometimes }", "limits.overflow"),
            ("limits: { queue_capacity: 0 }", "queue_capacity"),
            ("limits: { idle_timeout_ms: 1 }", "idle_timeout"),
            (
                "nats: [{ url: nats://h, user: u }]",
                "user and password_file together",
            ),
            (
                "nats: [{ url: nats://h, cert: c.pem }]",
                "cert and key together",
            ),
            (
                "nats: [{ url: nats://h, password: x }]",
                "unknown field `password`",
            ),
        ];
        for (yaml, expected) in cases {
            let error = Topology::from_yaml_str(yaml, Path::new(".")).unwrap_err();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }

    #[test]
    fn nats_joins_are_read_with_their_files_relative_to_the_topology() {
        let yaml = "nats:\n  - url: nats://10.0.0.5:4222?jetstream=S\n    nkey_seed_file: keys/me.nk\n    ca: ca.pem\n    prefix: prod\n  - url: nats://10.0.0.6:4222\n";
        let t = Topology::from_yaml_str(yaml, Path::new("/etc/myc")).unwrap();
        assert_eq!(t.nats.len(), 2);
        assert_eq!(t.nats[0].url, "nats://10.0.0.5:4222?jetstream=S");
        assert_eq!(
            t.nats[0].nkey_seed_file.as_deref(),
            Some(Path::new("/etc/myc/keys/me.nk"))
        );
        assert_eq!(t.nats[0].ca.as_deref(), Some(Path::new("/etc/myc/ca.pem")));
        assert_eq!(t.nats[0].prefix.as_deref(), Some("prod"));
        assert_eq!(t.nats[1].token_file, None);
    }

    #[test]
    fn modes_and_policies_parse() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o660"), Ok(0o660));
        assert!(parse_mode("rw-------").is_err());
        assert_eq!(parse_overflow("fail"), Ok(OverflowPolicy::FailPublish));
        assert_eq!(
            parse_overflow("fail_publish"),
            Ok(OverflowPolicy::FailPublish),
            "the old spelling still works"
        );
    }
}
