//! A Python thread state kept for the life of a delivery thread.
//!
//! Attaching a thread that has no Python thread state makes CPython create one and destroy it
//! again on release: measured here at ~17 µs per batch, which dominated one-message batches
//! (latency-sensitive subscriptions). A delivery thread therefore creates its thread state once,
//! before its first batch, keeps it while it does not hold the GIL, and destroys it when its
//! subscription's closure is dropped (on the same thread, after the last callback). PyO3's
//! `Python::try_attach` then only re-takes the GIL with the existing state.

use std::cell::Cell;

use pyo3::ffi;

use crate::lifecycle::{may_retake, python_unavailable};

thread_local! {
    static KEPT: Cell<Option<(ffi::PyGILState_STATE, *mut ffi::PyThreadState)>> = const { Cell::new(None) };
}

/// Gives the calling (non-Python, not attached) thread a lasting thread state, once.
pub(crate) fn keep_thread_state() {
    if KEPT.with(|k| k.get().is_some()) || python_unavailable() {
        return;
    }
    // SAFETY: this thread is not attached (delivery threads only attach inside `try_attach`,
    // which has returned) and the interpreter is alive; Ensure creates and attaches a thread
    // state, SaveThread releases the GIL while keeping that state registered for this thread.
    let kept = unsafe {
        let gil = ffi::PyGILState_Ensure();
        let state = ffi::PyEval_SaveThread();
        (gil, state)
    };
    KEPT.with(|k| k.set(Some(kept)));
}

/// Destroys the thread state kept by [`keep_thread_state`], if any. Call on the same thread when
/// it will run no more callbacks. While the interpreter shuts down the state is left for it to
/// clean up: re-attaching then could end the thread inside CPython.
pub(crate) fn release_thread_state() {
    let Some((gil, state)) = KEPT.with(|k| k.take()) else {
        return;
    };
    if python_unavailable() {
        return;
    }
    let Some(_token) = may_retake() else {
        return;
    };
    // SAFETY: `state` is this thread's detached thread state from `keep_thread_state`;
    // restoring it re-attaches, and releasing the matching Ensure destroys it and the GIL.
    unsafe {
        ffi::PyEval_RestoreThread(state);
        ffi::PyGILState_Release(gil);
    }
}
