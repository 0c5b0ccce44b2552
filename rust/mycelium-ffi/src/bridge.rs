//! Socket bridges from the C ABI: `mycelium_bridge_options` and the listen/connect/wait/close
//! functions, so a Python, OCaml or C process can join a Rust service's bus through a Unix or
//! TCP socket with the same publish/subscribe code it uses in-process.
//!
//! Bridges run on a small tokio runtime the handle's core starts on first use (one I/O thread,
//! `mycelium-io`); nothing else in the C ABI needs one.

use std::ffi::{c_char, CStr};
use std::sync::Arc;
use std::time::Duration;

use mycelium_bridge::{
    Bridge, BridgeError, BridgeHandle, ConnectConfig, Endpoint, ListenConfig, Token,
};

use crate::runtime::{live, Core};
use crate::sized::SizedOptions;
use crate::status::{mycelium_status::*, FfiError, FfiResult};

/// Options for `mycelium_bridge_listen` and `mycelium_bridge_connect`. Initialise with
/// `mycelium_bridge_options_init`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct mycelium_bridge_options {
    /// `sizeof(mycelium_bridge_options)` as the caller was compiled with.
    pub struct_size: u32,
    /// Listen only: mode of a created Unix socket; 0 means the default 0600.
    pub socket_mode: u32,
    /// Listen only: 1 allows TCP addresses outside loopback (default 0: refused).
    pub allow_remote: u32,
    /// Largest frame accepted from a peer, bytes; 0 means the default (the maximum payload).
    pub max_frame: u32,
    /// Optional shared secret both sides must present (NUL-terminated); NULL for none.
    pub token: *const c_char,
}

// SAFETY: `#[repr(C)]`, `struct_size: u32` first; every field is an integer or a raw pointer,
// for which any bit pattern is valid.
unsafe impl SizedOptions for mycelium_bridge_options {
    /// Unchanged since ABI 1.0.
    const MIN_SIZE: usize = std::mem::size_of::<mycelium_bridge_options>();
    const NAME: &'static str = "mycelium_bridge_options";
    const INIT: &'static str = "mycelium_bridge_options_init";
}

impl Default for mycelium_bridge_options {
    fn default() -> Self {
        mycelium_bridge_options {
            struct_size: std::mem::size_of::<mycelium_bridge_options>() as u32,
            socket_mode: 0,
            allow_remote: 0,
            max_frame: 0,
            token: std::ptr::null(),
        }
    }
}

fn bridge_error(e: BridgeError) -> FfiError {
    let status = match &e {
        BridgeError::BadEndpoint { .. }
        | BridgeError::Config(_)
        | BridgeError::NoEndpoints
        | BridgeError::NotLoopback { .. } => MYCELIUM_ERR_INVALID_ARGUMENT,
        _ => MYCELIUM_ERR_BRIDGE,
    };
    FfiError::new(status, e.to_string())
}

struct Resolved {
    token: Option<Token>,
    socket_mode: Option<u32>,
    allow_remote: bool,
    max_frame: Option<usize>,
}

fn resolve(opts: Option<&mycelium_bridge_options>) -> FfiResult<Resolved> {
    let o = opts.copied().unwrap_or_default();
    let token = if o.token.is_null() {
        None
    } else {
        // SAFETY: a non-NULL token is a NUL-terminated string valid for the call (C contract).
        let bytes = unsafe { CStr::from_ptr(o.token) }.to_bytes();
        Some(Token::new(bytes.to_vec()).map_err(bridge_error)?)
    };
    Ok(Resolved {
        token,
        socket_mode: (o.socket_mode != 0).then_some(o.socket_mode),
        allow_remote: o.allow_remote != 0,
        max_frame: (o.max_frame != 0).then_some(o.max_frame as usize),
    })
}

fn endpoint(address: &str) -> FfiResult<Endpoint> {
    address.parse::<Endpoint>().map_err(bridge_error)
}

fn io_runtime(core: &Core) -> FfiResult<&tokio::runtime::Runtime> {
    core.io_runtime().map_err(|e| {
        FfiError::new(
            MYCELIUM_ERR_BRIDGE,
            format!("cannot start the bridge I/O thread: {e}"),
        )
    })
}

pub(crate) fn listen(
    rt: *const crate::mycelium_runtime_t,
    address: &str,
    opts: Option<&mycelium_bridge_options>,
) -> FfiResult<u64> {
    if crate::nats::is_nats(address) {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "{} is a NATS server: join it with mycelium_bridge_connect (a bus does not listen for NATS)",
                mycelium_nats::redact_url(address)
            ),
        ));
    }
    let h = live(rt)?;
    let o = resolve(opts)?;
    let mut config = ListenConfig::new([endpoint(address)?]);
    if let Some(token) = o.token {
        config = config.with_token(token);
    }
    if let Some(mode) = o.socket_mode {
        config.socket_mode = mode;
    }
    config.allow_remote = o.allow_remote;
    if let Some(max) = o.max_frame {
        config.limits.max_frame = max;
    }
    let io = io_runtime(&h.core)?;
    let handle = io
        .block_on(Bridge::listen(&h.core.bus, &h.core.schema, config))
        .map_err(bridge_error)?;
    let id = h.core.next_id();
    h.bridges.lock().insert(id, Arc::new(handle));
    Ok(id)
}

pub(crate) fn connect(
    rt: *const crate::mycelium_runtime_t,
    address: &str,
    opts: Option<&mycelium_bridge_options>,
) -> FfiResult<u64> {
    if crate::nats::is_nats(address) {
        return crate::nats::connect(rt, address, opts);
    }
    let h = live(rt)?;
    let o = resolve(opts)?;
    let mut config = ConnectConfig::new(endpoint(address)?);
    if let Some(token) = o.token {
        config = config.with_token(token);
    }
    if let Some(max) = o.max_frame {
        config.limits.max_frame = max;
    }
    let io = io_runtime(&h.core)?;
    let handle = io
        .block_on(Bridge::connect(&h.core.bus, &h.core.schema, config))
        .map_err(bridge_error)?;
    let id = h.core.next_id();
    h.bridges.lock().insert(id, Arc::new(handle));
    Ok(id)
}

/// Waits until the bridge has `sessions` open sessions (a connector: 1 once connected).
pub(crate) fn wait(
    rt: *const crate::mycelium_runtime_t,
    id: u64,
    sessions: u64,
    timeout_ms: u32,
) -> FfiResult {
    let h = live(rt)?;
    if let Some(joined) = crate::nats::find(&h, id) {
        return crate::nats::wait(&h, id, &joined, sessions, timeout_ms);
    }
    let io = io_runtime(&h.core)?;
    let bridge = h
        .bridges
        .lock()
        .get(&id)
        .cloned()
        .ok_or_else(|| unknown(id))?;
    let reached = io.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(timeout_ms as u64),
            bridge.wait_for_sessions(sessions),
        )
        .await
    });
    let stats = bridge.stats();
    // The reason a caller needs: the peer's refusal, or why connecting keeps failing (a missing
    // socket file, a closed port), which is otherwise only in the logs.
    let why = stats
        .rejections
        .last()
        .map(|r| format!("; last refusal: {}", r.reason))
        .or_else(|| {
            stats.last_connect_failure.as_ref().map(|f| {
                format!(
                    "; {} connection attempt(s) failed, the last: {f}",
                    stats.connect_failures
                )
            })
        })
        .unwrap_or_default();
    match reached {
        Ok(true) => Ok(()),
        // `wait_for_sessions` answers false once the bridge has stopped (e.g. a refused
        // handshake), possibly before its task has fully ended.
        Ok(false) => Err(FfiError::new(
            MYCELIUM_ERR_BRIDGE,
            format!("bridge {id} stopped before reaching {sessions} session(s){why}"),
        )),
        Err(_elapsed) => Err(FfiError::new(
            MYCELIUM_ERR_TIMEOUT,
            format!(
                "bridge {id} has {} of {sessions} session(s) after {timeout_ms} ms{why}",
                stats.active_sessions
            ),
        )),
    }
}

pub(crate) fn stats_json(rt: *const crate::mycelium_runtime_t, id: u64) -> FfiResult<String> {
    let h = live(rt)?;
    if let Some(joined) = crate::nats::find(&h, id) {
        return Ok(crate::nats::doc(&joined).to_string());
    }
    let bridge = h
        .bridges
        .lock()
        .get(&id)
        .cloned()
        .ok_or_else(|| unknown(id))?;
    Ok(doc(&bridge).to_string())
}

/// A socket bridge as `mycelium_bridge_stats_json` and the metrics JSON's `connections` show it.
fn doc(bridge: &mycelium_bridge::BridgeHandle) -> serde_json::Value {
    // The bound endpoints come first: with TCP port 0 they are how a caller learns the port.
    let endpoints: Vec<String> = bridge.endpoints().iter().map(|e| e.to_string()).collect();
    serde_json::json!({ "endpoints": endpoints, "kind": "socket", "stats": bridge.stats() })
}

/// The handle's socket bridges and NATS joins, by id, each as its stats JSON plus `"id"`: what
/// `mycelium_metrics_json` puts under `connections`.
pub(crate) fn connections_json(h: &crate::runtime::Handle) -> serde_json::Value {
    let bridges: Vec<(u64, Arc<mycelium_bridge::BridgeHandle>)> = h
        .bridges
        .lock()
        .iter()
        .map(|(id, b)| (*id, Arc::clone(b)))
        .collect();
    let mut all: Vec<(u64, serde_json::Value)> =
        bridges.iter().map(|(id, b)| (*id, doc(b))).collect();
    all.extend(crate::nats::docs(h));
    all.sort_by_key(|(id, _)| *id);
    all.into_iter()
        .map(|(id, mut doc)| {
            doc["id"] = id.into();
            doc
        })
        .collect()
}

pub(crate) fn close(rt: *const crate::mycelium_runtime_t, id: u64) -> FfiResult {
    let h = live(rt)?;
    if crate::nats::close(&h, id)? {
        return Ok(());
    }
    let bridge = h.bridges.lock().remove(&id).ok_or_else(|| unknown(id))?;
    let io = io_runtime(&h.core)?;
    close_and_join(io, bridge);
    Ok(())
}

/// Stops a bridge and waits for its tasks. A `mycelium_bridge_wait` running on another thread
/// holds a reference; stopping the bridge ends that wait (it reports the bridge stopped), after
/// which this thread gets the only reference and joins.
pub(crate) fn close_and_join(io: &tokio::runtime::Runtime, bridge: Arc<BridgeHandle>) {
    bridge.close();
    let mut bridge = bridge;
    let owned = loop {
        match Arc::try_unwrap(bridge) {
            Ok(owned) => break owned,
            Err(shared) => {
                bridge = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    // A refused connector has already stopped with its reason; closing it is still a success.
    let _ = io.block_on(owned.close_and_join());
}

fn unknown(id: u64) -> FfiError {
    FfiError::new(
        MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
        format!("bridge {id} is not open on this handle (never opened, or closed)"),
    )
}

/// The counters of the bridges started through this handle, in the Prometheus text format,
/// labelled by their endpoints (what `mycelium_metrics_prometheus` appends to the bus's).
pub(crate) fn prometheus(h: &crate::runtime::Handle) -> String {
    let mut bridges: Vec<(u64, String, mycelium_bridge::BridgeStats)> = h
        .bridges
        .lock()
        .iter()
        .map(|(id, b)| {
            let endpoints: Vec<String> = b.endpoints().iter().map(|e| e.to_string()).collect();
            (*id, endpoints.join(","), b.stats())
        })
        .collect();
    bridges.sort_by_key(|(id, _, _)| *id);
    let named: Vec<(String, mycelium_bridge::BridgeStats)> = bridges
        .into_iter()
        .map(|(_, name, stats)| (name, stats))
        .collect();
    let mut text = mycelium_bridge::bridges_prometheus(&named);
    text.push_str(&crate::nats::prometheus(h));
    text
}
