//! `NativeRuntime`: the Python class around one owned C ABI handle. The public, typed API
//! (`mycelium_native.Runtime`) is written in Python on top of it.
//!
//! Every call that may block (publish under the Block policy, flush, unsubscribe, close)
//! releases the GIL first, because the callbacks it may wait for need the GIL to finish.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mycelium_ffi::exports::{
    mycelium_flush, mycelium_metrics_json, mycelium_metrics_prometheus, mycelium_publish_topic,
    mycelium_publish_with_hooks, mycelium_receiver_open, mycelium_runtime_clone,
    mycelium_runtime_close, mycelium_runtime_create, mycelium_schema_description,
    mycelium_schema_digest, mycelium_subscribe, mycelium_verify_schema_description,
    mycelium_verify_schema_digest,
};
use mycelium_ffi::{
    mycelium_closure, mycelium_overflow_policy, mycelium_runtime_t, mycelium_status,
    mycelium_subscribe_options, mycelium_wait_hooks,
};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::bridge::{self, NativeBridge, Side};
use crate::callback::{in_callback, CallbackContext};
use crate::core::{CallGuard, RuntimeCore};
use crate::encoder::Encoder;
use crate::failure::{check, CallResult, Failure, IntoPyResult};
use crate::lifecycle::{detach, retake_or_hang, shutting_down};
use crate::notify::Notifier;
use crate::pull_queue::NativeReceiver;
use crate::queue::QueueShared;
use crate::receiver::PullReceiver;
use crate::service::NativeService;
use crate::subscription::{NativeStream, NativeSubscription};

/// The C library's default queue capacity, used for pull queues and streams when none is given.
const DEFAULT_CAPACITY: usize = 1024;

/// Longest a blocking call waits before it looks for a pending Ctrl-C.
pub(crate) const SIGNAL_SLICE: Duration = Duration::from_millis(100);

/// Subscription settings as the C ABI takes them; 0 means the library default.
pub(crate) struct SubscribeSettings {
    pub capacity: u32,
    pub policy: u32,
    pub max_batch: u32,
    pub spin_us: u32,
    pub label: Option<CString>,
    /// A topic pattern (docs/topics.md); `None` receives every message of the type.
    pub pattern: Option<CString>,
}

impl SubscribeSettings {
    pub(crate) fn new(
        capacity: u32,
        policy: u32,
        max_batch: u32,
        spin_us: u32,
        label: Option<&str>,
    ) -> PyResult<Self> {
        let label = label
            .map(|l| {
                CString::new(l)
                    .map_err(|_| PyValueError::new_err("label must not contain NUL characters"))
            })
            .transpose()?;
        Ok(SubscribeSettings {
            capacity,
            policy,
            max_batch,
            spin_us,
            label,
            pattern: None,
        })
    }

    /// Adds a topic pattern (checked by the library when subscribing).
    pub(crate) fn with_pattern(mut self, pattern: Option<&str>) -> PyResult<Self> {
        self.pattern = pattern
            .map(|p| {
                CString::new(p)
                    .map_err(|_| PyValueError::new_err("pattern must not contain NUL characters"))
            })
            .transpose()?;
        Ok(self)
    }

    fn to_options(&self) -> CallResult<mycelium_subscribe_options> {
        // The Rust default is this library's whole struct (the C init functions exist for C
        // programs, which may be built against an older header).
        Ok(mycelium_subscribe_options {
            capacity: self.capacity,
            policy: self.policy,
            max_batch: self.max_batch,
            spin_us: self.spin_us,
            label: self.label.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
            pattern: self
                .pattern
                .as_ref()
                .map_or(std::ptr::null(), |p| p.as_ptr()),
            ..Default::default()
        })
    }
}

/// Subscribes `closure`; the caller reclaims the closure's context if this fails.
pub(crate) fn subscribe_closure(
    guard: &CallGuard<'_>,
    type_id: u16,
    settings: &SubscribeSettings,
    closure: &mycelium_closure,
) -> CallResult<u64> {
    let opts = settings.to_options()?;
    let mut id = 0u64;
    // SAFETY: the guard keeps the handle valid; `opts` (and the label it points to) and
    // `closure` are valid for the call; `id` is writable.
    check(unsafe { mycelium_subscribe(guard.ptr(), type_id, &opts, closure, &mut id) })?;
    Ok(id)
}

/// Reads a text the C ABI hands out with its size protocol (ask for the size, then fill).
fn read_text(
    guard: &CallGuard<'_>,
    f: unsafe extern "C" fn(
        *const mycelium_runtime_t,
        *mut c_char,
        usize,
        *mut usize,
    ) -> mycelium_status,
) -> CallResult<String> {
    let mut needed = 0usize;
    // SAFETY: NULL/0 asks only for the size, written to `needed`.
    let _ = unsafe { f(guard.ptr(), std::ptr::null_mut(), 0, &mut needed) };
    loop {
        let mut buf = vec![0u8; needed.max(1)];
        // SAFETY: `buf` has `buf.len()` writable bytes; `needed` is writable.
        let status = unsafe { f(guard.ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut needed) };
        if status == mycelium_status::MYCELIUM_ERR_BUFFER_TOO_SMALL && needed > buf.len() {
            continue; // the text grew between the two calls (metrics do)
        }
        check(status)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        buf.truncate(end);
        return String::from_utf8(buf).map_err(|e| Failure::Status {
            code: mycelium_status::MYCELIUM_ERR_INVALID_ARGUMENT as u32,
            message: format!("the library returned text that is not UTF-8: {e}"),
        });
    }
}

/// One handle onto a Mycelium bus, owned by Python.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeRuntime {
    pub(crate) core: Arc<RuntimeCore>,
}

impl NativeRuntime {
    fn refuse_after_shutdown() -> CallResult {
        if shutting_down() {
            Err(Failure::ShuttingDown)
        } else {
            Ok(())
        }
    }
}

#[pymethods]
impl NativeRuntime {
    /// A runtime with a bus of its own, bound to the schema given as YAML text.
    ///
    /// Parses without the GIL: a large schema takes tens of milliseconds (1000 messages of 20
    /// fields: ~70 ms), and other Python threads must keep running meanwhile.
    #[staticmethod]
    fn create(py: Python<'_>, schema_yaml: &str) -> PyResult<NativeRuntime> {
        let made = detach(py, || {
            Self::refuse_after_shutdown()?;
            let mut out: *mut mycelium_runtime_t = std::ptr::null_mut();
            // SAFETY: the text (borrowed from a str the caller holds) is valid for `len` bytes
            // during the call; `out` is writable.
            check(unsafe {
                mycelium_runtime_create(schema_yaml.as_ptr().cast(), schema_yaml.len(), &mut out)
            })?;
            Ok(RuntimeCore::adopt(out))
        });
        made.map(|core| NativeRuntime { core }).py_err(py)
    }

    /// A handle of our own onto the bus behind `handle` (a host's `mycelium_runtime_t*` as an
    /// integer). The host's handle is only cloned, never destroyed.
    #[staticmethod]
    fn attach(py: Python<'_>, handle: usize) -> PyResult<NativeRuntime> {
        let made = (|| {
            Self::refuse_after_shutdown()?;
            let mut out: *mut mycelium_runtime_t = std::ptr::null_mut();
            // SAFETY: the caller promises `handle` is a live runtime handle of this process (a
            // NULL one is reported by the library); `out` is writable.
            check(unsafe {
                mycelium_runtime_clone(handle as *const mycelium_runtime_t, &mut out)
            })?;
            Ok(RuntimeCore::adopt(out))
        })();
        made.map(|core| NativeRuntime { core }).py_err(py)
    }

    /// The handle as an integer, for handing this bus to other in-process code.
    #[getter]
    fn address(&self, py: Python<'_>) -> PyResult<usize> {
        self.core.address().py_err(py)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Raises SchemaMismatchError naming every difference when `canonical` (a generated
    /// module's SCHEMA_CANONICAL) is not the runtime's schema.
    fn verify_schema(&self, py: Python<'_>, canonical: &str) -> PyResult<()> {
        // Without the GIL: the text comes from the caller and may be large.
        let result = detach(py, || {
            let g = self.core.enter()?;
            // SAFETY: the text is valid for `len` bytes during the call.
            check(unsafe {
                mycelium_verify_schema_description(
                    g.ptr(),
                    canonical.as_ptr().cast(),
                    canonical.len(),
                )
            })
        });
        result.py_err(py)
    }

    /// Raises SchemaMismatchError when `digest` is not the runtime's schema digest.
    fn verify_digest(&self, py: Python<'_>, digest: &str) -> PyResult<()> {
        let text = CString::new(digest)
            .map_err(|_| PyValueError::new_err("digest must not contain NUL characters"))?;
        let result = (|| {
            let g = self.core.enter()?;
            // SAFETY: `text` is NUL-terminated and valid during the call.
            check(unsafe { mycelium_verify_schema_digest(g.ptr(), text.as_ptr()) })
        })();
        result.py_err(py)
    }

    fn schema_digest(&self, py: Python<'_>) -> PyResult<String> {
        let result = (|| {
            let g = self.core.enter()?;
            let mut buf = [0u8; 65];
            // SAFETY: `buf` has 65 writable bytes, the size the call documents.
            check(unsafe { mycelium_schema_digest(g.ptr(), buf.as_mut_ptr().cast(), buf.len()) })?;
            Ok(String::from_utf8_lossy(&buf[..64]).into_owned())
        })();
        result.py_err(py)
    }

    fn schema_description(&self, py: Python<'_>) -> PyResult<String> {
        let result = (|| read_text(&self.core.enter()?, mycelium_schema_description))();
        result.py_err(py)
    }

    /// Publishes one TLV payload; validated against the schema before any subscriber sees it.
    ///
    /// Keeps the GIL: a publish that finds room everywhere never waits, and releasing the GIL
    /// around it would hand the GIL to a waiting consumer thread on every message (Python ->
    /// Python throughput roughly halves). Only when a `Block` subscriber's queue is full does
    /// the library call `release_gil` before it waits (the consumer making room may be Python
    /// code) and `reacquire_gil` after. Everything on the fast path is lock-free or holds a
    /// lock for a moment without ever needing the GIL, so holding the GIL there cannot deadlock.
    ///
    /// While it waits, `check_signals` takes the GIL every 100 ms to look for Ctrl-C (as `recv`
    /// and `flush` do between their wait slices). A pending KeyboardInterrupt ends the wait:
    /// the message stays published to the subscribers that had room, each full BLOCK
    /// subscriber still waited for counts it as dropped (never a part of a message), and the
    /// KeyboardInterrupt is raised here.
    #[pyo3(signature = (type_id, payload, topic=None))]
    fn publish(
        &self,
        py: Python<'_>,
        type_id: u16,
        payload: &[u8],
        topic: Option<&str>,
    ) -> PyResult<()> {
        let topic = topic_cstring(topic)?;
        self.publish_one(py, type_id, payload, topic.as_ref())
    }

    /// Publishes `message` (an object of the class `encoder` was made for) as `publish` would
    /// publish its `to_bytes()`, encoding it natively when every value is one the encoder
    /// writes exactly as `to_bytes` does, and calling `to_bytes` otherwise (whose
    /// `EncodeError` then names the field).
    #[pyo3(signature = (encoder, message, topic=None))]
    fn publish_message(
        &self,
        py: Python<'_>,
        encoder: &Bound<'_, Encoder>,
        message: &Bound<'_, PyAny>,
        topic: Option<&str>,
    ) -> PyResult<()> {
        let topic = topic_cstring(topic)?;
        let encoder = encoder.get();
        // Per call, not thread-local: a publish waiting for room runs signal handlers, which
        // may publish again on this thread.
        let mut payload = Vec::with_capacity(64);
        if encoder.encode(message, &mut payload) {
            return self.publish_one(py, encoder.type_id, &payload, topic.as_ref());
        }
        let encoded = message.call_method0(pyo3::intern!(py, "to_bytes"))?;
        let encoded = encoded.cast::<PyBytes>()?;
        self.publish_one(py, encoder.type_id, encoded.as_bytes(), topic.as_ref())
    }

    /// Publishes `(type_id, payload)` pairs in order in one call: the same checks and waits
    /// as `publish` for each, without a return to Python between messages. Stops at the first
    /// failure and raises it, with the number published before it in the exception's
    /// `published` attribute (those stay published). Returns how many were published.
    #[pyo3(signature = (items, topic=None))]
    fn publish_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        topic: Option<&str>,
    ) -> PyResult<usize> {
        let topic = topic_cstring(topic)?;
        let mut published = 0usize;
        for item in items.try_iter()? {
            let result = item.and_then(|item| {
                let (type_id, payload): (u16, Bound<'_, PyBytes>) = item.extract()?;
                // `payload` is an owned reference: the bytes stay alive even if the hooks
                // release the GIL and another thread empties the caller's list.
                self.publish_one(py, type_id, payload.as_bytes(), topic.as_ref())
            });
            if let Err(error) = result {
                let _ = error.value(py).setattr("published", published);
                return Err(error);
            }
            published += 1;
        }
        Ok(published)
    }

    /// Runs `callback(decoder(payload))` (or `callback(payload)`) on a delivery thread.
    #[pyo3(signature = (type_id, callback, decoder=None, capacity=0, policy=0, max_batch=0, label=None, spin_us=0, pattern=None, with_topic=false))]
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        type_id: u16,
        callback: Bound<'_, PyAny>,
        decoder: Option<Bound<'_, PyAny>>,
        capacity: u32,
        policy: u32,
        max_batch: u32,
        label: Option<&str>,
        spin_us: u32,
        pattern: Option<&str>,
        with_topic: bool,
    ) -> PyResult<NativeSubscription> {
        let settings = SubscribeSettings::new(capacity, policy, max_batch, spin_us, label)?
            .with_pattern(pattern)?;
        let topics_from = match with_topic {
            true => Some(self.core.enter().map_err(|f| f.into_pyerr(py))?.ptr()),
            false => None,
        };
        let closed = Arc::new(AtomicBool::new(false));
        let closure = CallbackContext::new(
            py,
            callback.unbind(),
            decoder.map(Bound::unbind),
            closed.clone(),
        )
        .with_topics_from(topics_from)
        .into_closure();
        let result = (|| -> CallResult<u64> {
            let guard = self.core.enter()?;
            let id = subscribe_closure(&guard, type_id, &settings, &closure)?;
            self.core.register_callback(id, closed.clone());
            Ok(id)
        })();
        match result {
            Ok(id) => Ok(NativeSubscription::new(self.core.clone(), id, closed)),
            Err(failure) => {
                // SAFETY: the closure came from `into_closure` and the subscribe failed, so the
                // library did not take it.
                drop(unsafe { CallbackContext::reclaim(&closure) });
                Err(failure.into_pyerr(py))
            }
        }
    }

    /// Serves (`request_type`, `reply_type`) with `handler(request_payload) -> reply_payload`,
    /// run on a responder thread of its own, one request at a time (see `service.rs`).
    #[pyo3(signature = (request_type, reply_type, handler, capacity=0, label=None))]
    fn serve(
        &self,
        py: Python<'_>,
        request_type: u16,
        reply_type: u16,
        handler: Bound<'_, PyAny>,
        capacity: u32,
        label: Option<&str>,
    ) -> PyResult<NativeService> {
        crate::service::serve(
            py,
            &self.core,
            request_type,
            reply_type,
            handler,
            capacity,
            label,
        )
    }

    /// Sends a request and returns the first successful reply's payload; waits without the GIL
    /// (Ctrl-C ends the wait with KeyboardInterrupt).
    fn request<'py>(
        &self,
        py: Python<'py>,
        request_type: u16,
        payload: &[u8],
        reply_type: u16,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (replies, _, _) = crate::service::request(
            py,
            &self.core,
            request_type,
            payload,
            reply_type,
            timeout,
            false,
        )?;
        let reply = replies.into_iter().next().unwrap_or_default();
        Ok(PyBytes::new(py, &reply))
    }

    /// Sends a request to every responder and returns `(replies, failed, unanswered)` once each
    /// answered or `timeout` passed.
    fn request_all<'py>(
        &self,
        py: Python<'py>,
        request_type: u16,
        payload: &[u8],
        reply_type: u16,
        timeout: f64,
    ) -> PyResult<(Vec<Bound<'py, PyBytes>>, usize, usize)> {
        let (replies, failed, unanswered) = crate::service::request(
            py,
            &self.core,
            request_type,
            payload,
            reply_type,
            timeout,
            true,
        )?;
        let replies = replies.iter().map(|r| PyBytes::new(py, r)).collect();
        Ok((replies, failed, unanswered))
    }

    /// A pull subscription on a C ABI pull receiver: `recv` waits on the bus-side queue itself
    /// (no delivery thread), so `capacity` and `policy` apply to that one queue.
    #[pyo3(signature = (type_id, capacity=0, policy=0, label=None, spin_us=0, pattern=None, with_topic=false))]
    #[allow(clippy::too_many_arguments)]
    fn open_receiver(
        &self,
        py: Python<'_>,
        type_id: u16,
        capacity: u32,
        policy: u32,
        label: Option<&str>,
        spin_us: u32,
        pattern: Option<&str>,
        with_topic: bool,
    ) -> PyResult<NativeReceiver> {
        let settings =
            SubscribeSettings::new(capacity, policy, 0, spin_us, label)?.with_pattern(pattern)?;
        let bound = if capacity == 0 {
            DEFAULT_CAPACITY
        } else {
            capacity as usize
        };
        let result = (|| -> CallResult<Arc<PullReceiver>> {
            let guard = self.core.enter()?;
            let opts = settings.to_options()?;
            let mut id = 0u64;
            // SAFETY: the guard keeps the handle valid; `opts` (and the label it points to) are
            // valid for the call; `id` is writable.
            check(unsafe { mycelium_receiver_open(guard.ptr(), type_id, &opts, &mut id) })?;
            let receiver = Arc::new(PullReceiver::new(id, bound, with_topic));
            self.core.register_receiver(receiver.clone());
            Ok(receiver)
        })();
        let receiver = result.py_err(py)?;
        Ok(NativeReceiver::new(self.core.clone(), receiver))
    }

    /// An asyncio stream's queue: a delivery thread fills a Rust-side queue and writes to a
    /// pipe whose read end (`fileno()`) becomes readable on new messages.
    #[pyo3(signature = (type_id, capacity=0, policy=0, label=None, spin_us=0, pattern=None, with_topic=false))]
    #[allow(clippy::too_many_arguments)]
    fn subscribe_stream(
        &self,
        py: Python<'_>,
        type_id: u16,
        capacity: u32,
        policy: u32,
        label: Option<&str>,
        spin_us: u32,
        pattern: Option<&str>,
        with_topic: bool,
    ) -> PyResult<NativeStream> {
        let settings =
            SubscribeSettings::new(capacity, policy, 0, spin_us, label)?.with_pattern(pattern)?;
        let notifier = Notifier::new()
            .map_err(|e| PyOSError::new_err(format!("could not create the wake-up pipe: {e}")))?;
        let bound = if capacity == 0 {
            DEFAULT_CAPACITY
        } else {
            capacity as usize
        };
        let drop_oldest = policy == mycelium_overflow_policy::MYCELIUM_OVERFLOW_DROP_OLDEST as u32;
        let topics_from = match with_topic {
            true => Some(self.core.enter().map_err(|f| f.into_pyerr(py))?.ptr() as *const _),
            false => None,
        };
        let shared = QueueShared::new(bound, drop_oldest, notifier, topics_from);
        let closure = shared.closure();
        let result = (|| -> CallResult<u64> {
            let guard = self.core.enter()?;
            let id = subscribe_closure(&guard, type_id, &settings, &closure)?;
            self.core.register_queue(id, shared.clone());
            Ok(id)
        })();
        match result {
            Ok(id) => Ok(NativeStream::new(self.core.clone(), id, shared)),
            Err(failure) => {
                // SAFETY: the closure came from `QueueShared::closure` and the subscribe failed.
                unsafe { QueueShared::reclaim(&closure) };
                Err(failure.into_pyerr(py))
            }
        }
    }

    /// Listens on `address` ("unix:/path" or "tcp:127.0.0.1:PORT") and bridges this bus to every
    /// peer that connects; `socket_mode` 0 keeps the default 0600 for a Unix socket.
    #[pyo3(signature = (address, token=None, socket_mode=0))]
    fn listen(
        &self,
        py: Python<'_>,
        address: &str,
        token: Option<&str>,
        socket_mode: u32,
    ) -> PyResult<NativeBridge> {
        bridge::open(py, &self.core, Side::Listen, address, token, socket_mode)
    }

    /// Connects to a listening peer at `address` (reconnecting in the background); wait on the
    /// returned bridge for the session.
    #[pyo3(signature = (address, token=None))]
    fn connect(
        &self,
        py: Python<'_>,
        address: &str,
        token: Option<&str>,
    ) -> PyResult<NativeBridge> {
        bridge::open(py, &self.core, Side::Connect, address, token, 0)
    }

    /// Waits until messages published before the call were handled by this runtime's
    /// subscriptions, or raises TimedOutError. Ctrl-C interrupts it.
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let deadline = deadline_after(timeout)?;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_SLICE);
            let core = &self.core;
            let result = detach(py, || {
                let g = core.enter()?;
                // SAFETY: the guard keeps the handle valid for the call.
                check(unsafe { mycelium_flush(g.ptr(), slice.as_millis() as u32) })
            });
            match result {
                Err(Failure::Status { code, .. })
                    if code == mycelium_status::MYCELIUM_ERR_TIMEOUT as u32
                        && Instant::now() < deadline =>
                {
                    py.check_signals()?;
                }
                Err(Failure::Status { code, .. })
                    if code == mycelium_status::MYCELIUM_ERR_TIMEOUT as u32 =>
                {
                    return Err(Failure::Timeout(format!(
                        "deliveries still pending after {timeout} s"
                    ))
                    .into_pyerr(py));
                }
                other => return other.py_err(py),
            }
        }
    }

    /// The bus metrics as JSON text.
    fn metrics_json(&self, py: Python<'_>) -> PyResult<String> {
        let result = (|| read_text(&self.core.enter()?, mycelium_metrics_json))();
        result.py_err(py)
    }

    /// Counts publishes per topic in the metrics, up to `max_topics` topics (0: off).
    fn enable_topic_metrics(&self, py: Python<'_>, max_topics: u32) -> PyResult<()> {
        let result = (|| {
            let guard = self.core.enter()?;
            // SAFETY: the guard keeps the handle valid for the call.
            check(unsafe {
                mycelium_ffi::exports::mycelium_enable_topic_metrics(guard.ptr(), max_topics)
            })
        })();
        result.py_err(py)
    }

    /// The bus metrics in the Prometheus text format.
    fn metrics_prometheus(&self, py: Python<'_>) -> PyResult<String> {
        let result = (|| read_text(&self.core.enter()?, mycelium_metrics_prometheus))();
        result.py_err(py)
    }

    /// Closes the bus itself for every handle (later publishes anywhere fail). Rarely what an
    /// attached adapter wants; `close` only releases this handle.
    fn close_bus(&self, py: Python<'_>) -> PyResult<()> {
        let result = (|| {
            let g = self.core.enter()?;
            // SAFETY: the guard keeps the handle valid for the call.
            check(unsafe { mycelium_runtime_close(g.ptr()) })
        })();
        result.py_err(py)
    }

    /// Ends every subscription of this handle (waiting for running callbacks) and releases it.
    /// From inside a callback it returns at once and a helper thread finishes the job.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let core = &self.core;
        if in_callback() {
            return core.close_in_background().py_err(py);
        }
        detach(py, || core.close()).py_err(py)
    }
}

impl Drop for NativeRuntime {
    fn drop(&mut self) {
        if self.core.is_closed() {
            return;
        }
        let core = &self.core;
        // Dropped by the garbage collector with the GIL held: release it, since closing waits
        // for callbacks that need it.
        let closed = Python::try_attach(|py| detach(py, || core.close()));
        if closed.is_none() {
            let _ = core.close();
        }
    }
}

/// `timeout` seconds from now; rejects negative and non-finite values.
pub(crate) fn deadline_after(timeout: f64) -> PyResult<Instant> {
    let wait = Duration::try_from_secs_f64(timeout).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be a finite number of seconds >= 0, not {timeout}"
        ))
    })?;
    Ok(Instant::now()
        .checked_add(wait)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)))
}

/// The context of `publish`'s wait hooks. `saved` first: `release_gil` and `reacquire_gil`
/// use the context as a pointer to it.
#[repr(C)]
pub(crate) struct PublishWait {
    /// The thread state `release_gil` saved.
    pub(crate) saved: *mut pyo3::ffi::PyThreadState,
    /// The runtime published on: a wait for room ends when it closes, since its close waits
    /// for this very call (a queue of another handle onto the same bus may never drain). Also
    /// the context of a request's wait (`service.rs`).
    pub(crate) core: *const RuntimeCore,
}

impl PublishWait {
    pub(crate) fn new(core: &RuntimeCore) -> PublishWait {
        PublishWait {
            saved: std::ptr::null_mut(),
            core,
        }
    }

    /// Hooks for a C ABI call that may wait (a publish on a full Block queue, a request): the
    /// GIL is released while it waits, and Ctrl-C or the runtime's close end the wait. `self`
    /// must stay in place until that call returns.
    pub(crate) fn hooks(&mut self) -> mycelium_wait_hooks {
        mycelium_wait_hooks {
            context: (self as *mut PublishWait).cast(),
            before_wait: Some(release_gil),
            after_wait: Some(reacquire_gil),
            keep_waiting: Some(check_signals),
            ..mycelium_wait_hooks::default()
        }
    }
}

/// `before_wait` of `publish`: releases the GIL, keeping the thread state in `context`.
///
/// # Safety
/// `context` points to the publishing frame's `PublishWait`; the calling thread
/// holds the GIL (the library calls it on the publishing thread, before it waits).
unsafe extern "C" fn release_gil(context: *mut c_void) {
    // SAFETY: per the contract above; `reacquire_gil` restores the state before `publish`
    // returns to Python code, and nothing touches Python objects in between.
    unsafe { *context.cast::<*mut pyo3::ffi::PyThreadState>() = pyo3::ffi::PyEval_SaveThread() };
}

/// `keep_waiting` of `publish`: gives up at once if the runtime is closing (without touching
/// Python); else, with the GIL taken back for a moment, runs pending signal handlers (only the
/// main thread has any); a handler's exception (KeyboardInterrupt) stays set in this thread's
/// state for `publish` to raise, and ends the wait.
///
/// # Safety
/// `context` is the `PublishWait` `release_gil` filled on this same thread, which holds no GIL
/// now.
unsafe extern "C" fn check_signals(context: *mut c_void) -> c_int {
    let wait = context.cast::<PublishWait>();
    // SAFETY: `core` points to the runtime core `publish` borrows for the whole call.
    if unsafe { &*(*wait).core }.is_closed() {
        return 0;
    }
    let slot = context.cast::<*mut pyo3::ffi::PyThreadState>();
    // Parked for good instead of re-taking the GIL once the interpreter is exiting.
    let token = retake_or_hang();
    // SAFETY: per the contract above: the state `release_gil` saved is restored, and saved
    // again before returning, so the pair stays balanced for `reacquire_gil`.
    unsafe { pyo3::ffi::PyEval_RestoreThread(*slot) };
    drop(token);
    // SAFETY: this thread holds the GIL; the call only runs signal handlers.
    let interrupted = unsafe { pyo3::ffi::PyErr_CheckSignals() } != 0;
    // SAFETY: this thread holds the GIL, as SaveThread requires.
    unsafe { *slot = pyo3::ffi::PyEval_SaveThread() };
    c_int::from(!interrupted)
}

/// `after_wait` of `publish`: takes the GIL back with the state `release_gil` kept.
///
/// # Safety
/// `context` is the slot `release_gil` filled on this same thread.
unsafe extern "C" fn reacquire_gil(context: *mut c_void) {
    // After exit began, taking the GIL here would let CPython end this (daemon) thread inside
    // the library's frames, which aborts the process: the gate parks it instead.
    let token = retake_or_hang();
    // SAFETY: per the contract above; the pair is always called together (C ABI contract).
    unsafe { pyo3::ffi::PyEval_RestoreThread(*context.cast::<*mut pyo3::ffi::PyThreadState>()) };
    drop(token);
}

/// A topic for the C ABI: NUL-terminated, refused if it holds a NUL.
fn topic_cstring(topic: Option<&str>) -> PyResult<Option<CString>> {
    topic
        .map(|t| {
            CString::new(t)
                .map_err(|_| PyValueError::new_err("topic must not contain NUL characters"))
        })
        .transpose()
}

impl NativeRuntime {
    /// One publish (see `publish`), with the GIL held by the caller.
    fn publish_one(
        &self,
        py: Python<'_>,
        type_id: u16,
        payload: &[u8],
        topic: Option<&CString>,
    ) -> PyResult<()> {
        let result = (|| {
            let g = self.core.enter()?;
            let mut wait = PublishWait::new(&self.core);
            let hooks = wait.hooks();
            // SAFETY: `payload` is borrowed from an immutable bytes object held by the caller's
            // frame, valid even while the hooks release the GIL; `hooks` and `wait` outlive the
            // call; this thread holds the GIL, as `release_gil` requires.
            let status = match topic {
                // SAFETY: as above; `topic` is NUL-terminated and outlives the call.
                Some(topic) => unsafe {
                    mycelium_publish_topic(
                        g.ptr(),
                        type_id,
                        topic.as_ptr(),
                        payload.as_ptr(),
                        payload.len(),
                        &hooks,
                    )
                },
                // SAFETY: as above.
                None => unsafe {
                    mycelium_publish_with_hooks(
                        g.ptr(),
                        type_id,
                        payload.as_ptr(),
                        payload.len(),
                        &hooks,
                    )
                },
            };
            match check(status) {
                Err(Failure::Status { code, .. })
                    if code == mycelium_status::MYCELIUM_ERR_TIMEOUT as u32
                        && self.core.is_closed() =>
                {
                    Err(Failure::Closed(
                        "the runtime was closed while this publish waited for room",
                    ))
                }
                other => other,
            }
        })();
        // The exception `check_signals` left set (KeyboardInterrupt, or whatever a signal
        // handler raised) explains the interrupted wait better than the status does.
        if let Some(interrupt) = PyErr::take(py) {
            return Err(interrupt);
        }
        result.py_err(py)
    }
}
