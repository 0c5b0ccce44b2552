//! Callback subscriptions: the C closure that runs Python callables on a delivery thread.
//!
//! Each batch takes the GIL once (`call_batch`), decodes each payload with the message class's
//! native [`Decoder`] (or its `from_bytes`) and calls the user's function. An exception goes to
//! `sys.unraisablehook` and counts as a handler error; delivery goes on with the next message. The closure's `drop` runs
//! on the delivery thread without the GIL; it attaches only while the interpreter is alive and
//! otherwise leaks the callables on purpose (see `lifecycle.rs`).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mycelium_ffi::runtime::mycelium_runtime_t;
use mycelium_ffi::{mycelium_closure, mycelium_message};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::decoder::Decoder;
use crate::lifecycle::{may_retake, python_unavailable};
use crate::thread_state::{keep_thread_state, release_thread_state};

thread_local! {
    /// True while this thread runs Python callbacks of a subscription (see `in_callback`).
    static IN_CALLBACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True when the calling thread is a delivery thread running Python callbacks: blocking there
/// on other threads' progress can deadlock, so `Runtime.close` defers its waiting.
pub(crate) fn in_callback() -> bool {
    IN_CALLBACK.with(|c| c.get())
}

/// How a callback subscription turns a payload into its callback's argument.
enum Decode {
    /// A native [`Decoder`]: reads the lent payload directly, no `bytes` object made first.
    Native(Py<Decoder>),
    /// Any other decoder (a message class's `from_bytes`), called with a `bytes` copy.
    Python(Py<PyAny>),
    /// No decoder: the callback gets the payload bytes themselves.
    Raw,
}

pub(crate) struct CallbackContext {
    callback: Py<PyAny>,
    /// Turns the payload into the object handed to `callback`.
    decode: Decode,
    /// Set when the subscription is closed; checked before each message of a batch so that a
    /// callback closing its own subscription sees no further call.
    closed: Arc<AtomicBool>,
    /// `with_topic=True`: the handle (its address) to ask `mycelium_message_topic` with, and
    /// the callback gets the topic as a second argument. A handle's header is never freed by
    /// the library (destroyed ones are kept), so asking with it stays safe after a close.
    topics_from: Option<usize>,
}

impl CallbackContext {
    pub(crate) fn new(
        py: Python<'_>,
        callback: Py<PyAny>,
        decoder: Option<Py<PyAny>>,
        closed: Arc<AtomicBool>,
    ) -> Self {
        let decode = match decoder {
            None => Decode::Raw,
            Some(d) => match d.bind(py).cast::<Decoder>() {
                Ok(native) => Decode::Native(native.clone().unbind()),
                Err(_) => Decode::Python(d),
            },
        };
        CallbackContext {
            callback,
            decode,
            closed,
            topics_from: None,
        }
    }

    /// Hands the callback each message's topic (`None` for none) as a second argument, asked of
    /// the library through the handle at `rt`.
    pub(crate) fn with_topics_from(mut self, rt: Option<*mut mycelium_runtime_t>) -> Self {
        self.topics_from = rt.map(|rt| rt as usize);
        self
    }

    /// The C closure owning `self`; the library calls `drop` exactly once after a successful
    /// subscribe.
    pub(crate) fn into_closure(self) -> mycelium_closure {
        mycelium_closure {
            context: Box::into_raw(Box::new(self)).cast(),
            call: None,
            call_batch: Some(callback_call_batch),
            drop: Some(callback_drop),
        }
    }

    /// Takes the context back when `mycelium_subscribe` failed (the library then never calls
    /// `drop`). Call with the GIL held.
    ///
    /// # Safety
    /// `closure` must come from [`CallbackContext::into_closure`] and must not have been passed
    /// to a successful `mycelium_subscribe`.
    pub(crate) unsafe fn reclaim(closure: &mycelium_closure) -> CallbackContext {
        // SAFETY: per the contract above the context is an unconsumed `Box::into_raw`.
        *unsafe { Box::from_raw(closure.context.cast::<CallbackContext>()) }
    }

    fn deliver(&self, py: Python<'_>, messages: &[mycelium_message]) -> usize {
        let callback = self.callback.bind(py);
        let mut failed = 0;
        for m in messages {
            if self.closed.load(Ordering::SeqCst) {
                break;
            }
            let outcome = (|| {
                let arg = match &self.decode {
                    Decode::Native(native) => native.get().decode(py, payload(m))?,
                    Decode::Python(decode) => {
                        decode.bind(py).call1((PyBytes::new(py, payload(m)),))?
                    }
                    Decode::Raw => PyBytes::new(py, payload(m)).into_any(),
                };
                match self.topics_from {
                    Some(rt) => {
                        let topic = crate::receiver::topic_of(rt as *const _, m)
                            .map_err(|failure| failure.into_pyerr(py))?;
                        callback.call1((arg, topic))
                    }
                    None => callback.call1((arg,)),
                }
            })();
            if let Err(err) = outcome {
                // Nobody up the stack could handle it (we are on a delivery thread), so it goes
                // where Python reports such errors; the count shows up as handler errors.
                err.write_unraisable(py, Some(callback));
                failed += 1;
            }
        }
        failed
    }
}

fn payload(m: &mycelium_message) -> &[u8] {
    if m.payload.is_null() || m.len == 0 {
        &[]
    } else {
        // SAFETY: the C ABI guarantees `payload` points to `len` bytes valid during the callback;
        // the slice is decoded, or copied into a Python bytes object, before the callback returns.
        unsafe { std::slice::from_raw_parts(m.payload, m.len) }
    }
}

unsafe extern "C" fn callback_call_batch(
    context: *mut c_void,
    messages: *const mycelium_message,
    count: usize,
) -> usize {
    if messages.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: `context` is the box from `into_closure`, alive until `callback_drop`, and only
    // this subscription's delivery thread calls us, one batch at a time.
    let ctx = unsafe { &*context.cast::<CallbackContext>() };
    // SAFETY: the C ABI passes `count` valid messages that live for the duration of this call.
    let batch = unsafe { std::slice::from_raw_parts(messages, count) };
    if python_unavailable() {
        return count;
    }
    // Held until this thread is attached, so the exit hook cannot let finalization start
    // between the check and the attach (see `lifecycle::may_retake`).
    let Some(token) = may_retake() else {
        return count;
    };
    keep_thread_state();
    IN_CALLBACK.with(|c| c.set(true));
    let failed = Python::try_attach(|py| {
        drop(token);
        ctx.deliver(py, batch)
    })
    .unwrap_or(count);
    IN_CALLBACK.with(|c| c.set(false));
    failed
}

unsafe extern "C" fn callback_drop(context: *mut c_void) {
    // SAFETY: called exactly once by the C ABI with the box from `into_closure`.
    let ctx = unsafe { Box::from_raw(context.cast::<CallbackContext>()) };
    release_python_objects(*ctx);
    // The delivery thread runs no Python after its closure is dropped.
    release_thread_state();
}

/// Drops Python references from a thread that may not hold the GIL: attaches if the interpreter
/// is alive, else leaks them (a few objects at exit beat a crash during finalization).
pub(crate) fn release_python_objects<T>(value: T) {
    let mut slot = Some(value);
    if !python_unavailable() {
        if let Some(token) = may_retake() {
            let _ = Python::try_attach(|_py| {
                drop(token);
                drop(slot.take())
            });
        }
    }
    if let Some(leaked) = slot.take() {
        std::mem::forget(leaked);
    }
}
