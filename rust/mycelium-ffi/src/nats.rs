//! NATS joins from the C ABI: `mycelium_bridge_connect` with a `nats://` (or `tls://`) address
//! joins the handle's bus to a NATS deployment through `mycelium-nats` instead of dialling a
//! socket bridge, so Python, OCaml and C code reach NATS with the calls they already use for
//! bridges. The join shares the bridge id space, `mycelium_bridge_wait`, `_stats_json`,
//! `_close` and the Prometheus output.
//!
//! What differs from a socket connector (documented in the header and docs/distributed.md):
//! the first connection is made before `connect` returns (a server that is down is an error
//! at once, not a background retry); `token` is the server's auth token; `max_frame` does not
//! apply (the server's `max_payload` does); a waiter is released once the client is connected
//! *and* the server knows every subscription the bus had when the wait began.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mycelium_nats::{redact_url, NatsBridge, NatsConfig, NatsError};

use crate::bridge::mycelium_bridge_options;
use crate::runtime::{live, Core, Handle};
use crate::status::{mycelium_status::*, FfiError, FfiResult};

/// Schemes that name a NATS server rather than a socket bridge peer. A comma-separated list
/// of servers (a cluster) starts with one of them too.
const SCHEMES: [&str; 3] = ["nats://", "tls://", "ws://"];

/// True when `address` names a NATS server.
pub(crate) fn is_nats(address: &str) -> bool {
    SCHEMES.iter().any(|s| address.starts_with(s))
}

fn nats_error(e: NatsError) -> FfiError {
    let status = match &e {
        NatsError::Config(_) => MYCELIUM_ERR_INVALID_ARGUMENT,
        _ => MYCELIUM_ERR_BRIDGE,
    };
    FfiError::new(status, e.to_string())
}

fn io_runtime(core: &Core) -> FfiResult<&tokio::runtime::Runtime> {
    core.io_runtime().map_err(|e| {
        FfiError::new(
            MYCELIUM_ERR_BRIDGE,
            format!("cannot start the NATS I/O thread: {e}"),
        )
    })
}

pub(crate) fn connect(
    rt: *const crate::mycelium_runtime_t,
    address: &str,
    opts: Option<&mycelium_bridge_options>,
) -> FfiResult<u64> {
    let h = live(rt)?;
    let o = opts.copied().unwrap_or_default();
    let mut config = NatsConfig::from_url(address).map_err(nats_error)?;
    if !o.token.is_null() {
        // SAFETY: a non-NULL token is a NUL-terminated string valid for the call (C contract).
        let token = unsafe { std::ffi::CStr::from_ptr(o.token) };
        let token = token.to_str().map_err(|_| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "the NATS token must be UTF-8 text",
            )
        })?;
        config = config.with_token(token);
    }
    let io = io_runtime(&h.core)?;
    let join = io
        .block_on(NatsBridge::connect(&h.core.bus, &h.core.schema, config))
        .map_err(nats_error)?;
    let id = h.core.next_id();
    h.nats
        .lock()
        .insert(id, Arc::new(Joined::new(address, join)));
    Ok(id)
}

/// One NATS join of a handle, with the URL it was made to (credentials removed) for stats
/// and metric labels.
pub(crate) struct Joined {
    url: String,
    join: NatsBridge,
}

impl Joined {
    fn new(address: &str, join: NatsBridge) -> Joined {
        Joined {
            url: redact_url(address),
            join,
        }
    }
}

/// The NATS join `id` of `h`, if there is one.
pub(crate) fn find(h: &Handle, id: u64) -> Option<Arc<Joined>> {
    h.nats.lock().get(&id).cloned()
}

/// `mycelium_bridge_wait` for a NATS join: `sessions` 0 returns at once; otherwise waits
/// until [`NatsBridge::is_ready`].
pub(crate) fn wait(
    h: &Handle,
    id: u64,
    joined: &Joined,
    sessions: u64,
    timeout_ms: u32,
) -> FfiResult {
    if sessions == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
    loop {
        if joined.join.is_ready() {
            return Ok(());
        }
        if !h.nats.lock().contains_key(&id) {
            return Err(FfiError::new(
                MYCELIUM_ERR_BRIDGE,
                format!("NATS join {id} was closed while waiting"),
            ));
        }
        if Instant::now() >= deadline {
            let state = if joined.join.is_connected() {
                "connected, but the server does not yet have every subscription of this bus"
            } else {
                "not connected to the server (the client reconnects with backoff)"
            };
            return Err(FfiError::new(
                MYCELIUM_ERR_TIMEOUT,
                format!(
                    "NATS join {id} to {} not ready after {timeout_ms} ms: {state}",
                    joined.url
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A join as `mycelium_bridge_stats_json` and the metrics JSON's `connections` show it.
pub(crate) fn doc(joined: &Joined) -> serde_json::Value {
    serde_json::json!({
        "endpoints": [joined.url],
        "kind": "nats",
        "connected": joined.join.is_connected(),
        "stats": joined.join.stats().snapshot(),
        // Why peers' messages were refused, fields named (`NatsBridge::schema_mismatches`).
        "schema_mismatches": joined.join.schema_mismatches(),
    })
}

/// Every join of the handle as (id, `doc`).
pub(crate) fn docs(h: &Handle) -> Vec<(u64, serde_json::Value)> {
    let joins: Vec<(u64, Arc<Joined>)> = h
        .nats
        .lock()
        .iter()
        .map(|(id, j)| (*id, Arc::clone(j)))
        .collect();
    joins.into_iter().map(|(id, j)| (id, doc(&j))).collect()
}

/// Closes a join: stops forwarding both ways and drains the connection (bounded by the
/// client's drain). Waits for a concurrent `wait` to let go of its reference first.
pub(crate) fn close_and_join(io: &tokio::runtime::Runtime, joined: Arc<Joined>) {
    let mut joined = joined;
    let owned = loop {
        match Arc::try_unwrap(joined) {
            Ok(owned) => break owned,
            Err(shared) => {
                joined = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    io.block_on(owned.join.close());
}

pub(crate) fn close(h: &Handle, id: u64) -> FfiResult<bool> {
    let Some(joined) = h.nats.lock().remove(&id) else {
        return Ok(false);
    };
    close_and_join(io_runtime(&h.core)?, joined);
    Ok(true)
}

/// The counters of the handle's NATS joins in the Prometheus text format.
pub(crate) fn prometheus(h: &Handle) -> String {
    let mut joins: Vec<(u64, String, mycelium_nats::NatsSnapshot)> = h
        .nats
        .lock()
        .iter()
        .map(|(id, j)| (*id, j.url.clone(), j.join.stats().snapshot()))
        .collect();
    joins.sort_by_key(|(id, _, _)| *id);
    let named: Vec<(String, mycelium_nats::NatsSnapshot)> =
        joins.into_iter().map(|(_, url, s)| (url, s)).collect();
    mycelium_nats::nats_prometheus(&named)
}
