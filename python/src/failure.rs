//! Failures of C ABI calls and of this adapter's own checks, and their translation into the
//! exception classes of `mycelium_native.errors`.
//!
//! A [`Failure`] is built without the GIL (inside `py.detach`, right where the C call failed,
//! because `mycelium_last_error` is per thread) and becomes a Python exception only once the GIL
//! is held again. The exception classes live in pure Python so that generated message modules
//! can raise them without the compiled extension; `error_for_status` there is the single table
//! from status codes to classes.

use std::ffi::CStr;

use mycelium_ffi::exports::{mycelium_last_error, mycelium_status_name};
use mycelium_ffi::mycelium_status;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Status code of `MYCELIUM_ERR_CLOSED`; used for failures this adapter detects itself.
const STATUS_CLOSED: u32 = mycelium_status::MYCELIUM_ERR_CLOSED as u32;
/// Status code of `MYCELIUM_ERR_TIMEOUT`.
const STATUS_TIMEOUT: u32 = mycelium_status::MYCELIUM_ERR_TIMEOUT as u32;

/// Why a call failed, before it is turned into a Python exception.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A C ABI function returned a status other than `MYCELIUM_OK`.
    #[error("{message}")]
    Status { code: u32, message: String },
    /// The runtime (or the subscription) was closed on the Python side.
    #[error("{0}")]
    Closed(&'static str),
    /// A wait ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// A runtime made before `os.fork()` was used in the child process.
    #[error(
        "this mycelium runtime was created in process {parent} and used after fork in process {child}; \
         its delivery threads do not exist in the child: create a new Runtime after forking"
    )]
    UsedAfterFork { parent: u32, child: u32 },
    /// The interpreter is shutting down; no new runtime or subscription may start.
    #[error(
        "the Python interpreter is shutting down; mycelium runtimes were closed by the atexit hook"
    )]
    ShuttingDown,
}

pub(crate) type CallResult<T = ()> = Result<T, Failure>;

/// Turns a C ABI status into `Ok` or a [`Failure`] carrying this thread's last-error text.
/// Must run on the thread that made the call.
pub(crate) fn check(status: mycelium_status) -> CallResult {
    if status == mycelium_status::MYCELIUM_OK {
        return Ok(());
    }
    Err(Failure::Status {
        code: status as u32,
        message: last_error_text(status),
    })
}

fn last_error_text(status: mycelium_status) -> String {
    // SAFETY: mycelium_status_name returns a static NUL-terminated string for every status value.
    let name = unsafe { CStr::from_ptr(mycelium_status_name(status as std::ffi::c_int)) }.to_string_lossy();
    // SAFETY: mycelium_last_error never returns NULL and the string stays valid until the next
    // failing call on this thread; it is copied before any other call is made.
    let text = unsafe { CStr::from_ptr(mycelium_last_error()) }.to_string_lossy();
    if text.is_empty() {
        name.into_owned()
    } else {
        format!("{text} ({name})")
    }
}

impl Failure {
    /// The `mycelium_status` code the exception class is chosen by; 0 means the base class.
    fn code(&self) -> u32 {
        match self {
            Failure::Status { code, .. } => *code,
            Failure::Closed(_) | Failure::ShuttingDown => STATUS_CLOSED,
            Failure::Timeout(_) => STATUS_TIMEOUT,
            Failure::UsedAfterFork { .. } => 0,
        }
    }

    /// The Python exception for this failure: an instance of the class
    /// `mycelium_native.errors.error_for_status` picks for the status code.
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let code = self.code();
        let message = self.to_string();
        let made = FACTORY
            .import(py, "mycelium_native.errors", "error_for_status")
            .and_then(|factory| factory.call1((code, message.as_str())));
        match made {
            Ok(exception) => PyErr::from_value(exception),
            // The errors module is part of the same package; if it cannot be imported the
            // installation is broken, and that import error is the more useful one to show.
            Err(import_error) => import_error,
        }
    }
}

/// Adapter for `?` on [`CallResult`]s inside functions that return `PyResult`.
pub(crate) trait IntoPyResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for CallResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|f| f.into_pyerr(py))
    }
}
