//! The clock behind publish timestamps and delivery latency.
//!
//! `std::time::Instant::now()` is a `clock_gettime` call through the vDSO: about 30 ns on our
//! VMs, and every publish reads it once (issue 16 measured it at 20 % of a same-thread publish
//! and take). `quanta` reads the CPU's time-stamp counter when it is invariant (scaled to
//! nanoseconds by a calibration against the OS clock made once per process, ~0.6 ms, paid when
//! the first bus is created) and falls back to the OS monotonic clock otherwise: about 12 ns.
//! Only differences between stamps are meaningful, as with `Instant`.

use std::time::Duration;

/// A point in time on the bus's clock: when a message was published, when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(quanta::Instant);

impl Stamp {
    /// Now.
    #[inline]
    pub fn now() -> Stamp {
        Stamp(quanta::Instant::now())
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    #[inline]
    pub fn saturating_duration_since(&self, earlier: Stamp) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// Time since this stamp.
    pub fn elapsed(&self) -> Duration {
        Stamp::now().saturating_duration_since(*self)
    }

    /// Pays the clock's one-time calibration now rather than in the first publish.
    pub(crate) fn calibrate() {
        let _ = Stamp::now();
    }
}
