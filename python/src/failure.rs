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
use pyo3::types::{PyDict, PyType};

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
    let name = unsafe { CStr::from_ptr(mycelium_status_name(status as std::ffi::c_int)) }
        .to_string_lossy();
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
    /// `mycelium_native.errors.STATUS_ERRORS` maps the status code to (`MyceliumError` for
    /// codes it does not know), as `error_for_status` there picks it.
    ///
    /// Runs no Python code: the classes were looked up when the module was loaded and the
    /// exception is created lazily (when Python code first looks at it, outside this library's
    /// frames). Python code run from here could let the eval loop hand the GIL to the thread
    /// finalizing the interpreter, and a daemon thread taking it back then is ended by
    /// CPython inside Rust frames, which aborts the process.
    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let code = self.code();
        let message = self.to_string();
        let classes = match error_classes(py) {
            Ok(classes) => classes,
            // The errors module is part of the same package; if it cannot be imported the
            // installation is broken, and that import error is the more useful one to show.
            Err(import_error) => return import_error,
        };
        let class = classes
            .status_errors
            .bind(py)
            .get_item(code)
            .ok()
            .flatten()
            .and_then(|c| c.cast_into::<PyType>().ok())
            .unwrap_or_else(|| classes.base.bind(py).clone());
        PyErr::from_type(class, message)
    }
}

/// The exception classes of `mycelium_native.errors`.
struct ErrorClasses {
    status_errors: Py<PyDict>,
    base: Py<PyType>,
}

static ERROR_CLASSES: PyOnceLock<ErrorClasses> = PyOnceLock::new();

fn error_classes(py: Python<'_>) -> PyResult<&ErrorClasses> {
    ERROR_CLASSES.get_or_try_init(py, || {
        let module = py.import("mycelium_native.errors")?;
        Ok(ErrorClasses {
            status_errors: module
                .getattr("STATUS_ERRORS")?
                .cast_into::<PyDict>()?
                .unbind(),
            base: module
                .getattr("MyceliumError")?
                .cast_into::<PyType>()?
                .unbind(),
        })
    })
}

/// Looks the exception classes up now (module load), so that raising never imports.
pub(crate) fn load_error_classes(py: Python<'_>) -> PyResult<()> {
    error_classes(py).map(drop)
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
