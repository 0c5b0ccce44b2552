//! Request/reply (C ABI 1.3) for OCaml: `Mycelium_native.serve`, `request` and `request_all`.
//!
//! A serve handler runs on the responder thread the C ABI starts, which OCaml has never seen: as
//! for subscription callbacks (`delivery.rs`), the thread is registered first, and the handler
//! (a GC root holding `string -> (string, string) result`) is called with the runtime lock taken
//! by `mycelium_ml_serve_call` in the C file, which also writes the answer while the lock keeps
//! the OCaml strings in place. A request waits with the runtime lock released (a responder in
//! this process may need it) and copies the replies before taking it back.

use std::ffi::c_void;

use mycelium_ffi::exports::{
    mycelium_request, mycelium_request_all, mycelium_serve, mycelium_unserve,
};
use mycelium_ffi::mycelium_message;
use mycelium_ffi::mycelium_status::*;
use mycelium_ffi::service::{mycelium_reply_writer, mycelium_service_closure};
use ocaml::{Raw, Runtime, ToValue, Value};

use crate::delivery::{drop_root, mycelium_ml_root_free_locked, mycelium_ml_root_new};
use crate::registration::registered;
use crate::reply::{catch_panics, check, result_reply, CallError};
use crate::stubs::{blocking, bytes_arg, c_string_option, int_arg, u32_arg};

extern "C" {
    /// Calls the serve handler in `root` on one request and answers through `reply`; 0 when a
    /// reply was written. Registered thread, runtime lock NOT held.
    fn mycelium_ml_serve_call(
        root: *mut c_void,
        data: *const u8,
        len: usize,
        reply: *mut mycelium_reply_writer,
    ) -> i32;
}

unsafe extern "C" fn serve_call(
    context: *mut c_void,
    request: *const mycelium_message,
    reply: *mut mycelium_reply_writer,
) -> i32 {
    let (data, len) = if request.is_null() {
        (std::ptr::null(), 0)
    } else {
        // SAFETY: the C ABI passes a message valid for the duration of this call.
        let m = unsafe { &*request };
        (m.payload, m.len)
    };
    // SAFETY: `context` is the root made in `mycelium_ml_serve`, live until `drop_root`; the
    // payload borrows the message, alive for this call; `registered` registers the thread, and
    // the C ABI calls this without the runtime lock.
    registered(|| unsafe { mycelium_ml_serve_call(context, data, len, reply) })
}

/// The (request type, reply type) pair packed by the OCaml side as `req lsl 16 lor rep`.
fn key_arg(key: Raw) -> Result<(u16, u16), CallError> {
    let k = int_arg(key);
    if !(0..=0xFFFF_FFFF).contains(&k) {
        return Err(CallError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("type id pair {k} is out of range"),
        ));
    }
    Ok(((k >> 16) as u16, (k & 0xFFFF) as u16))
}

/// `handle -> int -> (string -> (string, string) result) -> int -> string option ->
/// (int, int * string) result`: starts a responder of the packed (request, reply) pair; its id.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_serve(
    h: Raw,
    key: Raw,
    handler: Raw,
    capacity: Raw,
    label: Raw,
) -> Raw {
    let result = catch_panics(|| {
        let (request_type, reply_type) = key_arg(key)?;
        let capacity = u32_arg(capacity, "capacity")?;
        // SAFETY: `label` is a `string option`; lock held.
        let label = unsafe { c_string_option(label, "service label") }?;
        // SAFETY: `handler` is a closure of the type above; lock held.
        let root = unsafe { mycelium_ml_root_new(handler.0) };
        if root.is_null() {
            return Err(CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "out of memory for the handler's GC root",
            ));
        }
        let closure = mycelium_service_closure {
            context: root,
            call: Some(serve_call),
            drop: Some(drop_root),
        };
        let context = root as usize;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value (the root
        // is only passed on).
        let served = unsafe {
            blocking(h, |rt| {
                let mut id = 0u64;
                check(mycelium_serve(
                    rt,
                    request_type,
                    reply_type,
                    capacity,
                    label.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
                    &closure,
                    &mut id,
                ))?;
                Ok(id)
            })
        };
        match served {
            Ok(id) => isize::try_from(id).map_err(|_| {
                CallError::new(
                    MYCELIUM_ERR_INVALID_ARGUMENT,
                    "responder id out of OCaml int range",
                )
            }),
            Err(e) => {
                // SAFETY: refused, so the C ABI never calls `drop`; the root is ours and the
                // lock is held again.
                unsafe { mycelium_ml_root_free_locked(context as *mut c_void) };
                Err(e)
            }
        }
    });
    result_reply(result)
}

/// `handle -> int -> (int * string) option`: stops responder `id`, waiting (lock released) for
/// the handler call in progress.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml`, on a thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_unserve(h: Raw, id: Raw) -> Raw {
    let result = catch_panics(|| {
        let id = u64::try_from(int_arg(id)).map_err(|_| {
            CallError::new(MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION, "negative responder id")
        })?;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value.
        unsafe { blocking(h, |rt| check(mycelium_unserve(rt, id))) }
    });
    crate::reply::unit_reply(result)
}

/// A reply payload, handed to OCaml as a `string`.
struct Payload(Vec<u8>);

// SAFETY: allocates an OCaml string holding a copy of the bytes (runtime lock held by the
// caller of `to_value`, as for every ToValue).
unsafe impl ToValue for Payload {
    fn to_value(&self, _rt: &Runtime) -> Value {
        // SAFETY: per the impl comment.
        unsafe { Value::bytes(&self.0[..]) }
    }
}

unsafe extern "C" fn collect_reply(context: *mut c_void, message: *const mycelium_message) -> i32 {
    if message.is_null() {
        return 0;
    }
    // SAFETY: `context` is the requesting frame's `Vec<Payload>`; `message` and its payload are
    // valid for the call and copied here (this runs on the requesting thread, lock released).
    unsafe {
        let replies = &mut *context.cast::<Vec<Payload>>();
        let m = &*message;
        replies.push(Payload(if m.payload.is_null() || m.len == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(m.payload, m.len).to_vec()
        }));
    }
    0
}

/// `handle -> int -> string -> int -> bool -> (string array * int * int, int * string) result`:
/// sends a request of the packed pair and waits up to `timeout_ms` (lock released): the first
/// successful reply (`all` false), or every reply with the counts of failed and unanswered
/// responders.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml`, on a thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_request(
    h: Raw,
    key: Raw,
    payload: Raw,
    timeout_ms: Raw,
    all: Raw,
) -> Raw {
    let result = catch_panics(|| {
        let (request_type, reply_type) = key_arg(key)?;
        let timeout = u32_arg(timeout_ms, "timeout_ms")?;
        // SAFETY: `payload` is an OCaml string; copied before the lock is released.
        let payload = unsafe { bytes_arg(payload) }.to_vec();
        let all = all.0 == ocaml::sys::TRUE;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value.
        unsafe {
            blocking(h, |rt| {
                let mut replies: Vec<Payload> = Vec::new();
                let context = (&mut replies as *mut Vec<Payload>).cast::<c_void>();
                let (mut failed, mut unanswered) = (0usize, 0usize);
                let status = if all {
                    mycelium_request_all(
                        rt,
                        request_type,
                        payload.as_ptr(),
                        payload.len(),
                        reply_type,
                        timeout,
                        std::ptr::null(),
                        Some(collect_reply),
                        context,
                        &mut failed,
                        &mut unanswered,
                    )
                } else {
                    mycelium_request(
                        rt,
                        request_type,
                        payload.as_ptr(),
                        payload.len(),
                        reply_type,
                        timeout,
                        std::ptr::null(),
                        Some(collect_reply),
                        context,
                    )
                };
                check(status)?;
                Ok((replies, failed as isize, unanswered as isize))
            })
        }
    });
    result_reply(result)
}
