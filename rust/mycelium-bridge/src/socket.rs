//! Opening sockets: Unix sockets created with a chosen mode and no window in which another
//! user could connect, stale socket files replaced, TCP kept on loopback unless allowed, and
//! dialling either kind. Streams are handed on as boxed read and write halves.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::endpoint::Endpoint;
use crate::error::BridgeError;

pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A bound listening socket.
pub(crate) enum Bound {
    Unix(UnixListener, SocketFile),
    Tcp(TcpListener),
}

impl Bound {
    /// Accepts one connection; the label names the peer in logs and stats.
    pub(crate) async fn accept(&self) -> io::Result<(ReadHalf, WriteHalf, String)> {
        match self {
            Bound::Unix(listener, file) => {
                let (stream, _) = listener.accept().await?;
                let (r, w) = stream.into_split();
                let label = format!("unix:{} peer", file.path.display());
                Ok((Box::new(r), Box::new(w), label))
            }
            Bound::Tcp(listener) => {
                let (stream, addr) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let (r, w) = stream.into_split();
                Ok((Box::new(r), Box::new(w), format!("tcp:{addr}")))
            }
        }
    }

    /// The endpoint as bound: for TCP with the port the system chose.
    pub(crate) fn endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Bound::Unix(_, file) => Ok(Endpoint::Unix(file.path.clone())),
            Bound::Tcp(listener) => Ok(Endpoint::Tcp(listener.local_addr()?.to_string())),
        }
    }
}

/// The path of a Unix socket this process created; removed again on drop unless something
/// else has replaced it meanwhile.
pub(crate) struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

pub(crate) async fn bind(
    endpoint: &Endpoint,
    mode: u32,
    allow_remote: bool,
) -> Result<Bound, BridgeError> {
    let failed = |source: io::Error| BridgeError::Bind {
        endpoint: endpoint.to_string(),
        source,
    };
    match endpoint {
        Endpoint::Unix(path) => {
            let (listener, file) = bind_unix(endpoint, path, mode)?;
            listener.set_nonblocking(true).map_err(failed)?;
            let listener = UnixListener::from_std(listener).map_err(failed)?;
            Ok(Bound::Unix(listener, file))
        }
        Endpoint::Tcp(addr) => {
            let addrs: Vec<_> = tokio::net::lookup_host(addr.as_str())
                .await
                .map_err(failed)?
                .collect();
            let Some(first) = addrs.first().copied() else {
                return Err(failed(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the host name resolved to no address",
                )));
            };
            if !allow_remote {
                if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                    return Err(BridgeError::NotLoopback {
                        endpoint: endpoint.to_string(),
                        addr: *remote,
                    });
                }
            }
            let listener = TcpListener::bind(first).await.map_err(failed)?;
            Ok(Bound::Tcp(listener))
        }
    }
}

/// Distinguishes the private directories of several binds in one process.
static BIND_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Binds in a fresh 0700 directory next to `path`, sets the mode, then renames the socket
/// into place: the socket is never reachable at its final path with looser permissions.
fn bind_unix(
    endpoint: &Endpoint,
    path: &Path,
    mode: u32,
) -> Result<(std::os::unix::net::UnixListener, SocketFile), BridgeError> {
    let failed = |source: io::Error| BridgeError::Bind {
        endpoint: endpoint.to_string(),
        source,
    };
    remove_stale(endpoint, path)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let private = parent.join(format!(
        ".mycelium-bind-{}-{}",
        std::process::id(),
        BIND_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(failed)?;
    let temporary = private.join("s");
    let result = (|| {
        let listener = std::os::unix::net::UnixListener::bind(&temporary)?;
        fs::set_permissions(&temporary, fs::Permissions::from_mode(mode))?;
        fs::rename(&temporary, path)?;
        let meta = fs::symlink_metadata(path)?;
        Ok((listener, (meta.dev(), meta.ino())))
    })();
    let _ = fs::remove_file(&temporary);
    let _ = fs::remove_dir(&private);
    let (listener, identity) = result.map_err(failed)?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            identity,
        },
    ))
}

/// A socket file left by a process that died is removed; one a live process listens on is
/// an error, and so is anything that is not a socket (never delete a user's file).
fn remove_stale(endpoint: &Endpoint, path: &Path) -> Result<(), BridgeError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BridgeError::Bind {
                endpoint: endpoint.to_string(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BridgeError::Bind {
            endpoint: endpoint.to_string(),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket; remove it or choose another path",
            ),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BridgeError::InUse {
            endpoint: endpoint.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            fs::remove_file(path).map_err(|source| BridgeError::Bind {
                endpoint: endpoint.to_string(),
                source,
            })
        }
        Err(source) => Err(BridgeError::Bind {
            endpoint: endpoint.to_string(),
            source,
        }),
    }
}

/// Connects to a listening bridge.
pub(crate) async fn dial(endpoint: &Endpoint) -> io::Result<(ReadHalf, WriteHalf)> {
    match endpoint {
        Endpoint::Unix(path) => {
            let (r, w) = UnixStream::connect(path).await?.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Endpoint::Tcp(addr) => {
            let stream = TcpStream::connect(addr.as_str()).await?;
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unix_sockets_get_the_mode_and_leave_no_private_directory() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o660] {
            let path = dir.path().join(format!("bus-{mode:o}.sock"));
            let endpoint = Endpoint::unix(&path);
            let bound = bind(&endpoint, mode, false).await.unwrap();
            let meta = fs::symlink_metadata(&path).unwrap();
            assert!(meta.file_type().is_socket());
            assert_eq!(meta.permissions().mode() & 0o777, mode);
            assert_eq!(bound.endpoint().unwrap(), endpoint);
            // Still reachable after the rename.
            dial(&endpoint).await.unwrap();
            drop(bound);
            assert!(!path.exists(), "the socket file is removed on close");
        }
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn stale_sockets_are_replaced_live_ones_and_plain_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.sock");
        let endpoint = Endpoint::unix(&path);
        // A socket whose listener is gone, as after a crash.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let live = bind(&endpoint, 0o600, false).await.unwrap();
        assert!(matches!(
            bind(&endpoint, 0o600, false).await,
            Err(BridgeError::InUse { .. })
        ));
        drop(live);

        fs::write(&path, "precious").unwrap();
        let err = bind(&endpoint, 0o600, false).await.err().unwrap();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
    }

    #[tokio::test]
    async fn tcp_stays_on_loopback_unless_allowed() {
        let bound = bind(&Endpoint::tcp("127.0.0.1:0").unwrap(), 0o600, false)
            .await
            .unwrap();
        let Endpoint::Tcp(actual) = bound.endpoint().unwrap() else {
            panic!("a TCP endpoint");
        };
        assert!(!actual.ends_with(":0"), "{actual}");

        let err = bind(&Endpoint::tcp("0.0.0.0:0").unwrap(), 0o600, false)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, BridgeError::NotLoopback { .. }), "{err}");
        assert!(err.to_string().contains("allow_remote"), "{err}");
    }
}
