//! `mycelium_subscription_stats`: one subscription's or pull receiver's own counters, so an
//! adapter can report what *its* queue lost without parsing the whole metrics snapshot.

use mycelium_transport::RawSubscription;

use crate::runtime::live;
use crate::runtime::mycelium_runtime_t;
use crate::sized::{write_out, SizedOptions};
use crate::status::{mycelium_status::*, FfiError, FfiResult};

/// Counters of one subscription or pull receiver, copied at one point in time (ABI 1.1).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, Default)]
pub struct mycelium_subscription_stats {
    /// Set by the caller to `sizeof(mycelium_subscription_stats)`. The library refuses a size
    /// below this struct's first ABI version (ABI 1.1: 48 bytes), fills at most `struct_size`
    /// bytes (a newer header's extra fields are left untouched), and sets `struct_size` to the
    /// bytes it filled.
    pub struct_size: u32,
    /// Messages routed to this subscription so far.
    pub offered: u64,
    /// Messages taken from its queue (by the delivery thread or `mycelium_receiver_recv`).
    pub delivered: u64,
    /// Messages it did not get: evicted (`MYCELIUM_OVERFLOW_DROP_OLDEST`), refused
    /// (`MYCELIUM_OVERFLOW_FAIL`), or in its queue when it was closed.
    pub dropped: u64,
    /// Messages waiting in its queue now.
    pub queued: u64,
    /// Callback (or `visit`) failures counted for it.
    pub handler_errors: u64,
}

/// The first ABI version's size of the struct (it has not grown since).
const MIN_SIZE: usize = std::mem::size_of::<mycelium_subscription_stats>();

// SAFETY: `#[repr(C)]`, `struct_size: u32` first; every field is an integer.
unsafe impl SizedOptions for mycelium_subscription_stats {
    const MIN_SIZE: usize = MIN_SIZE;
    const NAME: &'static str = "mycelium_subscription_stats";
    const INIT: &'static str = "its struct_size set to sizeof(mycelium_subscription_stats)";
}

pub(crate) fn fill(
    rt: *const mycelium_runtime_t,
    id: u64,
    out: *mut mycelium_subscription_stats,
) -> FfiResult {
    if out.is_null() {
        return Err(FfiError::new(MYCELIUM_ERR_NULL_POINTER, "`out` is NULL"));
    }
    let h = live(rt)?;
    let stats = h
        .with_subscription(id, |raw: &RawSubscription| {
            let m = raw.metrics();
            mycelium_subscription_stats {
                struct_size: MIN_SIZE as u32,
                offered: raw.offered(),
                delivered: m.delivered,
                dropped: m.dropped,
                queued: m.queue_depth as u64,
                handler_errors: m.handler_errors,
            }
        })
        .ok_or_else(|| {
            FfiError::new(
                MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION,
                format!("{id} is not a subscription or receiver open on this handle"),
            )
        })?;
    // SAFETY: non-NULL (checked above) and, by the C contract, `struct_size` writable bytes.
    unsafe { write_out(out, stats) }
}
