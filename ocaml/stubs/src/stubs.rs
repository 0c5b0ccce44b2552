//! The functions OCaml's `external` declarations call (`ocaml/src/ffi.ml` lists their OCaml
//! types). Each takes and returns raw OCaml values; see the crate docs for the conventions.

use std::ffi::{c_char, CString};
use std::sync::Arc;

use mycelium_ffi::exports::*;
use mycelium_ffi::mycelium_status::*;
use mycelium_ffi::{mycelium_runtime_t, mycelium_subscribe_options, mycelium_type_metrics};
use ocaml::{Raw, Value};

use crate::delivery;
use crate::handle::{self, OwnedHandle, RuntimeCell};
use crate::lock::{releasing_while_waiting, without_runtime_lock};
use crate::reply::{catch_panics, check, result_reply, unit_reply, CallError, CallResult};

// ---- reading OCaml arguments (lock held, before anything that may allocate or release it) ----

pub(crate) fn int_arg(v: Raw) -> isize {
    // SAFETY: untagging reads no memory; every caller passes an argument OCaml types as `int`.
    unsafe { ocaml::sys::int_val(v.0) }
}

/// The bytes of an OCaml string. Valid only until the next OCaml allocation or lock release.
///
/// # Safety
/// `v` must be an OCaml `string` and the runtime lock must be held.
pub(crate) unsafe fn bytes_arg<'a>(v: Raw) -> &'a [u8] {
    // SAFETY: per the function contract: a string block, whose bytes stay put while the lock is
    // held and nothing allocates.
    unsafe {
        let len = ocaml::sys::caml_string_length(v.0);
        std::slice::from_raw_parts(ocaml::sys::string_val(v.0), len)
    }
}

fn type_id_arg(v: Raw) -> CallResult<u16> {
    let id = int_arg(v);
    u16::try_from(id).map_err(|_| {
        CallError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("type id {id} is out of range (0..=65535)"),
        )
    })
}

pub(crate) fn u32_arg(v: Raw, what: &str) -> CallResult<u32> {
    let n = int_arg(v);
    u32::try_from(n).map_err(|_| {
        CallError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("{what} {n} is out of range (0..=4294967295)"),
        )
    })
}

/// A reference to the live handle taken with the runtime lock held.
///
/// If `Runtime.close` ran on another thread meanwhile, this may be the last reference, and
/// dropping it destroys the C handle, which waits for running callbacks: those need the runtime
/// lock, so the lock is released around that final drop.
struct Live(Option<Arc<OwnedHandle>>);

impl Live {
    fn as_ptr(&self) -> *mut mycelium_runtime_t {
        self.0.as_ref().map_or(std::ptr::null_mut(), |h| h.as_ptr())
    }

    /// The reference itself, for code that drops it with the lock released.
    fn into_inner(mut self) -> Option<Arc<OwnedHandle>> {
        self.0.take()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(Ok(last)) = self.0.take().map(Arc::try_unwrap) {
            without_runtime_lock(move || drop(last));
        }
    }
}

/// The live handle behind an OCaml `Ffi.handle`, for calls that do not block. Lock held.
///
/// # Safety
/// `h` must be an `Ffi.handle` value and the runtime lock must be held.
unsafe fn live(h: Raw) -> CallResult<Live> {
    // SAFETY: per the function contract.
    let handle = unsafe { handle::cell(h) }.get()?;
    Ok(Live(Some(handle)))
}

/// Runs `f` on the live handle with the runtime lock released (for calls that may block).
///
/// # Safety
/// As for [`live`]; `f` must not touch OCaml values.
pub(crate) unsafe fn blocking<T>(
    h: Raw,
    f: impl FnOnce(*mut mycelium_runtime_t) -> CallResult<T>,
) -> CallResult<T> {
    // SAFETY: per the function contract.
    let handle = unsafe { live(h) }?.into_inner();
    // The Arc clone keeps the C handle alive even if another thread closes the runtime meanwhile;
    // it is dropped before the lock is taken back, so a destroy it triggers also runs unlocked.
    without_runtime_lock(move || {
        let result = f(handle.as_ref().map_or(std::ptr::null_mut(), |h| h.as_ptr()));
        drop(handle);
        result
    })
}

/// Reads a text the C ABI writes with its "ask for the size, then fill" protocol; `call` is one
/// such C function with everything but `(buf, len, needed)` already applied.
pub(crate) fn read_text(
    mut call: impl FnMut(*mut c_char, usize, *mut usize) -> mycelium_ffi::mycelium_status,
) -> CallResult<String> {
    let mut needed = 0usize;
    // The text can grow between the two calls (metrics do); retry with the new size.
    for _ in 0..4 {
        let mut buf = vec![0u8; needed.max(1)];
        let status = call(buf.as_mut_ptr().cast(), buf.len(), &mut needed);
        if status == MYCELIUM_ERR_BUFFER_TOO_SMALL {
            continue;
        }
        check(status)?;
        let len = needed.saturating_sub(1).min(buf.len());
        buf.truncate(len);
        return String::from_utf8(buf).map_err(|_| {
            CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "the library returned text that is not UTF-8",
            )
        });
    }
    Err(CallError::new(
        MYCELIUM_ERR_BUFFER_TOO_SMALL,
        "the text kept growing while it was being read; try again",
    ))
}

/// [`read_text`] for the C functions that take only the handle besides the buffer.
fn read_handle_text(
    rt: *mut mycelium_runtime_t,
    call: unsafe extern "C" fn(
        *const mycelium_runtime_t,
        *mut c_char,
        usize,
        *mut usize,
    ) -> mycelium_ffi::mycelium_status,
) -> CallResult<String> {
    // SAFETY: `buf` has `len` writable bytes and `needed` is a valid out-pointer (read_text
    // passes its own buffer); `rt` is the caller's live handle.
    read_text(|buf, len, needed| unsafe { call(rt, buf, len, needed) })
}

fn handle_value(raw: *mut mycelium_runtime_t) -> CallResult<ocaml::Pointer<RuntimeCell>> {
    let owned = OwnedHandle::new(raw).ok_or_else(|| {
        CallError::new(
            MYCELIUM_ERR_NULL_POINTER,
            "the library returned a NULL handle",
        )
    })?;
    Ok(RuntimeCell::alloc(owned))
}

// ---- runtime lifecycle ----

/// `string -> (handle, int * string) result`: a runtime with a bus of its own.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_runtime_create(yaml: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `yaml` is an OCaml string (external's type); lock held. Copied out, because
        // the parse runs without the runtime lock (a large or hostile schema takes a while, and
        // other OCaml threads go on meanwhile), when the GC may move the string.
        let text = unsafe { bytes_arg(yaml) }.to_vec();
        let out = without_runtime_lock(move || {
            let mut out: *mut mycelium_runtime_t = std::ptr::null_mut();
            // SAFETY: `text` is valid for the call; `out` is a valid out-pointer.
            check(unsafe { mycelium_runtime_create(text.as_ptr().cast(), text.len(), &mut out) })
                .map(|()| out as usize)
        })?;
        handle_value(out as *mut mycelium_runtime_t)
    });
    result_reply(result)
}

/// `nativeint -> (handle, int * string) result`: clones a host's handle given as an address.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_runtime_attach(address: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `address` is an OCaml nativeint (external's type).
        let host = unsafe { address.as_value().nativeint_val() } as *const mycelium_runtime_t;
        let mut out: *mut mycelium_runtime_t = std::ptr::null_mut();
        // SAFETY: the caller vouches that a non-NULL address is a live handle (documented in the
        // .mli); NULL is reported by the C ABI as MYCELIUM_ERR_NULL_POINTER.
        check(unsafe { mycelium_runtime_clone(host, &mut out) })?;
        handle_value(out)
    });
    result_reply(result)
}

/// `handle -> (int * string) option`: destroys the handle (idempotent). Blocks, lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_runtime_destroy(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let owned = unsafe { handle::cell(h) }.take();
        if let Some(owned) = owned {
            // The last Arc destroys the C handle, which waits for running callbacks.
            without_runtime_lock(move || drop(owned));
        }
        Ok(())
    });
    unit_reply(result)
}

/// `handle -> bool`: whether `Runtime.close` has not run yet.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_runtime_is_open(h: Raw) -> Raw {
    // SAFETY: `h` is an Ffi.handle; lock held.
    let open = unsafe { handle::cell(h) }.get().is_ok();
    // SAFETY: immediate value, no allocation.
    unsafe { Value::bool(open).raw() }
}

/// `handle -> (int * string) option`: closes the bus for every handle onto it.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_bus_close(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        // SAFETY: live handle; closing the bus does not block.
        check(unsafe { mycelium_runtime_close(handle.as_ptr()) })
    });
    unit_reply(result)
}

/// `handle -> (nativeint, int * string) result`: the C handle's address, for other adapters.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_runtime_address(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        Ok(NativeInt(handle.as_ptr() as isize))
    });
    result_reply(result)
}

/// An OCaml `nativeint` (ocaml-rs maps `isize` to `int`).
struct NativeInt(isize);

// SAFETY: produces a valid boxed nativeint; the lock is held whenever ToValue runs.
unsafe impl ocaml::ToValue for NativeInt {
    fn to_value(&self, _rt: &ocaml::Runtime) -> Value {
        // SAFETY: lock held; the result is rooted by ocaml-rs.
        unsafe { Value::nativeint(self.0) }
    }
}

// ---- schema ----

/// `handle -> string -> (int * string) option`: compares a digest with the runtime's.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_verify_digest(h: Raw, digest: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        // SAFETY: `digest` is an OCaml string; copied before the call.
        let text = unsafe { bytes_arg(digest) };
        let text = CString::new(text).map_err(|_| {
            CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "the schema digest contains a NUL byte",
            )
        })?;
        // SAFETY: live handle, NUL-terminated digest; does not block.
        check(unsafe { mycelium_verify_schema_digest(handle.as_ptr(), text.as_ptr()) })
    });
    unit_reply(result)
}

/// `handle -> string -> (int * string) option`: compares a canonical description, naming every
/// difference on mismatch.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_verify_description(h: Raw, description: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        // SAFETY: `description` is an OCaml string; no allocation until the call returns.
        let text = unsafe { bytes_arg(description) };
        // SAFETY: live handle; `text` is valid for the call, which does not block.
        check(unsafe {
            mycelium_verify_schema_description(handle.as_ptr(), text.as_ptr().cast(), text.len())
        })
    });
    unit_reply(result)
}

/// `handle -> (string, int * string) result`: the runtime's schema digest.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_schema_digest(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        let mut buf = [0u8; 80];
        // SAFETY: `buf` has 80 writable bytes (65 are needed).
        check(unsafe {
            mycelium_schema_digest(handle.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        })?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    });
    result_reply(result)
}

/// `handle -> (string, int * string) result`: the runtime's canonical schema description.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_schema_description(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        read_handle_text(handle.as_ptr(), mycelium_schema_description)
    });
    result_reply(result)
}

// ---- messages ----

/// `handle -> int -> string -> (int * string) option`: publishes a TLV payload.
///
/// Keeps the runtime lock unless the publish must wait. Giving it up around every publish would
/// cost a copy of the payload plus a lock hand-off per message; instead the library calls the
/// hooks of [`releasing_while_waiting`] only when a `Block` subscriber's queue is full: the
/// lock is released right before that wait (the consumer making room may be an OCaml callback,
/// which needs the lock) and taken back after it.
///
/// Holding the lock on the fast path cannot deadlock: up to that wait the library only takes
/// locks it holds for a moment and never across a callback or a wait (the handle's slot here,
/// the bus's topic table and subscriber list, a queue's doorbell mutex), so nothing the
/// publishing thread waits for on the fast path needs another OCaml thread to make progress.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_publish(h: Raw, type_id: Raw, payload: Raw) -> Raw {
    let result = catch_panics(|| {
        let type_id = type_id_arg(type_id)?;
        // SAFETY: `h` is an Ffi.handle; lock held. The reference keeps the C handle alive for
        // the call even if `Runtime.close` runs on another thread while the lock is released;
        // should it be the last one, `Live`'s drop destroys the handle with the lock released.
        let handle = unsafe { live(h) }?;
        // No copy of the payload: only its address and length are kept. Nothing allocates
        // between here and the C call, and the library reads the bytes only before it calls
        // `before_wait` (it validates and copies them first and never reads them after; C ABI
        // contract), i.e. while this thread still holds the lock and the string cannot move.
        // Once `before_wait` has released the lock the GC may move or free the string; nobody
        // looks at it any more.
        let (ptr, len) = {
            // SAFETY: `payload` is an OCaml string (external's type) and the lock is held; the
            // slice is not kept, only its address and length.
            let bytes = unsafe { bytes_arg(payload) };
            (bytes.as_ptr(), bytes.len())
        };
        releasing_while_waiting(|hooks| {
            // SAFETY: live handle; `ptr`/`len` are valid until the library copied them (see
            // above); `hooks` and the state it points to outlive the call; this thread holds the
            // runtime lock, as `before_wait` requires, and between the hooks the library
            // touches no OCaml value (it only waits).
            check(unsafe { mycelium_publish_with_hooks(handle.as_ptr(), type_id, ptr, len, hooks) })
        })
    });
    unit_reply(result)
}

/// `handle -> int -> string -> string -> (int * string) option`: publishes under a topic
/// (`mycelium_publish_topic`), as `mycelium_ml_publish` does otherwise.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_publish_topic(
    h: Raw,
    type_id: Raw,
    topic: Raw,
    payload: Raw,
) -> Raw {
    let result = catch_panics(|| {
        let type_id = type_id_arg(type_id)?;
        // SAFETY: `topic` is an OCaml string; copied while the lock is held.
        let topic = CString::new(unsafe { bytes_arg(topic) }).map_err(|_| {
            CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "the topic contains a NUL byte",
            )
        })?;
        // SAFETY: `h` is an Ffi.handle; lock held (see `mycelium_ml_publish`).
        let handle = unsafe { live(h) }?;
        let (ptr, len) = {
            // SAFETY: as in `mycelium_ml_publish`: only the address and length are kept, and
            // the library copies the bytes before it can release the lock.
            let bytes = unsafe { bytes_arg(payload) };
            (bytes.as_ptr(), bytes.len())
        };
        releasing_while_waiting(|hooks| {
            // SAFETY: as in `mycelium_ml_publish`; `topic` is an owned C string.
            check(unsafe {
                mycelium_publish_topic(handle.as_ptr(), type_id, topic.as_ptr(), ptr, len, hooks)
            })
        })
    });
    unit_reply(result)
}

/// Subscribe options as the OCaml tuple
/// `(capacity, policy, max_batch, label option, spin_us, pattern option)`.
struct Options {
    capacity: u32,
    policy: u32,
    max_batch: u32,
    label: Option<CString>,
    spin_us: u32,
    pattern: Option<CString>,
}

/// A `string option` as an owned C string; `what` names it in the NUL-byte error.
///
/// # Safety
/// `v` must be an OCaml `string option`; lock held.
pub(crate) unsafe fn c_string_option(v: Raw, what: &str) -> CallResult<Option<CString>> {
    if v.0 == ocaml::sys::NONE {
        return Ok(None);
    }
    // SAFETY: `Some s`: field 0 is the string; lock held, copied at once.
    let text = unsafe { bytes_arg(Raw(*ocaml::sys::field(v.0, 0))) };
    CString::new(text).map(Some).map_err(|_| {
        CallError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("the {what} contains a NUL byte"),
        )
    })
}

/// # Safety
/// `v` must be an OCaml `int * int * int * string option * int * string option`; lock held.
unsafe fn options_arg(v: Raw) -> CallResult<Options> {
    // SAFETY: per the function contract, fields 0..6 exist with these types.
    let field = |i: usize| unsafe { Raw(*ocaml::sys::field(v.0, i)) };
    // SAFETY: field 3 is a `string option` (contract above).
    let label = unsafe { c_string_option(field(3), "subscription label") }?;
    // SAFETY: field 5 is a `string option` (contract above).
    let pattern = unsafe { c_string_option(field(5), "topic pattern") }?;
    Ok(Options {
        capacity: u32_arg(field(0), "capacity")?,
        policy: u32_arg(field(1), "overflow policy")?,
        max_batch: u32_arg(field(2), "max_batch")?,
        label,
        // The C ABI refuses more than 10000 itself, with a message naming `spin_us`.
        spin_us: u32_arg(field(4), "spin_us")?,
        pattern,
    })
}

/// `handle -> int -> options -> (string -> bool) -> (int, int * string) result`: subscribes the
/// handler; its GC root is released by the closure's `drop`.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_subscribe(
    h: Raw,
    type_id: Raw,
    options: Raw,
    handler: Raw,
) -> Raw {
    // SAFETY: per the function contract; the handler takes the payload only.
    unsafe { subscribe(h, type_id, options, handler, false) }
}

/// `handle -> int -> options -> (string -> string option -> bool) -> (int, int * string)
/// result`: as `mycelium_ml_subscribe`, the handler also getting each message's topic.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_subscribe_with_topic(
    h: Raw,
    type_id: Raw,
    options: Raw,
    handler: Raw,
) -> Raw {
    // SAFETY: per the function contract; the handler takes the payload and the topic.
    unsafe { subscribe(h, type_id, options, handler, true) }
}

/// The body of both subscribe stubs.
///
/// # Safety
/// As for the stubs; `handler` is `string -> string option -> bool` when `with_topic`, else
/// `string -> bool`.
unsafe fn subscribe(h: Raw, type_id: Raw, options: Raw, handler: Raw, with_topic: bool) -> Raw {
    let result = catch_panics(|| {
        let type_id = type_id_arg(type_id)?;
        // SAFETY: `options` has the tuple type above; lock held.
        let o = unsafe { options_arg(options) }?;
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        // The Rust default is this library's whole struct (the C init functions exist for C
        // programs, which may be built against an older header).
        let opts = mycelium_subscribe_options {
            capacity: o.capacity,
            policy: o.policy,
            max_batch: o.max_batch,
            label: o.label.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
            spin_us: o.spin_us,
            pattern: o.pattern.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            ..Default::default()
        };
        let topics_from = with_topic.then(|| handle.as_ptr().cast_const());
        // SAFETY: `handler` has the type `with_topic` says (external's type), `topics_from` is
        // this live handle; lock held.
        let closure = unsafe { delivery::closure_for(handler, topics_from) }.ok_or_else(|| {
            CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "out of memory for the callback's GC root",
            )
        })?;
        let mut id = 0u64;
        // Subscribing does not block (it starts the delivery thread), so the lock stays held and
        // a refused closure can be freed right here.
        // SAFETY: live handle; `opts`, `closure` and `id` are valid for the call.
        let status =
            unsafe { mycelium_subscribe(handle.as_ptr(), type_id, &opts, &closure, &mut id) };
        if let Err(e) = check(status) {
            // SAFETY: refused, so the C ABI never calls `drop`; the root is still ours.
            unsafe { delivery::discard(&closure) };
            return Err(e);
        }
        isize::try_from(id).map_err(|_| {
            CallError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "subscription id out of OCaml int range",
            )
        })
    });
    result_reply(result)
}

/// `handle -> int -> (int * string) option`: ends a subscription. Blocks until its callback
/// returns (except from inside it), so the lock is released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_unsubscribe(h: Raw, id: Raw) -> Raw {
    let result = catch_panics(|| {
        let id = u64::try_from(int_arg(id)).map_err(|_| {
            CallError::new(
                MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
                "negative subscription id",
            )
        })?;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value.
        unsafe { blocking(h, |rt| check(mycelium_unsubscribe(rt, id))) }
    });
    unit_reply(result)
}

/// `handle -> int -> (int * string) option`: waits for queued deliveries, lock released.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_flush(h: Raw, timeout_ms: Raw) -> Raw {
    let result = catch_panics(|| {
        let timeout = u32_arg(timeout_ms, "timeout_ms")?;
        // SAFETY: `h` is an Ffi.handle; lock held; the closure touches no OCaml value.
        unsafe { blocking(h, |rt| check(mycelium_flush(rt, timeout))) }
    });
    unit_reply(result)
}

// ---- metrics ----

fn clamp(n: u64) -> ocaml::Int {
    ocaml::Int::try_from(n).unwrap_or(ocaml::Int::MAX)
}

/// `handle -> int -> (int array, int * string) result`: one type's counters, in the field order
/// of `Mycelium_native.type_metrics`.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_type_metrics(h: Raw, type_id: Raw) -> Raw {
    let result = catch_panics(|| {
        let type_id = type_id_arg(type_id)?;
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        let mut m = mycelium_type_metrics {
            struct_size: std::mem::size_of::<mycelium_type_metrics>() as u32,
            ..Default::default()
        };
        // SAFETY: live handle; `m` is a valid struct with struct_size set; does not block.
        check(unsafe { mycelium_type_metrics_get(handle.as_ptr(), type_id, &mut m) })?;
        Ok([
            m.type_id as u64,
            m.published,
            m.published_bytes,
            m.delivered,
            m.dropped,
            m.handler_errors,
            m.subscribers,
            m.queued,
            m.latency_p50_ns,
            m.latency_p90_ns,
            m.latency_p99_ns,
            m.latency_max_ns,
        ]
        .map(clamp)
        .to_vec())
    });
    result_reply(result)
}

/// `handle -> (string, int * string) result`: the JSON metrics snapshot.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_metrics_json(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        read_handle_text(handle.as_ptr(), mycelium_metrics_json)
    });
    result_reply(result)
}

/// `handle -> (string, int * string) result`: the Prometheus text exposition.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_metrics_prometheus(h: Raw) -> Raw {
    let result = catch_panics(|| {
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        read_handle_text(handle.as_ptr(), mycelium_metrics_prometheus)
    });
    result_reply(result)
}

/// `handle -> int -> (int * string) option`: counts publishes per topic in the metrics for the
/// first `max_topics` distinct (type, topic) pairs published from now on (the rest together in
/// `topics_untracked`); 0 turns it off and forgets the counts.
///
/// # Safety
/// Only for OCaml, through its `external` in `ffi.ml` (which fixes the argument types), on a
/// thread holding the runtime lock.
#[no_mangle]
pub unsafe extern "C" fn mycelium_ml_enable_topic_metrics(h: Raw, max_topics: Raw) -> Raw {
    let result = catch_panics(|| {
        let max_topics = u32_arg(max_topics, "max_topics")?;
        // SAFETY: `h` is an Ffi.handle; lock held.
        let handle = unsafe { live(h) }?;
        // SAFETY: live handle; does not block (one short lock) and calls nothing back.
        check(unsafe { mycelium_enable_topic_metrics(handle.as_ptr(), max_topics) })
    });
    unit_reply(result)
}

// ---- misc ----

/// `unit -> int`: runtimes whose finaliser handed them to a background destroy not yet finished.
#[no_mangle]
pub extern "C" fn mycelium_ml_deferred_destroys_pending(_unit: Raw) -> Raw {
    // SAFETY: tagging an integer reads no memory.
    Raw(unsafe { ocaml::sys::val_int(clamp(handle::deferred_destroys_pending() as u64)) })
}

/// `unit -> int`: the loaded C ABI's version, `(major lsl 16) lor minor`.
#[no_mangle]
pub extern "C" fn mycelium_ml_abi_version(_unit: Raw) -> Raw {
    // SAFETY: tagging an integer reads no memory.
    Raw(unsafe { ocaml::sys::val_int(mycelium_ffi::version::mycelium_abi_version() as ocaml::Int) })
}
