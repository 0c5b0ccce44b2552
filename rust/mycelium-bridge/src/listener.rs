//! The listening side: accept loops, the connection limit, the server handshake.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

use crate::config::{ListenConfig, Token};
use crate::control::{Control, RefusalKind};
use crate::endpoint::Endpoint;
use crate::error::BridgeError;
use crate::framing::{FrameReader, FrameWriter};
use crate::handle::raised;
use crate::handshake::{self, Identity};
use crate::session::{self, Shared};
use crate::socket::{self, Bound, ReadHalf, WriteHalf};

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

struct Server {
    shared: Arc<Shared>,
    identity: Identity,
    token: Option<Token>,
    max_connections: usize,
    /// Connections being served, handshakes included.
    connections: AtomicUsize,
}

/// Binds every endpoint (all or nothing) and starts accepting.
pub(crate) async fn start(
    shared: Arc<Shared>,
    identity: Identity,
    config: ListenConfig,
) -> Result<(Vec<Endpoint>, JoinHandle<Result<(), BridgeError>>), BridgeError> {
    let mut bound = Vec::with_capacity(config.endpoints.len());
    for endpoint in &config.endpoints {
        bound.push(socket::bind(endpoint, config.socket_mode, config.allow_remote).await?);
    }
    let endpoints = bound
        .iter()
        .zip(&config.endpoints)
        .map(|(b, configured)| b.endpoint().unwrap_or_else(|_| configured.clone()))
        .collect();
    let server = Arc::new(Server {
        identity,
        shared,
        token: config.token,
        max_connections: config.max_connections,
        connections: AtomicUsize::new(0),
    });
    let task = tokio::spawn(async move {
        let loops: Vec<_> = bound
            .into_iter()
            .map(|b| tokio::spawn(accept_loop(Arc::clone(&server), b)))
            .collect();
        for accept in loops {
            let _ = accept.await;
        }
        server.shared.stats.stopped();
        Ok(())
    });
    Ok((endpoints, task))
}

async fn accept_loop(server: Arc<Server>, bound: Bound) {
    let mut shutdown = server.shared.shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = raised(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = bound.accept() => match accepted {
                Ok((reader, writer, label)) => {
                    connections.spawn(serve(Arc::clone(&server), reader, writer, label));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bridge accept failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
        }
    }
    // Stop accepting (and remove the socket file) before waiting for the sessions to end.
    drop(bound);
    while connections.join_next().await.is_some() {}
}

/// Handshake, then the session, for one accepted connection.
async fn serve(server: Arc<Server>, reader: ReadHalf, writer: WriteHalf, label: String) {
    let shared = &server.shared;
    let mut reader = FrameReader::new(reader);
    let mut writer = FrameWriter::new(writer);
    let count = server.connections.fetch_add(1, Ordering::AcqRel) + 1;
    let _slot = Slot(&server.connections);
    if count > server.max_connections {
        let reason = format!(
            "this bridge already serves its maximum of {} connections",
            server.max_connections
        );
        let refusal = Control::Refuse {
            kind: RefusalKind::Busy,
            reason: reason.clone(),
            canonical: String::new(),
        };
        if let Ok((type_id, payload)) = refusal.encode() {
            let _ = timeout(shared.limits.write_timeout, async {
                writer.write_frame(type_id, &payload).await?;
                writer.flush().await
            })
            .await;
        }
        tracing::warn!(peer = %label, reason = %reason, "bridge connection refused");
        shared.stats.reject(label, reason);
        return;
    }
    let limit = shared.limits.handshake_timeout;
    let handshake = timeout(
        limit,
        handshake::server(
            &mut reader,
            &mut writer,
            &server.identity,
            server.token.as_ref(),
        ),
    );
    let mut shutdown = shared.shutdown.clone();
    let outcome = tokio::select! {
        outcome = handshake => outcome,
        _ = raised(&mut shutdown) => return,
    };
    let reason = match outcome {
        Ok(Ok(name)) => {
            session::run(
                Arc::clone(shared),
                reader,
                writer,
                format!("{name} ({label})"),
            )
            .await;
            return;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no complete handshake within {limit:?} (handshake timeout)"),
    };
    tracing::warn!(peer = %label, reason = %reason, "bridge connection rejected");
    shared.stats.reject(label, reason);
}

/// Frees a connection slot when the connection's task ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
