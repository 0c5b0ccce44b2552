//! What `ffi_vs_rust` and `ffi_paired` share: the schema, the 64-byte payload, and a C
//! subscription (and a Rust thread) that counts delivered messages.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mycelium_ffi::exports::mycelium_subscribe;
use mycelium_ffi::{mycelium_closure, mycelium_message, mycelium_status, Runtime};
use mycelium_protocol::Schema;
use mycelium_transport::{MessageBus, SubscribeOptions};

/// Messages per timed batch.
pub const BATCH: u64 = 10_000;

pub fn schema() -> Schema {
    Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml")).expect("schema")
}

/// A TradeTick payload of exactly 64 bytes (symbol padded to 39 chars).
pub fn payload() -> Vec<u8> {
    let symbol = "X".repeat(39);
    let mut v = Vec::new();
    v.extend_from_slice(&(symbol.len() as u32).to_le_bytes());
    v.extend_from_slice(symbol.as_bytes());
    v.extend_from_slice(&1.0f64.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&1u64.to_le_bytes());
    v.push(0);
    assert_eq!(v.len(), 64);
    v
}

/// A batch callback adding the batch's size to the `AtomicU64` its context points to.
///
/// # Safety
/// `ctx` points to an `AtomicU64` alive until the subscription is gone.
unsafe extern "C" fn count_batch(
    ctx: *mut c_void,
    _msgs: *const mycelium_message,
    n: usize,
) -> usize {
    // SAFETY: ctx is the AtomicU64 owned by the bench, alive until unsubscribe returns.
    unsafe { &*(ctx as *const AtomicU64) }.fetch_add(n as u64, Ordering::Release);
    0
}

/// Subscribes a [`count_batch`] callback on `counter` to type 1 (`TradeTick`) of `rt`; returns
/// the subscription id.
///
/// # Safety
/// `counter` must outlive the subscription (until `mycelium_unsubscribe` of the id returns, or
/// the runtime is gone).
pub unsafe fn subscribe_counting(rt: &Runtime, counter: &AtomicU64) -> u64 {
    let closure = mycelium_closure {
        context: counter as *const AtomicU64 as *mut c_void,
        call: None,
        call_batch: Some(count_batch),
        drop: None,
    };
    let mut id = 0;
    // SAFETY: valid handle, closure and out pointer; the caller keeps `counter` alive.
    let status = unsafe { mycelium_subscribe(rt.as_ptr(), 1, std::ptr::null(), &closure, &mut id) };
    assert_eq!(status, mycelium_status::MYCELIUM_OK);
    id
}

/// The Rust API's counterpart of [`subscribe_counting`]: a subscriber of type 1 on `bus` and a
/// thread draining it in batches of up to 256 (as the C ABI's delivery thread does), adding
/// each batch to the returned counter. The thread ends when the bus closes.
pub fn drain_counting(bus: &MessageBus) -> (Arc<AtomicU64>, JoinHandle<()>) {
    let sub = bus.subscribe_raw(1, SubscribeOptions::default());
    let counter = Arc::new(AtomicU64::new(0));
    let drained = Arc::clone(&counter);
    let thread = std::thread::spawn(move || {
        let mut buf = Vec::with_capacity(256);
        while let Some(first) = sub.recv_blocking() {
            buf.push(first);
            sub.drain_into(&mut buf, 255);
            drained.fetch_add(buf.len() as u64, Ordering::Release);
            buf.clear();
        }
    });
    (counter, thread)
}

/// Spins until `counter` reaches `target`.
pub fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Acquire) < target {
        std::hint::spin_loop();
    }
}
