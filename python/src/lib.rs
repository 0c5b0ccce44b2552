//! `mycelium_native._native`: the compiled half of the `mycelium_native` Python package.
//!
//! Everything goes through the exported C ABI of `mycelium-ffi` (never the bus directly), so a
//! handle made by a separately built Rust host works here too (`NativeRuntime.attach`). The typed,
//! documented API is the pure-Python layer in `python/mycelium_native/`; this module keeps to
//! what needs Rust: owning handles, running callbacks on delivery threads, waiting without the GIL.

mod bench;
mod bridge;
mod callback;
mod core;
mod decoder;
mod encoder;
mod failure;
mod lifecycle;
mod logs;
mod notify;
mod pull_queue;
mod queue;
mod receiver;
mod runtime;
mod service;
mod subscription;
mod thread_state;

use std::ffi::CStr;

use pyo3::prelude::*;

pub use bench::BenchCounter;
pub use bridge::NativeBridge;
pub use decoder::Decoder;
pub use encoder::Encoder;
pub use pull_queue::NativeReceiver;
pub use runtime::NativeRuntime;
pub use service::NativeService;
pub use subscription::{NativeStream, NativeSubscription};

/// Closes every runtime still open in this process, then stops every other thread from taking
/// the GIL back inside this library (`lifecycle::close_gate`). Registered with `atexit` by
/// `mycelium_native/__init__.py` (atexit hooks run before CPython marks the interpreter
/// finalizing); runs without the GIL so the callbacks and publishes it waits for can finish.
/// Returns how many runtimes it closed.
#[pyfunction]
fn _shutdown(py: Python<'_>) -> usize {
    // Plain `py.detach`: this is the finalizing thread, which CPython never ends.
    py.detach(|| {
        let closed = core::close_all_live();
        lifecycle::mark_shutting_down();
        lifecycle::close_gate();
        closed
    })
}

/// The ABI version of the linked C library as `(major, minor)`.
#[pyfunction]
fn abi_version() -> (u32, u32) {
    let v = mycelium_ffi::version::mycelium_abi_version();
    (v >> 16, v & 0xffff)
}

/// The version of the linked C library (the Rust workspace version).
#[pyfunction]
fn library_version() -> String {
    // SAFETY: mycelium_version_string returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(mycelium_ffi::version::mycelium_version_string()) }
        .to_string_lossy()
        .into_owned()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    lifecycle::install_fork_hook();
    logs::install();
    failure::load_error_classes(m.py())?;
    m.add_class::<NativeRuntime>()?;
    m.add_class::<NativeSubscription>()?;
    m.add_class::<NativeReceiver>()?;
    m.add_class::<NativeStream>()?;
    m.add_class::<BenchCounter>()?;
    m.add_class::<NativeBridge>()?;
    m.add_class::<NativeService>()?;
    m.add_class::<Decoder>()?;
    m.add_class::<Encoder>()?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(abi_version, m)?)?;
    m.add_function(wrap_pyfunction!(library_version, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_next_log_record, m)?)?;
    m.add_function(wrap_pyfunction!(logs::_log_records_dropped, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_counter, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_publish, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_rust_round_trip, m)?)?;
    Ok(())
}
