//! [`Metrics`], the registry: families of series keyed by metric name, each series keyed by its
//! label set, exposed through a `prometheus_client` registry.
//!
//! Registering takes the family table's mutex once and hands back a handle that shares its
//! atomics with the table; updates through the handle never touch the mutex again. Rendering
//! asks `prometheus_client`'s Prometheus text encoder to encode its registry, which holds one
//! collector: the family table (`Families`), which walks its families under the mutex and has
//! the library write each one (HELP, TYPE, samples, escaping, number spellings).
//!
//! # Why the table is our own
//! `prometheus_client::registry::Registry` registers a metric once, through `&mut`, with no way
//! to look one up, writes families in registration order and the series of a `Family` in hash
//! order, and appends a full stop to every help text. pond registers from several threads and asks again for series it already has
//! (a stage set up anew after a reload gets its counters back), and its scrapes list families
//! by name and series by label set, the same from one scrape to the next. The table (a
//! `BTreeMap` of `BTreeMap`s) gives that in a few lines, and the library's `Collector` trait is
//! the way it provides for such a table.
//!
//! # Names
//! A counter is registered under its full exposed name (`pond_lines_total`); the library adds
//! the `_total` suffix itself, so the family is handed to it without one, and a counter named
//! without `_total` is refused. The library does not check names: we do (the Prometheus data
//! model's rules) so that a typo cannot produce an unparsable scrape.
//!
//! Metric names, label names, help texts and bucket layouts are program constants, so a mistake
//! in them is a bug, not bad input: registration stays infallible, a mistake fails a
//! `debug_assert!` (tests and debug builds stop right there), and a release build logs it at
//! ERROR and returns a working handle that is not exported, rather than corrupting the scrape.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::series::{Counter, Gauge, Histogram, bounds_are_normal, normalize_bounds};
use crate::server::{MetricsError, MetricsServer, serve};

/// The suffix the library appends to every counter's name.
const COUNTER_SUFFIX: &str = "_total";

/// A registry of counters, gauges and histograms. Clones share the same registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    families: Arc<Families>,
    /// Holds `families` as its one collector; what the text encoder walks.
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let families = Arc::new(Families::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Arc::clone(&families)));
        Metrics {
            families,
            registry: Arc::new(registry),
        }
    }
}

/// Every family, keyed (and so written) by its exposed name.
#[derive(Debug, Default)]
struct Families(Mutex<BTreeMap<String, Family>>);

/// Every series of one metric name: one HELP, one TYPE.
#[derive(Debug)]
struct Family {
    help: String,
    kind: Kind,
    /// Keyed by the label set, sorted by label name, which also orders the output.
    series: BTreeMap<LabelSet, Series>,
}

/// `(name, value)` pairs sorted by name, in the form the library encodes.
type LabelSet = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    /// The bucket layout is part of a histogram family's identity.
    Histogram {
        bounds: Arc<[f64]>,
    },
}

impl Kind {
    fn type_name(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram { .. } => "histogram",
        }
    }

    fn metric_type(&self) -> MetricType {
        match self {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram { .. } => MetricType::Histogram,
        }
    }

    fn new_series(&self) -> Series {
        match self {
            Kind::Counter => Series::Counter(Counter::default()),
            Kind::Gauge => Series::Gauge(Gauge::default()),
            Kind::Histogram { bounds } => Series::Histogram(Histogram::with_bounds(bounds.clone())),
        }
    }
}

#[derive(Debug, Clone)]
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Series {
    fn metric(&self) -> &dyn EncodeMetric {
        match self {
            Series::Counter(counter) => counter,
            Series::Gauge(gauge) => gauge,
            Series::Histogram(histogram) => histogram,
        }
    }
}

/// Why a registration was refused (always a programming mistake; see the module docs).
#[derive(Debug, PartialEq, thiserror::Error)]
enum Rejection {
    #[error("invalid metric name (expected [a-zA-Z_:][a-zA-Z0-9_:]*)")]
    MetricName,
    #[error("a counter's name must end in _total")]
    CounterSuffix,
    #[error("invalid label name {0:?} (expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)")]
    LabelName(String),
    #[error("label {0:?} given twice")]
    DuplicateLabel(String),
    #[error("label \"le\" is reserved for histogram buckets")]
    ReservedLe,
    #[error("buckets must be finite and strictly increasing (an ending +Inf is allowed)")]
    Buckets,
    #[error("already registered as a {registered}, now requested as a {requested}")]
    Kind {
        registered: &'static str,
        requested: &'static str,
    },
    #[error("already registered with other buckets")]
    OtherBuckets,
    #[error("already registered with help {registered:?}")]
    Help { registered: String },
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or returns the already-registered) counter `name{labels}`; `name` ends in
    /// `_total`. The label order does not matter. `name`, `help` and label names are program
    /// constants; see the module docs.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.register(name, help, labels, Kind::Counter) {
            Some(Series::Counter(counter)) => counter,
            _ => Counter::default(),
        }
    }

    /// Registers (or returns the already-registered) gauge `name{labels}`; see [`Metrics::counter`].
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.register(name, help, labels, Kind::Gauge) {
            Some(Series::Gauge(gauge)) => gauge,
            _ => Gauge::default(),
        }
    }

    /// Registers (or returns the already-registered) histogram `name{labels}` with the given
    /// bucket upper bounds (finite and increasing; `+Inf` is always added, and may be given last).
    /// Every series of one name must use the same buckets; see [`Metrics::counter`].
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[f64],
    ) -> Histogram {
        let bounds = normalize_bounds(buckets);
        let series = if bounds_are_normal(buckets) {
            let kind = Kind::Histogram {
                bounds: bounds.clone(),
            };
            self.register(name, help, labels, kind)
        } else {
            report(name, &Rejection::Buckets);
            None
        };
        match series {
            Some(Series::Histogram(histogram)) => histogram,
            _ => Histogram::with_bounds(bounds),
        }
    }

    /// The Prometheus text exposition format (version 0.0.4) of every series: families sorted by
    /// name, one HELP and one TYPE line each, series sorted by label set.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a `String` cannot fail, and neither can encoding our metric types; an error
        // here would be a library bug, so it is logged rather than hidden.
        if let Err(error) = prometheus_text::encode(&mut out, &self.registry) {
            tracing::error!(%error, "encoding the metrics failed; the scrape is incomplete");
        }
        out
    }

    /// Serves `GET /metrics` (and a one-line pointer on `GET /`) on `addr` from a background
    /// thread; returns once the socket is bound. Dropping the [`MetricsServer`] stops it.
    pub fn serve(&self, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        serve(self.clone(), addr)
    }

    fn register(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        kind: Kind,
    ) -> Option<Series> {
        match self.try_register(name, help, labels, kind) {
            Ok(series) => Some(series),
            Err(rejection) => {
                report(name, &rejection);
                None
            }
        }
    }

    fn try_register(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        kind: Kind,
    ) -> Result<Series, Rejection> {
        if !is_metric_name(name) {
            return Err(Rejection::MetricName);
        }
        if kind == Kind::Counter && !name.ends_with(COUNTER_SUFFIX) {
            return Err(Rejection::CounterSuffix);
        }
        let label_set = label_set(labels, matches!(kind, Kind::Histogram { .. }))?;
        let mut families = self.families.lock();
        let family = families.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            kind: kind.clone(),
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            return Err(match (&family.kind, &kind) {
                (Kind::Histogram { .. }, Kind::Histogram { .. }) => Rejection::OtherBuckets,
                (registered, requested) => Rejection::Kind {
                    registered: registered.type_name(),
                    requested: requested.type_name(),
                },
            });
        }
        if family.help != help {
            return Err(Rejection::Help {
                registered: family.help.clone(),
            });
        }
        let series = family
            .series
            .entry(label_set)
            .or_insert_with(|| family.kind.new_series());
        Ok(series.clone())
    }
}

impl Families {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Family>> {
        // Nothing panics while the lock is held except allocation failure, and every map is
        // consistent between statements, so a poisoned table is still a sound one.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, family) in self.lock().iter() {
            let kind = family.kind.metric_type();
            let base = match kind {
                MetricType::Counter => name.strip_suffix(COUNTER_SUFFIX).unwrap_or(name),
                _ => name,
            };
            let mut metric_encoder = encoder.encode_descriptor(base, &family.help, None, kind)?;
            for (labels, series) in &family.series {
                series
                    .metric()
                    .encode(metric_encoder.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

fn report(name: &str, rejection: &Rejection) {
    tracing::error!(
        metric = name,
        "metric not registered, its values will not be exported: {rejection}"
    );
    debug_assert!(false, "metric {name}: {rejection}");
}

/// The canonical form of a label set: checked, sorted by name.
fn label_set(labels: &[(&str, &str)], is_histogram: bool) -> Result<LabelSet, Rejection> {
    let mut sorted: LabelSet = labels
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (index, (name, _)) in sorted.iter().enumerate() {
        if !is_label_name(name) {
            return Err(Rejection::LabelName(name.clone()));
        }
        if is_histogram && name == "le" {
            return Err(Rejection::ReservedLe);
        }
        if index > 0 && sorted[index - 1].0 == *name {
            return Err(Rejection::DuplicateLabel(name.clone()));
        }
    }
    Ok(sorted)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, minus the `__` prefix that Prometheus reserves for itself.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn registering_twice_returns_the_same_series() {
        let metrics = Metrics::new();
        let first = metrics.counter("lines_total", "Lines.", &[("a", "1"), ("b", "2")]);
        let again = metrics.counter("lines_total", "Lines.", &[("b", "2"), ("a", "1")]);
        let other = metrics.counter("lines_total", "Lines.", &[("a", "1"), ("b", "3")]);
        first.inc();
        again.inc_by(2);
        other.inc();
        assert_eq!(first.get(), 3);
        assert_eq!(other.get(), 1);

        let h1 = metrics.histogram("lat", "Latency.", &[], &[1.0, 2.0]);
        let h2 = metrics.histogram("lat", "Latency.", &[], &[1.0, 2.0, f64::INFINITY]);
        h1.observe(0.5);
        assert_eq!(h2.count(), 1);
        let g1 = metrics.gauge("depth", "Depth.", &[]);
        metrics.gauge("depth", "Depth.", &[]).set(7.0);
        assert_eq!(g1.get(), 7.0);
    }

    #[test]
    fn concurrent_updates_from_several_threads_sum_exactly() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 50_000;
        let metrics = Metrics::new();
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let metrics = metrics.clone();
                scope.spawn(move || {
                    // Each thread registers on its own, racing the others for the same series.
                    let counter = metrics.counter("ops_total", "Ops.", &[("kind", "x")]);
                    let gauge = metrics.gauge("level", "Level.", &[]);
                    let histogram = metrics.histogram("size", "Size.", &[], &[1.0, 10.0]);
                    for i in 0..PER_THREAD {
                        counter.inc();
                        gauge.inc_by(1.0);
                        histogram.observe(if (i + thread) % 2 == 0 { 0.5 } else { 5.0 });
                    }
                });
            }
        });
        let total = THREADS * PER_THREAD;
        assert_eq!(
            metrics.counter("ops_total", "Ops.", &[("kind", "x")]).get(),
            total
        );
        assert_eq!(metrics.gauge("level", "Level.", &[]).get(), total as f64);
        let histogram = metrics.histogram("size", "Size.", &[], &[1.0, 10.0]);
        assert_eq!(histogram.count(), total);
        assert_eq!(histogram.sum(), (total / 2) as f64 * 5.5);
        let rendered = metrics.render();
        for line in [
            format!("size_bucket{{le=\"1\"}} {}\n", total / 2),
            format!("size_bucket{{le=\"10\"}} {total}\n"),
            format!("size_bucket{{le=\"+Inf\"}} {total}\n"),
            format!("size_count {total}\n"),
        ] {
            assert!(rendered.contains(&line), "{line:?} missing in\n{rendered}");
        }
    }

    #[test]
    fn counter_gauge_and_histogram_render_exactly() {
        let metrics = Metrics::new();
        // Registered out of order: the output sorts families by name and series by labels.
        let lag = metrics.gauge("pond_lag_bytes", "Bytes not yet mirrored.", &[]);
        let mongo = metrics.counter(
            "pond_lines_total",
            "Lines read.",
            &[("stage", "mongo"), ("factory", "logs")],
        );
        let mirror = metrics.counter(
            "pond_lines_total",
            "Lines read.",
            &[("factory", "logs"), ("stage", "mirror")],
        );
        let batch = metrics.histogram(
            "pond_batch_seconds",
            "Batch latency.",
            &[("factory", "logs")],
            &[0.005, 0.1, 2.5],
        );
        mirror.inc_by(120);
        mongo.inc();
        lag.set(-1.5);
        // Binary fractions, so the expected sum is exact.
        for seconds in [0.00390625, 0.00390625, 0.0625, 1.0, 9.0] {
            batch.observe(seconds);
        }
        let expected = "\
# HELP pond_batch_seconds Batch latency.
# TYPE pond_batch_seconds histogram
pond_batch_seconds_bucket{factory=\"logs\",le=\"0.005\"} 2
pond_batch_seconds_bucket{factory=\"logs\",le=\"0.1\"} 3
pond_batch_seconds_bucket{factory=\"logs\",le=\"2.5\"} 4
pond_batch_seconds_bucket{factory=\"logs\",le=\"+Inf\"} 5
pond_batch_seconds_sum{factory=\"logs\"} 10.0703125
pond_batch_seconds_count{factory=\"logs\"} 5
# HELP pond_lag_bytes Bytes not yet mirrored.
# TYPE pond_lag_bytes gauge
pond_lag_bytes -1.5
# HELP pond_lines_total Lines read.
# TYPE pond_lines_total counter
pond_lines_total{factory=\"logs\",stage=\"mirror\"} 120
pond_lines_total{factory=\"logs\",stage=\"mongo\"} 1
";
        assert_eq!(metrics.render(), expected);
    }

    #[test]
    fn unlabelled_histogram_and_untouched_series_render_zeroes() {
        let metrics = Metrics::new();
        metrics.histogram("h", "H.", &[], &[1.0]);
        metrics.counter("c_total", "C.", &[]);
        metrics.gauge("g", "G.", &[]);
        // Whole floats keep a decimal point (`0.0`); counts and bucket bounds do not.
        let expected = "\
# HELP c_total C.
# TYPE c_total counter
c_total 0
# HELP g G.
# TYPE g gauge
g 0.0
# HELP h H.
# TYPE h histogram
h_bucket{le=\"1\"} 0
h_bucket{le=\"+Inf\"} 0
h_sum 0.0
h_count 0
";
        assert_eq!(metrics.render(), expected);
        assert_eq!(Metrics::new().render(), "");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let metrics = Metrics::new();
        metrics
            .counter(
                "files_total",
                "Files seen\\counted\nper \"path\".",
                &[("path", "C:\\logs\\\"app\".log\nx\ty")],
            )
            .inc();
        let expected = "# HELP files_total Files seen\\\\counted\\nper \"path\".
# TYPE files_total counter
files_total{path=\"C:\\\\logs\\\\\\\"app\\\".log\\nx\ty\"} 1
";
        assert_eq!(metrics.render(), expected);
    }

    #[test]
    fn samples_use_prometheus_number_spellings() {
        let metrics = Metrics::new();
        for (label, value) in [
            ("inf", f64::INFINITY),
            ("nan", f64::NAN),
            ("neg", f64::NEG_INFINITY),
            ("small", 0.005),
            ("whole", 1_795_248_188.0),
        ] {
            metrics.gauge("up", "U.", &[("v", label)]).set(value);
        }
        metrics.counter("big_total", "B.", &[]).inc_by(u64::MAX);
        metrics.histogram("lat", "L.", &[], &[0.00005, 0.25, 1e6]);
        let expected = "\
# HELP big_total B.
# TYPE big_total counter
big_total 18446744073709551615
# HELP lat L.
# TYPE lat histogram
lat_bucket{le=\"5e-05\"} 0
lat_bucket{le=\"0.25\"} 0
lat_bucket{le=\"1e+06\"} 0
lat_bucket{le=\"+Inf\"} 0
lat_sum 0.0
lat_count 0
# HELP up U.
# TYPE up gauge
up{v=\"inf\"} +Inf
up{v=\"nan\"} NaN
up{v=\"neg\"} -Inf
up{v=\"small\"} 0.005
up{v=\"whole\"} 1795248188.0
";
        assert_eq!(metrics.render(), expected);

        // Every value reads back as the same `f64`, though not always in the fewest digits.
        let gauge = metrics.gauge("precise", "P.", &[]);
        for value in [0.1 + 0.2, 1e21, -3.25e-9, f64::MAX, f64::MIN_POSITIVE] {
            gauge.set(value);
            let rendered = metrics.render();
            let sample = rendered
                .lines()
                .find_map(|line| line.strip_prefix("precise "))
                .expect("the precise gauge");
            assert_eq!(sample.parse::<f64>(), Ok(value), "{sample}");
        }
    }

    #[test]
    fn label_sets_are_validated_and_canonical() {
        let owned = |pairs: &[(&str, &str)]| -> LabelSet {
            pairs
                .iter()
                .map(|&(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        };
        assert_eq!(
            label_set(&[("z", "1"), ("a", "q\"")], false),
            Ok(owned(&[("a", "q\""), ("z", "1")]))
        );
        assert_eq!(label_set(&[], true), Ok(Vec::new()));
        assert_eq!(label_set(&[("le", "1")], false), Ok(owned(&[("le", "1")])));
        assert_eq!(label_set(&[("le", "1")], true), Err(Rejection::ReservedLe));
        assert_eq!(
            label_set(&[("a", "1"), ("a", "2")], false),
            Err(Rejection::DuplicateLabel("a".to_owned()))
        );
        assert_eq!(
            label_set(&[("__name__", "x")], false),
            Err(Rejection::LabelName("__name__".to_owned()))
        );
    }

    #[test]
    fn metric_names_follow_the_data_model() {
        for valid in ["a", "pond_lines_total", "_x", "ns:rate5m", "A9"] {
            assert!(is_metric_name(valid), "{valid}");
        }
        for invalid in ["", "9a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_metric_name(invalid), "{invalid}");
        }
    }

    #[test]
    fn label_names_follow_the_data_model() {
        for valid in ["a", "factory", "_x", "le", "A9"] {
            assert!(is_label_name(valid), "{valid}");
        }
        for invalid in ["", "9a", "a:b", "a-b", "__name__", "__x"] {
            assert!(!is_label_name(invalid), "{invalid}");
        }
    }

    #[test]
    fn conflicting_registrations_are_refused() {
        let metrics = Metrics::new();
        metrics.counter("c_total", "C.", &[]);
        metrics.histogram("h", "H.", &[], &[1.0]);
        let refused = |name, help, kind| metrics.try_register(name, help, &[], kind).err();
        assert_eq!(
            refused("9c", "C.", Kind::Gauge),
            Some(Rejection::MetricName)
        );
        assert_eq!(
            refused("c", "C.", Kind::Counter),
            Some(Rejection::CounterSuffix)
        );
        assert_eq!(
            refused("c_total", "C.", Kind::Gauge),
            Some(Rejection::Kind {
                registered: "counter",
                requested: "gauge"
            })
        );
        assert_eq!(
            refused("c_total", "Other.", Kind::Counter),
            Some(Rejection::Help {
                registered: "C.".to_owned()
            })
        );
        let two_buckets = Kind::Histogram {
            bounds: normalize_bounds(&[1.0, 2.0]),
        };
        assert_eq!(
            refused("h", "H.", two_buckets),
            Some(Rejection::OtherBuckets)
        );
        // Nothing refused was added to the output.
        let expected = "\
# HELP c_total C.
# TYPE c_total counter
c_total 0
# HELP h H.
# TYPE h histogram
h_bucket{le=\"1\"} 0
h_bucket{le=\"+Inf\"} 0
h_sum 0.0
h_count 0
";
        assert_eq!(metrics.render(), expected);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(
        expected = "metric c_total: already registered as a counter, now requested as a gauge"
    )]
    fn a_conflicting_registration_fails_debug_builds() {
        let metrics = Metrics::new();
        metrics.counter("c_total", "C.", &[]);
        metrics.gauge("c_total", "C.", &[]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "metric lines: a counter's name must end in _total")]
    fn a_counter_without_total_fails_debug_builds() {
        Metrics::new().counter("lines", "Lines.", &[]);
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_conflicting_registration_in_release_gives_a_working_unexported_series() {
        let metrics = Metrics::new();
        metrics.counter("c_total", "C.", &[]);
        let gauge = metrics.gauge("c_total", "C.", &[]);
        gauge.set(2.0);
        assert_eq!(gauge.get(), 2.0);
        let histogram = metrics.histogram("h", "H.", &[], &[2.0, 1.0]);
        histogram.observe(1.5);
        assert_eq!(histogram.quantile(1.0), Some(2.0));
        metrics.counter("lines", "Lines.", &[]).inc();
        assert_eq!(
            metrics.render(),
            "# HELP c_total C.\n# TYPE c_total counter\nc_total 0\n"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "metric h: buckets must be finite and strictly increasing")]
    fn unordered_buckets_fail_debug_builds() {
        Metrics::new().histogram("h", "H.", &[], &[2.0, 1.0]);
    }
}
