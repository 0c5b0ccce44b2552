//! The Python classes for live subscriptions: `NativeSubscription` (callbacks) and
//! `NativeStream` (asyncio: a queue a delivery thread fills, plus a wake-up descriptor). Pull
//! queues are `NativeReceiver` (`pull_queue.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
}

impl NativeStream {
    pub(crate) fn new(core: Arc<RuntimeCore>, id: u64, shared: Arc<QueueShared>) -> Self {
        NativeStream {
            core,
            id,
            shared,
            closed: AtomicBool::new(false),
        }
    }

    fn close_inner(&self) -> Result<(), Failure> {
        if self.closed.swap(true, Ordering::SeqCst) {
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

    /// Messages evicted from this queue under DROP_OLDEST because the consumer fell behind
    /// (drops on the bus side show in the runtime's metrics).
    #[getter]
    fn dropped(&self) -> u64 {
        self.shared.dropped()
    }

    /// Up to `max` queued payloads without waiting (an empty list when none are queued).
    #[pyo3(signature = (max=256))]
    fn recv_many<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        self.core.check_process().py_err(py)?;
        let items = self.shared.take_many(max);
        Ok(items.iter().map(|d| PyBytes::new(py, d)).collect())
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
