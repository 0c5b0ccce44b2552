//! The Rust half of the OCaml adapter `mycelium_native` (see `docs/ocaml.md`).
//!
//! OCaml's `external` declarations in `ocaml/src/ffi.ml` name the `mycelium_ml_*` functions of
//! [`stubs`]; they call the C ABI of `mycelium-ffi` and turn its status codes into OCaml values.
//! Everything that has to run *outside* an OCaml call (thread registration, taking the runtime
//! lock on a delivery thread, GC roots for callbacks) lives in the small C file
//! `ocaml/stubs/c/mycelium_native_threads.c`, for the reasons given in [`delivery`]; when a
//! thread registers and unregisters is decided in [`registration`].
//!
//! Conventions every stub follows:
//! - it is called with the OCaml runtime lock held and returns with it held;
//! - it reads its OCaml arguments into Rust data *before* anything that may block, and releases
//!   the runtime lock ([`lock::without_runtime_lock`]) around every C ABI call that may block
//!   (unsubscribe, flush, destroy, every bridge call), so delivery threads can run OCaml
//!   meanwhile; publish keeps the lock and has the library release it only while it waits for
//!   room ([`lock::releasing_while_waiting`]), the library having copied the payload by then;
//! - failures come back as `(int * string) option` or result values, never as exceptions
//!   raised from Rust: the OCaml side raises them, so no OCaml exception unwinds Rust frames;
//! - no panic crosses into OCaml ([`reply::catch_panics`]).

pub mod bridge;
pub mod delivery;
pub mod handle;
pub mod lock;
pub mod log;
pub mod registration;
pub mod reply;
pub mod service;
pub mod stubs;
