//! Releasing the OCaml runtime lock around calls that may block.
//!
//! A C ABI call that waits (publish into a full `Block` queue, unsubscribe, flush, destroy) may be
//! waiting for a delivery thread, and delivery threads need the runtime lock to run OCaml
//! callbacks. Holding the lock across such a wait would deadlock, so the stubs give it up: for
//! the entire call ([`without_runtime_lock`]), or, for publish, only while it actually waits
//! ([`releasing_while_waiting`]), since a publish that finds room never waits.

use std::cell::Cell;
use std::ffi::c_void;

use mycelium_ffi::mycelium_wait_hooks;

extern "C" {
    /// OCaml runtime (`caml/signals.h`, public since 4.13 and in OCaml 5): gives the runtime
    /// lock up like `caml_enter_blocking_section`, but without first running pending signal
    /// handlers. Those are OCaml code that may raise, and an exception must not unwind through
    /// the library's frames (the wait hooks must not unwind); they run at the next poll point
    /// once the stub has returned, because `caml_leave_blocking_section` marks them pending.
    fn caml_enter_blocking_section_no_pending();
}

/// Runs `f` with the OCaml runtime lock released and takes the lock back afterwards, also if `f`
/// panics (the panic then continues to the stub's `catch_panics`, lock held as OCaml expects).
///
/// `f` must not touch OCaml values: while the lock is released the GC may run on another thread
/// and move or free them. Copy what is needed out of OCaml values before calling this.
pub fn without_runtime_lock<T>(f: impl FnOnce() -> T) -> T {
    struct Reacquire;
    impl Drop for Reacquire {
        fn drop(&mut self) {
            // SAFETY: paired with the `caml_enter_blocking_section` below on the same thread.
            unsafe { ocaml::sys::caml_leave_blocking_section() };
        }
    }
    // SAFETY: every stub runs on a thread registered with the OCaml runtime and holding its lock
    // (an OCaml call into the stub); the guard re-enters before returning to OCaml.
    unsafe { ocaml::sys::caml_enter_blocking_section() };
    let _reacquire = Reacquire;
    f()
}

/// Whether this publish's `before_wait` gave the runtime lock up; on the publishing thread's
/// stack, the hooks' `context`.
struct WaitState {
    released: Cell<bool>,
}

impl Drop for WaitState {
    /// The library always calls the hooks as a pair, before it returns. Should it ever return
    /// in between anyway (a panic inside the wait, caught by its guard), or should `f` unwind,
    /// the lock is taken back here, so the stub never returns to OCaml without it.
    fn drop(&mut self) {
        if self.released.replace(false) {
            // SAFETY: `release_for_wait` gave the lock up on this thread (the hooks run on the
            // publishing thread, which is this one) and nothing took it back yet.
            unsafe { ocaml::sys::caml_leave_blocking_section() };
        }
    }
}

/// `before_wait`: the publish is about to wait for room in a full `Block` queue, whose consumer
/// may be an OCaml callback that needs the runtime lock to make room; give it up.
///
/// # Safety
/// `context` is the `WaitState` of a [`releasing_while_waiting`] call on this thread, which
/// holds the runtime lock (the library calls the hooks on the publishing thread).
unsafe extern "C" fn release_for_wait(context: *mut c_void) {
    // SAFETY: per the function contract the state outlives the publish call that runs this.
    let state = unsafe { &*context.cast::<WaitState>() };
    // `replace`: a second call without `after_wait` in between (never made by the library)
    // must not release a lock this thread no longer holds.
    if !state.released.replace(true) {
        // SAFETY: this thread is registered with the OCaml runtime and holds the lock (per the
        // contract). No OCaml value is touched from here until `reacquire_after_wait`: the
        // library only waits, and it copied the payload (the one OCaml value it was given, by
        // pointer) before calling this hook and never reads it again, so the GC may move or
        // free that string meanwhile. The `_no_pending` variant runs no OCaml signal handler
        // here, so no OCaml code runs and no exception unwinds through the library.
        unsafe { caml_enter_blocking_section_no_pending() };
    }
}

/// `after_wait`: the publish has finished waiting; take the runtime lock back before the stub
/// returns to OCaml.
///
/// # Safety
/// As for [`release_for_wait`].
unsafe extern "C" fn reacquire_after_wait(context: *mut c_void) {
    // SAFETY: as in `release_for_wait`.
    let state = unsafe { &*context.cast::<WaitState>() };
    if state.released.replace(false) {
        // SAFETY: `release_for_wait` gave the lock up on this same thread (the hooks run on the
        // publishing thread); this blocks until the lock is free, taking part in the runtime's
        // usual hand-over, and runs no OCaml code (pending signals are only marked).
        unsafe { ocaml::sys::caml_leave_blocking_section() };
    }
}

/// Calls `f` with wait hooks for `mycelium_publish_with_hooks` that release the runtime lock
/// only while the publish waits for room, and hold it otherwise. Runtime lock held on entry and,
/// also if `f` unwinds, on return.
///
/// Between the two hooks no OCaml value may be used (the GC may run on another thread), so the
/// C call made by `f` must only hand the library data it is done with by `before_wait`: the
/// payload qualifies (the library copies it first), and everything else `f` passes must be
/// Rust data.
pub fn releasing_while_waiting<T>(f: impl FnOnce(&mycelium_wait_hooks) -> T) -> T {
    let state = WaitState {
        released: Cell::new(false),
    };
    let hooks = mycelium_wait_hooks {
        context: std::ptr::from_ref(&state).cast_mut().cast(),
        before_wait: Some(release_for_wait),
        after_wait: Some(reacquire_after_wait),
        ..mycelium_wait_hooks::default()
    };
    let result = f(&hooks);
    drop(state);
    result
}
