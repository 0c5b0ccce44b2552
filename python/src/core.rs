//! `RuntimeCore`: one owned C ABI handle plus what makes it safe to close while other Python
//! threads and delivery threads still use it.
//!
//! `mycelium_runtime_destroy` must not run concurrently with other calls on the same handle. A
//! read-write lock would do, but a writer waiting for the lock would then stall a callback that
//! publishes while another thread's publish waits for that very callback's queue to drain. So
//! calls are counted instead ([`RuntimeCore::enter`]): closing first refuses new calls, wakes
//! everything this adapter itself may be blocking (pull receivers, stream queues, mid-batch
//! callbacks), waits for the in-flight calls to return, and only then destroys the handle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use mycelium_ffi::exports::{mycelium_runtime_destroy, mycelium_unsubscribe};
use mycelium_ffi::mycelium_runtime_t;
use parking_lot::Mutex;

use crate::failure::{check, CallResult, Failure};
use crate::lifecycle::ProcessStamp;
use crate::queue::QueueShared;
use crate::receiver::PullReceiver;

/// Every runtime core that may still own a handle, so the interpreter-exit hook can close them.
static LIVE: Mutex<Vec<Weak<RuntimeCore>>> = Mutex::new(Vec::new());

/// What closing must wake or stop, per live subscription made through this core.
#[derive(Default)]
struct Subscriptions {
    /// Callback subscriptions: the flag a batch checks before each message.
    callbacks: HashMap<u64, Arc<AtomicBool>>,
    /// asyncio streams: their queues, whose producers may be waiting for room.
    queues: HashMap<u64, Arc<QueueShared>>,
    /// Pull receivers: a Python thread may be waiting in one (holding a call in flight).
    receivers: HashMap<u64, Arc<PullReceiver>>,
}

pub(crate) struct RuntimeCore {
    /// The handle this core owns; NULL once destroyed.
    handle: AtomicPtr<mycelium_runtime_t>,
    /// Refuses new calls once set; see the module doc.
    closing: AtomicBool,
    /// Calls between [`RuntimeCore::enter`] and the drop of their guard.
    in_flight: AtomicUsize,
    subscriptions: Mutex<Subscriptions>,
    stamp: ProcessStamp,
}

/// Proof that a call is in flight; the handle stays valid while it lives.
pub(crate) struct CallGuard<'a> {
    core: &'a RuntimeCore,
    ptr: *mut mycelium_runtime_t,
}

impl CallGuard<'_> {
    pub(crate) fn ptr(&self) -> *mut mycelium_runtime_t {
        self.ptr
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.core.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RuntimeCore {
    /// Takes ownership of `handle` (made by `mycelium_runtime_create` or `_clone`).
    pub(crate) fn adopt(handle: *mut mycelium_runtime_t) -> Arc<RuntimeCore> {
        let core = Arc::new(RuntimeCore {
            handle: AtomicPtr::new(handle),
            closing: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            subscriptions: Mutex::new(Subscriptions::default()),
            stamp: ProcessStamp::now(),
        });
        let mut live = LIVE.lock();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&core));
        core
    }

    pub(crate) fn is_current_process(&self) -> bool {
        self.stamp.is_current()
    }

    /// Fails with the used-after-fork error in a child process.
    pub(crate) fn check_process(&self) -> CallResult {
        if self.stamp.is_current() {
            Ok(())
        } else {
            Err(Failure::UsedAfterFork {
                parent: self.stamp.pid(),
                child: std::process::id(),
            })
        }
    }

    /// Starts a call on the handle, or fails if the runtime is closing or was inherited
    /// through `fork()`.
    pub(crate) fn enter(&self) -> CallResult<CallGuard<'_>> {
        self.check_process()?;
        // Increment first, then look at `closing`: with `close` storing `closing` first and then
        // reading the count (all SeqCst), one of the two always sees the other.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = CallGuard {
            core: self,
            ptr: self.handle.load(Ordering::SeqCst),
        };
        if self.closing.load(Ordering::SeqCst) || guard.ptr.is_null() {
            return Err(Failure::Closed("the runtime is closed"));
        }
        Ok(guard)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn address(&self) -> CallResult<usize> {
        Ok(self.enter()?.ptr() as usize)
    }

    /// Registration happens while the subscribing call is still in flight, so `close` (which
    /// waits for in-flight calls before its last wake-up pass) cannot miss a subscription.
    pub(crate) fn register_callback(&self, id: u64, flag: Arc<AtomicBool>) {
        self.subscriptions.lock().callbacks.insert(id, flag);
    }

    pub(crate) fn register_queue(&self, id: u64, queue: Arc<QueueShared>) {
        self.subscriptions.lock().queues.insert(id, queue);
    }

    pub(crate) fn register_receiver(&self, receiver: Arc<PullReceiver>) {
        self.subscriptions
            .lock()
            .receivers
            .insert(receiver.id(), receiver);
    }

    /// Ends a pull receiver (see [`PullReceiver::close`]). A runtime that is closing ends it
    /// itself, and so does one that is already closed, so neither is an error.
    pub(crate) fn close_receiver(&self, receiver: &PullReceiver) -> CallResult {
        let result = match self.enter() {
            // SAFETY: the guard keeps the handle that opened the receiver alive for the call.
            Ok(guard) => unsafe { receiver.close(guard.ptr()) },
            Err(Failure::Closed(_)) => Ok(()),
            Err(other) => Err(other),
        };
        // Until the receive in progress finished the close, the runtime's close must still be
        // able to wake it.
        if receiver.is_bus_done() {
            self.forget_receiver(receiver.id());
        }
        result
    }

    /// Drops the registration of a receiver nobody can use any more.
    pub(crate) fn forget_receiver(&self, id: u64) {
        self.subscriptions.lock().receivers.remove(&id);
    }

    /// Ends one subscription. A runtime that is already closed has ended it already, so that
    /// is not an error. Blocks until its callback returns: call without the GIL.
    pub(crate) fn unsubscribe(&self, id: u64) -> CallResult {
        {
            let mut subs = self.subscriptions.lock();
            subs.callbacks.remove(&id);
            subs.queues.remove(&id);
            subs.receivers.remove(&id);
        }
        let guard = match self.enter() {
            Ok(g) => g,
            Err(Failure::Closed(_)) => return Ok(()),
            Err(other) => return Err(other),
        };
        // SAFETY: the guard keeps the handle alive and valid for the call.
        check(unsafe { mycelium_unsubscribe(guard.ptr(), id) })
    }

    /// Stops responder `id` (`NativeService.close`), as [`unsubscribe`](Self::unsubscribe)
    /// ends a subscription. Blocks until its handler returns: call without the GIL.
    pub(crate) fn unserve(&self, id: u64) -> CallResult {
        self.subscriptions.lock().callbacks.remove(&id);
        let guard = match self.enter() {
            Ok(g) => g,
            Err(Failure::Closed(_)) => return Ok(()),
            Err(other) => return Err(other),
        };
        // SAFETY: the guard keeps the handle alive and valid for the call.
        check(unsafe { mycelium_ffi::exports::mycelium_unserve(guard.ptr(), id) })
    }

    /// Stops mid-batch callbacks, releases delivery threads waiting for room in stream queues
    /// and wakes threads waiting in pull receivers, so that destroying the handle (which joins
    /// those delivery threads, and waits for calls in flight) cannot wait forever.
    fn wake_subscriptions(&self) {
        let subs = self.subscriptions.lock();
        for flag in subs.callbacks.values() {
            flag.store(true, Ordering::SeqCst);
        }
        for queue in subs.queues.values() {
            queue.close_consumer();
        }
        let ptr = self.handle.load(Ordering::SeqCst);
        for receiver in subs.receivers.values() {
            if ptr.is_null() {
                receiver.abandon();
                continue;
            }
            // SAFETY: only the closing thread destroys the handle, after this pass, so it is
            // valid here; closing a receiver neither blocks nor calls back into Python.
            if let Err(e) = unsafe { receiver.close_now(ptr) } {
                tracing::warn!(
                    receiver = receiver.id(),
                    "closing a pull receiver with its runtime failed: {e}"
                );
            }
        }
    }

    /// Destroys the handle (see the module doc for the order of things). Blocks until running
    /// callbacks return: call without the GIL. Only the first call does the work; later or
    /// concurrent calls return at once, because waiting for the first could deadlock (the first
    /// closer joins the delivery thread a callback may be closing from). In a forked child the
    /// handle is leaked on purpose, since the threads it would join do not exist there.
    pub(crate) fn close(&self) -> CallResult {
        if self.begin_close() {
            self.finish_close()
        } else {
            Ok(())
        }
    }

    /// `close` for a caller that is itself a callback of some runtime: refuses new calls and
    /// wakes what this adapter blocks right away, and leaves the waiting and destroying to a
    /// helper thread. Waiting here could deadlock: another thread's publish may be blocked on
    /// the full queue of the very callback that is closing.
    pub(crate) fn close_in_background(self: &Arc<Self>) -> CallResult {
        if !self.begin_close() {
            return Ok(());
        }
        let core = self.clone();
        std::thread::Builder::new()
            .name("mycelium-py-close".into())
            .spawn(move || {
                if let Err(e) = core.finish_close() {
                    tracing::error!("closing a runtime from a callback failed: {e}");
                }
            })
            .map(drop)
            .map_err(|e| Failure::Status {
                code: mycelium_ffi::mycelium_status::MYCELIUM_ERR_INVALID_ARGUMENT as u32,
                message: format!(
                    "could not start the thread that finishes closing the runtime: {e}"
                ),
            })
    }

    /// Marks the runtime closed; true for the one caller that must then `finish_close`.
    fn begin_close(&self) -> bool {
        if self.closing.swap(true, Ordering::SeqCst) {
            return false;
        }
        if self.stamp.is_current() {
            self.wake_subscriptions();
        }
        true
    }

    fn finish_close(&self) -> CallResult {
        if !self.stamp.is_current() {
            // A forked child: the delivery threads and any call that was in flight at fork time
            // exist only in the parent, so there is nothing to wait for and nothing to destroy.
            self.handle.store(std::ptr::null_mut(), Ordering::SeqCst);
            return Ok(());
        }
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            // Closing is rare and the calls it waits for are short once their queues were woken
            // above; polling keeps the hot path free of a lock.
            std::thread::sleep(Duration::from_millis(1));
        }
        // Again for subscriptions registered by calls that were still in flight above.
        self.wake_subscriptions();
        let ptr = self.handle.swap(std::ptr::null_mut(), Ordering::SeqCst);
        {
            let mut subs = self.subscriptions.lock();
            subs.callbacks.clear();
            subs.queues.clear();
            subs.receivers.clear();
        }
        if ptr.is_null() {
            return Ok(());
        }
        // SAFETY: `ptr` was owned by this core, no call is in flight and none can start, so
        // destroying it here is the single, final use.
        check(unsafe { mycelium_runtime_destroy(ptr) })
    }
}

impl Drop for RuntimeCore {
    fn drop(&mut self) {
        // Normally already closed by the Python object's drop; this covers cores kept alive by
        // a subscription object that outlived its runtime object.
        let _ = self.close();
    }
}

/// Closes every runtime of this process that is still open (the interpreter-exit hook).
/// Call without the GIL. Returns how many were closed.
pub(crate) fn close_all_live() -> usize {
    let cores: Vec<Arc<RuntimeCore>> = LIVE.lock().drain(..).filter_map(|w| w.upgrade()).collect();
    let mut closed = 0;
    for core in cores {
        if !core.is_closed() && core.stamp.is_current() {
            if let Err(e) = core.close() {
                // Standard error, not `tracing`: at exit the thread that forwards records to
                // `logging` may never run again (lifecycle::close_gate).
                eprintln!("mycelium_native: closing a runtime at exit failed: {e}");
            }
            closed += 1;
        }
    }
    closed
}
