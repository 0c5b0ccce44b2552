//! `Mycelium_native.Log`: the library's log records handed to an OCaml handler. The queue is
//! `mycelium_ffi::log_forward` (why a queue, not a call into OCaml from the thread that logs:
//! see there); `ocaml/src/log.ml` runs a systhread that takes records here, without the runtime
//! lock, and calls the handler with it.

use mycelium_ffi::log_forward;
use mycelium_ffi::mycelium_status::MYCELIUM_ERR_CLOSED;
use ocaml::{Raw, Value};
use tracing::Level;

use crate::lock::without_runtime_lock;
use crate::reply::{catch_panics, result_reply, CallError};

/// `unit -> bool`: sends the library's records to the queue. False when the process already
/// has a `tracing` subscriber (a Rust host embedding OCaml): that one keeps receiving them.
#[no_mangle]
pub extern "C" fn mycelium_ml_log_install(_unit: Raw) -> Raw {
    let installed = catch_panics(|| Ok(log_forward::install())).unwrap_or(false);
    // SAFETY: immediate value, no allocation.
    unsafe { Value::bool(installed).raw() }
}

/// The level as `Log.level`'s constructor index (Error, Warning, Info, Debug, Trace).
fn level_index(level: Level) -> ocaml::Int {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

/// `unit -> (int * string * string * (string * string) array, int * string) result`: the next
/// record as (level, target, message, fields), waiting for it with the runtime lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `log.ml`, on a thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_log_next(_unit: Raw) -> Raw {
    let result = catch_panics(|| {
        let record = without_runtime_lock(log_forward::next_record).ok_or_else(|| {
            CallError::new(MYCELIUM_ERR_CLOSED, "the log queue is closed".to_owned())
        })?;
        Ok((
            level_index(record.level),
            record.target,
            record.message,
            record.fields,
        ))
    });
    result_reply(result)
}
