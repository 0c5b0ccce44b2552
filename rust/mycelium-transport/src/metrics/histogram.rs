//! Lock-free delivery-latency histogram.
//!
//! Hand-written rather than `hdrhistogram` because recording happens on every dequeue from
//! any number of threads: `hdrhistogram::Histogram::record` needs `&mut self`, which would put
//! a lock (or per-thread histograms plus merging) on the hot path. Here recording is two
//! relaxed atomic additions and a load.
//!
//! Buckets are log-linear over `v = ns - 1`: values of `v` below 8 get one bucket each, and
//! every power-of-two range `[2^k, 2^(k+1))` above that is split into 8 equal sub-buckets, so
//! any reported quantile is within 12.5 % of the true value. Shifting by one makes every
//! bucket's inclusive upper edge in nanoseconds land on a power of two at the end of each
//! range, which is what Prometheus' inclusive `le` bounds need to be exact.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// log2 of the number of sub-buckets per power of two.
const SUB_BITS: u32 = 3;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Highest power of two tracked exactly: 2^40 ns is about 18 minutes; slower deliveries land
/// in the last bucket (the exact maximum is still kept).
const MAX_EXPONENT: u32 = 40;
const BUCKETS: usize = ((MAX_EXPONENT - SUB_BITS + 2) as usize) * SUB_COUNT;

/// Powers of two (in ns) exported as Prometheus `le` bounds: 256 ns .. ~17 s. These coincide
/// with internal bucket edges, so the exported cumulative counts are exact.
pub(crate) const EXPORT_EXPONENTS: std::ops::RangeInclusive<u32> = 8..=34;

/// Bucket holding a latency of `ns` nanoseconds.
fn bucket_index(ns: u64) -> usize {
    let v = ns.saturating_sub(1);
    if v < SUB_COUNT as u64 {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros();
    if exponent > MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let sub = ((v >> (exponent - SUB_BITS)) as usize) & (SUB_COUNT - 1);
    (exponent - SUB_BITS + 1) as usize * SUB_COUNT + sub
}

/// Largest latency in nanoseconds (inclusive) that falls into bucket `index`.
fn bucket_upper(index: usize) -> u64 {
    if index < SUB_COUNT {
        return index as u64 + 1;
    }
    let exponent = (index / SUB_COUNT) as u32 + SUB_BITS - 1;
    let sub = (index % SUB_COUNT) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    ((SUB_COUNT as u64 + sub) << (exponent - SUB_BITS)) + width
}

/// Concurrent latency recorder, in nanoseconds.
pub(crate) struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl LatencyHistogram {
    pub(crate) fn new() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, ns: u64) {
        self.buckets[bucket_index(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        // A new maximum is rare; checking first avoids a read-modify-write on every sample.
        if ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    /// A point-in-time summary. Buckets are read one by one while others may record, so the
    /// summary can be a few samples behind; `count` is derived from the same reads as the
    /// quantiles, which keeps the summary self-consistent.
    pub(crate) fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max_ns = self.max_ns.load(Ordering::Relaxed);
        let quantile = |q: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            // Nearest-rank: the smallest bucket whose cumulative count reaches ceil(q * n).
            let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (index, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return bucket_upper(index).min(max_ns);
                }
            }
            max_ns
        };
        let mut buckets = Vec::with_capacity(EXPORT_EXPONENTS.clone().count());
        let mut cumulative = 0;
        let mut next = 0;
        for exponent in EXPORT_EXPONENTS {
            // Some bucket ends exactly at 2^exponent ns, so summing the buckets up to it counts
            // precisely the deliveries <= the bound.
            let bound = 1u64 << exponent;
            while next < counts.len() && bucket_upper(next) <= bound {
                cumulative += counts[next];
                next += 1;
            }
            buckets.push(HistogramBucket {
                le_ns: bound,
                cumulative_count: cumulative,
            });
        }
        LatencySummary {
            count,
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            p50_ns: quantile(0.50),
            p90_ns: quantile(0.90),
            p99_ns: quantile(0.99),
            max_ns: if count == 0 { 0 } else { max_ns },
            buckets,
        }
    }
}

/// One cumulative histogram bucket: how many deliveries took at most `le_ns` nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistogramBucket {
    /// Upper bound in nanoseconds.
    pub le_ns: u64,
    /// Deliveries at or below the bound (cumulative, as in Prometheus).
    pub cumulative_count: u64,
}

/// Publish-to-dequeue latency of one message type. Quantiles are bucket upper bounds
/// (at most 12.5 % above the true value, never above `max_ns`); all values in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    /// Number of recorded deliveries.
    pub count: u64,
    /// Sum of all recorded latencies.
    pub sum_ns: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest recorded latency (exact).
    pub max_ns: u64,
    /// Cumulative buckets at powers of two from 256 ns to about 17 s.
    pub buckets: Vec<HistogramBucket>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_contains_it() {
        let samples = (0..64)
            .flat_map(|shift| {
                let base = 1u64 << shift;
                [base.saturating_sub(1), base, base.saturating_add(base / 3)]
            })
            .chain([0, 1, 7, 8, 9, 1000, 123_456_789]);
        for ns in samples {
            let index = bucket_index(ns);
            assert!(index < BUCKETS, "{ns} -> {index}");
            if ns <= (1u64 << (MAX_EXPONENT + 1)) {
                assert!(ns <= bucket_upper(index), "{ns} above bucket {index}");
                let lower = if index == 0 {
                    0
                } else {
                    bucket_upper(index - 1) + 1
                };
                assert!(ns >= lower, "{ns} below bucket {index}");
            } else {
                assert_eq!(index, BUCKETS - 1);
            }
        }
    }

    #[test]
    fn bucket_edges_are_contiguous() {
        for index in 1..BUCKETS {
            assert_eq!(bucket_index(bucket_upper(index - 1) + 1), index);
            assert_eq!(bucket_index(bucket_upper(index)), index);
        }
    }

    #[test]
    fn quantiles_are_within_an_eighth_of_the_true_value() {
        let h = LatencyHistogram::new();
        // 1..=1000 µs: true p50 = 500 µs, p90 = 900 µs, p99 = 990 µs.
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max_ns, 1_000_000);
        assert_eq!(s.sum_ns, (1..=1000u64).sum::<u64>() * 1000);
        for (got, want) in [
            (s.p50_ns, 500_000.0),
            (s.p90_ns, 900_000.0),
            (s.p99_ns, 990_000.0),
        ] {
            let got = got as f64;
            assert!(
                got >= want && got <= want * 1.125,
                "got {got}, want ~{want}"
            );
        }
    }

    #[test]
    fn exported_buckets_are_cumulative_and_exact() {
        let h = LatencyHistogram::new();
        let samples = [
            0u64,
            100,
            255,
            256,
            257,
            511,
            512,
            513,
            70_000,
            1 << 33,
            u64::MAX / 2,
        ];
        for ns in samples {
            h.record(ns);
        }
        let s = h.summary();
        for bucket in &s.buckets {
            let expected = samples.iter().filter(|&&ns| ns <= bucket.le_ns).count() as u64;
            assert_eq!(bucket.cumulative_count, expected, "le {}", bucket.le_ns);
        }
        assert_eq!(s.count, samples.len() as u64);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let s = LatencyHistogram::new().summary();
        assert_eq!((s.count, s.p50_ns, s.p99_ns, s.max_ns), (0, 0, 0, 0));
        assert!(s.buckets.iter().all(|b| b.cumulative_count == 0));
    }
}
