//! Issue 12 item 8: a subscription's queue allocates as messages arrive, not its whole
//! capacity up front (a bounded async-channel took ~72 bytes per slot at subscribe time:
//! 72 MiB for a capacity of `MAX_QUEUE_CAPACITY`). A counting global allocator, in a binary of
//! its own so no other test's allocations are counted, measures what subscribing costs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions, MAX_QUEUE_CAPACITY};

struct Counting;

/// Bytes currently allocated, and the most ever allocated at once since the last reset.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are only
// bookkeeping and never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes by which the peak rose above the live count at the start, while `f` ran.
fn peak_growth(f: impl FnOnce()) -> usize {
    let start = LIVE.load(Ordering::SeqCst);
    PEAK.store(start, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - start
}

/// Everything runs in one test: the counters are process-wide, and the harness runs the
/// tests of one binary on parallel threads.
#[test]
fn a_queue_allocates_as_messages_arrive_not_up_front() {
    let bus = MessageBus::new();
    // Warm the bus (topic table, first topic) so that only the subscription is measured.
    drop(bus.subscribe_raw(1, SubscribeOptions::default()));

    for policy in [
        OverflowPolicy::Block,
        OverflowPolicy::DropOldest,
        OverflowPolicy::FailPublish,
    ] {
        let mut sub = None;
        let grown = peak_growth(|| {
            sub = Some(bus.subscribe_raw(1, SubscribeOptions::new(MAX_QUEUE_CAPACITY, policy)));
        });
        println!(
            "{policy:?}: subscribing with capacity {MAX_QUEUE_CAPACITY} allocated {grown} bytes"
        );
        assert!(
            grown < 16 * 1024,
            "{policy:?}: subscribing allocated {grown} bytes"
        );

        // 10 000 queued messages cost in proportion to the messages, not to the capacity.
        let payload = Bytes::from_static(b"0123456789abcdef");
        let grown = peak_growth(|| {
            for _ in 0..10_000 {
                bus.publish_raw(1, payload.clone()).unwrap();
            }
        });
        println!("{policy:?}: 10 000 queued messages took {grown} bytes");
        assert!(grown < 10_000 * 256, "{policy:?}: {grown} bytes");
        let sub = sub.unwrap();
        assert_eq!(sub.len(), 10_000);
        while sub.try_recv().is_ok() {}
    }
}
