//! Process-wide state that decides whether Python may still be touched from a delivery thread:
//! interpreter shutdown and `fork()`.
//!
//! Delivery threads are not Python threads. If one tries to take the GIL after the interpreter
//! started finalizing, CPython ends that thread with `pthread_exit`, which unwinds through Rust
//! frames and aborts the process. So every place that attaches from a delivery thread asks
//! [`python_unavailable`] first; the `atexit` hook installed by `mycelium_native` closes every
//! live runtime (joining their delivery threads) before it sets the shutdown flag, so no
//! callback is running by the time finalization starts.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();
static ATFORK_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Marks the interpreter as shutting down: from now on delivery threads leave Python objects
/// alone (leaking them rather than risking a crash) and no runtime may be created.
pub(crate) fn mark_shutting_down() {
    SHUTTING_DOWN.store(true, Ordering::SeqCst);
}

pub(crate) fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::SeqCst)
}

type IsFinalizingFn = unsafe extern "C" fn() -> c_int;

/// CPython's "is the interpreter finalizing" query. The abi3 build cannot name it (it is public
/// only since 3.13, `_Py_IsFinalizing` before), so it is looked up in the running process.
fn is_finalizing_fn() -> Option<IsFinalizingFn> {
    static FOUND: OnceLock<Option<IsFinalizingFn>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for name in [c"Py_IsFinalizing", c"_Py_IsFinalizing"] {
            // SAFETY: dlsym with RTLD_DEFAULT only reads the process's symbol tables; `name` is
            // NUL-terminated.
            let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            if !sym.is_null() {
                // SAFETY: both CPython functions have the signature `int (void)`.
                return Some(unsafe {
                    std::mem::transmute::<*mut libc::c_void, IsFinalizingFn>(sym)
                });
            }
        }
        None
    })
}

/// True when a delivery thread must not attach to the interpreter.
pub(crate) fn python_unavailable() -> bool {
    if shutting_down() {
        return true;
    }
    match is_finalizing_fn() {
        // SAFETY: the function takes no arguments and only reads interpreter state.
        Some(f) => unsafe { f() != 0 },
        None => false,
    }
}

extern "C" fn after_fork_in_child() {
    // Only an atomic store: the child of a multi-threaded process may run async-signal-safe
    // code only until it execs.
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Installs the fork hook once; runtimes remember the generation they were made in.
pub(crate) fn install_fork_hook() {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only performs an atomic add; no prepare/parent hooks.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        // Without the hook `ProcessStamp::is_current` compares process ids instead, which costs
        // a system call per check but is just as correct.
        ATFORK_INSTALLED.store(rc == 0, Ordering::SeqCst);
    });
}

/// Where and when (in fork generations) a runtime was created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessStamp {
    generation: u64,
    pid: u32,
}

impl ProcessStamp {
    pub(crate) fn now() -> ProcessStamp {
        ProcessStamp {
            generation: FORK_GENERATION.load(Ordering::SeqCst),
            pid: std::process::id(),
        }
    }

    /// True when this process is the one the stamp was taken in.
    pub(crate) fn is_current(&self) -> bool {
        if ATFORK_INSTALLED.load(Ordering::Relaxed) {
            self.generation == FORK_GENERATION.load(Ordering::SeqCst)
        } else {
            self.pid == std::process::id()
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }
}
