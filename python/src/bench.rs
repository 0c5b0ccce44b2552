//! Benchmark helpers (used by `python/bench/bench.py`, not part of the supported API): the
//! "Rust side" of the Python benchmarks, built on the same C ABI as everything else.
//!
//! - `bench_counter` subscribes a closure written in Rust that only counts messages, standing in
//!   for a Rust service consuming what Python publishes.
//! - `bench_publish` publishes one payload many times from Rust with the GIL released, standing
//!   in for a Rust service feeding Python callbacks.
//! - `bench_rust_round_trip` runs the request/reply round trip between two Rust threads on pull
//!   receivers: the floor under the Python round trip.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mycelium_ffi::exports::{
    mycelium_publish, mycelium_receiver_open, mycelium_receiver_recv, mycelium_unsubscribe,
};
use mycelium_ffi::{mycelium_closure, mycelium_message, MYCELIUM_WAIT_FOREVER};
use pyo3::prelude::*;

use crate::core::RuntimeCore;
use crate::failure::{check, CallResult, Failure, IntoPyResult};
use crate::lifecycle::detach;
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
        Ok(detach(py, || loop {
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
        detach(py, || core.unsubscribe(id)).py_err(py)
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
    let settings = SubscribeSettings::new(capacity, policy, 0, 0, Some("bench-counter"))?;
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
    detach(py, || {
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

/// Opens a pull receiver on the handle of `g` (benchmark helper).
fn open_receiver(g: &crate::core::CallGuard<'_>, type_id: u16) -> CallResult<u64> {
    let mut id = 0u64;
    // SAFETY: the guard keeps the handle valid; NULL options mean the defaults; `id` is writable.
    check(unsafe { mycelium_receiver_open(g.ptr(), type_id, std::ptr::null(), &mut id) })?;
    Ok(id)
}

unsafe extern "C" fn ignore_batch(
    _context: *mut c_void,
    _messages: *const mycelium_message,
    _count: usize,
) -> usize {
    0
}

/// Takes one message from receiver `id`, waiting without limit.
fn receive_one(g: &crate::core::CallGuard<'_>, id: u64) -> CallResult {
    let mut count = 0usize;
    // SAFETY: the guard keeps the handle valid; `ignore_batch` touches nothing; `count` is
    // writable.
    check(unsafe {
        mycelium_receiver_recv(
            g.ptr(),
            id,
            MYCELIUM_WAIT_FOREVER,
            1,
            Some(ignore_batch),
            std::ptr::null_mut(),
            &mut count,
        )
    })
}

/// The round trip of `python/bench/bench.py` with no Python in it: this thread publishes
/// `request` as `request_type` and waits on a pull receiver for `reply_type`, which an echo
/// thread (pull receiver on `request_type`) publishes as `reply` for each request. Both
/// threads use the C ABI like the Python adapter does. Returns the `n` round trips in
/// microseconds (benchmark helper: the floor under the Python round trip).
#[pyfunction]
pub fn bench_rust_round_trip(
    py: Python<'_>,
    runtime: &NativeRuntime,
    request_type: u16,
    request: &[u8],
    reply_type: u16,
    reply: &[u8],
    n: usize,
) -> PyResult<Vec<f64>> {
    let core = &runtime.core;
    detach(py, || {
        let g = core.enter()?;
        let requests = open_receiver(&g, request_type)?;
        let replies = open_receiver(&g, reply_type)?;
        let outcome = std::thread::scope(|s| {
            let echo = s.spawn(|| -> CallResult {
                let g = core.enter()?;
                for _ in 0..n {
                    receive_one(&g, requests)?;
                    // SAFETY: the guard keeps the handle valid; `reply` outlives the call.
                    check(unsafe {
                        mycelium_publish(g.ptr(), reply_type, reply.as_ptr(), reply.len())
                    })?;
                }
                Ok(())
            });
            let mut samples = Vec::with_capacity(n);
            let mut result = Ok(());
            for _ in 0..n {
                let start = Instant::now();
                // SAFETY: the guard keeps the handle valid; `request` outlives the call.
                result = check(unsafe {
                    mycelium_publish(g.ptr(), request_type, request.as_ptr(), request.len())
                })
                .and_then(|()| receive_one(&g, replies));
                if result.is_err() {
                    break;
                }
                samples.push(start.elapsed().as_secs_f64() * 1e6);
            }
            if result.is_err() {
                // Wakes the echo thread, which would otherwise wait forever.
                // SAFETY: the guard keeps the handle valid.
                unsafe { mycelium_unsubscribe(g.ptr(), requests) };
            }
            let echoed = echo
                .join()
                .unwrap_or(Err(Failure::Closed("the echo thread panicked")));
            result.and(echoed).map(|()| samples)
        });
        for id in [requests, replies] {
            // SAFETY: the guard keeps the handle valid; an already closed id is only reported.
            unsafe { mycelium_unsubscribe(g.ptr(), id) };
        }
        outcome
    })
    .py_err(py)
}
