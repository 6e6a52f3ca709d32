//! Frame latency: from the moment the reassembler completes a frame to the moment the sink
//! has written its picture, kept in a fixed, lock-free, allocation-free histogram.
//!
//! Buckets are log-spaced over microseconds, eight per power of two (HDR-histogram style):
//! values below 8 µs have a bucket each, above that each bucket is 1/8 of its octave wide,
//! so a percentile read from the bucket's upper edge is at most 12.5 % above the true value.
//! Anything from 16.8 s up lands in the last bucket.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two.
const SUB: usize = 8;
/// log2(SUB).
const SUB_BITS: u32 = 3;
/// The largest octave kept apart: 2^24 µs = 16.8 s.
const MAX_EXPONENT: u32 = 24;
/// Number of buckets.
pub const BUCKETS: usize = SUB + (MAX_EXPONENT - SUB_BITS) as usize * SUB;

/// The bucket of a latency of `micros` µs.
fn bucket_of(micros: u64) -> usize {
    if micros < SUB as u64 {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros();
    if exponent >= MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let sub = (micros >> (exponent - SUB_BITS)) as usize - SUB;
    SUB + (exponent - SUB_BITS) as usize * SUB + sub
}

/// The smallest latency (µs) that is not in `bucket` any more: its upper edge.
fn upper_edge(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64 + 1;
    }
    let exponent = (bucket - SUB) / SUB + SUB_BITS as usize;
    let sub = (bucket - SUB) % SUB;
    ((SUB + sub + 1) as u64) << (exponent - SUB_BITS as usize)
}

/// The live histogram, updated by the frame path.
#[derive(Debug)]
pub struct LatencyHistogram {
    counts: [AtomicU64; BUCKETS],
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl LatencyHistogram {
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencyCounts {
        LatencyCounts(std::array::from_fn(|i| {
            self.counts[i].load(Ordering::Relaxed)
        }))
    }
}

/// A copy of the histogram's counts, for percentiles over all time or (by
/// [`LatencyCounts::since`]) over one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyCounts([u64; BUCKETS]);

impl Default for LatencyCounts {
    fn default() -> Self {
        LatencyCounts([0; BUCKETS])
    }
}

impl LatencyCounts {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The counts added after `before` was taken.
    pub fn since(&self, before: &LatencyCounts) -> LatencyCounts {
        LatencyCounts(std::array::from_fn(|i| {
            self.0[i].saturating_sub(before.0[i])
        }))
    }

    /// The `q`-quantile (0 < q <= 1), as the upper edge of the bucket holding the sample of
    /// rank ceil(q * n): at least the true value, at most 12.5 % above it. `None` without
    /// samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, &count) in self.0.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_micros(upper_edge(bucket)));
            }
        }
        None
    }
}

/// "p50 1.9 ms p99 3.1 ms", or "n/a" without samples.
pub struct Percentiles<'a>(pub &'a LatencyCounts);

impl fmt::Display for Percentiles<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.quantile(0.5), self.0.quantile(0.99)) {
            (Some(p50), Some(p99)) => write!(
                f,
                "p50 {:.1} ms p99 {:.1} ms",
                p50.as_secs_f64() * 1000.0,
                p99.as_secs_f64() * 1000.0
            ),
            _ => f.write_str("n/a"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(samples_us: impl IntoIterator<Item = u64>) -> LatencyCounts {
        let h = LatencyHistogram::default();
        for us in samples_us {
            h.record(Duration::from_micros(us));
        }
        h.snapshot()
    }

    #[test]
    fn buckets_cover_every_value_in_order_without_gaps() {
        let mut previous_edge = 0;
        for bucket in 0..BUCKETS - 1 {
            let edge = upper_edge(bucket);
            assert!(edge > previous_edge, "bucket {bucket}");
            // The edge itself belongs to the next bucket, the value below it to this one.
            assert_eq!(bucket_of(edge - 1), bucket);
            assert_eq!(bucket_of(edge), bucket + 1);
            previous_edge = edge;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn bucket_width_is_at_most_an_eighth_of_its_values() {
        for micros in [8, 9, 100, 1_000, 1_999, 33_333, 1_000_000] {
            let edge = upper_edge(bucket_of(micros));
            assert!(edge > micros);
            assert!(
                (edge - micros) as f64 <= micros as f64 / 8.0 + 1.0,
                "{micros} -> {edge}"
            );
        }
    }

    #[test]
    fn exact_below_eight_microseconds() {
        let c = counts([1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(c.quantile(0.5), Some(Duration::from_micros(5)));
        assert_eq!(c.quantile(1.0), Some(Duration::from_micros(8)));
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        // 98 frames at 2 ms, 2 at 10 ms: p50 is 2 ms, p99 (rank 99) is 10 ms.
        let c = counts(std::iter::repeat_n(2_000, 98).chain([10_000, 10_000]));
        let p50 = c.quantile(0.5).unwrap().as_micros() as u64;
        let p99 = c.quantile(0.99).unwrap().as_micros() as u64;
        assert!((2_000..=2_250).contains(&p50), "{p50}");
        assert!((10_000..=11_250).contains(&p99), "{p99}");
        // With a single slow frame in 100, p99 still reads the fast ones.
        let c = counts(std::iter::repeat_n(2_000, 99).chain([50_000]));
        assert!(c.quantile(0.99).unwrap() < Duration::from_micros(2_300));
        assert!(c.quantile(1.0).unwrap() >= Duration::from_millis(50));
    }

    #[test]
    fn uniform_samples_land_within_the_bucket_error() {
        let c = counts(1..=10_000);
        for (q, truth) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = c.quantile(q).unwrap().as_micros() as f64;
            assert!(got >= truth && got <= truth * 1.125, "q{q}: {got}");
        }
    }

    #[test]
    fn interval_counts_and_no_samples() {
        let h = LatencyHistogram::default();
        h.record(Duration::from_millis(100));
        let before = h.snapshot();
        h.record(Duration::from_millis(1));
        let interval = h.snapshot().since(&before);
        assert_eq!(interval.total(), 1);
        assert!(interval.quantile(0.99).unwrap() < Duration::from_millis(2));
        assert_eq!(LatencyCounts::default().quantile(0.5), None);
        assert_eq!(Percentiles(&LatencyCounts::default()).to_string(), "n/a");
        assert_eq!(
            Percentiles(&counts([1_000, 1_000])).to_string(),
            "p50 1.0 ms p99 1.0 ms"
        );
    }

    #[test]
    fn huge_latencies_are_kept_in_the_last_bucket() {
        let c = counts([u64::MAX / 2]);
        assert_eq!(
            c.quantile(1.0),
            Some(Duration::from_micros(upper_edge(BUCKETS - 1)))
        );
    }
}
