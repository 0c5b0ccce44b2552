//! What `ffi_vs_rust` and `ffi_paired` share: the schema, the 64-byte payload, and the C
//! callback that counts delivered messages.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};

use mycelium_ffi::mycelium_message;
use mycelium_protocol::Schema;

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
pub unsafe extern "C" fn count_batch(
    ctx: *mut c_void,
    _msgs: *const mycelium_message,
    n: usize,
) -> usize {
    // SAFETY: ctx is the AtomicU64 owned by the bench, alive until unsubscribe returns.
    unsafe { &*(ctx as *const AtomicU64) }.fetch_add(n as u64, Ordering::Release);
    0
}

/// Spins until `counter` reaches `target`.
pub fn wait_for(counter: &AtomicU64, target: u64) {
    while counter.load(Ordering::Acquire) < target {
        std::hint::spin_loop();
    }
}
