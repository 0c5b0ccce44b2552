//! `mycelium_type_metrics`: the per-type counters of the bus as a plain C struct, for adapters
//! that would rather not parse the JSON snapshot.

use mycelium_transport::MetricsSnapshot;

use crate::sized::{write_out, SizedOptions};
use crate::status::{mycelium_status::*, FfiError, FfiResult};

/// Counters for one message type, copied out of the bus metrics at one point in time.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mycelium_type_metrics {
    /// Set by the caller to `sizeof(mycelium_type_metrics)`. The library refuses a size below this
    /// struct's first ABI version (ABI 1.0: 96 bytes), fills at most `struct_size` bytes (a newer
    /// header's extra fields are left untouched), and sets `struct_size` to the bytes it filled.
    pub struct_size: u32,
    /// The type id these figures are for.
    pub type_id: u16,
    /// Publishes accepted.
    pub published: u64,
    /// Payload bytes of accepted publishes (each counted once).
    pub published_bytes: u64,
    /// Messages taken from a queue by a subscriber.
    pub delivered: u64,
    /// Messages a subscriber did not get (evicted, refused, or queued when it closed).
    pub dropped: u64,
    /// Callbacks that returned non-zero or panicked, over the live subscriptions of the type.
    pub handler_errors: u64,
    /// Live subscriptions.
    pub subscribers: u64,
    /// Messages waiting in the live subscriptions' queues.
    pub queued: u64,
    /// Publish-to-dequeue latency percentiles, nanoseconds.
    pub latency_p50_ns: u64,
    /// 90th percentile.
    pub latency_p90_ns: u64,
    /// 99th percentile.
    pub latency_p99_ns: u64,
    /// Largest latency seen.
    pub latency_max_ns: u64,
}

// SAFETY: `#[repr(C)]`, `struct_size: u32` first; every field is an integer.
unsafe impl SizedOptions for mycelium_type_metrics {
    /// The struct has not grown since ABI 1.0.
    const MIN_SIZE: usize = std::mem::size_of::<mycelium_type_metrics>();
    const NAME: &'static str = "mycelium_type_metrics";
    const INIT: &'static str = "its struct_size set to sizeof(mycelium_type_metrics)";
}

pub(crate) fn fill_type_metrics(
    snap: &MetricsSnapshot,
    type_id: u16,
    out: *mut mycelium_type_metrics,
) -> FfiResult {
    if out.is_null() {
        return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out` is NULL"));
    }
    let mut m = mycelium_type_metrics {
        struct_size: std::mem::size_of::<mycelium_type_metrics>() as u32,
        type_id,
        ..Default::default()
    };
    if let Some(t) = snap.type_metrics(type_id) {
        m.published = t.published;
        m.published_bytes = t.published_bytes;
        m.delivered = t.delivered;
        m.dropped = t.dropped;
        m.subscribers = t.subscribers as u64;
        m.latency_p50_ns = t.latency.p50_ns;
        m.latency_p90_ns = t.latency.p90_ns;
        m.latency_p99_ns = t.latency.p99_ns;
        m.latency_max_ns = t.latency.max_ns;
    }
    for s in snap.subscribers.iter().filter(|s| s.type_id == type_id) {
        m.handler_errors += s.handler_errors;
        m.queued += s.queue_depth as u64;
    }
    // SAFETY: non-NULL (checked above) and, by the C contract, `struct_size` writable bytes.
    unsafe { write_out(out, m) }
}
