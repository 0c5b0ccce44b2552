//! Errors of the bridge API. Each message says what to change.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::control::RefusalKind;

/// Why a bridge could not start, or why it stopped.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// An address that is neither `unix:PATH` nor `tcp:HOST:PORT`.
    #[error("invalid bridge address '{input}': {reason} (expected unix:/path/to/socket or tcp:host:port)")]
    BadEndpoint {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A limit, timeout or option is out of range.
    #[error("invalid bridge configuration: {0}")]
    Config(String),
    /// A listen configuration without any address.
    #[error("nothing to listen on: give at least one unix:PATH or tcp:HOST:PORT address")]
    NoEndpoints,
    /// The token file could not be read or is empty.
    #[error("cannot use the token file {}: {reason}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A TCP listen address outside the loopback range without `allow_remote`.
    #[error(
        "refusing to listen on {addr} ({endpoint}): it is not a loopback address; set \
         allow_remote (--allow-remote) to expose the bus to the network, preferably with a token"
    )]
    NotLoopback {
        /// The endpoint as configured.
        endpoint: String,
        /// The address it resolved to.
        addr: SocketAddr,
    },
    /// Binding or preparing a listening socket failed.
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        /// The endpoint.
        endpoint: String,
        /// The system's error.
        source: io::Error,
    },
    /// A live bridge already listens on this Unix socket path.
    #[error(
        "cannot listen on {endpoint}: another process is already listening there (stop it, or \
         choose another path)"
    )]
    InUse {
        /// The endpoint.
        endpoint: String,
    },
    /// The peer refused the handshake; with `retry_refused` off this stops the connector.
    #[error("{endpoint} refused this bridge ({kind}): {reason}")]
    Refused {
        /// The endpoint connected to.
        endpoint: String,
        /// The category of refusal.
        kind: RefusalKind,
        /// The full explanation (for a schema mismatch: the messages that differ).
        reason: String,
    },
    /// `listen`/`connect` was called outside a tokio runtime.
    #[error(
        "no tokio runtime is running on this thread; call Bridge::listen/connect from inside a \
         tokio runtime"
    )]
    NoRuntime,
    /// A topology file could not be read or is invalid.
    #[error("topology {}: {reason}", path.display())]
    Topology {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key where known.
        reason: String,
    },
    /// A bridge task panicked or was cancelled (a bug; the message says which).
    #[error("the bridge task ended abnormally: {0}")]
    Task(String),
}
