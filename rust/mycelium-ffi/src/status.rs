//! `mycelium_status`: the error codes every C function returns, the thread-local last-error
//! message, and the guard that keeps panics from unwinding into C.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result of every fallible C ABI call. `MYCELIUM_OK` is zero; every other value comes with a
/// message for `mycelium_last_error()` on the calling thread.
#[repr(C)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mycelium_status {
    /// Success.
    MYCELIUM_OK = 0,
    /// A required pointer argument was NULL.
    MYCELIUM_ERR_NULL_POINTER = 1,
    /// An argument is out of range or malformed (e.g. a struct_size that is too small, a capacity of 0).
    MYCELIUM_ERR_INVALID_ARGUMENT = 2,
    /// The schema text could not be parsed or failed validation.
    MYCELIUM_ERR_SCHEMA = 3,
    /// A foreign schema digest or description does not match the runtime's schema.
    MYCELIUM_ERR_SCHEMA_MISMATCH = 4,
    /// The type id is not defined by the runtime's schema.
    MYCELIUM_ERR_UNKNOWN_TYPE = 5,
    /// The payload does not decode as the message type it was published as.
    MYCELIUM_ERR_DECODE = 6,
    /// The payload exceeds the maximum payload size.
    MYCELIUM_ERR_TOO_LARGE = 7,
    /// A subscriber with the `MYCELIUM_OVERFLOW_FAIL` policy had a full queue.
    MYCELIUM_ERR_QUEUE_FULL = 8,
    /// The runtime was closed or destroyed.
    MYCELIUM_ERR_CLOSED = 9,
    /// The subscription id is unknown to this handle (never issued, or already unsubscribed).
    MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION = 10,
    /// A wait ended before its condition was met.
    MYCELIUM_ERR_TIMEOUT = 11,
    /// A handle comes from a library whose ABI major version differs from this one.
    MYCELIUM_ERR_ABI_MISMATCH = 12,
    /// A caller-supplied buffer is too small; the needed size was written where the call says.
    MYCELIUM_ERR_BUFFER_TOO_SMALL = 13,
    /// Rust code panicked inside the library; the panic was caught and the call failed.
    MYCELIUM_ERR_PANIC = 14,
    /// The call is not allowed from this thread (`mycelium_flush` from one of the handle's own callbacks).
    MYCELIUM_ERR_WRONG_THREAD = 15,
    /// A socket bridge could not listen, connect, or was refused by its peer (the last error
    /// says why: schema mismatch naming the messages, wrong token, address in use...).
    MYCELIUM_ERR_BRIDGE = 16,
    /// Since ABI 1.3. Nobody serves the request's (request type, reply type) right now
    /// (`mycelium_request` returns it at once, without waiting for the timeout).
    MYCELIUM_ERR_NO_RESPONDER = 17,
    /// Since ABI 1.3. Every responder that got the request failed (its handler returned an
    /// error or panicked, its queue was full, or it stopped first); the last error is the
    /// first responder's reason, e.g. the text a handler gave `mycelium_reply_fail`.
    MYCELIUM_ERR_RESPONDER_FAILED = 18,
}

use mycelium_status::*;

/// Every status, in code order (the code of `STATUSES[i]` is `i`).
const STATUSES: [mycelium_status; 19] = [
    MYCELIUM_OK,
    MYCELIUM_ERR_NULL_POINTER,
    MYCELIUM_ERR_INVALID_ARGUMENT,
    MYCELIUM_ERR_SCHEMA,
    MYCELIUM_ERR_SCHEMA_MISMATCH,
    MYCELIUM_ERR_UNKNOWN_TYPE,
    MYCELIUM_ERR_DECODE,
    MYCELIUM_ERR_TOO_LARGE,
    MYCELIUM_ERR_QUEUE_FULL,
    MYCELIUM_ERR_CLOSED,
    MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
    MYCELIUM_ERR_TIMEOUT,
    MYCELIUM_ERR_ABI_MISMATCH,
    MYCELIUM_ERR_BUFFER_TOO_SMALL,
    MYCELIUM_ERR_PANIC,
    MYCELIUM_ERR_WRONG_THREAD,
    MYCELIUM_ERR_BRIDGE,
    MYCELIUM_ERR_NO_RESPONDER,
    MYCELIUM_ERR_RESPONDER_FAILED,
];

impl mycelium_status {
    /// The status with code `code`, or `None` for a value this library does not define. C hands
    /// enums over as plain integers, and an out-of-range value in a Rust enum is undefined
    /// behaviour, so every enum-like value from C goes through here (or an equivalent match).
    pub const fn from_raw(code: std::ffi::c_int) -> Option<mycelium_status> {
        if code >= 0 && (code as usize) < STATUSES.len() {
            Some(STATUSES[code as usize])
        } else {
            None
        }
    }

    /// The constant's name, as a static NUL-terminated string.
    pub const fn name_cstr(self) -> &'static CStr {
        match self {
            MYCELIUM_OK => c"MYCELIUM_OK",
            MYCELIUM_ERR_NULL_POINTER => c"MYCELIUM_ERR_NULL_POINTER",
            MYCELIUM_ERR_INVALID_ARGUMENT => c"MYCELIUM_ERR_INVALID_ARGUMENT",
            MYCELIUM_ERR_SCHEMA => c"MYCELIUM_ERR_SCHEMA",
            MYCELIUM_ERR_SCHEMA_MISMATCH => c"MYCELIUM_ERR_SCHEMA_MISMATCH",
            MYCELIUM_ERR_UNKNOWN_TYPE => c"MYCELIUM_ERR_UNKNOWN_TYPE",
            MYCELIUM_ERR_DECODE => c"MYCELIUM_ERR_DECODE",
            MYCELIUM_ERR_TOO_LARGE => c"MYCELIUM_ERR_TOO_LARGE",
            MYCELIUM_ERR_QUEUE_FULL => c"MYCELIUM_ERR_QUEUE_FULL",
            MYCELIUM_ERR_CLOSED => c"MYCELIUM_ERR_CLOSED",
            MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION => c"MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION",
            MYCELIUM_ERR_TIMEOUT => c"MYCELIUM_ERR_TIMEOUT",
            MYCELIUM_ERR_ABI_MISMATCH => c"MYCELIUM_ERR_ABI_MISMATCH",
            MYCELIUM_ERR_BUFFER_TOO_SMALL => c"MYCELIUM_ERR_BUFFER_TOO_SMALL",
            MYCELIUM_ERR_PANIC => c"MYCELIUM_ERR_PANIC",
            MYCELIUM_ERR_WRONG_THREAD => c"MYCELIUM_ERR_WRONG_THREAD",
            MYCELIUM_ERR_BRIDGE => c"MYCELIUM_ERR_BRIDGE",
            MYCELIUM_ERR_NO_RESPONDER => c"MYCELIUM_ERR_NO_RESPONDER",
            MYCELIUM_ERR_RESPONDER_FAILED => c"MYCELIUM_ERR_RESPONDER_FAILED",
        }
    }
}

/// A failure on its way to C: the code plus the text `mycelium_last_error()` will show.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: mycelium_status,
    pub message: String,
}

impl FfiError {
    pub fn new(status: mycelium_status, message: impl Into<String>) -> Self {
        FfiError {
            status,
            message: message.into(),
        }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Stores `message` as this thread's last error. Interior NULs are replaced so the text is never
/// silently cut short.
pub(crate) fn set_last_error(message: &str) {
    let clean = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    // A thread being torn down has no TLS left; losing the message then is harmless.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = clean);
}

/// Copies this thread's last error into `buf` (NUL-terminated, truncated to fit) and returns the
/// full length without the NUL, like `snprintf`.
pub(crate) fn copy_last_error(buf: *mut c_char, len: usize) -> usize {
    LAST_ERROR
        .try_with(|slot| {
            let slot = slot.borrow();
            let bytes = slot.as_bytes();
            if !buf.is_null() && len > 0 {
                let n = bytes.len().min(len - 1);
                // SAFETY: the caller promises `buf` points to `len` writable bytes; we write
                // `n + 1 <= len` of them and the source is our own CString, so they cannot overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            bytes.len()
        })
        .unwrap_or(0)
}

pub(crate) fn last_error_ptr() -> *const c_char {
    // The pointer stays valid until the next call that sets an error on this thread, as documented.
    LAST_ERROR
        .try_with(|slot| slot.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Runs `body`, turning an error or a panic into a status code plus last-error message. Every
/// exported function goes through here so that no panic ever unwinds into C.
pub(crate) fn guard(what: &str, body: impl FnOnce() -> FfiResult) -> mycelium_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => MYCELIUM_OK,
        Ok(Err(err)) => {
            set_last_error(&format!("{what}: {}", err.message));
            err.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "{what}: internal panic (please report): {}",
                panic_message(payload.as_ref())
            ));
            MYCELIUM_ERR_PANIC
        }
    }
}

/// Like [`guard`] for callers outside an FFI call (delivery threads): runs `body` and returns
/// the panic message if it panicked.
pub(crate) fn catch<T>(body: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|p| panic_message(p.as_ref()))
}

/// Turns a possibly-NULL pointer into a reference or a `MYCELIUM_ERR_NULL_POINTER` naming the argument.
pub(crate) fn non_null<'a, T>(ptr: *const T, arg: &str) -> FfiResult<&'a T> {
    // SAFETY: callers pass pointers the C contract says are valid when non-NULL; we only turn the
    // non-NULL case into a reference and report NULL as an error.
    unsafe { ptr.as_ref() }
        .ok_or_else(|| FfiError::new(MYCELIUM_ERR_NULL_POINTER, format!("`{arg}` is NULL")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn from_raw_knows_every_status_and_nothing_else() {
        for (code, s) in STATUSES.iter().enumerate() {
            assert_eq!(*s as i32, code as i32, "STATUSES is in code order");
            assert_eq!(mycelium_status::from_raw(code as i32), Some(*s));
        }
        for bad in [-1, STATUSES.len() as i32, 99, i32::MAX, i32::MIN] {
            assert_eq!(mycelium_status::from_raw(bad), None);
        }
    }

    use super::*;

    #[test]
    fn guard_turns_a_panic_into_a_status_and_a_message() {
        let st = guard("mycelium_test", || panic!("boom {}", 42));
        assert_eq!(st, MYCELIUM_ERR_PANIC);
        // SAFETY: last_error_ptr returns a NUL-terminated string owned by this thread's slot.
        let msg = unsafe { CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned();
        assert!(
            msg.contains("mycelium_test") && msg.contains("boom 42"),
            "{msg}"
        );
    }

    #[test]
    fn guard_reports_errors_with_the_function_name() {
        let st = guard("mycelium_x", || {
            Err(FfiError::new(MYCELIUM_ERR_DECODE, "bad byte"))
        });
        assert_eq!(st, MYCELIUM_ERR_DECODE);
        let mut buf = [0 as c_char; 64];
        let n = copy_last_error(buf.as_mut_ptr(), buf.len());
        // SAFETY: copy_last_error NUL-terminates within the buffer.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(text, "mycelium_x: bad byte");
        assert_eq!(n, text.len());
    }

    #[test]
    fn last_error_copy_truncates_and_terminates() {
        set_last_error("0123456789");
        let mut buf = [1 as c_char; 4];
        assert_eq!(copy_last_error(buf.as_mut_ptr(), buf.len()), 10);
        assert_eq!(buf.map(|b| b as u8), *b"012\0");
        assert_eq!(copy_last_error(std::ptr::null_mut(), 0), 10);
    }

    #[test]
    fn interior_nul_does_not_cut_the_message() {
        set_last_error("a\0b");
        // SAFETY: as above.
        let msg = unsafe { CStr::from_ptr(last_error_ptr()) }
            .to_string_lossy()
            .into_owned();
        assert_eq!(msg, "a\u{FFFD}b");
    }

    #[test]
    fn every_status_has_its_own_name() {
        let all = STATUSES;
        let names: std::collections::HashSet<_> = all.iter().map(|s| s.name_cstr()).collect();
        assert_eq!(names.len(), all.len());
        for (i, s) in all.iter().enumerate() {
            assert_eq!(*s as i32, i as i32, "codes are dense and stable");
        }
    }
}
