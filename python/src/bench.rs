//! Benchmark helpers (used by `python/bench/bench.py`, not part of the supported API): the
//! "Rust side" of the Python benchmarks, built on the same C ABI as everything else.
//!
//! - `bench_counter` subscribes a closure written in Rust that only counts messages, standing in
//!   for a Rust service consuming what Python publishes.
//! - `bench_publish` publishes one payload many times from Rust with the GIL released, standing
//!   in for a Rust service feeding Python callbacks.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mycelium_ffi::exports::mycelium_publish;
use mycelium_ffi::{mycelium_closure, mycelium_message};
use pyo3::prelude::*;

use crate::core::RuntimeCore;
use crate::failure::{check, IntoPyResult};
use crate::runtime::{deadline_after, subscribe_closure, NativeRuntime, SubscribeSettings};

unsafe extern "C" fn count_batch(
    context: *mut c_void,
    _messages: *const mycelium_message,
    count: usize,
) -> usize {
    // SAFETY: `context` is the `Arc::into_raw` made in `bench_counter`, alive until `count_drop`.
    let counter = unsafe { &*(context as *const AtomicU64) };
    counter.fetch_add(count as u64, Ordering::Relaxed);
    0
}

unsafe extern "C" fn count_drop(context: *mut c_void) {
    // SAFETY: called once by the C ABI with the context made in `bench_counter`.
    drop(unsafe { Arc::from_raw(context as *const AtomicU64) });
}

/// A subscription whose callback is Rust code that counts messages (benchmark helper).
#[pyclass(frozen, module = "mycelium_native._native")]
pub struct BenchCounter {
    core: Arc<RuntimeCore>,
    id: u64,
    count: Arc<AtomicU64>,
    closed: AtomicBool,
}

#[pymethods]
impl BenchCounter {
    #[getter]
    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits (without the GIL) until at least `n` messages were counted; False on timeout.
    fn wait_for(&self, py: Python<'_>, n: u64, timeout: f64) -> PyResult<bool> {
        let deadline = deadline_after(timeout)?;
        let count = &self.count;
        Ok(py.detach(|| loop {
            if count.load(Ordering::Relaxed) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (core, id) = (&self.core, self.id);
        py.detach(|| core.unsubscribe(id)).py_err(py)
    }
}

/// Subscribes a counting Rust closure to `type_id` (benchmark helper).
#[pyfunction]
#[pyo3(signature = (runtime, type_id, capacity=0, policy=0))]
pub fn bench_counter(
    py: Python<'_>,
    runtime: &NativeRuntime,
    type_id: u16,
    capacity: u32,
    policy: u32,
) -> PyResult<BenchCounter> {
    let settings = SubscribeSettings::new(capacity, policy, 0, Some("bench-counter"))?;
    let count = Arc::new(AtomicU64::new(0));
    let closure = mycelium_closure {
        context: Arc::into_raw(count.clone()) as *mut c_void,
        call: None,
        call_batch: Some(count_batch),
        drop: Some(count_drop),
    };
    let core = &runtime.core;
    match (|| subscribe_closure(&core.enter()?, type_id, &settings, &closure))() {
        Ok(id) => Ok(BenchCounter {
            core: core.clone(),
            id,
            count,
            closed: AtomicBool::new(false),
        }),
        Err(failure) => {
            // SAFETY: the subscribe failed, so the library never takes the context; give back
            // the reference `into_raw` leaked.
            unsafe { count_drop(closure.context) };
            Err(failure.into_pyerr(py))
        }
    }
}

/// Publishes `payload` as `type_id` `count` times from Rust, GIL released (benchmark helper).
#[pyfunction]
pub fn bench_publish(
    py: Python<'_>,
    runtime: &NativeRuntime,
    type_id: u16,
    payload: &[u8],
    count: u64,
) -> PyResult<()> {
    let core = &runtime.core;
    py.detach(|| {
        let g = core.enter()?;
        for _ in 0..count {
            // SAFETY: the guard keeps the handle valid; `payload` is an immutable bytes object
            // held by the caller for the duration of this call.
            check(unsafe { mycelium_publish(g.ptr(), type_id, payload.as_ptr(), payload.len()) })?;
        }
        Ok(())
    })
    .py_err(py)
}
