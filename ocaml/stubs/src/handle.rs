//! The runtime handle as an OCaml custom block, and its finaliser.
//!
//! The block holds `Mutex<Option<Arc<OwnedHandle>>>`. A stub clones the `Arc` (a few nanoseconds,
//! lock held) and then uses the handle with the runtime lock released; `Runtime.close` takes the
//! `Arc` out, so the C handle is destroyed when the last in-flight call finishes, never under
//! a call that is still using it.
//!
//! A runtime the program forgets to close is destroyed from the block's finaliser. Finalisers run
//! inside the GC with the runtime lock held and must neither block nor run OCaml, while
//! `mycelium_runtime_destroy` blocks until delivery threads finish their callbacks, and those
//! callbacks need the runtime lock. So the finaliser only hands the handle to a short-lived Rust
//! thread that destroys it once the lock is free.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use mycelium_ffi::exports::mycelium_runtime_destroy;
use mycelium_ffi::mycelium_runtime_t;
use mycelium_ffi::mycelium_status::{MYCELIUM_ERR_CLOSED, MYCELIUM_OK};
use ocaml::{Custom, Pointer, Raw};

use crate::reply::{CallError, CallResult};

/// A C handle this adapter owns; destroying it is the only way it ends.
pub struct OwnedHandle(NonNull<mycelium_runtime_t>);

// SAFETY: the C ABI allows every call on a handle from any thread; the pointer is only released
// by `Drop`, which runs once, after every other user of the Arc is gone.
unsafe impl Send for OwnedHandle {}
// SAFETY: as above; shared use only makes C ABI calls that are thread-safe.
unsafe impl Sync for OwnedHandle {}

impl OwnedHandle {
    /// Takes ownership of a handle returned by `mycelium_runtime_create` or `_clone`.
    pub fn new(raw: *mut mycelium_runtime_t) -> Option<Self> {
        NonNull::new(raw).map(OwnedHandle)
    }

    pub fn as_ptr(&self) -> *mut mycelium_runtime_t {
        self.0.as_ptr()
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle is owned (made by create/clone) and this is its only destroy.
        let status = unsafe { mycelium_runtime_destroy(self.0.as_ptr()) };
        if status != MYCELIUM_OK {
            mycelium_ffi::log_forward::report_failure(&format!(
                "destroying a runtime handle failed with {status:?}"
            ));
        }
    }
}

/// What the OCaml custom block holds.
pub struct RuntimeCell {
    handle: Mutex<Option<Arc<OwnedHandle>>>,
}

unsafe extern "C" fn finalize_runtime_cell(v: Raw) {
    // SAFETY: called by the GC exactly once for a block allocated by `RuntimeCell::alloc`.
    let cell = unsafe { v.as_pointer::<RuntimeCell>() };
    // SAFETY: as above; the pointer is the block's payload, written by `Pointer::alloc_custom`.
    let owned = unsafe { &*cell.as_ptr() }.take();
    // SAFETY: the block is unreachable, so nothing reads the cell again; dropping it in place
    // releases the Mutex (the handle, if any, was moved out above).
    unsafe { cell.drop_in_place() };
    if let Some(handle) = owned {
        destroy_later(handle);
    }
}

impl Custom for RuntimeCell {
    ocaml::custom! {
        name: "mycelium.runtime",
        finalize: finalize_runtime_cell
    }
}

static DEFERRED_DESTROYS: AtomicUsize = AtomicUsize::new(0);

/// Handles handed to a background thread by the finaliser and not destroyed yet.
pub fn deferred_destroys_pending() -> usize {
    DEFERRED_DESTROYS.load(Ordering::SeqCst)
}

fn destroy_later(handle: Arc<OwnedHandle>) {
    DEFERRED_DESTROYS.fetch_add(1, Ordering::SeqCst);
    // The handle travels through a channel rather than the closure so that a failed spawn
    // leaves it here instead of dropping (and so destroying) it under the GC.
    let (tx, rx) = mpsc::channel::<Arc<OwnedHandle>>();
    let spawned = std::thread::Builder::new()
        .name("mycelium-ocaml-finaliser".into())
        .spawn(move || {
            if let Ok(handle) = rx.recv() {
                drop(handle);
            }
            DEFERRED_DESTROYS.fetch_sub(1, Ordering::SeqCst);
        });
    match spawned {
        // The receiver lives until it got the handle, so this send cannot fail.
        Ok(_) => drop(tx.send(handle)),
        Err(e) => {
            DEFERRED_DESTROYS.fetch_sub(1, Ordering::SeqCst);
            // Leaking beats blocking inside the GC; only reachable when threads are exhausted.
            std::mem::forget(handle);
            mycelium_ffi::log_forward::report_failure(&format!(
                "could not start a thread to release an unclosed runtime ({e}); it stays open"
            ));
        }
    }
}

impl RuntimeCell {
    /// A new custom block owning `handle`. Lock held.
    pub fn alloc(handle: OwnedHandle) -> Pointer<RuntimeCell> {
        Pointer::alloc_custom(RuntimeCell {
            handle: Mutex::new(Some(Arc::new(handle))),
        })
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<OwnedHandle>>> {
        // The mutex guards a plain Option swap; a poisoned one still holds a valid Option.
        self.handle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A reference to the live handle, or `MYCELIUM_ERR_CLOSED` once closed.
    pub fn get(&self) -> CallResult<Arc<OwnedHandle>> {
        self.slot()
            .clone()
            .ok_or_else(|| CallError::new(MYCELIUM_ERR_CLOSED, "the runtime was closed"))
    }

    /// Takes the handle out; later calls fail with `MYCELIUM_ERR_CLOSED`.
    pub fn take(&self) -> Option<Arc<OwnedHandle>> {
        self.slot().take()
    }
}

/// The `RuntimeCell` inside an OCaml custom block. The lock must be held while the reference is
/// used, since compaction may move the block.
///
/// # Safety
/// `v` must be a block made by [`RuntimeCell::alloc`] (the OCaml type `Ffi.handle` guarantees it).
pub unsafe fn cell<'a>(v: Raw) -> &'a RuntimeCell {
    // SAFETY: per the function contract.
    unsafe { &*v.as_pointer::<RuntimeCell>().as_ptr() }
}
