//! The started OCaml runtime and calls into the functions the OCaml code registered.
//!
//! The host thread holds the OCaml runtime lock only inside [`Guest::call`]: between calls,
//! OCaml delivery threads must be able to take it to run subscription callbacks.

use std::ffi::{c_char, c_void, CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

/// An OCaml `value`: a tagged integer or a pointer into the OCaml heap.
pub type Value = isize;

/// Why a call into OCaml failed.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("the OCaml object {object} was not linked into this binary when it was built: {how_to_build}")]
    NotLinked {
        object: &'static str,
        how_to_build: &'static str,
    },
    #[error("the OCaml runtime can be started once per process and already was")]
    AlreadyStarted,
    #[error("OCaml has no function registered as {0:?}; is the OCaml object out of date?")]
    Unregistered(String),
    #[error("the OCaml function {name} raised {exception}")]
    Raised { name: String, exception: String },
}

/// An argument for a registered OCaml function.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Unit,
    Int(isize),
    Bool(bool),
    NativeInt(isize),
}

/// The OCaml runtime functions a host calls, taken from the object linked into the binary.
/// Made by [`linked_runtime!`](crate::linked_runtime).
pub struct EntryPoints {
    startup: unsafe extern "C" fn(*const *const c_char),
    named_value: unsafe extern "C" fn(*const c_char) -> *const Value,
    callback_exn: unsafe extern "C" fn(Value, Value) -> Value,
    copy_nativeint: unsafe extern "C" fn(isize) -> Value,
    enter_blocking_section: unsafe extern "C" fn(),
    leave_blocking_section: unsafe extern "C" fn(),
    format_exception: unsafe extern "C" fn(Value) -> *mut c_char,
    stat_free: unsafe extern "C" fn(*mut c_void),
}

impl EntryPoints {
    /// # Safety
    ///
    /// Each function must be the OCaml runtime function its parameter is named after
    /// (`caml_startup`, `caml_named_value`, ...), all from the one OCaml runtime linked into this
    /// binary.
    #[allow(clippy::too_many_arguments)]
    pub const unsafe fn new(
        startup: unsafe extern "C" fn(*const *const c_char),
        named_value: unsafe extern "C" fn(*const c_char) -> *const Value,
        callback_exn: unsafe extern "C" fn(Value, Value) -> Value,
        copy_nativeint: unsafe extern "C" fn(isize) -> Value,
        enter_blocking_section: unsafe extern "C" fn(),
        leave_blocking_section: unsafe extern "C" fn(),
        format_exception: unsafe extern "C" fn(Value) -> *mut c_char,
        stat_free: unsafe extern "C" fn(*mut c_void),
    ) -> EntryPoints {
        EntryPoints {
            startup,
            named_value,
            callback_exn,
            copy_nativeint,
            enter_blocking_section,
            leave_blocking_section,
            format_exception,
            stat_free,
        }
    }
}

/// Whether the binary has an OCaml runtime, from [`linked_runtime!`](crate::linked_runtime).
pub enum Linked {
    Runtime(&'static EntryPoints),
    /// Built without the object: where it was expected and what builds it.
    Missing {
        object: &'static str,
        how_to_build: &'static str,
    },
}

/// The started OCaml runtime. Not `Send`: OCaml knows only the thread that started it.
pub struct Guest {
    runtime: &'static EntryPoints,
    _single_thread: PhantomData<*const ()>,
}

static STARTED: AtomicBool = AtomicBool::new(false);

impl Guest {
    /// Starts the OCaml runtime (running the OCaml modules' initialisation, which registers
    /// their functions) and releases its lock. Once per process.
    pub fn start(linked: Linked) -> Result<Guest, GuestError> {
        let runtime = match linked {
            Linked::Runtime(runtime) => runtime,
            Linked::Missing {
                object,
                how_to_build,
            } => {
                return Err(GuestError::NotLinked {
                    object,
                    how_to_build,
                })
            }
        };
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(GuestError::AlreadyStarted);
        }
        let arg0 = c"mycelium-ocaml-guest";
        let argv = [arg0.as_ptr(), std::ptr::null()];
        // SAFETY: first and only start in this process (checked above); argv is a
        // NULL-terminated array of NUL-terminated strings that outlives the call.
        unsafe { (runtime.startup)(argv.as_ptr()) };
        // SAFETY: caml_startup returns holding the runtime lock; give it up until a call.
        unsafe { (runtime.enter_blocking_section)() };
        Ok(Guest {
            runtime,
            _single_thread: PhantomData,
        })
    }

    /// Calls the OCaml function registered as `name` with one argument; returns its result
    /// read as an OCaml `int` (0 for `unit`, 0 or 1 for `bool`).
    pub fn call(&mut self, name: &str, arg: Arg) -> Result<isize, GuestError> {
        let rt = self.runtime;
        let cname = CString::new(name).map_err(|_| GuestError::Unregistered(name.to_owned()))?;
        // SAFETY: this thread started the runtime and does not hold the lock between calls.
        unsafe { (rt.leave_blocking_section)() };
        // SAFETY: lock held. The argument is allocated before the closure is read, so a GC
        // triggered by the allocation cannot leave us with a stale closure.
        let result = unsafe {
            let value = match arg {
                Arg::Unit => val_int(0),
                Arg::Int(n) => val_int(n),
                Arg::Bool(b) => val_int(isize::from(b)),
                Arg::NativeInt(n) => (rt.copy_nativeint)(n),
            };
            let closure = (rt.named_value)(cname.as_ptr());
            if closure.is_null() {
                Err(GuestError::Unregistered(name.to_owned()))
            } else {
                let r = (rt.callback_exn)(*closure, value);
                if is_exception_result(r) {
                    Err(GuestError::Raised {
                        name: name.to_owned(),
                        exception: describe(rt, extract_exception(r)),
                    })
                } else {
                    Ok(int_val(r))
                }
            }
        };
        // SAFETY: give the lock back so delivery threads can run callbacks.
        unsafe { (rt.enter_blocking_section)() };
        result
    }
}

const fn val_int(n: isize) -> Value {
    (n << 1) | 1
}

const fn int_val(v: Value) -> isize {
    v >> 1
}

/// `caml_callback_exn` tags an exception result with 0b10 in its low bits (Is_exception_result).
const fn is_exception_result(v: Value) -> bool {
    v & 3 == 2
}

const fn extract_exception(v: Value) -> Value {
    v & !3
}

/// The exception as OCaml would print it.
///
/// # Safety
///
/// The runtime lock is held and `exn` is an exception value.
unsafe fn describe(rt: &EntryPoints, exn: Value) -> String {
    // SAFETY: caller's contract; the returned buffer is malloc'd by the runtime and released
    // with caml_stat_free.
    unsafe {
        let text = (rt.format_exception)(exn);
        if text.is_null() {
            return "an exception that cannot be printed".to_owned();
        }
        let s = CStr::from_ptr(text).to_string_lossy().into_owned();
        (rt.stat_free)(text.cast());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip_through_the_tagged_representation() {
        for n in [0isize, 1, -1, 42, -42, isize::MAX >> 1, isize::MIN >> 1] {
            let v = val_int(n);
            assert_eq!(v & 1, 1, "an OCaml int has its low bit set");
            assert!(!is_exception_result(v));
            assert_eq!(int_val(v), n);
        }
    }

    #[test]
    fn exception_results_are_recognised_and_untagged() {
        let exn: Value = 0x7f00_1230; // word-aligned, like a heap block
        let tagged = exn | 2;
        assert!(is_exception_result(tagged));
        assert_eq!(extract_exception(tagged), exn);
        assert!(!is_exception_result(exn));
    }

    #[test]
    fn a_binary_without_the_object_says_where_it_was_expected_and_how_to_build_it() {
        let err = Guest::start(Linked::Missing {
            object: "/repo/ocaml/_build/default/x/x.exe.o",
            how_to_build: "run scripts/x.sh",
        })
        .err()
        .expect("no runtime linked");
        let text = err.to_string();
        assert!(
            text.contains("/repo/ocaml/_build/default/x/x.exe.o"),
            "{text}"
        );
        assert!(text.contains("run scripts/x.sh"), "{text}");
        // A failed start does not use up the one start a process gets.
        assert!(!STARTED.load(Ordering::SeqCst));
    }
}
