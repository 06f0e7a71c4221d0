//! Prometheus metrics for long-running pond commands, on the standard library alone.
//!
//! A command such as `pond follow` registers its counters, gauges and histograms once, updates
//! them from its hot paths without locks, and exposes them with `--metrics-addr HOST:PORT` for a
//! Prometheus server (or `curl`) to scrape.
//!
//! # Layout
//! - [`Metrics`] (`registry.rs`): the registry, a cheap-to-clone handle. `counter`, `gauge` and
//!   `histogram` register a series `name{labels}` (or return the one already registered) and hand
//!   back its handle; [`Metrics::render`] writes every series in the text exposition format.
//! - [`Counter`], [`Gauge`], [`Histogram`] (`series.rs`): the handles, each an `Arc` around
//!   atomics shared with the registry. [`Histogram::quantile`] estimates quantiles from the
//!   buckets the way PromQL's `histogram_quantile` does, for run summaries and logs.
//!   [`LATENCY_BUCKETS`] is the default layout for latencies in seconds.
//! - `render.rs` and `text.rs`: the exposition format (version 0.0.4): HELP/TYPE lines, sample
//!   lines, escaping, number spellings, name rules.
//! - [`MetricsServer`] (`server.rs`): [`Metrics::serve`] binds a TCP listener and answers
//!   `GET /metrics` from one background thread until the server value is dropped.
//!
//! # Data flow
//! ```text
//! hot path --inc/set/observe--> atomics <--read-- Metrics::render <-- GET /metrics <-- scraper
//!                                  ^
//! Metrics::counter/gauge/histogram (once, under the registry mutex)
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
mod render;
mod series;
mod server;
mod text;

pub use registry::Metrics;
pub use series::{Counter, Gauge, Histogram, LATENCY_BUCKETS};
pub use server::{MetricsError, MetricsServer};
