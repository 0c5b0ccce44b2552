//! `NativeBridge`: one socket bridge (`mycelium_bridge_listen` / `_connect`) of a runtime.
//!
//! The bridge lives inside the C ABI handle, so this object only names it by id and enters the
//! runtime's core for every call: after `rt.close()` destroyed the handle (which closes its
//! bridges) the object reports itself closed instead of touching a dangling id.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mycelium_ffi::bridge::mycelium_bridge_options;
use mycelium_ffi::exports::{
    mycelium_bridge_close, mycelium_bridge_connect, mycelium_bridge_listen,
    mycelium_bridge_options_init, mycelium_bridge_stats_json, mycelium_bridge_wait,
};
use mycelium_ffi::mycelium_status;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::core::RuntimeCore;
use crate::failure::{check, CallResult, Failure, IntoPyResult};
use crate::lifecycle::detach;
use crate::runtime::{deadline_after, SIGNAL_SLICE};

const STATUS_TIMEOUT: u32 = mycelium_status::MYCELIUM_ERR_TIMEOUT as u32;

/// Which side of the socket a bridge is.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Listen,
    Connect,
}

fn c_text(what: &str, value: &str) -> PyResult<CString> {
    CString::new(value)
        .map_err(|_| PyValueError::new_err(format!("{what} must not contain NUL characters")))
}

/// Starts a bridge of `core`'s handle; `socket_mode` 0 keeps the library default (0600).
pub(crate) fn open(
    py: Python<'_>,
    core: &Arc<RuntimeCore>,
    side: Side,
    address: &str,
    token: Option<&str>,
    socket_mode: u32,
) -> PyResult<NativeBridge> {
    let address_c = c_text("address", address)?;
    let token_c = token.map(|t| c_text("token", t)).transpose()?;
    // Binding or connecting may take a moment (a TCP connect): no GIL meanwhile.
    let opened = detach(py, || -> CallResult<u64> {
        let g = core.enter()?;
        let mut opts = mycelium_bridge_options::default();
        // SAFETY: `opts` is a valid, writable options struct.
        check(unsafe { mycelium_bridge_options_init(&mut opts) })?;
        opts.socket_mode = socket_mode;
        opts.token = token_c
            .as_ref()
            .map_or(std::ptr::null(), |t| t.as_ptr() as *const c_char);
        let mut id = 0u64;
        let f = match side {
            Side::Listen => mycelium_bridge_listen,
            Side::Connect => mycelium_bridge_connect,
        };
        // SAFETY: the guard keeps the handle valid; `address_c`, `opts` and the token it
        // points to outlive the call; `id` is writable.
        check(unsafe { f(g.ptr(), address_c.as_ptr(), &opts, &mut id) })?;
        Ok(id)
    });
    let id = opened.py_err(py)?;
    Ok(NativeBridge {
        core: core.clone(),
        id,
        closed: AtomicBool::new(false),
    })
}

/// A socket bridge of one runtime.
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct NativeBridge {
    core: Arc<RuntimeCore>,
    id: u64,
    closed: AtomicBool,
}

impl NativeBridge {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.core.is_closed()
    }

    fn check_open(&self) -> CallResult {
        if self.is_closed() {
            Err(Failure::Closed("the bridge is closed"))
        } else {
            Ok(())
        }
    }

    fn stats_text(&self) -> CallResult<String> {
        self.check_open()?;
        let g = self.core.enter()?;
        let mut needed = 0usize;
        // SAFETY: NULL/0 asks only for the size, written to `needed`.
        let _ = unsafe {
            mycelium_bridge_stats_json(g.ptr(), self.id, std::ptr::null_mut(), 0, &mut needed)
        };
        loop {
            let mut buf = vec![0u8; needed.max(1)];
            // SAFETY: `buf` has `buf.len()` writable bytes; `needed` is writable.
            let status = unsafe {
                mycelium_bridge_stats_json(
                    g.ptr(),
                    self.id,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut needed,
                )
            };
            if status == mycelium_status::MYCELIUM_ERR_BUFFER_TOO_SMALL && needed > buf.len() {
                continue; // the counters grew between the two calls
            }
            check(status)?;
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            buf.truncate(end);
            return String::from_utf8(buf).map_err(|e| Failure::Status {
                code: mycelium_status::MYCELIUM_ERR_INVALID_ARGUMENT as u32,
                message: format!("the library returned bridge stats that are not UTF-8: {e}"),
            });
        }
    }
}

#[pymethods]
impl NativeBridge {
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// True after `close()` or the runtime's close (which closes its bridges).
    #[getter]
    fn closed(&self) -> bool {
        self.is_closed()
    }

    /// Waits until the bridge has `sessions` open sessions. Raises BridgeError when the bridge
    /// stopped (the peer refused the handshake: the message says why), TimedOutError after
    /// `timeout` seconds. Ctrl-C interrupts it.
    #[pyo3(signature = (sessions, timeout))]
    fn wait(&self, py: Python<'_>, sessions: u64, timeout: f64) -> PyResult<()> {
        let deadline = deadline_after(timeout)?;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(SIGNAL_SLICE);
            let result = detach(py, || -> CallResult {
                self.check_open()?;
                let g = self.core.enter()?;
                // SAFETY: the guard keeps the handle valid. A close on another thread ends this
                // wait (MYCELIUM_ERR_BRIDGE), or, if it came first, the id is gone.
                let status = check(unsafe {
                    mycelium_bridge_wait(g.ptr(), self.id, sessions, slice.as_millis() as u32)
                });
                // Report a close that raced with this call as the close it is.
                if status.is_err() && self.is_closed() {
                    self.check_open()?;
                }
                status
            });
            match result {
                Err(Failure::Status { code, .. })
                    if code == STATUS_TIMEOUT && Instant::now() < deadline =>
                {
                    py.check_signals()?;
                }
                Err(Failure::Status { code, message }) if code == STATUS_TIMEOUT => {
                    // The library's message names why (the last refusal, or why connecting
                    // keeps failing: a missing socket file, a closed port).
                    let message = message
                        .rsplit_once(" (MYCELIUM_ERR_")
                        .map_or(message.as_str(), |(text, _)| text);
                    let why = message
                        .split_once("; ")
                        .map_or(String::new(), |(_, why)| format!("; {why}"));
                    return Err(Failure::Timeout(format!(
                        "the bridge had fewer than {sessions} session(s) after {timeout} s{why}"
                    ))
                    .into_pyerr(py));
                }
                other => return other.py_err(py),
            }
        }
    }

    /// Stops the bridge and closes its connections (without the GIL). Idempotent; a no-op
    /// once the runtime is closed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detach(py, || -> CallResult {
            if self.closed.swap(true, Ordering::SeqCst) || self.core.is_closed() {
                return Ok(());
            }
            let g = match self.core.enter() {
                Ok(g) => g,
                // Closed concurrently: destroying the handle closed the bridge.
                Err(Failure::Closed(_)) => return Ok(()),
                Err(other) => return Err(other),
            };
            // SAFETY: the guard keeps the handle valid; a wait on another thread is ended by it.
            check(unsafe { mycelium_bridge_close(g.ptr(), self.id) })
        })
        .py_err(py)
    }

    /// `{"endpoints": [...], "stats": {...}}` as JSON text.
    fn stats_json(&self, py: Python<'_>) -> PyResult<String> {
        self.stats_text().py_err(py)
    }
}
