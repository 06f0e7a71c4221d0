//! Prometheus metrics for long-running pond commands, on the Prometheus project's Rust client
//! (`prometheus-client`) and hyper.
//!
//! A command such as `pond follow` registers its counters, gauges and histograms once, updates
//! them from its hot paths without locks, and exposes them with `--metrics-addr HOST:PORT` for a
//! Prometheus server (or `curl`) to scrape.
//!
//! # Layout
//! - [`Metrics`] (`registry.rs`): the registry, a cheap-to-clone handle. `counter`, `gauge` and
//!   `histogram` register a series `name{labels}` (or return the one already registered) and hand
//!   back its handle; [`Metrics::render`] has `prometheus-client`'s encoder write every series in
//!   the Prometheus text format (version 0.0.4). The family table that keeps the series in name
//!   and label order is ours (the module says why), plugged into the library as a `Collector`.
//! - [`Counter`], [`Gauge`], [`Histogram`] (`series.rs`): the handles. Counter and gauge are the
//!   library's own; the histogram is a lock-free one of ours, encoded by the library, because
//!   [`Histogram::quantile`] (PromQL's `histogram_quantile`, for run summaries and logs) needs
//!   the bucket counts that the library's histogram keeps to itself.
//!   [`LATENCY_BUCKETS`] is the default layout for latencies in seconds.
//! - [`MetricsServer`] (`server.rs`): [`Metrics::serve`] binds a TCP listener and answers
//!   `GET /metrics` with hyper on a one-thread tokio runtime until the server value is dropped.
//!
//! # Data flow
//! ```text
//! hot path --inc/set/observe--> atomics <--read-- Families (Collector)
//!                                  ^                    ^
//!   Metrics::counter/gauge/histogram                    | prometheus_text::encode
//!   (once, under the family table's mutex)       Metrics::render <-- GET /metrics <-- scraper
//! ```
//!
//! # Example
//! ```
//! use pond_metrics::{LATENCY_BUCKETS, Metrics};
//!
//! # fn main() -> Result<(), pond_metrics::MetricsError> {
//! let metrics = Metrics::new();
//! let lines = metrics.counter("pond_lines_total", "Lines read.", &[("factory", "logs")]);
//! let batch = metrics.histogram("pond_batch_seconds", "Batch latency.", &[], LATENCY_BUCKETS);
//! lines.inc_by(500);
//! batch.observe(0.012);
//! assert!(metrics.render().contains("pond_lines_total{factory=\"logs\"} 500\n"));
//!
//! let server = metrics.serve("127.0.0.1:0".parse().expect("a socket address"))?;
//! let _scrape_here = server.local_addr();
//! drop(server); // stops serving
//! # Ok(())
//! # }
//! ```

mod registry;
mod series;
mod server;

pub use registry::Metrics;
pub use series::{Counter, Gauge, Histogram, LATENCY_BUCKETS};
pub use server::{MetricsError, MetricsServer};
