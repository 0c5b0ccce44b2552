//! `mycelium_runtime_t`: the handle foreign code holds, its shared core, and the Rust API a
//! service uses to hand its own `MessageBus` to Python, OCaml or C code in the same process.
//!
//! # Why a function table
//! A handle created by one copy of this library (say, statically linked into a Rust service)
//! may be used by another copy (the pip-installed Python extension, built separately, maybe by
//! another compiler). The only thing both copies agree on is the C layout of
//! [`mycelium_runtime_t`]'s first field: a pointer to a versioned, `#[repr(C)]` function table
//! ([`Vtable`]) that belongs to the copy that created the handle. Every exported function reads
//! that table and calls through it, so all Rust state behind a handle is only ever touched by the
//! code that created it. This is the pattern of CPython capsules and JNI's `JNIEnv`.

use std::collections::{HashMap, HashSet};
use std::ffi::c_char;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use mycelium_protocol::codec::MAX_PAYLOAD;
use mycelium_protocol::digest::diff_canonical;
use mycelium_protocol::validate::Validator;
use mycelium_protocol::{DecodeError, Schema};
use mycelium_transport::{MessageBus, PublishError};
use parking_lot::{Condvar, Mutex};

use crate::status::{mycelium_status::*, FfiError, FfiResult};
use crate::subscription::{current_delivery, resolve_options, spawn_delivery, SubEntry};
use crate::vtable::{Vtable, OWN_VTABLE};

/// An opaque runtime handle: one schema-bound view of a `MessageBus`.
///
/// Handles are created by `mycelium_runtime_create`, `mycelium_runtime_clone` or a Rust service
/// (`mycelium_ffi::Runtime`), and released by `mycelium_runtime_destroy`. Subscriptions belong to
/// the handle that made them.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct mycelium_runtime_t {
    /// Must stay the first field: it is the only part another copy of the library reads.
    pub(crate) vtable: *const Vtable,
    /// `None` once destroyed. The header itself is never freed (see [`tombstone`]), so a call
    /// on a destroyed handle finds `None` and fails cleanly instead of reading freed memory.
    pub(crate) handle: ArcSwapOption<Handle>,
}

/// State shared by every handle onto the same bus.
pub(crate) struct Core {
    pub bus: MessageBus,
    pub schema: Schema,
    /// Started on the first bridge (`bridge.rs`); nothing else needs an async runtime.
    io: std::sync::OnceLock<tokio::runtime::Runtime>,
    pub validator: Validator,
    pub digest: String,
    pub canonical: String,
    next_sub_id: AtomicU64,
    flush_waiters: AtomicUsize,
    progress: Mutex<()>,
    progress_cv: Condvar,
}

impl Core {
    fn new(bus: MessageBus, schema: &Schema) -> Arc<Core> {
        let names: HashMap<u16, String> = schema
            .messages
            .iter()
            .map(|m| (m.type_id, m.name.clone()))
            .collect();
        bus.set_type_names(names);
        Arc::new(Core {
            bus,
            schema: schema.clone(),
            io: std::sync::OnceLock::new(),
            validator: Validator::new(schema),
            digest: schema.digest(),
            canonical: schema.canonical_description(),
            next_sub_id: AtomicU64::new(1),
            flush_waiters: AtomicUsize::new(0),
            progress: Mutex::new(()),
            progress_cv: Condvar::new(),
        })
    }

    /// The tokio runtime bridges run on: one I/O thread, started on first use.
    pub fn io_runtime(&self) -> std::io::Result<&tokio::runtime::Runtime> {
        if let Some(rt) = self.io.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mycelium-io")
            .enable_all()
            .build()?;
        // Two threads racing here build two runtimes; the loser's is dropped unused.
        Ok(self.io.get_or_init(|| rt))
    }

    /// A new subscription or receiver id, unique across every handle onto this core.
    pub fn next_id(&self) -> u64 {
        self.next_sub_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Wakes `flush` waiters; costs one atomic load when nobody waits.
    pub fn notify_progress(&self) {
        if self.flush_waiters.load(Ordering::SeqCst) > 0 {
            let _g = self.progress.lock();
            self.progress_cv.notify_all();
        }
    }

    /// Validates `payload` against the schema and copies it into the buffer subscribers share.
    fn prepare(&self, type_id: u16, payload: &[u8]) -> FfiResult<bytes::Bytes> {
        check_payload_len(payload.len())?;
        self.validator
            .validate(type_id, payload)
            .map_err(|e| match e {
                DecodeError::UnknownType(id) => FfiError::new(
                    MYCELIUM_ERR_UNKNOWN_TYPE,
                    format!("type id {id} is not defined by the runtime's schema"),
                ),
                DecodeError::TooLarge { .. } => {
                    FfiError::new(MYCELIUM_ERR_TOO_LARGE, e.to_string())
                }
                other => FfiError::new(
                    MYCELIUM_ERR_DECODE,
                    format!(
                        "payload for {} (type id {type_id}) does not decode: {other}",
                        self.validator.message_name(type_id).unwrap_or("?")
                    ),
                ),
            })?;
        Ok(bytes::Bytes::copy_from_slice(payload))
    }

    fn publish(
        &self,
        type_id: u16,
        payload: bytes::Bytes,
        hooks: Option<&mut dyn mycelium_transport::WaitHooks>,
        topic: Option<&mycelium_transport::TopicName>,
    ) -> FfiResult {
        match (hooks, topic) {
            (Some(hooks), None) => self.bus.publish_raw_with_hooks(type_id, payload, hooks),
            (None, None) => self.bus.publish_raw(type_id, payload),
            (Some(hooks), Some(topic)) => self
                .bus
                .publish_raw_on_with_hooks(type_id, topic, payload, hooks),
            (None, Some(topic)) => self.bus.publish_raw_on(type_id, topic, payload),
        }
        .map_err(publish_error)
    }
}

/// Refuses a payload length above the maximum. Called on the raw length before any slice is
/// formed: a slice longer than `isize::MAX` is undefined behaviour (and aborts a debug build).
fn check_payload_len(len: usize) -> FfiResult {
    if len > MAX_PAYLOAD {
        return Err(FfiError::new(
            MYCELIUM_ERR_TOO_LARGE,
            format!("payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD} bytes"),
        ));
    }
    Ok(())
}

fn publish_error(e: PublishError) -> FfiError {
    let status = match &e {
        PublishError::Closed => MYCELIUM_ERR_CLOSED,
        PublishError::TooLarge { .. } => MYCELIUM_ERR_TOO_LARGE,
        PublishError::QueueFull { .. } => MYCELIUM_ERR_QUEUE_FULL,
        // The caller's `keep_waiting` hook ended the wait for room.
        PublishError::Interrupted { .. } => MYCELIUM_ERR_TIMEOUT,
        #[allow(unreachable_patterns)]
        _ => MYCELIUM_ERR_INVALID_ARGUMENT,
    };
    FfiError::new(status, e.to_string())
}

/// One handle's view: the shared core plus the subscriptions this handle owns.
pub(crate) struct Handle {
    pub core: Arc<Core>,
    subs: Mutex<HashMap<u64, SubEntry>>,
    /// Pull receivers (`receiver.rs`); ids come from the same counter as subscriptions.
    pub receivers: Mutex<HashMap<u64, Arc<crate::receiver::Receiver>>>,
    /// Socket bridges started through this handle (`bridge.rs`).
    /// Shared so that a `mycelium_bridge_wait` holds its bridge, not the map, while it waits.
    pub bridges: Mutex<HashMap<u64, Arc<mycelium_bridge::BridgeHandle>>>,
    /// NATS joins (`nats.rs`): `mycelium_bridge_connect` with a `nats://` address. Same id
    /// space and sharing as `bridges`.
    pub nats: Mutex<HashMap<u64, Arc<crate::nats::Joined>>>,
    /// Responders started with `mycelium_serve` (`service.rs`); ids from the same counter.
    pub responders: Mutex<HashMap<u64, crate::service::ResponderEntry>>,
}

impl Handle {
    /// Runs `f` on the bus-side subscription of callback subscription or pull receiver `id`
    /// (`None` if this handle has neither open under that id). Holds one map lock for the call.
    pub(crate) fn with_subscription<T>(
        &self,
        id: u64,
        f: impl FnOnce(&mycelium_transport::RawSubscription) -> T,
    ) -> Option<T> {
        if let Some(r) = self.receivers.lock().get(&id).cloned() {
            return Some(f(&r.raw));
        }
        let shared = self.subs.lock().get(&id).map(|e| e.shared.clone())?;
        Some(f(&shared.raw))
    }

    fn new(core: Arc<Core>) -> Arc<Handle> {
        Arc::new(Handle {
            core,
            subs: Mutex::new(HashMap::new()),
            receivers: Mutex::new(HashMap::new()),
            bridges: Mutex::new(HashMap::new()),
            nats: Mutex::new(HashMap::new()),
            responders: Mutex::new(HashMap::new()),
        })
    }

    /// Refuses type ids outside the schema and subscriptions on a closed bus.
    pub fn check_can_subscribe(&self, type_id: u16) -> FfiResult {
        if !self.core.validator.knows(type_id) {
            return Err(FfiError::new(
                MYCELIUM_ERR_UNKNOWN_TYPE,
                format!("type id {type_id} is not defined by the runtime's schema"),
            ));
        }
        if self.core.bus.is_closed() {
            return Err(FfiError::new(MYCELIUM_ERR_CLOSED, "the runtime was closed"));
        }
        Ok(())
    }

    fn unsubscribe_all(&self) {
        let bridges: Vec<_> = self.bridges.lock().drain().map(|(_, b)| b).collect();
        let joins: Vec<_> = self.nats.lock().drain().map(|(_, j)| j).collect();
        if !bridges.is_empty() || !joins.is_empty() {
            if let Ok(io) = self.core.io_runtime() {
                for b in bridges {
                    crate::bridge::close_and_join(io, b);
                }
                for j in joins {
                    crate::nats::close_and_join(io, j);
                }
            }
        }
        let responders: Vec<_> = self.responders.lock().drain().map(|(_, r)| r).collect();
        for r in responders {
            r.stop_and_join();
        }
        let receivers: Vec<_> = self.receivers.lock().drain().map(|(_, r)| r).collect();
        for r in receivers {
            r.close_and_wait();
        }
        let entries: Vec<SubEntry> = self.subs.lock().drain().map(|(_, e)| e).collect();
        // Joined outside the lock: a callback that is finishing may itself call into this handle.
        for e in entries {
            e.cancel_and_join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.unsubscribe_all();
    }
}

fn tombstone(rt: NonNull<mycelium_runtime_t>) {
    // Destroyed headers are kept (a few bytes each) and stay reachable from here, so
    // use-after-destroy reports MYCELIUM_ERR_CLOSED and leak checkers see no lost block.
    static TOMBSTONES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    TOMBSTONES.lock().push(rt.as_ptr() as usize);
}

/// Every header this copy of the library made, live or destroyed (headers are never freed).
/// `clone_handle` refuses any other address: `attach` takes addresses from foreign code, and a
/// look-alike that happens to point at this copy's function table must not be dereferenced
/// further (see `vtable::probe_handle`).
static HEADERS: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

fn new_raw(core: Arc<Core>) -> *mut mycelium_runtime_t {
    let raw = Box::into_raw(Box::new(mycelium_runtime_t {
        vtable: &OWN_VTABLE,
        handle: ArcSwapOption::from(Some(Handle::new(core))),
    }));
    HEADERS
        .lock()
        .get_or_insert_with(HashSet::new)
        .insert(raw as usize);
    raw
}

/// True when `rt` is a header this copy made (live or destroyed).
pub(crate) fn is_own_header(rt: *const mycelium_runtime_t) -> bool {
    HEADERS
        .lock()
        .as_ref()
        .is_some_and(|h| h.contains(&(rt as usize)))
}

/// Loads the live handle behind `rt` (created by this copy of the library).
pub(crate) fn live(rt: *const mycelium_runtime_t) -> FfiResult<Arc<Handle>> {
    let rt = crate::status::non_null(rt, "runtime")?;
    rt.handle.load_full().ok_or_else(destroyed)
}

/// What a call on a destroyed runtime returns.
fn destroyed() -> FfiError {
    FfiError::new(MYCELIUM_ERR_CLOSED, "the runtime was destroyed")
}

/// Copies `text` plus a NUL into `buf` when it fits; always reports the needed size (with NUL).
pub(crate) fn write_text(
    text: &str,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> FfiResult {
    let need = text.len() + 1;
    if !needed.is_null() {
        // SAFETY: a non-NULL `needed` points to a writable size_t (C contract).
        unsafe { needed.write(need) };
    }
    if buf.is_null() || len < need {
        return Err(FfiError::new(
            MYCELIUM_ERR_BUFFER_TOO_SMALL,
            format!("buffer of {len} bytes is too small; {need} needed"),
        ));
    }
    // SAFETY: `buf` has at least `need` writable bytes (checked above) and cannot overlap `text`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

// ---- implementations behind the function table (only ever called on handles of this copy) ----

pub(crate) fn create(schema_yaml: &str) -> FfiResult<*mut mycelium_runtime_t> {
    let schema = Schema::from_yaml_str(schema_yaml)
        .map_err(|e| FfiError::new(MYCELIUM_ERR_SCHEMA, e.to_string()))?;
    Ok(new_raw(Core::new(MessageBus::new(), &schema)))
}

pub(crate) fn clone_handle(rt: *const mycelium_runtime_t) -> FfiResult<*mut mycelium_runtime_t> {
    if !is_own_header(rt) {
        return Err(FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!(
                "{:#x} is not a mycelium runtime handle of this process: it points at a \
                 function table but was not made by the library that owns that table",
                rt as usize
            ),
        ));
    }
    Ok(new_raw(live(rt)?.core.clone()))
}

pub(crate) fn destroy(rt: *mut mycelium_runtime_t) -> FfiResult {
    let Some(nn) = NonNull::new(rt) else {
        return Ok(()); // destroying NULL is a no-op, like free(NULL)
    };
    // SAFETY: non-NULL handles passed to destroy come from this library (C contract); headers are
    // never freed, so even a second destroy reads valid memory.
    let header = unsafe { nn.as_ref() };
    match header.handle.swap(None) {
        Some(handle) => {
            handle.unsubscribe_all();
            drop(handle);
            tombstone(nn);
            Ok(())
        }
        None => Err(FfiError::new(
            MYCELIUM_ERR_CLOSED,
            "the runtime was already destroyed",
        )),
    }
}

pub(crate) fn close(rt: *const mycelium_runtime_t) -> FfiResult {
    live(rt)?.core.bus.close();
    Ok(())
}

pub(crate) fn verify_digest(rt: *const mycelium_runtime_t, digest: &str) -> FfiResult {
    let h = live(rt)?;
    if digest.trim().eq_ignore_ascii_case(&h.core.digest) {
        Ok(())
    } else {
        Err(FfiError::new(
            MYCELIUM_ERR_SCHEMA_MISMATCH,
            format!(
                "schema digest {} does not match the runtime's {}; compare the schemas with mycelium_verify_schema_description for details",
                digest.trim(),
                h.core.digest
            ),
        ))
    }
}

pub(crate) fn verify_description(rt: *const mycelium_runtime_t, theirs: &str) -> FfiResult {
    let h = live(rt)?;
    let diffs = diff_canonical(&h.core.canonical, theirs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(FfiError::new(
            MYCELIUM_ERR_SCHEMA_MISMATCH,
            format!("schemas differ: {}", diffs.join("; ")),
        ))
    }
}

/// Publishes the caller's payload. `payload` is a raw pointer and length, turned into a slice
/// only inside `Core::prepare`, which copies it and returns before the publish may call
/// `hooks`: a caller whose runtime moves the payload while a hook has released its lock (OCaml's
/// GC) leaves no live reference to it behind.
///
/// # Safety
/// A non-NULL `payload` points to `len` readable bytes until `prepare` has returned.
pub(crate) unsafe fn publish(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    payload: *const u8,
    len: usize,
    hooks: Option<&mut dyn mycelium_transport::WaitHooks>,
) -> FfiResult {
    // SAFETY: same contract as this function.
    unsafe { publish_on(rt, type_id, None, payload, len, hooks) }
}

/// [`publish`] under a topic (`None`: none).
///
/// # Safety
/// As for [`publish`].
pub(crate) unsafe fn publish_on(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    topic: Option<&mycelium_transport::TopicName>,
    payload: *const u8,
    len: usize,
    hooks: Option<&mut dyn mycelium_transport::WaitHooks>,
) -> FfiResult {
    // Like `live`, borrowed instead of cloned: the `Arc` clone and drop are two atomic
    // read-modify-writes per publish (~5 ns of the C ABI's ~40 ns per call over the Rust API,
    // `ffi_paired`). The guard keeps the handle alive just the same: `destroy`'s swap pays it
    // a reference if it runs meanwhile, including while a Block publish waits for room.
    let handle = crate::status::non_null(rt, "runtime")?.handle.load();
    let h = handle.as_ref().ok_or_else(destroyed)?;
    // SAFETY: same contract as this function.
    let bytes = unsafe { prepare_raw(&h.core, type_id, payload, len) }.inspect_err(|e| {
        // Refused before the bus sees it, so the bus's refusal counters hear it from here.
        use mycelium_transport::RefusedReason as R;
        let reason = match e.status {
            MYCELIUM_ERR_TOO_LARGE => R::TooLarge,
            MYCELIUM_ERR_UNKNOWN_TYPE => R::UnknownType,
            _ => R::Invalid,
        };
        h.core.bus.record_refused(reason);
    })?;
    h.core.publish(type_id, bytes, hooks, topic)
}

/// Checks the length, then validates and copies the payload (see [`publish`]).
///
/// # Safety
/// As for [`publish`].
pub(crate) unsafe fn prepare_raw(
    core: &Core,
    type_id: u16,
    payload: *const u8,
    len: usize,
) -> FfiResult<bytes::Bytes> {
    check_payload_len(len)?;
    if len == 0 {
        core.prepare(type_id, &[])
    } else if payload.is_null() {
        Err(FfiError::new(
            MYCELIUM_ERR_NULL_POINTER,
            format!("`payload` is NULL but `len` is {len}"),
        ))
    } else {
        // SAFETY: per this function's contract; the slice lives only for the `prepare` call.
        core.prepare(type_id, unsafe { std::slice::from_raw_parts(payload, len) })
    }
}

pub(crate) fn subscribe(
    rt: *const mycelium_runtime_t,
    type_id: u16,
    opts: Option<&crate::subscription::mycelium_subscribe_options>,
    closure: &crate::subscription::mycelium_closure,
) -> FfiResult<u64> {
    let h = live(rt)?;
    h.check_can_subscribe(type_id)?;
    let resolved = resolve_options(opts)?;
    let id = h.core.next_id();
    let raw = h.core.bus.subscribe_raw(type_id, resolved.bus);
    let entry = spawn_delivery(h.core.clone(), raw, id, *closure, resolved.max_batch)?;
    h.subs.lock().insert(id, entry);
    Ok(id)
}

pub(crate) fn unsubscribe(rt: *const mycelium_runtime_t, id: u64) -> FfiResult {
    let h = live(rt)?;
    let receiver = h.receivers.lock().remove(&id);
    if let Some(r) = receiver {
        // wakes a thread blocked in mycelium_receiver_recv with MYCELIUM_ERR_CLOSED, then waits
        // for running visits
        r.close_and_wait();
        return Ok(());
    }
    let entry = h.subs.lock().remove(&id).ok_or_else(|| {
        FfiError::new(
            MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
            format!("subscription {id} is not live on this handle (never issued, or already unsubscribed)"),
        )
    })?;
    entry.cancel_and_join();
    Ok(())
}

pub(crate) fn flush(rt: *const mycelium_runtime_t, timeout_ms: u32) -> FfiResult {
    let h = live(rt)?;
    let core = &h.core;
    // Targets are taken now: flush waits for what was published before the call, not for
    // messages that keep arriving.
    let targets: Vec<(Arc<crate::subscription::SubShared>, u64)> = h
        .subs
        .lock()
        .values()
        .map(|e| (e.shared.clone(), e.shared.raw.offered()))
        .collect();
    if let Some(own) = current_delivery(core) {
        if targets.iter().any(|(s, _)| s.id == own) {
            return Err(FfiError::new(
                MYCELIUM_ERR_WRONG_THREAD,
                "flush called from a callback of this handle would wait for itself",
            ));
        }
    }
    let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
    let done = || {
        targets.iter().all(|(s, target)| {
            s.cancelled.load(Ordering::SeqCst)
                || s.handled.load(Ordering::SeqCst) + s.raw.dropped() >= *target
        })
    };
    core.flush_waiters.fetch_add(1, Ordering::SeqCst);
    let mut guard = core.progress.lock();
    let result = loop {
        if done() {
            break Ok(());
        }
        if Instant::now() >= deadline {
            break Err(FfiError::new(
                MYCELIUM_ERR_TIMEOUT,
                format!("deliveries still pending after {timeout_ms} ms"),
            ));
        }
        // Bounded wait so that a notification racing with the check costs at most 5 ms.
        core.progress_cv
            .wait_for(&mut guard, Duration::from_millis(5));
    };
    drop(guard);
    core.flush_waiters.fetch_sub(1, Ordering::SeqCst);
    result
}

/// An owned runtime handle for Rust code: how a Rust service shares its `MessageBus` with
/// foreign code in the same process.
///
/// ```no_run
/// # let schema = mycelium_protocol::Schema::from_yaml_str("schema: s\nversion: 1\nmessages: {}").unwrap();
/// let bus = mycelium_transport::MessageBus::new();
/// let rt = mycelium_ffi::Runtime::from_bus(bus.clone(), &schema);
/// // Hand `rt.address()` to Python: `mycelium_native.Runtime.attach(address, contracts)`.
/// // Python clones the handle, so `rt` may be dropped independently of it.
/// # drop(rt);
/// ```
pub struct Runtime {
    raw: NonNull<mycelium_runtime_t>,
}

// SAFETY: every operation on a handle is internally synchronised (ArcSwap + mutexes), and the C
// contract allows calling any function from any thread.
unsafe impl Send for Runtime {}
// SAFETY: as above; `&Runtime` only exposes thread-safe operations.
unsafe impl Sync for Runtime {}

impl Runtime {
    /// A runtime with a bus of its own.
    pub fn new(schema: &Schema) -> Runtime {
        Runtime::from_bus(MessageBus::new(), schema)
    }

    /// Wraps a bus the service already owns; Rust and foreign code then see each other's messages.
    pub fn from_bus(bus: MessageBus, schema: &Schema) -> Runtime {
        let raw = new_raw(Core::new(bus, schema));
        Runtime {
            raw: NonNull::new(raw).expect("Box::into_raw never returns NULL"),
        }
    }

    /// The C handle. Valid while `self` lives; foreign code that keeps it longer must
    /// `mycelium_runtime_clone` it.
    pub fn as_ptr(&self) -> *mut mycelium_runtime_t {
        self.raw.as_ptr()
    }

    /// The handle as an integer, the form Python and OCaml adapters accept in `attach`.
    pub fn address(&self) -> usize {
        self.raw.as_ptr() as usize
    }

    /// The bus behind this handle.
    pub fn bus(&self) -> MessageBus {
        live(self.raw.as_ptr())
            .map(|h| h.core.bus.clone())
            .expect("a Runtime's handle lives until the Runtime is dropped")
    }

    /// The schema digest the runtime enforces.
    pub fn schema_digest(&self) -> String {
        live(self.raw.as_ptr())
            .map(|h| h.core.digest.clone())
            .expect("a Runtime's handle lives until the Runtime is dropped")
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = destroy(self.raw.as_ptr());
    }
}
