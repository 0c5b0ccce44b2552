//! [`Bridge`]: starting a listener or a connector, and the [`BridgeHandle`] that controls it.

use std::sync::Arc;

use mycelium_protocol::Schema;
use mycelium_transport::MessageBus;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ConnectConfig, ListenConfig};
use crate::endpoint::Endpoint;
use crate::error::BridgeError;
use crate::handshake::Identity;
use crate::session::Shared;
use crate::stats::{BridgeStats, Stats};
use crate::{connector, listener};

/// Entry points: connect a [`MessageBus`] to other processes' buses.
///
/// Both must be called inside a tokio runtime; the bridge's tasks run on it. Both also give
/// the schema's message names to the bus's metrics for types that have no name yet.
#[derive(Debug)]
pub struct Bridge;

impl Bridge {
    /// Listens on every endpoint of `config` and serves each peer that completes the
    /// handshake (same protocol version, same token if one is configured, same schema
    /// digest). Fails without listening anywhere if any endpoint cannot be bound.
    pub async fn listen(
        bus: &MessageBus,
        schema: &Schema,
        config: ListenConfig,
    ) -> Result<BridgeHandle, BridgeError> {
        config.validate()?;
        tokio::runtime::Handle::try_current().map_err(|_| BridgeError::NoRuntime)?;
        let (shutdown, stop) = watch::channel(false);
        let shared = Shared::new(bus, schema, config.limits.clone(), stop);
        let identity = Identity::new(&config.name, schema);
        let stats = Arc::clone(&shared.stats);
        let (endpoints, task) = listener::start(shared, identity, config).await?;
        Ok(BridgeHandle {
            endpoints,
            stats,
            shutdown,
            task: Some(task),
        })
    }

    /// Connects to a listening bridge in the background and keeps reconnecting with
    /// backoff until closed. Returns at once; use [`BridgeHandle::wait_for_sessions`] to wait
    /// for the connection. A refused handshake stops it unless `retry_refused` is set; the
    /// reason is in [`BridgeHandle::join`]'s error and in the stats.
    pub async fn connect(
        bus: &MessageBus,
        schema: &Schema,
        config: ConnectConfig,
    ) -> Result<BridgeHandle, BridgeError> {
        config.validate()?;
        tokio::runtime::Handle::try_current().map_err(|_| BridgeError::NoRuntime)?;
        let (shutdown, stop) = watch::channel(false);
        let shared = Shared::new(bus, schema, config.limits.clone(), stop);
        let identity = Identity::new(&config.name, schema);
        let stats = Arc::clone(&shared.stats);
        let endpoints = vec![config.endpoint.clone()];
        let task = connector::start(shared, identity, config);
        Ok(BridgeHandle {
            endpoints,
            stats,
            shutdown,
            task: Some(task),
        })
    }
}

/// Completes once `flag` is set (or its sender is gone). Holds no borrow of the value
/// across an await, so futures using it stay `Send`.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// Controls a running bridge. Dropping it closes the bridge (as [`close`](Self::close)).
#[derive(Debug)]
pub struct BridgeHandle {
    endpoints: Vec<Endpoint>,
    stats: Arc<Stats>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), BridgeError>>>,
}

impl BridgeHandle {
    /// For a listener, the endpoints as bound (a TCP port 0 replaced by the real port); for
    /// a connector, the endpoint it connects to.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// A snapshot of the counters and the recent rejections and closes.
    pub fn stats(&self) -> BridgeStats {
        self.stats.snapshot()
    }

    /// Starts a graceful shutdown: stop accepting or reconnecting, send every peer what is
    /// already queued for it and a bye frame, close, and remove created Unix socket files.
    /// Returns at once; [`join`](Self::join) waits for the end. Idempotent.
    pub fn close(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether the bridge has stopped (closed, or a connector stopped by a refusal).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until at least `count` sessions are open at once. Returns false if the bridge
    /// stopped first ([`join`](Self::join) tells why).
    pub async fn wait_for_sessions(&self, count: u64) -> bool {
        let mut state = self.stats.state.subscribe();
        let reached = state
            .wait_for(|s| s.active >= count || s.stopped)
            .await
            .map(|s| s.active >= count);
        reached.unwrap_or(false)
    }

    /// Waits until the bridge has stopped, without consuming the handle.
    pub async fn wait_stopped(&self) {
        let mut state = self.stats.state.subscribe();
        let _ = state.wait_for(|s| s.stopped).await;
    }

    /// Waits for the bridge to stop and returns why: `Ok` after [`close`](Self::close) (or
    /// when the bus closed), the refusal for a connector whose peer refused it. Does not
    /// close the bridge itself.
    pub async fn join(mut self) -> Result<(), BridgeError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match task.await {
            Ok(result) => result,
            Err(e) => Err(BridgeError::Task(e.to_string())),
        }
    }

    /// [`close`](Self::close), then [`join`](Self::join).
    pub async fn close_and_join(self) -> Result<(), BridgeError> {
        self.close();
        self.join().await
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        self.close();
    }
}
