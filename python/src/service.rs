//! Request/reply (C ABI 1.3): `NativeService` (a responder running a Python handler) and the
//! blocking `request` / `request_all` of `NativeRuntime`.
//!
//! A handler runs on the responder's own thread, one request at a time, taking the GIL as a
//! subscription callback does (`callback.rs`). It gets the request payload as bytes and returns
//! the reply payload as bytes (the typed layer in `_runtime.py` decodes and encodes); an
//! exception, or anything but bytes, fails the request with the exception's text, which the
//! requester receives in its `ResponderFailedError`, and the responder goes on serving.
//!
//! A request waits without the GIL (a responder in this process may need it), through the same
//! wait hooks as `publish`, so Ctrl-C ends it with KeyboardInterrupt.

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mycelium_ffi::exports::{
    mycelium_reply_fail, mycelium_reply_write, mycelium_request, mycelium_request_all,
    mycelium_serve,
};
use mycelium_ffi::service::{mycelium_reply_writer, mycelium_service_closure};
use mycelium_ffi::{mycelium_message, mycelium_status};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::callback::release_python_objects;
use crate::core::RuntimeCore;
use crate::failure::{check, CallResult, Failure, IntoPyResult};
use crate::lifecycle::{detach, may_retake, python_unavailable};
use crate::runtime::PublishWait;
use crate::thread_state::{keep_thread_state, release_thread_state};

/// What a responder's C closure owns.
pub(crate) struct ServeContext {
    handler: Py<PyAny>,
    /// Set by `close()` and by the runtime's close: requests still reaching the handler fail
    /// without calling Python.
    closed: Arc<AtomicBool>,
}

impl ServeContext {
    fn into_closure(self) -> mycelium_service_closure {
        mycelium_service_closure {
            context: Box::into_raw(Box::new(self)).cast(),
            call: Some(serve_call),
            drop: Some(serve_drop),
        }
    }

    /// Takes the context back after `mycelium_serve` failed (the library never calls `drop`
    /// then).
    ///
    /// # Safety
    /// `closure` must come from [`ServeContext::into_closure`] and not have been passed to a
    /// successful `mycelium_serve`.
    unsafe fn reclaim(closure: &mycelium_service_closure) -> ServeContext {
        // SAFETY: per the contract above the context is an unconsumed `Box::into_raw`.
        *unsafe { Box::from_raw(closure.context.cast::<ServeContext>()) }
    }

    /// Runs the handler on `request`: the reply payload, or why the request failed.
    fn answer(&self, py: Python<'_>, request: &[u8]) -> Result<Vec<u8>, String> {
        let result = self
            .handler
            .bind(py)
            .call1((PyBytes::new(py, request),))
            .map_err(|e| {
                let text = e.to_string();
                tracing::warn!("a serve handler raised: {text}");
                text
            })?;
        let bytes = result.cast::<PyBytes>().map_err(|_| {
            format!(
                "the handler returned {}, not the reply's bytes",
                result
                    .get_type()
                    .name()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string())
            )
        })?;
        Ok(bytes.as_bytes().to_vec())
    }
}

/// Fails the request with `reason` and returns the handler's "failed" status.
///
/// # Safety
/// `reply` is the writer of the running handler call.
unsafe fn fail(reply: *mut mycelium_reply_writer, reason: &str) -> i32 {
    // SAFETY: per the contract above; `reason` is valid for the call (the library copies it).
    unsafe { mycelium_reply_fail(reply, reason.as_ptr().cast(), reason.len()) };
    1
}

unsafe extern "C" fn serve_call(
    context: *mut c_void,
    request: *const mycelium_message,
    reply: *mut mycelium_reply_writer,
) -> i32 {
    // SAFETY: `context` is the box from `into_closure`, alive until `serve_drop`; only this
    // responder's thread calls us, one request at a time.
    let ctx = unsafe { &*context.cast::<ServeContext>() };
    if request.is_null() {
        // SAFETY: `reply` is this call's writer.
        return unsafe { fail(reply, "no request") };
    }
    // SAFETY: the C ABI passes a message valid for the duration of this call.
    let request = unsafe { &*request };
    let payload: &[u8] = if request.payload.is_null() || request.len == 0 {
        &[]
    } else {
        // SAFETY: `payload` points to `len` bytes valid during the call; copied into a Python
        // bytes object before the handler runs.
        unsafe { std::slice::from_raw_parts(request.payload, request.len) }
    };
    if ctx.closed.load(Ordering::SeqCst) || python_unavailable() {
        // SAFETY: `reply` is this call's writer.
        return unsafe { fail(reply, "the service is closing") };
    }
    let Some(token) = may_retake() else {
        // SAFETY: `reply` is this call's writer.
        return unsafe { fail(reply, "the Python interpreter is exiting") };
    };
    keep_thread_state();
    let answered = Python::try_attach(|py| {
        drop(token);
        ctx.answer(py, payload)
    })
    .unwrap_or_else(|| Err("the Python interpreter is exiting".to_owned()));
    match answered {
        Ok(bytes) => {
            // SAFETY: `reply` is this call's writer; `bytes` is valid for the call.
            let status = unsafe { mycelium_reply_write(reply, bytes.as_ptr(), bytes.len()) };
            if status == mycelium_status::MYCELIUM_OK {
                0
            } else {
                // SAFETY: as above.
                unsafe {
                    fail(
                        reply,
                        &format!("the handler's reply was refused: {}", last_error()),
                    )
                }
            }
        }
        // SAFETY: `reply` is this call's writer.
        Err(reason) => unsafe { fail(reply, &reason) },
    }
}

fn last_error() -> String {
    // SAFETY: mycelium_last_error never returns NULL; the string is copied at once.
    unsafe { std::ffi::CStr::from_ptr(mycelium_ffi::exports::mycelium_last_error()) }
        .to_string_lossy()
        .into_owned()
}

unsafe extern "C" fn serve_drop(context: *mut c_void) {
    // SAFETY: called exactly once by the C ABI with the box from `into_closure`.
    let ctx = unsafe { Box::from_raw(context.cast::<ServeContext>()) };
    release_python_objects(*ctx);
    // The responder thread runs no Python after its closure is dropped.
    release_thread_state();
}

/// Starts a responder of (`request_type`, `reply_type`) running `handler`.
pub(crate) fn serve(
    py: Python<'_>,
    core: &Arc<RuntimeCore>,
    request_type: u16,
    reply_type: u16,
    handler: Bound<'_, PyAny>,
    capacity: u32,
    label: Option<&str>,
) -> PyResult<NativeService> {
    let label = label
        .map(|l| {
            CString::new(l)
                .map_err(|_| PyValueError::new_err("label must not contain NUL characters"))
        })
        .transpose()?;
    let closed = Arc::new(AtomicBool::new(false));
    let closure = ServeContext {
        handler: handler.unbind(),
        closed: closed.clone(),
    }
    .into_closure();
    let result = (|| -> CallResult<u64> {
        let guard = core.enter()?;
        let mut id = 0u64;
        // SAFETY: the guard keeps the handle valid; `label` (or NULL) and `closure` are valid
        // for the call; `id` is writable.
        check(unsafe {
            mycelium_serve(
                guard.ptr(),
                request_type,
                reply_type,
                capacity,
                label.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
                &closure,
                &mut id,
            )
        })?;
        core.register_callback(id, closed.clone());
        Ok(id)
    })();
    match result {
        Ok(id) => Ok(NativeService {
            core: core.clone(),
            id,
            closed,
        }),
        Err(failure) => {
            // SAFETY: the closure came from `into_closure` and the serve failed.
            drop(unsafe { ServeContext::reclaim(&closure) });
            Err(failure.into_pyerr(py))
        }
    }
}

/// A responder running a Python handler. It serves until `close()` or the runtime's close,
/// whether or not this object is kept.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeService {
    core: Arc<RuntimeCore>,
    id: u64,
    closed: Arc<AtomicBool>,
}

#[pymethods]
impl NativeService {
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.core.is_closed()
    }

    /// Stops serving: new requests no longer reach it, queued ones fail, and (unless called
    /// from its own handler) the handler is not running when this returns. Without the GIL.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if !self.core.is_current_process() {
            return Ok(());
        }
        let (core, id) = (&self.core, self.id);
        detach(py, || core.unserve(id)).py_err(py)
    }
}

/// Collects replies on the requesting thread (`on_reply` runs there, with the GIL held again).
unsafe extern "C" fn collect_reply(context: *mut c_void, message: *const mycelium_message) -> i32 {
    if message.is_null() {
        return 0;
    }
    // SAFETY: `context` is the requesting frame's `Vec<Vec<u8>>`; `message` is valid for the
    // call and its payload is copied here.
    unsafe {
        let replies = &mut *context.cast::<Vec<Vec<u8>>>();
        let m = &*message;
        replies.push(if m.payload.is_null() || m.len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(m.payload, m.len).to_vec()
        });
    }
    0
}

/// The timeout in whole milliseconds the C ABI takes (below `MYCELIUM_WAIT_FOREVER`).
fn timeout_ms(timeout: f64) -> PyResult<u32> {
    if !(timeout.is_finite() && timeout >= 0.0) {
        return Err(PyValueError::new_err(format!(
            "timeout must be a finite number of seconds >= 0, not {timeout}"
        )));
    }
    Ok((timeout * 1000.0).ceil().min(f64::from(u32::MAX - 1)) as u32)
}

/// `request` (`all` false: the first successful reply) or `request_all` (every reply, with
/// the counts of failed and unanswered responders).
pub(crate) fn request(
    py: Python<'_>,
    core: &RuntimeCore,
    request_type: u16,
    payload: &[u8],
    reply_type: u16,
    timeout: f64,
    all: bool,
) -> PyResult<(Vec<Vec<u8>>, usize, usize)> {
    let timeout_ms = timeout_ms(timeout)?;
    let result = (|| -> CallResult<(Vec<Vec<u8>>, usize, usize)> {
        let g = core.enter()?;
        let mut wait = PublishWait::new(core);
        let hooks = wait.hooks();
        let mut replies: Vec<Vec<u8>> = Vec::new();
        let context = (&mut replies as *mut Vec<Vec<u8>>).cast::<c_void>();
        let (mut failed, mut unanswered) = (0usize, 0usize);
        // SAFETY: `payload` is borrowed from a bytes object the caller's frame holds, valid
        // while the hooks release the GIL; `hooks`, `wait`, `replies` and the counters outlive
        // the call; this thread holds the GIL, as `release_gil` requires; `collect_reply` runs
        // on this thread.
        let status = unsafe {
            if all {
                mycelium_request_all(
                    g.ptr(),
                    request_type,
                    payload.as_ptr(),
                    payload.len(),
                    reply_type,
                    timeout_ms,
                    &hooks,
                    Some(collect_reply),
                    context,
                    &mut failed,
                    &mut unanswered,
                )
            } else {
                mycelium_request(
                    g.ptr(),
                    request_type,
                    payload.as_ptr(),
                    payload.len(),
                    reply_type,
                    timeout_ms,
                    &hooks,
                    Some(collect_reply),
                    context,
                )
            }
        };
        match check(status) {
            Err(Failure::Status { code, .. })
                if code == mycelium_status::MYCELIUM_ERR_TIMEOUT as u32 && core.is_closed() =>
            {
                Err(Failure::Closed(
                    "the runtime was closed while this request waited",
                ))
            }
            Err(other) => Err(other),
            Ok(()) => Ok((replies, failed, unanswered)),
        }
    })();
    // A Ctrl-C (or another signal handler's exception) ended the wait: raise that.
    if let Some(interrupt) = PyErr::take(py) {
        return Err(interrupt);
    }
    result.py_err(py)
}
