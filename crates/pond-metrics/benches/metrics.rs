//! What the metrics cost `follow`: hot-path updates, rendering, a scrape over loopback.
//!
//! `cargo bench -p pond-metrics --bench metrics` (docs/benchmarks.md, section "Metrics library").
//!
//! Uses the public API alone (but for the comparison rows), so it measures any implementation of
//! it:
//! - `counter inc`, `gauge set`, `histogram observe`: ns per update of one series on this
//!   thread, best of ROUNDS rounds (default 5) of UPDATES updates (default 10,000,000); the
//!   histogram has [`LATENCY_BUCKETS`] and its values cycle through every bucket;
//! - `histogram observe, 2 threads`: the same histogram updated from two threads at once (ns
//!   per update, wall time over both threads' updates);
//! - for comparison, the same two rows for `prometheus_client`'s own `Histogram`, which pond
//!   does not use (see `src/series.rs`);
//! - `quantile`: one `Histogram::quantile(0.99)` on that histogram;
//! - `render`: `Metrics::render` of the registry of a `follow` with one logfile node and two
//!   mongo stages (36 series, 8 of them histograms; every series updated), µs per render;
//! - `scrape`: `GET /metrics` on a new loopback connection, answered by `Metrics::serve`, up to
//!   the end of the response: p50 and p99 of SCRAPES requests (default 2,000), µs.
//!
//! Nothing is asserted; the numbers go to stdout.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use pond_metrics::{LATENCY_BUCKETS, Metrics};
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best (lowest) ns per operation over `rounds` runs of `ops` operations.
fn best_ns_per_op(rounds: u64, ops: u64, mut run: impl FnMut(u64)) -> f64 {
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            run(ops);
            started.elapsed().as_nanos() as f64 / ops as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// The series `pond run NODE follow` registers for one logfile node and `stages` mongo stages.
fn follow_registry(stages: usize) -> Metrics {
    let metrics = Metrics::new();
    let node = [("node", "/etc/hl")];
    metrics
        .counter("pond_steps_total", "Steps.", &node)
        .inc_by(81_234);
    metrics
        .counter("pond_step_failures_total", "Failed steps.", &node)
        .inc_by(3);
    metrics
        .gauge("pond_last_commit_timestamp_seconds", "Last commit.", &node)
        .set(1_795_248_188.48);
    for (name, value) in [
        ("pond_logfile_bytes_mirrored_total", 93_214_876_512),
        ("pond_logfile_file_changes_total", 81_001),
        ("pond_logfile_new_files_total", 412),
        ("pond_logfile_errors_total", 0),
    ] {
        metrics
            .counter(name, "A logfile count.", &node)
            .inc_by(value);
    }
    metrics
        .gauge("pond_logfile_files", "Files.", &node)
        .set(48.0);
    for name in ["pond_step_seconds", "pond_logfile_wake_to_commit_seconds"] {
        fill(&metrics.histogram(name, "A node latency.", &node, LATENCY_BUCKETS));
    }
    for stage in 0..stages {
        let path = format!("/etc/trades-mongo-{stage}");
        let labels = [("stage", path.as_str())];
        for (name, value) in [
            ("pond_stage_runs_total", 80_992),
            ("pond_stage_failures_total", 7),
            ("pond_mongo_lines_read_total", 812_345_678),
            ("pond_mongo_retries_total", 12),
        ] {
            metrics
                .counter(name, "A stage count.", &labels)
                .inc_by(value);
        }
        for (outcome, value) in [
            ("inserted", 812_345_000),
            ("duplicate", 678),
            ("dead_lettered", 0),
        ] {
            metrics
                .counter(
                    "pond_mongo_documents_total",
                    "Documents.",
                    &[("stage", path.as_str()), ("outcome", outcome)],
                )
                .inc_by(value);
        }
        metrics
            .gauge("pond_stage_behind", "Behind.", &labels)
            .set(0.0);
        metrics
            .gauge("pond_mongo_lag_bytes", "Lag bytes.", &labels)
            .set(1_532.0);
        metrics
            .gauge("pond_mongo_lag_seconds", "Lag seconds.", &labels)
            .set(0.118);
        for name in [
            "pond_stage_seconds",
            "pond_mongo_batch_seconds",
            "pond_mongo_entry_to_ack_seconds",
        ] {
            fill(&metrics.histogram(name, "A stage latency.", &labels, LATENCY_BUCKETS));
        }
    }
    metrics
}

/// Observations over every bucket, so that every bucket line has a count.
fn fill(histogram: &pond_metrics::Histogram) {
    for i in 0..10_000_u32 {
        histogram.observe(observed(i));
    }
}

/// Values from 0.5 ms to 81.92 s, landing in every latency bucket in turn.
fn observed(i: u32) -> f64 {
    0.0005 * f64::from(1_u32 << (i % 18))
}

/// Wall time of one `GET /metrics` on a new connection, response read to its end.
fn scrape(addr: SocketAddr, response: &mut Vec<u8>) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .unwrap();
    response.clear();
    stream.read_to_end(response).unwrap();
    started.elapsed()
}

fn main() {
    let rounds = env("ROUNDS", 5);
    let updates = env("UPDATES", 10_000_000);
    let scrapes = env("SCRAPES", 2_000);
    let metrics = Metrics::new();

    println!("| what | cost |");
    println!("| --- | --- |");
    let counter = metrics.counter("bench_total", "Bench.", &[("k", "v")]);
    let ns = best_ns_per_op(rounds, updates, |ops| {
        for _ in 0..ops {
            black_box(&counter).inc();
        }
    });
    println!("| counter inc | {ns:.2} ns |");

    let gauge = metrics.gauge("bench_gauge", "Bench.", &[("k", "v")]);
    let ns = best_ns_per_op(rounds, updates, |ops| {
        for i in 0..ops {
            black_box(&gauge).set(i as f64);
        }
    });
    println!("| gauge set | {ns:.2} ns |");

    let histogram = metrics.histogram("bench_seconds", "Bench.", &[], LATENCY_BUCKETS);
    let values: Vec<f64> = (0..18).map(observed).collect();
    let ns = best_ns_per_op(rounds, updates, |ops| {
        for i in 0..ops {
            black_box(&histogram).observe(values[(i % 18) as usize]);
        }
    });
    println!("| histogram observe | {ns:.2} ns |");

    let ns = best_ns_per_op(rounds, updates, |ops| {
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for i in 0..ops / 2 {
                        black_box(&histogram).observe(values[(i % 18) as usize]);
                    }
                });
            }
        });
    });
    println!("| histogram observe, 2 threads | {ns:.2} ns |");

    // BEGIN library comparison (not in the API; removed to build this file against 20c0953).
    // The library's own histogram, which pond does not use (see src/series.rs): the same work.
    let library = prometheus_client::metrics::histogram::Histogram::new(LATENCY_BUCKETS.to_vec());
    let ns = best_ns_per_op(rounds, updates, |ops| {
        for i in 0..ops {
            black_box(&library).observe(values[(i % 18) as usize]);
        }
    });
    println!("| for comparison: prometheus-client `Histogram` observe | {ns:.2} ns |");
    let ns = best_ns_per_op(rounds, updates, |ops| {
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for i in 0..ops / 2 {
                        black_box(&library).observe(values[(i % 18) as usize]);
                    }
                });
            }
        });
    });
    println!("| for comparison: the same, 2 threads | {ns:.2} ns |");
    // END library comparison

    let ns = best_ns_per_op(rounds, 100_000, |ops| {
        for _ in 0..ops {
            black_box(black_box(&histogram).quantile(0.99));
        }
    });
    println!("| quantile | {ns:.1} ns |");

    let follow = follow_registry(2);
    let text = follow.render();
    let series = text.lines().filter(|l| l.starts_with("# TYPE")).count();
    let ns = best_ns_per_op(rounds, 2_000, |ops| {
        for _ in 0..ops {
            black_box(follow.render());
        }
    });
    println!(
        "| render ({series} families, {} lines, {} bytes) | {:.1} µs |",
        text.lines().count(),
        text.len(),
        ns / 1000.0
    );

    let server = follow.serve("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr();
    let mut response = Vec::new();
    for _ in 0..100 {
        scrape(addr, &mut response);
    }
    let mut times: Vec<Duration> = (0..scrapes).map(|_| scrape(addr, &mut response)).collect();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    println!(
        "| scrape ({} bytes) p50 / p99 | {:.0} / {:.0} µs |",
        response.len(),
        at(0.5),
        at(0.99)
    );
}
