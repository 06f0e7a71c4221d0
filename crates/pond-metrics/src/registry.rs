//! [`Metrics`], the registry: families of series keyed by metric name, each series keyed by its
//! label set.
//!
//! Registering takes the registry's mutex once and hands back a handle that shares its atomics
//! with the registry; updates through the handle never touch the mutex again. Rendering takes the
//! mutex to walk the families (a `BTreeMap`, hence sorted by name) and reads each atomic.
//!
//! Metric names, label names, help texts and bucket layouts are program constants, so a mistake
//! in them is a bug, not bad input: registration stays infallible, a mistake fails a
//! `debug_assert!` (tests and debug builds stop right there), and a release build logs it at
//! ERROR and returns a working handle that is not exported, rather than corrupting the scrape.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::render::render_family;
use crate::series::{Counter, Gauge, Histogram, bounds_are_normal, normalize_bounds};
use crate::server::{MetricsError, MetricsServer, serve};
use crate::text::{is_label_name, is_metric_name, push_label_value};

/// A registry of counters, gauges and histograms. Clones share the same registry.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub(crate) families: BTreeMap<String, Family>,
}

/// Every series of one metric name: one HELP, one TYPE.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) help: String,
    pub(crate) kind: Kind,
    /// Keyed by the rendered label set (`a="x",b="y"`, names sorted), which also orders the output.
    pub(crate) series: BTreeMap<String, Series>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    /// The bucket layout is part of a histogram family's identity.
    Histogram {
        bounds: Arc<[f64]>,
    },
}

impl Kind {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram { .. } => "histogram",
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
pub(crate) enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// Why a registration was refused (always a programming mistake; see the module docs).
#[derive(Debug, PartialEq, thiserror::Error)]
enum Rejection {
    #[error("invalid metric name (expected [a-zA-Z_:][a-zA-Z0-9_:]*)")]
    MetricName,
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

    /// Registers (or returns the already-registered) counter `name{labels}`. The label order does
    /// not matter. `name`, `help` and label names are program constants; see the module docs.
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
        let registry = self.lock();
        let mut out = String::new();
        for (name, family) in &registry.families {
            render_family(&mut out, name, family);
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
        let key = label_key(labels, matches!(kind, Kind::Histogram { .. }))?;
        let mut registry = self.lock();
        let family = registry
            .families
            .entry(name.to_owned())
            .or_insert_with(|| Family {
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
            .entry(key)
            .or_insert_with(|| family.kind.new_series());
        Ok(series.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Nothing panics while the lock is held except allocation failure, and every map is
        // consistent between statements, so a poisoned registry is still a sound one.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn report(name: &str, rejection: &Rejection) {
    tracing::error!(
        metric = name,
        "metric not registered, its values will not be exported: {rejection}"
    );
    debug_assert!(false, "metric {name}: {rejection}");
}

/// The canonical rendering of a label set: sorted by name, values escaped.
fn label_key(labels: &[(&str, &str)], is_histogram: bool) -> Result<String, Rejection> {
    let mut sorted = labels.to_vec();
    sorted.sort_unstable_by_key(|&(name, _)| name);
    let mut key = String::new();
    for (index, &(name, value)) in sorted.iter().enumerate() {
        if !is_label_name(name) {
            return Err(Rejection::LabelName(name.to_owned()));
        }
        if is_histogram && name == "le" {
            return Err(Rejection::ReservedLe);
        }
        if index > 0 && sorted[index - 1].0 == name {
            return Err(Rejection::DuplicateLabel(name.to_owned()));
        }
        if index > 0 {
            key.push(',');
        }
        key.push_str(name);
        key.push_str("=\"");
        push_label_value(&mut key, value);
        key.push('"');
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
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
                        gauge.add(1.0);
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
        assert_eq!(
            histogram.snapshot().cumulative,
            vec![total / 2, total, total]
        );
    }

    #[test]
    fn label_sets_are_validated_and_canonical() {
        assert_eq!(
            label_key(&[("z", "1"), ("a", "q\"")], false),
            Ok(r#"a="q\"",z="1""#.to_owned())
        );
        assert_eq!(label_key(&[], true), Ok(String::new()));
        assert_eq!(label_key(&[("le", "1")], false), Ok(r#"le="1""#.to_owned()));
        assert_eq!(label_key(&[("le", "1")], true), Err(Rejection::ReservedLe));
        assert_eq!(
            label_key(&[("a", "1"), ("a", "2")], false),
            Err(Rejection::DuplicateLabel("a".to_owned()))
        );
        assert_eq!(
            label_key(&[("__name__", "x")], false),
            Err(Rejection::LabelName("__name__".to_owned()))
        );
    }

    #[test]
    fn conflicting_registrations_are_refused() {
        let metrics = Metrics::new();
        metrics.counter("c", "C.", &[]);
        metrics.histogram("h", "H.", &[], &[1.0]);
        let refused = |name, help, kind| metrics.try_register(name, help, &[], kind).err();
        assert_eq!(
            refused("9c", "C.", Kind::Counter),
            Some(Rejection::MetricName)
        );
        assert_eq!(
            refused("c", "C.", Kind::Gauge),
            Some(Rejection::Kind {
                registered: "counter",
                requested: "gauge"
            })
        );
        assert_eq!(
            refused("c", "Other.", Kind::Counter),
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
        assert_eq!(metrics.lock().families.len(), 2);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(
        expected = "metric c: already registered as a counter, now requested as a gauge"
    )]
    fn a_conflicting_registration_fails_debug_builds() {
        let metrics = Metrics::new();
        metrics.counter("c", "C.", &[]);
        metrics.gauge("c", "C.", &[]);
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_conflicting_registration_in_release_gives_a_working_unexported_series() {
        let metrics = Metrics::new();
        metrics.counter("c", "C.", &[]);
        let gauge = metrics.gauge("c", "C.", &[]);
        gauge.set(2.0);
        assert_eq!(gauge.get(), 2.0);
        let histogram = metrics.histogram("h", "H.", &[], &[2.0, 1.0]);
        histogram.observe(1.5);
        assert_eq!(histogram.quantile(1.0), Some(2.0));
        assert_eq!(metrics.render(), "# HELP c C.\n# TYPE c counter\nc 0\n");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "metric h: buckets must be finite and strictly increasing")]
    fn unordered_buckets_fail_debug_builds() {
        Metrics::new().histogram("h", "H.", &[], &[2.0, 1.0]);
    }
}
