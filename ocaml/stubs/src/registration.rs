//! Registering foreign threads (delivery threads, and any thread that releases a subscription's
//! root) with the OCaml runtime for exactly as long as they live.
//!
//! The registration has to be undone when the thread exits, or OCaml 4.13 keeps the thread's
//! descriptor, its memprof context and its status block forever: that was ~400 bytes per
//! subscribe/close cycle (issue #12 item 14: 20 000 cycles grew RSS by 7.8 MiB; valgrind showed
//! one `caml_thread_new_info` block per thread ever registered, all still linked in the
//! runtime's thread list). The unregistration used to be a pthread key destructor, which never
//! worked: glibc clears every thread-specific value of lower-numbered keys (OCaml's
//! `thread_descriptor_key`, created first) before it calls a later key's destructor, so
//! `caml_c_thread_unregister` found no descriptor and returned without doing anything. Rust's
//! thread-local destructors run before any pthread key destructor (glibc's
//! `__cxa_thread_atexit_impl`), while OCaml's key still holds the descriptor, so the guard here
//! unregisters properly. What OCaml 4.13 still leaks after a proper unregistration (the thread's
//! memprof context, 80 bytes) the C file frees itself.

use std::cell::Cell;
use std::ffi::{c_int, c_void};

/// What a registration made here must release when it ends (mirrors
/// `mycelium_ml_registration` in the C file); null fields release nothing.
#[repr(C)]
#[derive(Clone, Copy)]
struct Resources {
    /// The alternate signal stack given to the thread (see the C file: item 13).
    altstack: *mut c_void,
    /// The memprof context OCaml 4.13's `caml_c_thread_unregister` forgets to free.
    memprof_ctx: *mut c_void,
}

const NONE: Resources = Resources {
    altstack: std::ptr::null_mut(),
    memprof_ctx: std::ptr::null_mut(),
};

extern "C" {
    /// `ocaml/stubs/c/mycelium_native_threads.c`: registers the calling thread and gives it an
    /// alternate signal stack; 1 (and `resources`) when this call registered it, 0 when the
    /// runtime already knew the thread. Runtime lock not held.
    fn mycelium_ml_thread_register(resources: *mut Resources) -> c_int;
    /// Unregisters the calling thread and releases `resources`. Runtime lock not held.
    fn mycelium_ml_thread_unregister(resources: *const Resources);
}

/// This thread's registration, if this module made it.
struct Registration {
    /// `Some` once registered here.
    ours: Cell<Option<Resources>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(resources) = self.ours.take() {
            // SAFETY: this thread was registered by `mycelium_ml_thread_register`, which gave
            // `resources`; the thread is exiting, runs no more OCaml code and does not hold the
            // runtime lock (every caller releases it before returning).
            unsafe { mycelium_ml_thread_unregister(&resources) };
        }
    }
}

thread_local! {
    static REGISTRATION: Registration = const { Registration { ours: Cell::new(None) } };
}

/// Runs `f` on a thread registered with the OCaml runtime, registering this one first if needed;
/// a registration made here lasts until the thread exits. Runtime lock not held.
pub fn registered<T>(f: impl FnOnce() -> T) -> T {
    let registered_here = REGISTRATION.try_with(|r| {
        if r.ours.get().is_none() {
            let mut resources = NONE;
            // SAFETY: runtime lock not held (per the function contract). A thread the runtime
            // already knows answers 0 and is left alone: asking again next time is cheap, and
            // keeps working if whoever registered it unregisters it.
            if unsafe { mycelium_ml_thread_register(&mut resources) } == 1 {
                r.ours.set(Some(resources));
            }
        }
    });
    if registered_here.is_ok() {
        return f();
    }
    // This thread's thread-locals are being destroyed (a destructor running after ours): a
    // registration for the duration of `f` only.
    let mut resources = NONE;
    // SAFETY: as above.
    let temporary = unsafe { mycelium_ml_thread_register(&mut resources) } == 1;
    let result = f();
    if temporary {
        // SAFETY: registered just above by this thread; `f` has returned, so no OCaml code of
        // this thread is running and the lock is not held.
        unsafe { mycelium_ml_thread_unregister(&resources) };
    }
    result
}
