//! The OCaml runtime linked into this binary (see `build.rs`), and calls into the functions
//! `ocaml/embed/embed_ocaml.ml` registers with `Callback.register`.
//!
//! The host thread holds the OCaml runtime lock only inside [`Guest::call`]: between calls OCaml
//! delivery threads must be able to take it to run subscription callbacks.

/// Why a call into OCaml failed.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(
        "the OCaml object is not linked into this binary: in ocaml/ run `dune build ./embed/embed_ocaml.exe.o` \
         (scripts/test-ocaml.sh does), then rebuild this crate; expected at {0}"
    )]
    NotLinked(&'static str),
    #[error("the OCaml runtime can be started once per process and already was")]
    AlreadyStarted,
    #[error(
        "OCaml has no function registered as {0:?}; is ocaml/embed/embed_ocaml.ml out of date?"
    )]
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

#[cfg(mycelium_ocaml_embedded)]
mod sys {
    use std::ffi::{c_char, c_void};

    pub type Value = isize;

    extern "C" {
        pub fn caml_startup(argv: *const *const c_char);
        pub fn caml_named_value(name: *const c_char) -> *const Value;
        pub fn caml_callback_exn(closure: Value, arg: Value) -> Value;
        pub fn caml_copy_nativeint(n: isize) -> Value;
        pub fn caml_enter_blocking_section();
        pub fn caml_leave_blocking_section();
        pub fn caml_format_exception(exn: Value) -> *mut c_char;
        pub fn caml_stat_free(p: *mut c_void);
    }

    pub const fn val_int(n: isize) -> Value {
        (n << 1) | 1
    }

    pub const fn int_val(v: Value) -> isize {
        v >> 1
    }

    pub const fn is_exception_result(v: Value) -> bool {
        v & 3 == 2
    }

    pub const fn extract_exception(v: Value) -> Value {
        v & !3
    }
}

/// The started OCaml runtime. Not `Send`: OCaml knows only the thread that started it.
pub struct Guest {
    _single_thread: std::marker::PhantomData<*const ()>,
}

#[cfg(mycelium_ocaml_embedded)]
static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Guest {
    /// Starts the OCaml runtime (running the OCaml modules' initialisation, which registers the
    /// functions) and releases its lock.
    pub fn start() -> Result<Guest, GuestError> {
        #[cfg(not(mycelium_ocaml_embedded))]
        {
            Err(GuestError::NotLinked(env!("MYCELIUM_OCAML_EMBED_OBJ_PATH")))
        }
        #[cfg(mycelium_ocaml_embedded)]
        {
            use std::sync::atomic::Ordering;
            if STARTED.swap(true, Ordering::SeqCst) {
                return Err(GuestError::AlreadyStarted);
            }
            let arg0 = c"mycelium-embed-ocaml";
            let argv = [arg0.as_ptr(), std::ptr::null()];
            // SAFETY: first and only start in this process (checked above); argv is a
            // NULL-terminated array of NUL-terminated strings that outlives the call.
            unsafe { sys::caml_startup(argv.as_ptr()) };
            // SAFETY: caml_startup returns holding the runtime lock; give it up until a call.
            unsafe { sys::caml_enter_blocking_section() };
            Ok(Guest {
                _single_thread: std::marker::PhantomData,
            })
        }
    }

    /// Calls the OCaml function registered as `name` with one argument; returns its result
    /// read as an OCaml `int` (0 for `unit`).
    pub fn call(&mut self, name: &str, arg: Arg) -> Result<isize, GuestError> {
        #[cfg(not(mycelium_ocaml_embedded))]
        {
            let _ = (name, arg);
            Err(GuestError::NotLinked(env!("MYCELIUM_OCAML_EMBED_OBJ_PATH")))
        }
        #[cfg(mycelium_ocaml_embedded)]
        {
            let cname = std::ffi::CString::new(name)
                .map_err(|_| GuestError::Unregistered(name.to_owned()))?;
            // SAFETY: this thread started the runtime and does not hold the lock between calls.
            unsafe { sys::caml_leave_blocking_section() };
            // SAFETY: lock held. The argument is allocated before the closure is read, so a GC
            // triggered by the allocation cannot leave us with a stale closure.
            let result = unsafe {
                let value = match arg {
                    Arg::Unit => sys::val_int(0),
                    Arg::Int(n) => sys::val_int(n),
                    Arg::Bool(b) => sys::val_int(b as isize),
                    Arg::NativeInt(n) => sys::caml_copy_nativeint(n),
                };
                let closure = sys::caml_named_value(cname.as_ptr());
                if closure.is_null() {
                    Err(GuestError::Unregistered(name.to_owned()))
                } else {
                    let r = sys::caml_callback_exn(*closure, value);
                    if sys::is_exception_result(r) {
                        Err(GuestError::Raised {
                            name: name.to_owned(),
                            exception: describe(sys::extract_exception(r)),
                        })
                    } else {
                        Ok(sys::int_val(r))
                    }
                }
            };
            // SAFETY: give the lock back so delivery threads can run callbacks.
            unsafe { sys::caml_enter_blocking_section() };
            result
        }
    }
}

/// The exception as OCaml would print it. Lock held.
#[cfg(mycelium_ocaml_embedded)]
unsafe fn describe(exn: sys::Value) -> String {
    // SAFETY: `exn` is an exception value and the lock is held (caller's contract); the
    // returned buffer is malloc'd by the runtime and released with caml_stat_free.
    unsafe {
        let text = sys::caml_format_exception(exn);
        if text.is_null() {
            return "an exception that cannot be printed".to_owned();
        }
        let s = std::ffi::CStr::from_ptr(text)
            .to_string_lossy()
            .into_owned();
        sys::caml_stat_free(text.cast());
        s
    }
}
