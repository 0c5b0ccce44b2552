//! `mycelium_wait_hooks`: what `mycelium_publish_with_hooks` calls around a wait for room.
//!
//! A foreign runtime that holds a global lock while it runs (CPython's GIL, OCaml's runtime
//! lock) must not hold it while a publish waits for a consumer: that consumer may need the
//! lock to make room. Releasing it around every publish is safe but costs a lock hand-off per
//! message (Python -> Python throughput roughly halves). With these hooks the caller keeps the
//! lock on the fast path and the library asks it to let go only when the publish must wait.

use std::ffi::{c_int, c_void};

use mycelium_transport::WaitHooks;

use crate::sized::SizedOptions;
use crate::status::{mycelium_status::MYCELIUM_ERR_INVALID_ARGUMENT, FfiError, FfiResult};

/// Hooks for `mycelium_publish_with_hooks`. Initialise with `mycelium_wait_hooks_init`.
///
/// Both functions run on the publishing thread, each at most once per publish and always as a
/// pair: `before_wait(context)` right before the publish first waits for room in a full
/// `MYCELIUM_OVERFLOW_BLOCK` queue, `after_wait(context)` after its last wait, before the
/// publish returns. They must not unwind and should do nothing but release and re-acquire the
/// caller's own lock (calling back into this library from them is not supported).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
pub struct mycelium_wait_hooks {
    /// `sizeof(mycelium_wait_hooks)` as the caller was compiled with.
    pub struct_size: u32,
    /// Passed to both functions; owned by the caller.
    pub context: *mut c_void,
    /// Called before the first wait; NULL only together with `after_wait`.
    pub before_wait: Option<unsafe extern "C" fn(context: *mut c_void)>,
    /// Called after the last wait; NULL only together with `before_wait`.
    pub after_wait: Option<unsafe extern "C" fn(context: *mut c_void)>,
    /// Since ABI 1.2; may be NULL (the default: wait until there is room). Called about every
    /// 100 ms while the publish waits, between `before_wait` and `after_wait`, on the
    /// publishing thread, with the caller's lock released; it may re-take that lock for the
    /// duration of the call (e.g. to look for a pending signal) and must release it again
    /// before returning. Return non-zero to go on waiting, 0 to give up: the subscribers whose
    /// queues had room keep the message, each full `MYCELIUM_OVERFLOW_BLOCK` subscriber still
    /// waited for counts it as dropped, and the publish returns `MYCELIUM_ERR_TIMEOUT`.
    pub keep_waiting: Option<unsafe extern "C" fn(context: *mut c_void) -> c_int>,
}

impl Default for mycelium_wait_hooks {
    fn default() -> Self {
        mycelium_wait_hooks {
            struct_size: std::mem::size_of::<mycelium_wait_hooks>() as u32,
            context: std::ptr::null_mut(),
            before_wait: None,
            after_wait: None,
            keep_waiting: None,
        }
    }
}

// SAFETY: `#[repr(C)]`, `struct_size: u32` first; the other fields are a raw pointer and
// nullable function pointers (`Option<fn>`), valid for every bit pattern a C caller can store
// there (NULL or the address of a function with that signature).
unsafe impl SizedOptions for mycelium_wait_hooks {
    /// New in ABI 1.1, without `keep_waiting` (appended in 1.2).
    const MIN_SIZE: usize = std::mem::offset_of!(mycelium_wait_hooks, keep_waiting);
    const NAME: &'static str = "mycelium_wait_hooks";
    const INIT: &'static str = "mycelium_wait_hooks_init";
}

/// The caller's hooks, checked, as the bus's [`WaitHooks`].
pub(crate) struct ForeignHooks {
    context: *mut c_void,
    before: unsafe extern "C" fn(*mut c_void),
    after: unsafe extern "C" fn(*mut c_void),
    keep_waiting: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
}

impl ForeignHooks {
    /// `None` when the caller gave no functions (plain publish).
    pub(crate) fn new(h: &mycelium_wait_hooks) -> FfiResult<Option<ForeignHooks>> {
        match (h.before_wait, h.after_wait) {
            (None, None) if h.keep_waiting.is_none() => Ok(None),
            (Some(before), Some(after)) => Ok(Some(ForeignHooks {
                context: h.context,
                before,
                after,
                keep_waiting: h.keep_waiting,
            })),
            (None, None) if h.keep_waiting.is_some() => Err(FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "hooks.keep_waiting needs hooks.before_wait and hooks.after_wait",
            )),
            _ => Err(FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "hooks.before_wait and hooks.after_wait must both be set or both be NULL",
            )),
        }
    }
}

impl WaitHooks for ForeignHooks {
    fn before_wait(&mut self) {
        // SAFETY: the caller's function for its own context, called on the publishing thread
        // as documented; a non-unwinding `extern "C"` function.
        unsafe { (self.before)(self.context) }
    }

    fn after_wait(&mut self) {
        // SAFETY: as in `before_wait`.
        unsafe { (self.after)(self.context) }
    }

    fn keep_waiting(&mut self) -> bool {
        match self.keep_waiting {
            // SAFETY: as in `before_wait`; called only between `before_wait` and `after_wait`.
            Some(keep_waiting) => unsafe { keep_waiting(self.context) != 0 },
            None => true,
        }
    }

    fn may_give_up(&self) -> bool {
        self.keep_waiting.is_some()
    }
}
