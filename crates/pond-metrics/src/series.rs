//! The three series handles: [`Counter`] and [`Gauge`], `prometheus-client`'s own, and
//! [`Histogram`], ours.
//!
//! A handle is an `Arc` around atomics shared with the registry, so cloning it is cheap and an
//! update never takes a lock. [`Counter`] is the library's `Counter` (one `AtomicU64`), [`Gauge`]
//! its `Gauge<f64, AtomicU64>` (the bits of an `f64`, added to by a compare-and-swap loop); their
//! updates return the previous value, which pond ignores.
//!
//! # Why the histogram is our own
//! `prometheus_client::metrics::histogram::Histogram` keeps its buckets behind a mutex and
//! exposes neither its bucket counts nor (outside its `test-util` feature) its sum and count,
//! so [`Histogram::quantile`], which run summaries and logs need, cannot be computed from it.
//! Keeping a shadow copy of the buckets beside it would double the work on every observation
//! and let the two drift apart. So the histogram stays a small lock-free type of ours (one
//! `AtomicU64` per bucket plus the bits of the `f64` sum) and implements the library's
//! `EncodeMetric`: the library writes its exposition, we keep the data. Measured
//! (`benches/metrics.rs`, docs/benchmarks.md "Metrics library"), it costs nothing on the hot
//! path: one `observe` takes 10.3 ns here against 14.5 ns for the library's (10.8 against
//! 14.2 ns per observation with two threads on one histogram).
//!
//! The histogram keeps per-bucket (non-cumulative) counts and derives its total count from them,
//! so the rendered `_count` always equals the `+Inf` bucket even while observations race a scrape.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Bucket upper bounds in seconds, from 1 ms to 60 s, for batch and end-to-end latencies.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// A monotonically increasing count, such as lines read or documents inserted: the library's
/// counter, one `AtomicU64` (`inc`, `inc_by`, `get`).
pub type Counter = prometheus_client::metrics::counter::Counter;

/// A value that goes up and down, such as a queue depth or a lag in bytes: the library's gauge
/// over the bits of an `f64` (`set`, `inc_by`, `dec_by`, `get`).
pub type Gauge = prometheus_client::metrics::gauge::Gauge<f64, AtomicU64>;

/// Observations counted into fixed buckets, such as batch latencies.
#[derive(Clone, Debug)]
pub struct Histogram {
    core: Arc<HistogramCore>,
}

#[derive(Debug)]
struct HistogramCore {
    /// Finite, strictly increasing upper bounds; the `+Inf` bucket is implicit.
    bounds: Arc<[f64]>,
    /// One slot per bound plus the `+Inf` slot; slot `i` counts values in `(bounds[i-1], bounds[i]]`.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

impl Histogram {
    /// `bounds` must already be normalized (see [`normalize_bounds`]).
    pub(crate) fn with_bounds(bounds: Arc<[f64]>) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            core: Arc::new(HistogramCore {
                bounds,
                counts,
                sum_bits: AtomicU64::new(0.0_f64.to_bits()),
            }),
        }
    }

    pub fn observe(&self, v: f64) {
        let core = &self.core;
        // First bound >= v; NaN compares false everywhere and lands in `+Inf`, as in the Go client.
        let slot = core
            .bounds
            .partition_point(|&bound| bound < v || v.is_nan());
        if let Some(count) = core.counts.get(slot) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // The closure always returns `Some`, so `fetch_update` cannot fail.
        let _ = core
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                Some((f64::from_bits(current) + v).to_bits())
            });
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.bucket_counts().sum()
    }

    /// Sum of all observed values.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.core.sum_bits.load(Ordering::Relaxed))
    }

    /// Estimated `q`-quantile, interpolated linearly inside the bucket that holds it, the way
    /// PromQL's `histogram_quantile` does: a value in the `+Inf` bucket is reported as the highest
    /// finite bound, the lowest bucket starts at 0 (when its bound is positive), `q` below 0 or
    /// above 1 gives -Inf or +Inf. `None` when nothing was observed or there are no finite
    /// buckets to interpolate in.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut running = 0_u64;
        let cumulative: Vec<u64> = self
            .bucket_counts()
            .map(|count| {
                running = running.wrapping_add(count);
                running
            })
            .collect();
        bucket_quantile(q, &self.core.bounds, &cumulative)
    }

    /// The count of each bucket (not cumulative), `+Inf` last.
    fn bucket_counts(&self) -> impl Iterator<Item = u64> + '_ {
        self.core
            .counts
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // The library's classic-histogram form: (upper bound, count in that bucket alone), the
        // `+Inf` bucket included; it writes the cumulative `_bucket` lines, `_sum` and `_count`.
        let buckets: Vec<(f64, u64)> = self
            .core
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.bucket_counts())
            .collect();
        let count = buckets.iter().map(|&(_, count)| count).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The bounds a histogram is built with: finite values, sorted, without duplicates. A trailing
/// `+Inf` is accepted (and dropped) because every histogram has that bucket anyway.
pub(crate) fn normalize_bounds(buckets: &[f64]) -> Arc<[f64]> {
    let mut bounds: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    bounds.into()
}

/// Whether `buckets` is already normal: finite and strictly increasing, optionally ending in `+Inf`.
pub(crate) fn bounds_are_normal(buckets: &[f64]) -> bool {
    let finite = match buckets.split_last() {
        Some((&last, rest)) if last == f64::INFINITY => rest,
        _ => buckets,
    };
    finite.iter().all(|b| b.is_finite()) && finite.windows(2).all(|pair| pair[0] < pair[1])
}

/// PromQL's `bucketQuantile` over cumulative counts (`cumulative.len() == bounds.len() + 1`).
fn bucket_quantile(q: f64, bounds: &[f64], cumulative: &[u64]) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 || bounds.is_empty() {
        return None;
    }
    if q.is_nan() {
        return Some(f64::NAN);
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }
    let rank = q * total as f64;
    // Skipping empty leading buckets makes q = 0 the lower edge of the first non-empty bucket
    // instead of 0/0; the last (total) entry always qualifies.
    let bucket = cumulative
        .iter()
        .position(|&count| count > 0 && count as f64 >= rank)?;
    let Some(&end) = bounds.get(bucket) else {
        // The `+Inf` bucket has no upper edge to interpolate towards.
        return bounds.last().copied();
    };
    let (start, below) = match bucket.checked_sub(1) {
        Some(previous) => (bounds[previous], cumulative[previous]),
        None if end <= 0.0 => return Some(end),
        None => (0.0, 0),
    };
    let in_bucket = (cumulative[bucket] - below) as f64;
    Some(start + (end - start) * ((rank - below as f64) / in_bucket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    fn histogram(bounds: &[f64], values: &[f64]) -> Histogram {
        let histogram = Histogram::with_bounds(normalize_bounds(bounds));
        for &v in values {
            histogram.observe(v);
        }
        histogram
    }

    #[track_caller]
    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap_or(f64::NAN);
        assert!(
            (actual - expected).abs() < 1e-12,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn counter_and_gauge_update_and_read_back() {
        let counter = Counter::default();
        counter.inc();
        counter.inc_by(41);
        assert_eq!(counter.get(), 42);
        let gauge = Gauge::default();
        assert_eq!(gauge.get(), 0.0);
        gauge.set(2.5);
        gauge.inc_by(-4.0);
        assert_eq!(gauge.get(), -1.5);
    }

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        let metrics = Metrics::new();
        let h = metrics.histogram("h", "H.", &[], &[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, f64::NAN] {
            h.observe(v);
        }
        // 1.0 is "le 1": bounds are inclusive. NaN goes to +Inf, and makes the sum NaN.
        let expected = "\
# HELP h H.
# TYPE h histogram
h_bucket{le=\"1\"} 2
h_bucket{le=\"2\"} 4
h_bucket{le=\"+Inf\"} 6
h_sum NaN
h_count 6
";
        assert_eq!(metrics.render(), expected);
        assert_eq!(h.count(), 6);
        assert!(h.sum().is_nan());
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        // Cumulative: le 1 -> 1, le 2 -> 3, le 4 -> 4.
        let h = histogram(&[1.0, 2.0, 4.0], &[0.5, 1.5, 1.5, 3.0]);
        assert_eq!(h.quantile(0.25), Some(1.0));
        assert_eq!(h.quantile(0.5), Some(1.5));
        assert_eq!(h.quantile(0.75), Some(2.0));
        assert_eq!(h.quantile(1.0), Some(4.0));
        assert_eq!(h.quantile(0.0), Some(0.0));
        assert_close(h.quantile(0.9), 3.2);
    }

    #[test]
    fn quantile_zero_skips_empty_leading_buckets() {
        let h = histogram(&[1.0, 2.0, 4.0], &[3.0, 3.5]);
        assert_eq!(h.quantile(0.0), Some(2.0));
        assert_eq!(h.quantile(0.5), Some(3.0));
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_finite_bound() {
        let h = histogram(&[1.0, 2.0], &[0.5, 100.0, 200.0]);
        assert_eq!(h.quantile(0.99), Some(2.0));
        assert_close(h.quantile(0.2), 0.6);
    }

    #[test]
    fn quantile_with_a_non_positive_lowest_bound_does_not_start_at_zero() {
        let h = histogram(&[-1.0, 1.0], &[-5.0, -2.0, 0.0, 0.5]);
        // Half the values are in the lowest bucket, which has no lower edge.
        assert_eq!(h.quantile(0.25), Some(-1.0));
        assert_eq!(h.quantile(0.75), Some(0.0));
    }

    #[test]
    fn quantile_edge_cases() {
        assert_eq!(histogram(&[1.0], &[]).quantile(0.5), None);
        assert_eq!(histogram(&[], &[1.0]).quantile(0.5), None);
        let h = histogram(&[1.0], &[0.5]);
        assert_eq!(h.quantile(-0.1), Some(f64::NEG_INFINITY));
        assert_eq!(h.quantile(1.1), Some(f64::INFINITY));
        assert!(h.quantile(f64::NAN).is_some_and(f64::is_nan));
    }

    #[test]
    fn quantiles_over_latency_buckets() {
        // 90 fast batches at 3 ms and 10 slow ones at 7 s.
        let mut values = vec![0.003; 90];
        values.extend([7.0; 10]);
        let h = histogram(LATENCY_BUCKETS, &values);
        // Median: rank 50 of 90 in (0.0025, 0.005].
        assert_close(h.quantile(0.5), 0.0025 + 0.0025 * (50.0 / 90.0));
        // p95: rank 95, 5 of the 10 values in (5, 10].
        assert_close(h.quantile(0.95), 7.5);
        assert_eq!(h.count(), 100);
    }

    #[test]
    fn bounds_are_normalized_and_checked() {
        assert_eq!(
            &*normalize_bounds(&[2.0, f64::INFINITY, 1.0, 2.0, f64::NAN]),
            &[1.0, 2.0]
        );
        assert!(bounds_are_normal(LATENCY_BUCKETS));
        assert!(bounds_are_normal(&[]));
        assert!(bounds_are_normal(&[0.5, 1.0, f64::INFINITY]));
        assert!(!bounds_are_normal(&[1.0, 1.0]));
        assert!(!bounds_are_normal(&[2.0, 1.0]));
        assert!(!bounds_are_normal(&[f64::NAN]));
        assert!(!bounds_are_normal(&[f64::INFINITY, 1.0]));
        assert!(LATENCY_BUCKETS.first() == Some(&0.001) && LATENCY_BUCKETS.last() == Some(&60.0));
    }
}
