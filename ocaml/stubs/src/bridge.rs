//! Stubs for socket bridges (`Mycelium_native.Runtime.listen`/`connect` and `Bridge`), over the
//! C ABI's `mycelium_bridge_*` functions (docs/bridges.md).
//!
//! Every one of them releases the OCaml runtime lock around its C call, also those the C ABI
//! documents as quick (connect, stats): the C side keeps a handle's bridges behind one mutex,
//! which `mycelium_bridge_wait` holds for as long as it waits, so any bridge call may have to
//! wait for another thread's `Bridge.wait`. Holding the lock meanwhile would stop every OCaml
//! thread, callbacks included.

use std::ffi::CString;

use mycelium_ffi::exports::{
    mycelium_bridge_close, mycelium_bridge_connect, mycelium_bridge_listen,
    mycelium_bridge_options_init, mycelium_bridge_stats_json, mycelium_bridge_wait,
};
use mycelium_ffi::mycelium_status::{
    MYCELIUM_ERR_INVALID_ARGUMENT, MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
};
use mycelium_ffi::{mycelium_bridge_options, mycelium_runtime_t};
use ocaml::Raw;

use crate::reply::{catch_panics, check, result_reply, unit_reply, CallError, CallResult};
use crate::stubs::{blocking, bytes_arg, int_arg, read_text, u32_arg};

/// A NUL-terminated copy of an OCaml string argument.
///
/// # Safety
/// `v` must be an OCaml `string` and the runtime lock must be held.
unsafe fn c_string_arg(v: Raw, what: &str) -> CallResult<CString> {
    // SAFETY: per the function contract; copied before anything allocates or releases the lock.
    let bytes = unsafe { bytes_arg(v) };
    CString::new(bytes).map_err(|_| {
        CallError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("the {what} contains a NUL byte"),
        )
    })
}

/// The token of a `string option` argument.
///
/// # Safety
/// `v` must be an OCaml `string option` and the runtime lock must be held.
unsafe fn token_arg(v: Raw) -> CallResult<Option<CString>> {
    if v.0 == ocaml::sys::NONE {
        return Ok(None);
    }
    // SAFETY: `Some s`: field 0 is the string (per the function contract).
    let text = unsafe { Raw(*ocaml::sys::field(v.0, 0)) };
    // SAFETY: a string; lock held.
    unsafe { c_string_arg(text, "bridge token") }.map(Some)
}

/// A bridge id as OCaml holds it; ids come from the C ABI, so a negative one was never issued.
fn bridge_id_arg(v: Raw) -> CallResult<u64> {
    let id = int_arg(v);
    u64::try_from(id).map_err(|_| {
        CallError::new(
            MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
            format!("bridge {id} was never opened (negative id)"),
        )
    })
}

fn id_reply(id: u64) -> CallResult<isize> {
    isize::try_from(id).map_err(|_| {
        CallError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("bridge id {id} is out of OCaml int range"),
        )
    })
}

/// Options as initialised by the C ABI, so that fields added to the struct later keep their
/// defaults.
fn default_options() -> CallResult<mycelium_bridge_options> {
    let mut opts = mycelium_bridge_options::default();
    // SAFETY: `opts` is a valid, writable struct.
    check(unsafe { mycelium_bridge_options_init(&mut opts) })?;
    Ok(opts)
}

/// `handle -> string -> string option -> int -> (int, int * string) result`: listens on the
/// address (token, socket mode; 0 for the default 0600) and returns the bridge id. Blocks until
/// the socket is bound, lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_bridge_listen(
    h: Raw,
    address: Raw,
    token: Raw,
    socket_mode: Raw,
) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: argument types fixed by the external; lock held, nothing allocated yet.
        let address = unsafe { c_string_arg(address, "bridge address") }?;
        // SAFETY: as above.
        let token = unsafe { token_arg(token) }?;
        let socket_mode = u32_arg(socket_mode, "socket_mode")?;
        let mut opts = default_options()?;
        opts.socket_mode = socket_mode;
        opts.token = token.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value, and
        // `address`, `token` (behind `opts.token`) and `opts` outlive the call.
        let id = unsafe {
            blocking(h, |rt| {
                let mut id = 0u64;
                check(mycelium_bridge_listen(rt, address.as_ptr(), &opts, &mut id))?;
                Ok(id)
            })
        }?;
        id_reply(id)
    });
    result_reply(result)
}

/// `handle -> string -> string option -> (int, int * string) result`: starts a connector to the
/// address (it connects in the background) and returns the bridge id. Lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_bridge_connect(h: Raw, address: Raw, token: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: argument types fixed by the external; lock held, nothing allocated yet.
        let address = unsafe { c_string_arg(address, "bridge address") }?;
        // SAFETY: as above.
        let token = unsafe { token_arg(token) }?;
        let mut opts = default_options()?;
        opts.token = token.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value, and
        // `address`, `token` and `opts` outlive the call.
        let id = unsafe {
            blocking(h, |rt| {
                let mut id = 0u64;
                check(mycelium_bridge_connect(
                    rt,
                    address.as_ptr(),
                    &opts,
                    &mut id,
                ))?;
                Ok(id)
            })
        }?;
        id_reply(id)
    });
    result_reply(result)
}

/// `handle -> int -> int -> int -> (int * string) option`: waits (id, sessions, timeout_ms)
/// until the bridge has that many sessions, lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_bridge_wait(
    h: Raw,
    id: Raw,
    sessions: Raw,
    timeout_ms: Raw,
) -> Raw {
    let result = catch_panics(|| {
        let id = bridge_id_arg(id)?;
        let sessions = int_arg(sessions);
        let sessions = u64::try_from(sessions).map_err(|_| {
            CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                format!("sessions {sessions} must be >= 0"),
            )
        })?;
        let timeout = u32_arg(timeout_ms, "timeout_ms")?;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value.
        unsafe {
            blocking(h, |rt| {
                check(mycelium_bridge_wait(rt, id, sessions, timeout))
            })
        }
    });
    unit_reply(result)
}

/// `handle -> int -> (int * string) option`: closes the bridge (what is queued is sent first).
/// Blocks until its tasks ended, lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_bridge_close(h: Raw, id: Raw) -> Raw {
    let result = catch_panics(|| {
        let id = bridge_id_arg(id)?;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value.
        unsafe { blocking(h, |rt| check(mycelium_bridge_close(rt, id))) }
    });
    unit_reply(result)
}

/// `handle -> int -> (string, int * string) result`: the bridge's endpoints and counters as
/// JSON. Lock released (see the module docs).
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_bridge_stats_json(h: Raw, id: Raw) -> Raw {
    let result = catch_panics(|| {
        let id = bridge_id_arg(id)?;
        let read = |rt: *mut mycelium_runtime_t| {
            // SAFETY: `rt` is live for the call (`blocking` holds a reference); read_text passes
            // a buffer of `len` writable bytes and a valid `needed`.
            read_text(|buf, len, needed| unsafe {
                mycelium_bridge_stats_json(rt, id, buf, len, needed)
            })
        };
        // SAFETY: `h` is an Ffi.handle; lock held; `read` touches no OCaml value.
        unsafe { blocking(h, read) }
    });
    result_reply(result)
}
