//! The versioned function table every handle carries (see `runtime.rs` for why).
//!
//! Rules that keep it compatible across separately built copies of the library:
//! - fields are only ever appended; `size` tells a caller which ones exist;
//! - a different `abi_major` means "do not call anything";
//! - only `#[repr(C)]` types and plain integers cross it, never Rust types.

use std::ffi::{c_char, c_int, c_void, CStr};

use crate::bridge::mycelium_bridge_options;
use crate::metrics::mycelium_type_metrics;
use crate::runtime::{self, mycelium_runtime_t};
use crate::service::mycelium_service_closure;
use crate::status::{
    copy_last_error, guard, mycelium_status, mycelium_status::*, non_null, set_last_error,
    FfiError, FfiResult,
};
use crate::subscription::{
    mycelium_call_batch_fn, mycelium_call_fn, mycelium_closure, mycelium_message,
    mycelium_subscribe_options,
};
use crate::subscription_stats::mycelium_subscription_stats;
use crate::version::{MYCELIUM_ABI_VERSION_MAJOR, MYCELIUM_ABI_VERSION_MINOR};
use crate::wait_hooks::{mycelium_wait_hooks, ForeignHooks};

type Rt = mycelium_runtime_t;
type Status = RawStatus;

/// A status as it crosses the table: a plain C `int`, because the copy that owns a handle may be
/// newer than the caller's and return a code the caller's `mycelium_status` does not have (an
/// out-of-range value in a Rust enum is undefined behaviour). Same ABI as the C enum.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawStatus(pub c_int);

/// `guard` for the table's functions.
fn vguard(what: &str, body: impl FnOnce() -> FfiResult) -> RawStatus {
    RawStatus(guard(what, body) as c_int)
}

/// Version 1.0 of the table. Append-only.
#[repr(C)]
pub struct Vtable {
    pub size: usize,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub last_error_copy: unsafe extern "C" fn(*mut c_char, usize) -> usize,
    pub clone: unsafe extern "C" fn(*const Rt, *mut *mut Rt) -> Status,
    pub destroy: unsafe extern "C" fn(*mut Rt) -> Status,
    pub close: unsafe extern "C" fn(*const Rt) -> Status,
    pub verify_digest: unsafe extern "C" fn(*const Rt, *const c_char) -> Status,
    pub verify_description: unsafe extern "C" fn(*const Rt, *const c_char, usize) -> Status,
    pub schema_digest: unsafe extern "C" fn(*const Rt, *mut c_char, usize) -> Status,
    pub schema_description:
        unsafe extern "C" fn(*const Rt, *mut c_char, usize, *mut usize) -> Status,
    pub publish: unsafe extern "C" fn(*const Rt, u16, *const u8, usize) -> Status,
    pub subscribe: unsafe extern "C" fn(
        *const Rt,
        u16,
        *const mycelium_subscribe_options,
        *const mycelium_closure,
        *mut u64,
    ) -> Status,
    pub unsubscribe: unsafe extern "C" fn(*const Rt, u64) -> Status,
    pub flush: unsafe extern "C" fn(*const Rt, u32) -> Status,
    pub metrics_json: unsafe extern "C" fn(*const Rt, *mut c_char, usize, *mut usize) -> Status,
    pub metrics_prometheus:
        unsafe extern "C" fn(*const Rt, *mut c_char, usize, *mut usize) -> Status,
    pub type_metrics: unsafe extern "C" fn(*const Rt, u16, *mut mycelium_type_metrics) -> Status,
    pub receiver_open:
        unsafe extern "C" fn(*const Rt, u16, *const mycelium_subscribe_options, *mut u64) -> Status,
    pub receiver_recv: unsafe extern "C" fn(
        *const Rt,
        u64,
        u32,
        usize,
        mycelium_call_batch_fn,
        *mut c_void,
        *mut usize,
    ) -> Status,
    pub bridge_listen: unsafe extern "C" fn(
        *const Rt,
        *const c_char,
        *const mycelium_bridge_options,
        *mut u64,
    ) -> Status,
    pub bridge_connect: unsafe extern "C" fn(
        *const Rt,
        *const c_char,
        *const mycelium_bridge_options,
        *mut u64,
    ) -> Status,
    pub bridge_wait: unsafe extern "C" fn(*const Rt, u64, u64, u32) -> Status,
    pub bridge_close: unsafe extern "C" fn(*const Rt, u64) -> Status,
    pub bridge_stats_json:
        unsafe extern "C" fn(*const Rt, u64, *mut c_char, usize, *mut usize) -> Status,
    // ABI 1.1
    pub publish_with_hooks: unsafe extern "C" fn(
        *const Rt,
        u16,
        *const u8,
        usize,
        *const mycelium_wait_hooks,
    ) -> Status,
    pub subscription_stats:
        unsafe extern "C" fn(*const Rt, u64, *mut mycelium_subscription_stats) -> Status,
    // ABI 1.3: request/reply
    pub serve: unsafe extern "C" fn(
        *const Rt,
        u16,
        u16,
        u32,
        *const c_char,
        *const mycelium_service_closure,
        *mut u64,
    ) -> Status,
    pub unserve: unsafe extern "C" fn(*const Rt, u64) -> Status,
    /// `all` 0: `mycelium_request`; 1: `mycelium_request_all` (then the two out counts).
    pub request: unsafe extern "C" fn(
        *const Rt,
        u16,
        *const u8,
        usize,
        u16,
        u32,
        *const mycelium_wait_hooks,
        mycelium_call_fn,
        *mut c_void,
        c_int,
        *mut usize,
        *mut usize,
    ) -> Status,
    // ABI 1.4: named topics
    pub publish_topic: unsafe extern "C" fn(
        *const Rt,
        u16,
        *const c_char,
        *const u8,
        usize,
        *const mycelium_wait_hooks,
    ) -> Status,
    // ABI 1.5: the topic of a delivered message; per-topic metrics
    pub message_topic: unsafe extern "C" fn(
        *const Rt,
        *const mycelium_message,
        *mut *const c_char,
        *mut usize,
    ) -> Status,
    pub enable_topic_metrics: unsafe extern "C" fn(*const Rt, u32) -> Status,
}

pub(crate) static OWN_VTABLE: Vtable = Vtable {
    size: std::mem::size_of::<Vtable>(),
    abi_major: MYCELIUM_ABI_VERSION_MAJOR,
    abi_minor: MYCELIUM_ABI_VERSION_MINOR,
    last_error_copy: vt_last_error_copy,
    clone: vt_clone,
    destroy: vt_destroy,
    close: vt_close,
    verify_digest: vt_verify_digest,
    verify_description: vt_verify_description,
    schema_digest: vt_schema_digest,
    schema_description: vt_schema_description,
    publish: vt_publish,
    subscribe: vt_subscribe,
    unsubscribe: vt_unsubscribe,
    flush: vt_flush,
    metrics_json: vt_metrics_json,
    metrics_prometheus: vt_metrics_prometheus,
    type_metrics: vt_type_metrics,
    receiver_open: vt_receiver_open,
    receiver_recv: vt_receiver_recv,
    bridge_listen: vt_bridge_listen,
    bridge_connect: vt_bridge_connect,
    bridge_wait: vt_bridge_wait,
    bridge_close: vt_bridge_close,
    bridge_stats_json: vt_bridge_stats_json,
    publish_with_hooks: vt_publish_with_hooks,
    subscription_stats: vt_subscription_stats,
    serve: vt_serve,
    unserve: vt_unserve,
    request: vt_request,
    publish_topic: vt_publish_topic,
    message_topic: vt_message_topic,
    enable_topic_metrics: vt_enable_topic_metrics,
};

/// Finds the table of the copy that owns `rt`, calls `f` with it, and brings that copy's
/// last-error text into this copy's thread-local so `mycelium_last_error` explains the failure
/// whichever copy's exported function the caller reached.
pub(crate) fn dispatch(
    rt: *const Rt,
    what: &str,
    f: impl FnOnce(&Vtable) -> Status,
) -> mycelium_status {
    let mut vt_ptr: *const Vtable = std::ptr::null();
    let pre = guard(what, || {
        let header = non_null(rt, "runtime")?;
        vt_ptr = header.vtable;
        // SAFETY: a live or tombstoned header always holds the static table of the copy that made it.
        let vt = unsafe { vt_ptr.as_ref() }.ok_or_else(|| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                "not a mycelium runtime handle",
            )
        })?;
        // Same major and a table at least as long as ours: every field we may call exists.
        if vt.abi_major != MYCELIUM_ABI_VERSION_MAJOR || vt.size < std::mem::size_of::<Vtable>() {
            return Err(FfiError::new(
                MYCELIUM_ERR_ABI_MISMATCH,
                format!(
                    "handle comes from a library with ABI {}.{}; this library speaks {}.{}",
                    vt.abi_major,
                    vt.abi_minor,
                    MYCELIUM_ABI_VERSION_MAJOR,
                    MYCELIUM_ABI_VERSION_MINOR
                ),
            ));
        }
        Ok(())
    });
    if pre != MYCELIUM_OK {
        return pre;
    }
    // SAFETY: checked non-NULL and version-compatible above.
    let vt = unsafe { &*vt_ptr };
    let raw = f(vt);
    let known = mycelium_status::from_raw(raw.0);
    let status = known.unwrap_or(MYCELIUM_ERR_ABI_MISMATCH);
    if status != MYCELIUM_OK && !std::ptr::eq(vt, &OWN_VTABLE) {
        let mut buf = vec![0 as c_char; 4096];
        // SAFETY: the owner's function writes at most buf.len() bytes into our buffer.
        unsafe { (vt.last_error_copy)(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: last_error_copy always NUL-terminates within the buffer.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
        match known {
            Some(_) => set_last_error(&text.to_string_lossy()),
            None => set_last_error(&format!(
                "the library that owns this handle (ABI {}.{}) returned status {}, which this \
                 older copy (ABI {MYCELIUM_ABI_VERSION_MAJOR}.{MYCELIUM_ABI_VERSION_MINOR}) does \
                 not know: {}",
                vt.abi_major,
                vt.abi_minor,
                raw.0,
                text.to_string_lossy()
            )),
        }
    }
    status
}

/// Largest table size a probed handle may claim: far above any real table (a few hundred
/// bytes), and small enough that a bogus size never makes the probe read much.
const MAX_PLAUSIBLE_TABLE: usize = 4096;

/// [`dispatch`] for a handle that comes from outside (an address given to `attach`): checks it
/// with [`probe_handle`] before anything dereferences it.
pub(crate) fn dispatch_probed(
    rt: *const Rt,
    what: &str,
    f: impl FnOnce(&Vtable) -> Status,
) -> mycelium_status {
    let probed = guard(what, || probe_handle(rt));
    if probed != MYCELIUM_OK {
        return probed;
    }
    dispatch(rt, what, f)
}

/// Checks that `rt` looks like a runtime handle before it is dereferenced, so that a bogus
/// address (a wrong integer given to Python's `Runtime.attach` or OCaml's `Runtime.of_handle`)
/// is an error instead of a crash.
///
/// Why a probe and not only a registry of live handles: a handle may come from another copy
/// of this library (a Rust host's static copy, the Python wheel's), and two copies share no
/// Rust state, only the C layout of the header's first field. So this copy checks what every
/// copy's header has, without faulting: the address is aligned and readable, it holds an
/// aligned, readable pointer to a table whose size is plausible and whose `clone` entry is
/// set. The copy that owns the table then checks the address against its own registry of the
/// headers it made (`runtime::is_own_header`, in `clone_handle`), which also refuses a
/// look-alike that merely points at a real table. Destroyed handles stay in that registry and
/// get `MYCELIUM_ERR_CLOSED`.
///
/// Memory is read with `process_vm_readv` on this process, which returns EFAULT for an
/// unmapped address instead of raising SIGSEGV, and which memory checkers understand (valgrind
/// and ASan check only the local buffer). Where it is refused (a seccomp filter, a kernel
/// without it) the bytes are written to a socket instead, which fails the same way.
///
/// What remains the caller's: an address of memory that mimics a header of an older copy
/// (before ABI 1.2, which has no registry) or of memory freed since (a freed header is
/// never reused by this library, which keeps destroyed headers, but foreign memory can be).
pub(crate) fn probe_handle(rt: *const Rt) -> FfiResult {
    let addr = rt as usize;
    let not_handle = |why: &str| {
        FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("{addr:#x} is not a mycelium runtime handle of this process: {why}"),
        )
    };
    if addr == 0 {
        return Err(FfiError::new(
            MYCELIUM_ERR_NULL_POINTER,
            "`runtime` is NULL",
        ));
    }
    let word = std::mem::size_of::<usize>();
    if !addr.is_multiple_of(std::mem::align_of::<*const Vtable>()) {
        return Err(not_handle("the address is not aligned"));
    }
    let mut first = [0u8; 8];
    if !probe::read(addr, &mut first[..word]) {
        return Err(not_handle("the address is not readable memory"));
    }
    let table = usize::from_ne_bytes(first[..word].try_into().expect("a word"));
    if table == 0 {
        return Err(not_handle("it holds no function table (NULL)"));
    }
    if table % std::mem::align_of::<Vtable>() != 0 {
        return Err(not_handle("its function table pointer is not aligned"));
    }
    let mut head = [0u8; std::mem::size_of::<Vtable>()];
    // `size`, `abi_major` and `abi_minor`: the part of the table every ABI version has.
    let head_len = word + 8;
    if !probe::read(table, &mut head[..head_len]) {
        return Err(not_handle(
            "its function table pointer does not point to readable memory",
        ));
    }
    let size = usize::from_ne_bytes(head[..word].try_into().expect("a word"));
    if size < head_len || size > MAX_PLAUSIBLE_TABLE || size % word != 0 {
        return Err(not_handle(&format!(
            "what it points to is not a function table (size {size})"
        )));
    }
    if size < std::mem::size_of::<Vtable>() {
        // An older or foreign table: `dispatch` reports the ABI mismatch without reading more.
        return Ok(());
    }
    if !probe::read(table, &mut head) {
        return Err(not_handle("its function table is not readable"));
    }
    let clone_at = std::mem::offset_of!(Vtable, clone);
    if head[clone_at..clone_at + word].iter().all(|&b| b == 0) {
        return Err(not_handle("its function table has no clone function"));
    }
    Ok(())
}

/// Reading memory that may not be mapped, without faulting.
/// cbindgen:ignore
mod probe {
    #[cfg(target_os = "linux")]
    #[repr(C)]
    struct IoVec {
        base: *mut std::ffi::c_void,
        len: usize,
    }

    extern "C" {
        #[cfg(target_os = "linux")]
        fn process_vm_readv(
            pid: std::ffi::c_int,
            local: *const IoVec,
            local_count: std::ffi::c_ulong,
            remote: *const IoVec,
            remote_count: std::ffi::c_ulong,
            flags: std::ffi::c_ulong,
        ) -> isize;
        fn write(fd: std::ffi::c_int, buf: *const std::ffi::c_void, count: usize) -> isize;
    }

    /// Copies `out.len()` bytes from `addr` into `out`; false if any of them is not readable.
    pub(super) fn read(addr: usize, out: &mut [u8]) -> bool {
        #[cfg(target_os = "linux")]
        {
            let local = IoVec {
                base: out.as_mut_ptr().cast(),
                len: out.len(),
            };
            let remote = IoVec {
                base: addr as *mut std::ffi::c_void,
                len: out.len(),
            };
            // SAFETY: the kernel writes at most `out.len()` bytes into `out` (a live, exclusive
            // buffer) and reads `addr` only through the page tables, failing with EFAULT for
            // unmapped memory; nothing here dereferences `addr`.
            let n = unsafe {
                process_vm_readv(
                    std::process::id() as std::ffi::c_int,
                    &local,
                    1,
                    &remote,
                    1,
                    0,
                )
            };
            if n >= 0 {
                return n as usize == out.len();
            }
            if std::io::Error::last_os_error().raw_os_error() == Some(14) {
                return false; // EFAULT
            }
            // ENOSYS, EPERM (seccomp): the socket probe below works everywhere.
        }
        read_through_socket(addr, out)
    }

    fn read_through_socket(addr: usize, out: &mut [u8]) -> bool {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let Ok((tx, mut rx)) = std::os::unix::net::UnixStream::pair() else {
            return false;
        };
        // SAFETY: write(2) reads `out.len()` bytes at `addr` in the kernel, which reports an
        // unreadable buffer as EFAULT instead of faulting; `tx` is an open socket this function
        // owns, whose buffer holds far more than the few hundred bytes probed.
        let n = unsafe { write(tx.as_raw_fd(), addr as *const std::ffi::c_void, out.len()) };
        if n < 0 || n as usize != out.len() {
            return false;
        }
        rx.read_exact(out).is_ok()
    }
}

/// Longest `(ptr, len)` text argument (schema text, schema descriptions): 16 MiB.
pub const MYCELIUM_MAX_TEXT_LEN: usize = 16 * 1024 * 1024;

/// Reads a `(ptr, len)` string argument that must be UTF-8. The length is checked against
/// [`MYCELIUM_MAX_TEXT_LEN`] before any slice is formed.
pub(crate) fn str_arg<'a>(ptr: *const c_char, len: usize, arg: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::new(
            MYCELIUM_ERR_NULL_POINTER,
            format!("`{arg}` is NULL"),
        ));
    }
    if len > MYCELIUM_MAX_TEXT_LEN {
        return Err(FfiError::new(
            MYCELIUM_ERR_TOO_LARGE,
            format!("`{arg}` of {len} bytes exceeds the maximum of {MYCELIUM_MAX_TEXT_LEN} bytes"),
        ));
    }
    // SAFETY: the C contract says `ptr` points to `len` readable bytes for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("`{arg}` is not valid UTF-8: {e}"),
        )
    })
}

/// Reads a NUL-terminated UTF-8 string argument.
pub(crate) fn cstr_arg<'a>(ptr: *const c_char, arg: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(FfiError::new(
            MYCELIUM_ERR_NULL_POINTER,
            format!("`{arg}` is NULL"),
        ));
    }
    // SAFETY: the C contract says `ptr` is a NUL-terminated string valid for the call.
    unsafe { CStr::from_ptr(ptr) }.to_str().map_err(|e| {
        FfiError::new(
            MYCELIUM_ERR_INVALID_ARGUMENT,
            format!("`{arg}` is not valid UTF-8: {e}"),
        )
    })
}

unsafe extern "C" fn vt_last_error_copy(buf: *mut c_char, len: usize) -> usize {
    copy_last_error(buf, len)
}

unsafe extern "C" fn vt_clone(rt: *const Rt, out: *mut *mut Rt) -> Status {
    vguard("mycelium_runtime_clone", || {
        if out.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out` is NULL"));
        }
        let new = runtime::clone_handle(rt)?;
        // SAFETY: `out` is non-NULL and points to writable storage for a pointer (C contract).
        unsafe { out.write(new) };
        Ok(())
    })
}

unsafe extern "C" fn vt_destroy(rt: *mut Rt) -> Status {
    vguard("mycelium_runtime_destroy", || runtime::destroy(rt))
}

unsafe extern "C" fn vt_close(rt: *const Rt) -> Status {
    vguard("mycelium_runtime_close", || runtime::close(rt))
}

unsafe extern "C" fn vt_verify_digest(rt: *const Rt, digest: *const c_char) -> Status {
    vguard("mycelium_verify_schema_digest", || {
        runtime::verify_digest(rt, cstr_arg(digest, "digest")?)
    })
}

unsafe extern "C" fn vt_verify_description(
    rt: *const Rt,
    text: *const c_char,
    len: usize,
) -> Status {
    vguard("mycelium_verify_schema_description", || {
        runtime::verify_description(rt, str_arg(text, len, "description")?)
    })
}

unsafe extern "C" fn vt_schema_digest(rt: *const Rt, buf: *mut c_char, len: usize) -> Status {
    vguard("mycelium_schema_digest", || {
        let h = runtime::live(rt)?;
        runtime::write_text(&h.core.digest, buf, len, std::ptr::null_mut())
    })
}

unsafe extern "C" fn vt_schema_description(
    rt: *const Rt,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> Status {
    vguard("mycelium_schema_description", || {
        let h = runtime::live(rt)?;
        runtime::write_text(&h.core.canonical, buf, len, needed)
    })
}

unsafe extern "C" fn vt_publish(
    rt: *const Rt,
    type_id: u16,
    payload: *const u8,
    len: usize,
) -> Status {
    vguard("mycelium_publish", || {
        // SAFETY: the caller guarantees `payload` points to `len` readable bytes for the call.
        unsafe { runtime::publish(rt, type_id, payload, len, None) }
    })
}

unsafe extern "C" fn vt_publish_with_hooks(
    rt: *const Rt,
    type_id: u16,
    payload: *const u8,
    len: usize,
    hooks: *const mycelium_wait_hooks,
) -> Status {
    vguard("mycelium_publish_with_hooks", || {
        // SAFETY: a non-NULL hooks pointer is valid for reads of its `struct_size` bytes during
        // the call (C contract).
        let hooks = unsafe { crate::sized::read_options(hooks) }?;
        let mut foreign = match hooks.as_ref() {
            Some(h) => ForeignHooks::new(h)?,
            None => None,
        };
        let hooks = foreign
            .as_mut()
            .map(|h| h as &mut dyn mycelium_transport::WaitHooks);
        // SAFETY: the caller guarantees `payload` points to `len` readable bytes until the
        // payload is copied, which happens before any hook runs.
        unsafe { runtime::publish(rt, type_id, payload, len, hooks) }
    })
}

unsafe extern "C" fn vt_publish_topic(
    rt: *const Rt,
    type_id: u16,
    topic: *const c_char,
    payload: *const u8,
    len: usize,
    hooks: *const mycelium_wait_hooks,
) -> Status {
    vguard("mycelium_publish_topic", || {
        let topic = non_null(topic, "topic")?;
        // SAFETY: a non-NULL topic is a NUL-terminated string valid for the call (C contract).
        let text = unsafe { CStr::from_ptr(topic) }.to_str().map_err(|_| {
            FfiError::new(MYCELIUM_ERR_INVALID_ARGUMENT, "`topic` is not valid UTF-8")
        })?;
        let topic = mycelium_transport::TopicName::new(text)
            .map_err(|e| FfiError::new(MYCELIUM_ERR_INVALID_ARGUMENT, e.to_string()))?;
        // SAFETY: a non-NULL hooks pointer is valid for reads of its `struct_size` bytes during
        // the call (C contract).
        let hooks = unsafe { crate::sized::read_options(hooks) }?;
        let mut foreign = match hooks.as_ref() {
            Some(h) => ForeignHooks::new(h)?,
            None => None,
        };
        let hooks = foreign
            .as_mut()
            .map(|h| h as &mut dyn mycelium_transport::WaitHooks);
        // SAFETY: the caller guarantees `payload` points to `len` readable bytes until the
        // payload is copied, which happens before any hook runs.
        unsafe { runtime::publish_on(rt, type_id, Some(&topic), payload, len, hooks) }
    })
}

unsafe extern "C" fn vt_message_topic(
    _rt: *const Rt,
    message: *const mycelium_message,
    out_topic: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    vguard("mycelium_message_topic", || {
        if message.is_null() || out_topic.is_null() || out_len.is_null() {
            return Err(FfiError::new(
                MYCELIUM_ERR_NULL_POINTER,
                "`message`, `out_topic` and `out_len` must not be NULL",
            ));
        }
        use crate::message_topic::{topic_of, NotDelivering};
        let found = topic_of(message).map_err(|why| {
            FfiError::new(
                MYCELIUM_ERR_INVALID_ARGUMENT,
                match why {
                    NotDelivering::Idle => {
                        "mycelium_message_topic: this thread is not inside a delivery callback \
                         or a receiver's visit function"
                    }
                    NotDelivering::Elsewhere => {
                        "mycelium_message_topic: `message` is not one of the messages this \
                         callback was handed (a copy of one, or a message of an outer delivery)"
                    }
                },
            )
        })?;
        let (ptr, len) = found.unwrap_or((std::ptr::null(), 0));
        // SAFETY: both out pointers are non-NULL and writable (C contract).
        unsafe {
            out_topic.write(ptr.cast());
            out_len.write(len);
        }
        Ok(())
    })
}

unsafe extern "C" fn vt_subscribe(
    rt: *const Rt,
    type_id: u16,
    opts: *const mycelium_subscribe_options,
    closure: *const mycelium_closure,
    out_id: *mut u64,
) -> Status {
    vguard("mycelium_subscribe", || {
        let closure = non_null(closure, "closure")?;
        if out_id.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out_id` is NULL"));
        }
        // SAFETY: a non-NULL options pointer is valid for reads of its `struct_size` bytes
        // during the call (C contract).
        let opts = unsafe { crate::sized::read_options(opts) }?;
        let opts = opts.as_ref();
        let id = runtime::subscribe(rt, type_id, opts, closure)?;
        // SAFETY: checked non-NULL above; points to a writable uint64_t (C contract).
        unsafe { out_id.write(id) };
        Ok(())
    })
}

unsafe extern "C" fn vt_unsubscribe(rt: *const Rt, id: u64) -> Status {
    vguard("mycelium_unsubscribe", || runtime::unsubscribe(rt, id))
}

unsafe extern "C" fn vt_flush(rt: *const Rt, timeout_ms: u32) -> Status {
    vguard("mycelium_flush", || runtime::flush(rt, timeout_ms))
}

unsafe extern "C" fn vt_enable_topic_metrics(rt: *const Rt, max_topics: u32) -> Status {
    vguard("mycelium_enable_topic_metrics", || {
        runtime::live(rt)?
            .core
            .bus
            .enable_topic_metrics(max_topics as usize);
        Ok(())
    })
}

unsafe extern "C" fn vt_metrics_json(
    rt: *const Rt,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> Status {
    vguard("mycelium_metrics_json", || {
        let h = runtime::live(rt)?;
        // The bus's metrics plus its connections (socket bridges and NATS joins, with their
        // counters): one document for everything the handle carries.
        let mut doc = serde_json::to_value(h.core.bus.metrics()).unwrap_or_default();
        if let Some(map) = doc.as_object_mut() {
            map.insert("connections".into(), crate::bridge::connections_json(&h));
        }
        runtime::write_text(&doc.to_string(), buf, len, needed)
    })
}

unsafe extern "C" fn vt_metrics_prometheus(
    rt: *const Rt,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> Status {
    vguard("mycelium_metrics_prometheus", || {
        let h = runtime::live(rt)?;
        let mut text = h.core.bus.metrics().to_prometheus();
        text.push_str(&crate::bridge::prometheus(&h));
        runtime::write_text(&text, buf, len, needed)
    })
}

unsafe extern "C" fn vt_type_metrics(
    rt: *const Rt,
    type_id: u16,
    out: *mut mycelium_type_metrics,
) -> Status {
    vguard("mycelium_type_metrics", || {
        let h = runtime::live(rt)?;
        crate::metrics::fill_type_metrics(&h.core.bus.metrics(), type_id, out)
    })
}

unsafe extern "C" fn vt_receiver_open(
    rt: *const Rt,
    type_id: u16,
    opts: *const mycelium_subscribe_options,
    out_id: *mut u64,
) -> Status {
    vguard("mycelium_receiver_open", || {
        if out_id.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out_id` is NULL"));
        }
        // SAFETY: a non-NULL options pointer is valid for reads of its `struct_size` bytes
        // during the call (C contract).
        let opts = unsafe { crate::sized::read_options(opts) }?;
        let opts = opts.as_ref();
        let id = crate::receiver::open(rt, type_id, opts)?;
        // SAFETY: checked non-NULL above; points to a writable uint64_t (C contract).
        unsafe { out_id.write(id) };
        Ok(())
    })
}

unsafe extern "C" fn vt_receiver_recv(
    rt: *const Rt,
    id: u64,
    timeout_ms: u32,
    max_messages: usize,
    visit: mycelium_call_batch_fn,
    context: *mut c_void,
    out_count: *mut usize,
) -> Status {
    vguard("mycelium_receiver_recv", || {
        let n = crate::receiver::recv(rt, id, timeout_ms, max_messages, visit, context)?;
        if !out_count.is_null() {
            // SAFETY: a non-NULL out_count points to a writable size_t (C contract).
            unsafe { out_count.write(n) };
        }
        Ok(())
    })
}

fn bridge_start(
    what: &str,
    rt: *const Rt,
    address: *const c_char,
    opts: *const mycelium_bridge_options,
    out_id: *mut u64,
    start: fn(*const Rt, &str, Option<&mycelium_bridge_options>) -> FfiResult<u64>,
) -> Status {
    vguard(what, || {
        let address = cstr_arg(address, "address")?;
        if out_id.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out_id` is NULL"));
        }
        // SAFETY: a non-NULL options pointer is valid for reads of its `struct_size` bytes
        // during the call (C contract).
        let opts = unsafe { crate::sized::read_options(opts) }?;
        let opts = opts.as_ref();
        let id = start(rt, address, opts)?;
        // SAFETY: checked non-NULL above; points to a writable uint64_t (C contract).
        unsafe { out_id.write(id) };
        Ok(())
    })
}

unsafe extern "C" fn vt_bridge_listen(
    rt: *const Rt,
    address: *const c_char,
    opts: *const mycelium_bridge_options,
    out_id: *mut u64,
) -> Status {
    bridge_start(
        "mycelium_bridge_listen",
        rt,
        address,
        opts,
        out_id,
        crate::bridge::listen,
    )
}

unsafe extern "C" fn vt_bridge_connect(
    rt: *const Rt,
    address: *const c_char,
    opts: *const mycelium_bridge_options,
    out_id: *mut u64,
) -> Status {
    bridge_start(
        "mycelium_bridge_connect",
        rt,
        address,
        opts,
        out_id,
        crate::bridge::connect,
    )
}

unsafe extern "C" fn vt_bridge_wait(
    rt: *const Rt,
    id: u64,
    sessions: u64,
    timeout_ms: u32,
) -> Status {
    vguard("mycelium_bridge_wait", || {
        crate::bridge::wait(rt, id, sessions, timeout_ms)
    })
}

unsafe extern "C" fn vt_bridge_close(rt: *const Rt, id: u64) -> Status {
    vguard("mycelium_bridge_close", || crate::bridge::close(rt, id))
}

unsafe extern "C" fn vt_bridge_stats_json(
    rt: *const Rt,
    id: u64,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> Status {
    vguard("mycelium_bridge_stats_json", || {
        let text = crate::bridge::stats_json(rt, id)?;
        runtime::write_text(&text, buf, len, needed)
    })
}

unsafe extern "C" fn vt_subscription_stats(
    rt: *const Rt,
    id: u64,
    out: *mut mycelium_subscription_stats,
) -> Status {
    vguard("mycelium_subscription_stats_get", || {
        crate::subscription_stats::fill(rt, id, out)
    })
}

unsafe extern "C" fn vt_serve(
    rt: *const Rt,
    request_type: u16,
    reply_type: u16,
    capacity: u32,
    label: *const c_char,
    handler: *const mycelium_service_closure,
    out_id: *mut u64,
) -> Status {
    vguard("mycelium_serve", || {
        let handler = *non_null(handler, "handler")?;
        if out_id.is_null() {
            return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out_id` is NULL"));
        }
        let label = if label.is_null() {
            None
        } else {
            Some(cstr_arg(label, "label")?.to_owned())
        };
        let id = crate::service::serve_on(rt, request_type, reply_type, capacity, label, handler)?;
        // SAFETY: checked non-NULL above; points to a writable uint64_t (C contract).
        unsafe { out_id.write(id) };
        Ok(())
    })
}

unsafe extern "C" fn vt_unserve(rt: *const Rt, id: u64) -> Status {
    vguard("mycelium_unserve", || crate::service::unserve(rt, id))
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn vt_request(
    rt: *const Rt,
    request_type: u16,
    payload: *const u8,
    len: usize,
    reply_type: u16,
    timeout_ms: u32,
    hooks: *const mycelium_wait_hooks,
    on_reply: mycelium_call_fn,
    context: *mut c_void,
    all: c_int,
    out_failed: *mut usize,
    out_unanswered: *mut usize,
) -> Status {
    let what = if all != 0 {
        "mycelium_request_all"
    } else {
        "mycelium_request"
    };
    vguard(what, || {
        // SAFETY: a non-NULL hooks pointer is valid for reads of its `struct_size` bytes during
        // the call (C contract).
        let hooks = unsafe { crate::sized::read_options(hooks) }?;
        let mut foreign = match hooks.as_ref() {
            Some(h) => ForeignHooks::new(h)?,
            None => None,
        };
        let hooks = foreign
            .as_mut()
            .map(|h| h as &mut dyn mycelium_transport::WaitHooks);
        let sink = crate::service::ReplySink { on_reply, context };
        // SAFETY: the caller guarantees `payload` points to `len` readable bytes until it is
        // copied, which happens before any wait or hook.
        let outcome = unsafe {
            crate::service::request(
                rt,
                request_type,
                payload,
                len,
                reply_type,
                timeout_ms,
                hooks,
                &sink,
                all != 0,
            )
        }?;
        // SAFETY: each non-NULL out pointer points to a writable size_t (C contract).
        unsafe {
            if !out_failed.is_null() {
                out_failed.write(outcome.failed);
            }
            if !out_unanswered.is_null() {
                out_unanswered.write(outcome.unanswered);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwapOption;

    unsafe extern "C" fn newer_publish(_: *const Rt, _: u16, _: *const u8, _: usize) -> Status {
        RawStatus(1017) // a status code this copy of the library does not define
    }

    unsafe extern "C" fn newer_last_error(buf: *mut c_char, len: usize) -> usize {
        let text = c"queue shed by the newer library's policy";
        let bytes = text.to_bytes_with_nul();
        if len >= bytes.len() {
            // SAFETY: the buffer has `len >= bytes.len()` writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast(), bytes.len()) };
        }
        bytes.len() - 1
    }

    #[test]
    fn an_unknown_status_from_a_newer_copy_becomes_abi_mismatch_with_its_message() {
        // A handle as a newer copy of the library would make it: its own table, same major.
        let table = Vtable {
            abi_minor: MYCELIUM_ABI_VERSION_MINOR + 1,
            publish: newer_publish,
            last_error_copy: newer_last_error,
            ..OWN_VTABLE
        };
        let header = mycelium_runtime_t {
            vtable: &table,
            handle: ArcSwapOption::from(None),
        };
        let header: *const Rt = &header;
        // SAFETY: the table's publish ignores its arguments.
        let got = dispatch(header, "mycelium_publish", |vt| unsafe {
            (vt.publish)(header, 1, std::ptr::null(), 0)
        });
        assert_eq!(got, MYCELIUM_ERR_ABI_MISMATCH);
        // SAFETY: the last error is a NUL-terminated string owned by this thread.
        let msg = unsafe { CStr::from_ptr(crate::status::last_error_ptr()) }
            .to_string_lossy()
            .into_owned();
        assert!(msg.contains("returned status 1017"), "{msg}");
        assert!(msg.contains("queue shed by the newer library"), "{msg}");
    }
}
