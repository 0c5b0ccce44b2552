//! The Python classes for live subscriptions: `NativeSubscription` (callbacks) and
//! `NativeStream` (asyncio: a queue a delivery thread fills, plus a wake-up descriptor). Pull
//! queues are `NativeReceiver` (`pull_queue.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mycelium_ffi::exports::mycelium_subscription_stats_get;
use mycelium_ffi::{mycelium_status, mycelium_subscription_stats};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::core::RuntimeCore;
use crate::failure::{Failure, IntoPyResult};
use crate::lifecycle::detach;
use crate::queue::QueueShared;

/// A callback subscription. It stays live until `close()` or the runtime's close, whether or
/// not this object is kept.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeSubscription {
    core: Arc<RuntimeCore>,
    id: u64,
    closed: Arc<AtomicBool>,
}

impl NativeSubscription {
    pub(crate) fn new(core: Arc<RuntimeCore>, id: u64, closed: Arc<AtomicBool>) -> Self {
        NativeSubscription { core, id, closed }
    }
}

#[pymethods]
impl NativeSubscription {
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.core.is_closed()
    }

    /// Ends the subscription: when this returns the callback is not running (unless called from
    /// that callback itself) and will not be called again; the callable has been released.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // In a forked child there is nothing to end (the delivery thread lives in the parent):
        // a no-op, as `Runtime.close()` is there.
        if !self.core.is_current_process() {
            return Ok(());
        }
        let (core, id) = (&self.core, self.id);
        detach(py, || core.unsubscribe(id)).py_err(py)
    }
}

/// An asyncio stream's queue (`Runtime.stream`): filled by a delivery thread, which wakes the
/// event loop through a pipe.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeStream {
    core: Arc<RuntimeCore>,
    id: u64,
    shared: Arc<QueueShared>,
    closed: AtomicBool,
    /// The bus-side drop count of this subscription when last read; kept once the
    /// subscription is gone (the bus forgets its counters then).
    bus_dropped: AtomicU64,
}

impl NativeStream {
    pub(crate) fn new(core: Arc<RuntimeCore>, id: u64, shared: Arc<QueueShared>) -> Self {
        NativeStream {
            core,
            id,
            shared,
            closed: AtomicBool::new(false),
            bus_dropped: AtomicU64::new(0),
        }
    }

    /// Messages the bus-side queue of this subscription did not hand to the delivery thread
    /// (DROP_OLDEST evictions while the delivery thread was behind, FAIL refusals): read from
    /// the subscription's own counters while it lives, the last figure read afterwards.
    fn bus_dropped(&self) -> u64 {
        if !self.closed.load(Ordering::SeqCst) {
            if let Ok(guard) = self.core.enter() {
                let mut stats = mycelium_subscription_stats {
                    struct_size: std::mem::size_of::<mycelium_subscription_stats>() as u32,
                    ..Default::default()
                };
                // SAFETY: the guard keeps the handle valid; `stats` is writable with its size set.
                let status =
                    unsafe { mycelium_subscription_stats_get(guard.ptr(), self.id, &mut stats) };
                if status == mycelium_status::MYCELIUM_OK {
                    self.bus_dropped.fetch_max(stats.dropped, Ordering::SeqCst);
                }
            }
        }
        self.bus_dropped.load(Ordering::SeqCst)
    }

    fn close_inner(&self) -> Result<(), Failure> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        // The last figure before the bus forgets it (drops after this read and before the
        // unsubscribe below are not counted: the queue is being abandoned anyway).
        self.bus_dropped();
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // A forked child: the delivery thread and the queue's lock holders live only in the
        // parent; closing there is a no-op, as `Runtime.close()` is.
        if !self.core.is_current_process() {
            return Ok(());
        }
        // Wake the delivery thread first: it may be waiting for room, and unsubscribe joins it.
        self.shared.close_consumer();
        self.core.unsubscribe(self.id)
    }
}

#[pymethods]
impl NativeStream {
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// True when nothing is queued and nothing more will arrive.
    #[getter]
    fn finished(&self) -> bool {
        self.shared.is_finished()
    }

    /// Messages this stream did not get: evictions under DROP_OLDEST from its own queue (the
    /// event loop was behind) plus those of its bus-side queue (its delivery thread was
    /// behind), and FAIL refusals there.
    #[getter]
    fn dropped(&self) -> u64 {
        self.shared.dropped() + self.bus_dropped()
    }

    /// Up to `max` queued payloads without waiting (an empty list when none are queued).
    #[pyo3(signature = (max=256))]
    fn recv_many<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        self.core.check_process().py_err(py)?;
        let items = self.shared.take_many(max);
        Ok(items.iter().map(|(d, _)| PyBytes::new(py, d)).collect())
    }

    /// `recv_many` with each message's topic (`None` without one): for a stream opened with
    /// `with_topic=True` (always `None` otherwise).
    #[pyo3(signature = (max=256))]
    #[allow(clippy::type_complexity)]
    fn recv_many_with_topic<'py>(
        &self,
        py: Python<'py>,
        max: usize,
    ) -> PyResult<Vec<(Bound<'py, PyBytes>, Option<String>)>> {
        self.core.check_process().py_err(py)?;
        let items = self.shared.take_many(max);
        Ok(items
            .into_iter()
            .map(|(d, topic)| (PyBytes::new(py, &d), topic))
            .collect())
    }

    /// The read end of the wake-up pipe (for `loop.add_reader`).
    fn fileno(&self) -> i32 {
        self.shared.notifier().read_fd()
    }

    /// Empties the wake-up pipe; call from the reader callback before taking messages.
    fn drain_notifications(&self) {
        self.shared.notifier().drain();
    }

    /// Ends the subscription; messages still queued can be taken until `finished`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detach(py, || self.close_inner()).py_err(py)
    }
}

impl Drop for NativeStream {
    fn drop(&mut self) {
        // A queue nobody can read would eventually stall Block-policy publishers: end it.
        if self.closed.load(Ordering::SeqCst)
            || self.core.is_closed()
            || !self.core.is_current_process()
        {
            return;
        }
        let this = &*self;
        if Python::try_attach(|py| detach(py, || this.close_inner())).is_none() {
            let _ = this.close_inner();
        }
    }
}
