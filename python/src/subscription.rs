//! The Python classes for live subscriptions: `NativeSubscription` (callbacks) and
//! `NativeQueue` (pull: `recv`, `try_recv`, and a wake-up descriptor for asyncio).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::core::RuntimeCore;
use crate::failure::{Failure, IntoPyResult};
use crate::queue::{QueueShared, Take};
use crate::runtime::{deadline_after, SIGNAL_SLICE};

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
        py.detach(|| core.unsubscribe(id)).py_err(py)
    }
}

/// A pull subscription's queue.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeQueue {
    core: Arc<RuntimeCore>,
    id: u64,
    shared: Arc<QueueShared>,
    closed: AtomicBool,
}

impl NativeQueue {
    pub(crate) fn new(core: Arc<RuntimeCore>, id: u64, shared: Arc<QueueShared>) -> Self {
        NativeQueue {
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

    fn finished_error() -> Failure {
        Failure::Closed("the subscription is closed and its queue is drained")
    }
}

#[pymethods]
impl NativeQueue {
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

    fn __len__(&self) -> usize {
        self.shared.len()
    }

    /// The next payload, waiting up to `timeout` seconds (forever if None). Raises
    /// TimedOutError, or ClosedError once the queue is closed and drained. Waits without the
    /// GIL in slices of at most 100 ms, checking for Ctrl-C in between.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        self.core.check_process().py_err(py)?;
        let deadline = timeout.map(deadline_after).transpose()?;
        loop {
            let now = Instant::now();
            let slice_end = match deadline {
                Some(d) => d.min(now + SIGNAL_SLICE),
                None => now + SIGNAL_SLICE,
            };
            let shared = &self.shared;
            match py.detach(|| shared.take_until(slice_end)) {
                Take::Message(data) => return Ok(PyBytes::new(py, &data)),
                Take::Finished => return Err(Self::finished_error().into_pyerr(py)),
                Take::Empty => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        let waited = timeout.unwrap_or_default();
                        return Err(Failure::Timeout(format!("no message within {waited} s"))
                            .into_pyerr(py));
                    }
                }
            }
        }
    }

    /// The next payload if one is queued, else None (also once finished; see `finished`).
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        self.core.check_process().py_err(py)?;
        Ok(match self.shared.try_take() {
            Take::Message(data) => Some(PyBytes::new(py, &data)),
            Take::Empty | Take::Finished => None,
        })
    }

    /// Up to `max` queued payloads without waiting (an empty list when none are queued).
    #[pyo3(signature = (max=256))]
    fn recv_many<'py>(&self, py: Python<'py>, max: usize) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        self.core.check_process().py_err(py)?;
        let items = self.shared.take_many(max);
        Ok(items.iter().map(|d| PyBytes::new(py, d)).collect())
    }

    /// The read end of the wake-up pipe (for `loop.add_reader`), or -1 without one.
    fn fileno(&self) -> i32 {
        self.shared.notifier().map_or(-1, |n| n.read_fd())
    }

    /// Empties the wake-up pipe; call from the reader callback before taking messages.
    fn drain_notifications(&self) {
        if let Some(n) = self.shared.notifier() {
            n.drain();
        }
    }

    /// Ends the subscription; messages still queued can be taken until `finished`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.close_inner()).py_err(py)
    }
}

impl Drop for NativeQueue {
    fn drop(&mut self) {
        // A queue nobody can read would eventually stall Block-policy publishers: end it.
        if self.closed.load(Ordering::SeqCst)
            || self.core.is_closed()
            || !self.core.is_current_process()
        {
            return;
        }
        let this = &*self;
        if Python::try_attach(|py| py.detach(|| this.close_inner())).is_none() {
            let _ = this.close_inner();
        }
    }
}
