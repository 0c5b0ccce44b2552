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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use pyo3::marker::Ungil;
use pyo3::Python;

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

/// Threads between "may I take the GIL back?" and having it (see [`retake_or_hang`]).
static RETAKING: AtomicUsize = AtomicUsize::new(0);
/// Set by [`close_gate`]: from then on only the finalizing thread may take the GIL back.
static GATE_CLOSED: AtomicBool = AtomicBool::new(false);
/// The thread that ran the exit hook, i.e. the one finalizing the interpreter.
static FINALIZER: OnceLock<ThreadId> = OnceLock::new();

/// Permission to take the GIL back on this thread; hold it until the GIL is held.
pub(crate) struct Retake(bool);

impl Drop for Retake {
    fn drop(&mut self) {
        if self.0 {
            RETAKING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// True on the thread that finalizes the interpreter: CPython never ends that one, and it must
/// never be parked. Before the exit hook ran, the process's initial thread stands in for it
/// (an interpreter finalized without running atexit hooks is finalized on its main thread).
fn is_finalizer() -> bool {
    match FINALIZER.get() {
        Some(id) => *id == std::thread::current().id(),
        // SAFETY: getpid and gettid take no arguments and cannot fail.
        None => unsafe { libc::gettid() == libc::getpid() },
    }
}

/// Permission to re-attach this thread to the interpreter, or `None` once exit has begun.
///
/// A thread that takes the GIL after finalization started is ended by CPython 3.11-3.13 with
/// `pthread_exit`, which unwinds through the Rust frames on its stack and aborts the process
/// ("FATAL: exception not rethrown"). Checking `Py_IsFinalizing` first is not enough (the main
/// thread may start finalizing between the check and the take), so the check and the take are
/// ordered against the exit hook instead: a thread announces itself in `RETAKING` before it
/// looks at the gate and stays counted until it holds the GIL, and [`close_gate`] (which runs
/// in the `atexit` hook, before CPython marks the interpreter finalizing) closes the gate and
/// then waits, without the GIL, for every announced thread to get it. Whoever looked before the
/// gate closed therefore holds the GIL before finalization can start; whoever looks after sees
/// it closed.
pub(crate) fn may_retake() -> Option<Retake> {
    if is_finalizer() {
        return Some(Retake(false));
    }
    RETAKING.fetch_add(1, Ordering::SeqCst);
    let token = Retake(true);
    if GATE_CLOSED.load(Ordering::SeqCst) || python_unavailable() {
        return None;
    }
    Some(token)
}

/// [`may_retake`] for a thread that must get back to Python code or never return: after exit
/// began it is parked for good (CPython 3.14 does the same to such threads itself), and the
/// process ends around it.
pub(crate) fn retake_or_hang() -> Retake {
    match may_retake() {
        Some(token) => token,
        None => loop {
            std::thread::park();
        },
    }
}

/// `py.detach(f)` that never lets CPython end this thread inside Rust code: after `f`, the GIL
/// is taken back only through [`retake_or_hang`]. Use it instead of `py.detach` in every call
/// a daemon thread can make.
pub(crate) fn detach<T, F>(py: Python<'_>, f: F) -> T
where
    F: Ungil + Send + FnOnce() -> T,
    T: Ungil + Send,
{
    let (value, token) = py.detach(|| {
        let value = f();
        (value, retake_or_hang())
    });
    drop(token);
    value
}

/// Closes the gate of [`may_retake`] and waits until every thread that passed it holds (or
/// held) the GIL. Call without the GIL, from the exit hook, on the finalizing thread.
pub(crate) fn close_gate() {
    let _ = FINALIZER.set(std::thread::current().id());
    GATE_CLOSED.store(true, Ordering::SeqCst);
    while RETAKING.load(Ordering::SeqCst) > 0 {
        // Each of them is waiting only for the GIL, which this thread does not hold.
        std::thread::sleep(Duration::from_millis(1));
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
