//! The `mongo` stage of a long-running upstream (`logfile follow`): one runtime and one client
//! for the whole run, one sync per upstream step.
//!
//! The stage runs in a thread of its own, after each upstream commit. Each run is a
//! [`Pipeline::sync`]: it reads from a snapshot and commits its cursors in a short transaction,
//! so the mirror waits for MongoDB at no point. Retries inside a run stop after
//! [`STEP_RETRY_DEADLINE`] (or the config's shorter `retry_deadline_secs`): the run then fails,
//! its acknowledged prefix is committed, and the stage is retried with backoff while the
//! upstream keeps mirroring. Nothing is lost meanwhile: the lines wait in the pond. On a stop
//! request (or a reload) the stage stops reading, gives in-flight batches [`SHUTDOWN_GRACE`],
//! and commits the cursors of what was acknowledged.

use crate::config::Settings;
use crate::sink::Stats;
use crate::sync::{Counts, Observer, Pipeline, RunOptions, SyncError};
use pond_factory::{CommitCtx, RunOutcome, RunResult, Stage, StageEnv, StopSignal};
use pond_metrics::{Counter, Gauge, LATENCY_BUCKETS};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long one step keeps retrying a failing write before it gives the upstream its turn.
pub const STEP_RETRY_DEADLINE: Duration = Duration::from_secs(2);
/// Source bytes one run reads at most, and for how long it goes on reading; a long catch-up
/// (after an outage, or a first run over a big history) goes on in the next runs, each
/// committing its cursors.
pub const STEP_BUDGET: u64 = 16 << 20;
pub const STEP_READ_TIME: Duration = Duration::from_secs(1);
/// How long a stop waits for in-flight batches.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A `mongo` node kept alive across steps.
pub struct MongoStage {
    settings: Settings,
    /// Opened by the first step (so a destination that is down at start is retried like any
    /// other failure), then kept.
    pipeline: Option<Pipeline>,
    stop: StopSignal,
    observer: Observer,
    inserted: Counter,
    duplicates: Counter,
    dead_lettered: Counter,
    retries: Counter,
    lag_bytes: Gauge,
    lag_seconds: Gauge,
}

impl MongoStage {
    /// The stage of the node at `node_path`.
    pub fn new(settings: &Settings, node_path: &str, env: &StageEnv) -> Self {
        let mut settings = settings.clone();
        settings.retry_deadline = settings.retry_deadline.min(STEP_RETRY_DEADLINE);
        let metrics = &env.metrics;
        let labels = [("stage", node_path)];
        let documents = |outcome: &str| {
            metrics.counter(
                "pond_mongo_documents_total",
                "Documents by outcome: inserted, duplicate (already stored), dead_lettered.",
                &[("stage", node_path), ("outcome", outcome)],
            )
        };
        Self {
            observer: Observer {
                batch_seconds: metrics.histogram(
                    "pond_mongo_batch_seconds",
                    "Time to get one batch acknowledged by MongoDB, retries included.",
                    &labels,
                    LATENCY_BUCKETS,
                ),
                entry_to_ack_seconds: metrics.histogram(
                    "pond_mongo_entry_to_ack_seconds",
                    "From an entry's own timestamp to MongoDB's acknowledgement of its document.",
                    &labels,
                    LATENCY_BUCKETS,
                ),
                lines_read: metrics.counter(
                    "pond_mongo_lines_read_total",
                    "Complete lines read from the pond.",
                    &labels,
                ),
                newest_acked_ms: std::sync::atomic::AtomicI64::new(i64::MIN),
            },
            inserted: documents("inserted"),
            duplicates: documents("duplicate"),
            dead_lettered: documents("dead_lettered"),
            retries: metrics.counter(
                "pond_mongo_retries_total",
                "Write attempts retried after a transient error.",
                &labels,
            ),
            lag_bytes: metrics.gauge(
                "pond_mongo_lag_bytes",
                "Bytes of the source files not yet stored (size minus cursor, summed).",
                &labels,
            ),
            lag_seconds: metrics.gauge(
                "pond_mongo_lag_seconds",
                "While behind: age of the newest stored entry; 0 when caught up.",
                &labels,
            ),
            settings,
            pipeline: None,
            stop: env.stop.clone(),
        }
    }
}

impl Stage for MongoStage {
    fn step(&mut self, ctx: CommitCtx<'_>) -> RunResult {
        let node = ctx.node;
        let committer = ctx.pond;
        let stats = Arc::new(Stats::default());
        let stop = self.stop.clone();
        let pipeline = match &mut self.pipeline {
            Some(pipeline) => Ok(&*pipeline),
            slot => Pipeline::open(&self.settings, false, &stats).map(|p| &*slot.insert(p)),
        };
        let report = pipeline.and_then(|pipeline| {
            pipeline.sync(
                committer,
                node,
                &stats,
                &RunOptions {
                    stop: &|| stop.requested(),
                    grace: SHUTDOWN_GRACE,
                    budget: Some(crate::sync::Budget {
                        bytes: STEP_BUDGET,
                        deadline: std::time::Instant::now() + STEP_READ_TIME,
                    }),
                    observer: Some(&self.observer),
                },
            )
        });
        let counts = Counts::of(&stats);
        self.inserted.inc_by(counts.inserted);
        self.duplicates.inc_by(counts.duplicates);
        self.dead_lettered.inc_by(counts.dead_lettered);
        self.retries.inc_by(stats.retries.load(Ordering::Relaxed));
        let report = match report {
            Ok(report) => report,
            Err(e) => {
                // An outage shows as lag (a successful run computes it from its report).
                if let Ok(behind) = committer
                    .snapshot()
                    .map_err(SyncError::from)
                    .and_then(|view| crate::sync::lag(&view, node, &self.settings))
                {
                    self.lag_bytes.set(behind as f64);
                }
                return Err(e.into());
            }
        };
        let behind = report.behind();
        self.lag_bytes.set(behind as f64);
        let newest = self.observer.newest_acked_ms.load(Ordering::Relaxed);
        let lag = if behind == 0 || newest == i64::MIN {
            0.0
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            (now - newest as f64 / 1000.0).max(0.0)
        };
        self.lag_seconds.set(lag);
        Ok(RunOutcome {
            summary: report.summary(&self.settings),
            errors: report.errors,
            pending: report.more,
            ..RunOutcome::default()
        })
    }

    fn close(self: Box<Self>) {
        if let Some(pipeline) = self.pipeline {
            pipeline.close();
        }
    }
}
