//! One family in the text exposition format: its HELP and TYPE lines, then one sample line per
//! counter or gauge series, or per histogram series its cumulative `_bucket{le=...}` lines
//! (ending with `le="+Inf"`), `_sum` and `_count`.

use crate::registry::{Family, Series};
use crate::text::{push_float, push_help};

pub(crate) fn render_family(out: &mut String, name: &str, family: &Family) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    push_help(out, &family.help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(family.kind.type_name());
    out.push('\n');
    for (labels, series) in &family.series {
        match series {
            Series::Counter(counter) => {
                push_series(out, name, "", labels, None);
                out.push_str(&counter.get().to_string());
                out.push('\n');
            }
            Series::Gauge(gauge) => {
                push_series(out, name, "", labels, None);
                push_float(out, gauge.get());
                out.push('\n');
            }
            Series::Histogram(histogram) => {
                let snapshot = histogram.snapshot();
                let mut le = String::new();
                for (index, cumulative) in snapshot.cumulative.iter().enumerate() {
                    le.clear();
                    push_float(
                        &mut le,
                        snapshot.bounds.get(index).copied().unwrap_or(f64::INFINITY),
                    );
                    push_series(out, name, "_bucket", labels, Some(&le));
                    out.push_str(&cumulative.to_string());
                    out.push('\n');
                }
                push_series(out, name, "_sum", labels, None);
                push_float(out, snapshot.sum);
                out.push('\n');
                push_series(out, name, "_count", labels, None);
                let count = snapshot.cumulative.last().copied().unwrap_or(0);
                out.push_str(&count.to_string());
                out.push('\n');
            }
        }
    }
}

/// `name_suffix{labels,le="..."} ` up to the value.
fn push_series(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some(le) = le {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            out.push_str(le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

#[cfg(test)]
mod tests {
    use crate::Metrics;

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
        metrics.counter("c", "C.", &[]);
        let expected = "\
# HELP c C.
# TYPE c counter
c 0
# HELP h H.
# TYPE h histogram
h_bucket{le=\"1\"} 0
h_bucket{le=\"+Inf\"} 0
h_sum 0
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
                &[("path", "C:\\logs\\\"app\".log\nx")],
            )
            .inc();
        let expected = r#"# HELP files_total Files seen\\counted\nper "path".
# TYPE files_total counter
files_total{path="C:\\logs\\\"app\".log\nx"} 1
"#;
        assert_eq!(metrics.render(), expected);
    }

    #[test]
    fn gauge_non_finite_values_use_prometheus_spellings() {
        let metrics = Metrics::new();
        metrics
            .gauge("up", "U.", &[("v", "inf")])
            .set(f64::INFINITY);
        metrics.gauge("up", "U.", &[("v", "nan")]).set(f64::NAN);
        metrics
            .gauge("up", "U.", &[("v", "neg")])
            .set(f64::NEG_INFINITY);
        let expected = "\
# HELP up U.
# TYPE up gauge
up{v=\"inf\"} +Inf
up{v=\"nan\"} NaN
up{v=\"neg\"} -Inf
";
        assert_eq!(metrics.render(), expected);
    }
}
