//! `NativeReceiver`: the Python class of a pull queue (`Runtime.subscription`), on a C ABI pull
//! receiver (see `receiver.rs`).

use std::sync::Arc;
use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::core::RuntimeCore;
use crate::failure::{CallResult, Failure, IntoPyResult};
use crate::lifecycle::detach;
use crate::receiver::{PullReceiver, Pulled, Received};
use crate::runtime::{deadline_after, SIGNAL_SLICE};

/// A pull subscription's queue.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeReceiver {
    core: Arc<RuntimeCore>,
    receiver: Arc<PullReceiver>,
}

impl NativeReceiver {
    pub(crate) fn new(core: Arc<RuntimeCore>, receiver: Arc<PullReceiver>) -> Self {
        NativeReceiver { core, receiver }
    }

    fn finished_error() -> Failure {
        Failure::Closed("the subscription is closed and its queue is drained")
    }

    /// The next message, waiting up to `timeout` seconds (see `recv`).
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Pulled> {
        self.core.check_process().py_err(py)?;
        let deadline = timeout.map(deadline_after).transpose()?;
        // A message already buffered comes without releasing the GIL; so does one already
        // queued on the bus while the consumer is behind (a GIL hand-off saved per batch).
        if let Some(m) = self.receiver.pop_buffered() {
            return Ok(m);
        }
        if self.receiver.is_behind() {
            if let Received::Message(m) = self.receive_until(None).py_err(py)? {
                return Ok(m);
            }
        }
        loop {
            let now = Instant::now();
            let slice_end = match deadline {
                Some(d) => d.min(now + SIGNAL_SLICE),
                None => now + SIGNAL_SLICE,
            };
            match detach(py, || self.receive_until(Some(slice_end))).py_err(py)? {
                Received::Message(m) => return Ok(m),
                Received::Finished => return Err(Self::finished_error().into_pyerr(py)),
                Received::Empty => {
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

    /// The next message if one is queued (see `try_recv`).
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Pulled>> {
        self.core.check_process().py_err(py)?;
        // A receive that does not wait can keep the GIL.
        Ok(match self.receive_until(None).py_err(py)? {
            Received::Message(m) => Some(m),
            Received::Empty | Received::Finished => None,
        })
    }

    /// One receive on the handle, waiting until `until` (`None`: not at all). Blocks when given
    /// a deadline: call without the GIL then. Once the runtime is closed only buffered
    /// messages are left.
    fn receive_until(&self, until: Option<Instant>) -> CallResult<Received> {
        match self.core.enter() {
            // SAFETY: the guard keeps the handle that opened the receiver alive for the call.
            Ok(guard) => unsafe { self.receiver.receive(guard.ptr(), until) },
            Err(Failure::Closed(_)) => Ok(self
                .receiver
                .pop_buffered()
                .map_or(Received::Finished, Received::Message)),
            Err(other) => Err(other),
        }
    }
}

#[pymethods]
impl NativeReceiver {
    #[getter]
    fn id(&self) -> u64 {
        self.receiver.id()
    }

    /// True when nothing is queued and nothing more will arrive.
    #[getter]
    fn finished(&self) -> bool {
        self.receiver.is_finished()
    }

    /// Messages the bus did not deliver to this queue (see `MessageQueue.dropped`).
    #[getter]
    fn dropped(&self) -> u64 {
        match self.core.enter() {
            // SAFETY: the guard keeps the handle that opened the receiver alive for the call.
            Ok(guard) => unsafe { self.receiver.dropped(guard.ptr()) },
            // SAFETY: NULL is allowed: only the figure kept at the end is read.
            Err(_) => unsafe { self.receiver.dropped(std::ptr::null()) },
        }
    }

    /// Messages waiting (counted up to the capacity).
    fn __len__(&self) -> usize {
        match self.core.enter() {
            // SAFETY: the guard keeps the handle that opened the receiver alive for the call.
            Ok(guard) => unsafe { self.receiver.len(guard.ptr()) },
            Err(_) => self.receiver.buffered_len(),
        }
    }

    /// The next payload, waiting up to `timeout` seconds (forever if None). Raises
    /// TimedOutError, or ClosedError once the queue is closed and drained. Waits without the
    /// GIL in slices of at most 100 ms, checking for Ctrl-C in between.
    #[pyo3(signature = (timeout=None))]
    fn recv<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyBytes>> {
        let m = self.next(py, timeout)?;
        Ok(PyBytes::new(py, &m.payload))
    }

    /// `recv` with the message's topic (`None` without one): for a receiver opened with
    /// `with_topic=True` (always `None` otherwise).
    #[pyo3(signature = (timeout=None))]
    fn recv_with_topic<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<(Bound<'py, PyBytes>, Option<String>)> {
        let m = self.next(py, timeout)?;
        Ok((PyBytes::new(py, &m.payload), m.topic))
    }

    /// The next payload if one is queued, else None (also once finished; see `finished`).
    fn try_recv<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self.try_next(py)?.map(|m| PyBytes::new(py, &m.payload)))
    }

    /// `try_recv` with the message's topic (see `recv_with_topic`).
    fn try_recv_with_topic<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyBytes>, Option<String>)>> {
        Ok(self
            .try_next(py)?
            .map(|m| (PyBytes::new(py, &m.payload), m.topic)))
    }

    /// Ends the subscription; messages already queued can still be taken until `finished`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        // In a forked child the receiver's locks may be held by threads that exist only in the
        // parent: a no-op, as `Runtime.close()` is there.
        if !self.core.is_current_process() {
            return Ok(());
        }
        self.core.close_receiver(&self.receiver).py_err(py)
    }
}

impl Drop for NativeReceiver {
    fn drop(&mut self) {
        // In a forked child the runtime's locks may have been held by threads that do not
        // exist there: touch nothing.
        if !self.core.is_current_process() {
            return;
        }
        // A queue nobody can read would eventually stall Block-policy publishers: end it. No
        // other thread can be receiving from it, so the close completes here.
        if !self.receiver.is_bus_done() && !self.core.is_closed() {
            if let Err(e) = self.core.close_receiver(&self.receiver) {
                tracing::warn!(
                    receiver = self.receiver.id(),
                    "closing a dropped pull receiver failed: {e}"
                );
            }
        }
        self.core.forget_receiver(self.receiver.id());
    }
}
