//! Turning C ABI outcomes into OCaml values: failures travel as `(status code, message)` pairs
//! which `ocaml/src/mycelium_native.ml` raises as `Mycelium_error`.

use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mycelium_ffi::exports::mycelium_last_error;
use mycelium_ffi::mycelium_status::{self, MYCELIUM_ERR_PANIC, MYCELIUM_OK};
use ocaml::{Raw, ToValue, Value};

/// A failed call: the C ABI status code and the message to show the user.
#[derive(Debug, Clone)]
pub struct CallError {
    /// The `mycelium_status` value; an OCaml `int` (ocaml-rs would box an `i32` as `int32`).
    pub status: ocaml::Int,
    pub message: String,
}

impl CallError {
    pub fn new(status: mycelium_status, message: impl Into<String>) -> Self {
        CallError {
            status: status as ocaml::Int,
            message: message.into(),
        }
    }
}

pub type CallResult<T = ()> = Result<T, CallError>;

/// `Ok` for `MYCELIUM_OK`, otherwise the status with this thread's last-error message. Must run
/// on the thread that made the call (the message is thread-local), before any other C ABI call.
pub fn check(status: mycelium_status) -> CallResult {
    if status == MYCELIUM_OK {
        return Ok(());
    }
    // SAFETY: mycelium_last_error never returns NULL and the string stays valid until the next
    // failing call on this thread; it is copied right away.
    let message = unsafe { CStr::from_ptr(mycelium_last_error()) }
        .to_string_lossy()
        .into_owned();
    Err(CallError {
        status: status as ocaml::Int,
        message,
    })
}

/// Runs a stub body, turning a Rust panic into a `MYCELIUM_ERR_PANIC` error so that no panic
/// unwinds into OCaml (which would abort the process).
pub fn catch_panics<T>(body: impl FnOnce() -> CallResult<T>) -> CallResult<T> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Err(CallError::new(
            MYCELIUM_ERR_PANIC,
            format!("internal panic in the OCaml stubs (please report): {what}"),
        ))
    })
}

fn runtime() -> &'static ocaml::Runtime {
    // SAFETY: only called from stubs, i.e. on a thread that holds the OCaml runtime lock. With
    // the `no-caml-startup` and `no-panic-hook` features the handle is a plain token.
    unsafe { ocaml::Runtime::recover_handle() }
}

/// `None` on success, `Some (status, message)` on failure: the shape of every stub that returns
/// nothing, chosen because success then allocates nothing.
pub fn unit_reply(result: CallResult) -> Raw {
    match result {
        Ok(()) => Value::none().raw(),
        // SAFETY: called with the runtime lock held; ocaml-rs roots each allocated Value.
        Err(e) => unsafe { Value::some(runtime(), (e.status, e.message)).raw() },
    }
}

/// `Ok value` or `Error (status, message)`.
pub fn result_reply<T: ToValue>(result: CallResult<T>) -> Raw {
    let rt = runtime();
    // SAFETY: called with the runtime lock held; ocaml-rs roots each allocated Value.
    unsafe {
        match result {
            Ok(v) => Value::result_ok(rt, v).raw(),
            Err(e) => Value::result_error(rt, (e.status, e.message)).raw(),
        }
    }
}
