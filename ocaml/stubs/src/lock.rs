//! Releasing the OCaml runtime lock around calls that may block.
//!
//! A C ABI call that waits (publish into a full `Block` queue, unsubscribe, flush, destroy) may be
//! waiting for a delivery thread, and delivery threads need the runtime lock to run OCaml
//! callbacks. Holding the lock across such a call would deadlock, so the stubs give it up first.

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
