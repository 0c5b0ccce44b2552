//! Ctrl-C (or SIGTERM) ends the run early but cleanly: the market stops, the pipeline drains,
//! the report is printed. A second one kills the process as usual.

use std::sync::atomic::{AtomicBool, Ordering};

pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // Only an atomic store: anything else is not async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Installs the SIGINT and SIGTERM handler (once; later signals get the default action,
/// SA_RESETHAND). Returns false if the system refused, in which case they simply kill the demo.
pub fn install() -> bool {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only does
    // an atomic store, which is async-signal-safe; the pointers passed live across the call.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()) == 0
            && libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()) == 0
    }
}
