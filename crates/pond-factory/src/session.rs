//! The runner's side of long-running commands: [`Runner::serve`] and the [`Service`] it hands
//! the command.
//!
//! `serve` prepares the command and its downstream stages, starts one thread per stage, runs the
//! command in the calling thread (it loops, calling [`Service::step`]), and on a reload request
//! (SIGHUP) ends the stages, re-reads every config from the pond and starts again; the metrics
//! registry and its HTTP server survive reloads.
//!
//! Each step is the command's work in one transaction; its commit wakes the stage threads. A
//! stage thread runs its stage when woken (or when it has work left), each run reading from a
//! snapshot and committing its own small transactions, under the stage node's run lock. A
//! failing stage backs off (0.5 s doubling to 30 s) in its own thread; the command never waits
//! for it, and it never waits for the command beyond the moment a commit holds the writer lock.

use crate::runner::{RunError, Runner};
use crate::runs::Recorder;
use crate::runs::unix_now;
use crate::service::Work;
use crate::{
    Access, BoxError, Control, Invocation, Prepared, RunContext, Service, Stage, StageEnv,
    StepReport, StopSignal,
};
use pond_metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Metrics, MetricsServer};
use pond_store::{CompactLimits, Node, PondPath, Snapshot, StoreError};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// First wait before retrying a failed stage; it doubles per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Work one periodic maintenance pass of a long-running command may do (compaction's raw
/// bytes re-encoded plus stored bytes copied): small, so the command's next step waits little
/// for the writer lock; a pass that has more to do is followed by another after the next step.
const MAINTAIN_PASS_BYTES: u64 = 16 << 20;

/// How a downstream stage runs.
enum StageKind {
    /// Kept alive for the whole session.
    Live(Box<dyn Stage>),
    /// Prepared and run afresh (with its own downstream chain) each time.
    Fresh,
}

struct StageSlot {
    path: PondPath,
    node: Node,
    kind: StageKind,
    /// The live stage's own downstream nodes (run afresh after it commits).
    downstream: Vec<String>,
    /// A failed or interrupted run left work for later.
    behind: bool,
    failures: u32,
    retry_at: Instant,
    runs: Counter,
    failed: Counter,
    seconds: Histogram,
    behind_gauge: Gauge,
    record: Recorder,
}

struct StepMetrics {
    steps: Counter,
    failed: Counter,
    seconds: Histogram,
    last_commit: Gauge,
}

/// Wakes the stage threads: a count of upstream commits, and the end of the session.
#[derive(Default)]
struct Wakeups {
    state: Mutex<WakeState>,
    changed: Condvar,
}

#[derive(Default)]
struct WakeState {
    commits: u64,
    over: bool,
}

impl Wakeups {
    fn lock(&self) -> std::sync::MutexGuard<'_, WakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn commit(&self) {
        self.lock().commits += 1;
        self.changed.notify_all();
    }

    fn end(&self) {
        self.lock().over = true;
        self.changed.notify_all();
    }
}

/// The [`Service`] of one run of a long-running command.
struct Session<'r, 'a> {
    runner: &'r Runner<'a>,
    node: Node,
    factory: &'static dyn crate::Factory,
    config: String,
    metrics: Metrics,
    server: &'r mut Option<MetricsServer>,
    step_metrics: StepMetrics,
    record: Option<Recorder>,
    wakeups: Arc<Wakeups>,
}

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

impl Runner<'_> {
    /// Runs a long-running command until it returns (a stop request), re-preparing everything
    /// on each reload request.
    pub(crate) fn serve(
        &self,
        path: &PondPath,
        invocation: Invocation<'_>,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>, RunError> {
        let metrics = Metrics::new();
        let mut server = None;
        loop {
            let (node, prepared) = self.prepare(path, invocation)?;
            let (factory, config) = self.stored_config(path)?;
            let downstream = prepared.downstream();
            self.check_chain(path, &downstream, &mut vec![path.clone()])?;
            let stop = StopSignal::new(&self.control);
            let stages = self.start_stages(&downstream, &metrics, &stop)?;
            let label = node.path.to_string();
            let wakeups = Arc::new(Wakeups::default());
            let mut session = Session {
                runner: self,
                step_metrics: StepMetrics {
                    steps: metrics.counter(
                        "pond_steps_total",
                        "Steps of a long-running command (one transaction each).",
                        &[("node", &label)],
                    ),
                    failed: metrics.counter(
                        "pond_step_failures_total",
                        "Steps whose own work failed (rolled back; retried on the next step).",
                        &[("node", &label)],
                    ),
                    seconds: metrics.histogram(
                        "pond_step_seconds",
                        "Duration of a step's own work and commit (stages run beside it).",
                        &[("node", &label)],
                        LATENCY_BUCKETS,
                    ),
                    last_commit: metrics.gauge(
                        "pond_last_commit_timestamp_seconds",
                        "Unix time of the node's last committed step.",
                        &[("node", &label)],
                    ),
                },
                record: Some(Recorder::start(
                    self.pond.dir(),
                    node.id,
                    crate::runner::describe(invocation),
                )),
                node,
                factory,
                config,
                metrics: metrics.clone(),
                server: &mut server,
                wakeups: wakeups.clone(),
            };
            tracing::info!(node = %path, stages = stages.len(), "following");
            let result = std::thread::scope(|scope| {
                let mut threads = Vec::new();
                for slot in stages {
                    let (wakeups, stop) = (wakeups.clone(), stop.clone());
                    let spawned = std::thread::Builder::new()
                        .name(format!("stage {}", slot.path))
                        .spawn_scoped(scope, move || self.stage_thread(slot, &wakeups, &stop));
                    match spawned {
                        Ok(handle) => threads.push(handle),
                        Err(e) => tracing::error!("starting a stage thread: {e}"),
                    }
                }
                let result = run_service(&mut session, prepared, out);
                if let Some(record) = session.record.take() {
                    record.finish(result.as_ref().err().map(|e| e.to_string()));
                }
                // The stages stop reading, let what is in flight be acknowledged, commit it and
                // end; the scope waits for them.
                stop.end_session();
                wakeups.end();
                for thread in threads {
                    if thread.join().is_err() {
                        tracing::error!("a stage thread panicked");
                    }
                }
                result
            });
            let node = session.node.clone();
            let outcome = result.map_err(|source| RunError::Failed {
                path: path.to_string(),
                source,
            })?;
            if self.control.take_reload() && !self.control.stopping() {
                tracing::info!(node = %path, "reloading configs");
                continue;
            }
            return crate::runner::partial(&node, None, outcome.errors);
        }
    }

    fn start_stages(
        &self,
        downstream: &[String],
        metrics: &Metrics,
        stop: &StopSignal,
    ) -> Result<Vec<StageSlot>, RunError> {
        let env = StageEnv {
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        let mut stages = Vec::new();
        for target in downstream {
            let prepared = PondPath::parse(target)
                .map_err(RunError::from)
                .and_then(|target| {
                    let invocation = Invocation::Downstream {
                        json: false,
                        dry_run: false,
                    };
                    Ok((target.clone(), self.prepare(&target, invocation)?))
                });
            let (target, (node, prepared)) = match prepared {
                Ok(found) => found,
                Err(e) => {
                    // The stages started so far end their run records.
                    for slot in stages {
                        close_slot(slot);
                    }
                    return Err(e);
                }
            };
            let own_downstream = prepared.downstream();
            let kind = match prepared.into_stage(&node, &env) {
                Some(Ok(stage)) => StageKind::Live(stage),
                Some(Err(source)) => {
                    for slot in stages {
                        close_slot(slot);
                    }
                    return Err(RunError::Failed {
                        path: target.to_string(),
                        source,
                    });
                }
                None => StageKind::Fresh,
            };
            let label = target.to_string();
            let labels = [("stage", label.as_str())];
            stages.push(StageSlot {
                record: Recorder::start(
                    self.pond.dir(),
                    node.id,
                    "sync (as a downstream stage of follow)".to_string(),
                ),
                runs: metrics.counter("pond_stage_runs_total", "Downstream stage runs.", &labels),
                failed: metrics.counter(
                    "pond_stage_failures_total",
                    "Downstream stage runs that failed (retried with backoff).",
                    &labels,
                ),
                seconds: metrics.histogram(
                    "pond_stage_seconds",
                    "Duration of one downstream stage run, its commits included.",
                    &labels,
                    LATENCY_BUCKETS,
                ),
                behind_gauge: metrics.gauge(
                    "pond_stage_behind",
                    "1 while a stage has work left from a failed or interrupted run.",
                    &labels,
                ),
                path: target,
                node,
                kind,
                downstream: own_downstream,
                // Whatever accumulated while nothing ran is picked up at once.
                behind: true,
                failures: 0,
                retry_at: Instant::now(),
            });
        }
        Ok(stages)
    }

    /// A stage's thread: runs the stage after each upstream commit and while it has work left,
    /// waits out its backoff after a failure, and ends with the session.
    fn stage_thread(&self, mut slot: StageSlot, wakeups: &Wakeups, stop: &StopSignal) {
        let mut seen = 0u64;
        loop {
            {
                let mut state = wakeups.lock();
                loop {
                    if state.over || stop.requested() {
                        drop(state);
                        close_slot(slot);
                        return;
                    }
                    let now = Instant::now();
                    let wanted = state.commits > seen || slot.behind;
                    if wanted && now >= slot.retry_at {
                        seen = state.commits;
                        break;
                    }
                    let wait = if wanted {
                        slot.retry_at - now
                    } else {
                        Duration::from_secs(3600)
                    };
                    state = wakeups
                        .changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            self.run_stage_slot(&mut slot);
        }
    }

    /// Runs one stage once (a live stage through a committer under its run lock, or a fresh
    /// chain) and notes the outcome.
    fn run_stage_slot(&self, slot: &mut StageSlot) {
        let started = Instant::now();
        slot.runs.inc();
        let mut pending = false;
        let invocation = Invocation::Downstream {
            json: false,
            dry_run: false,
        };
        let result: Result<Option<u64>, RunError> = match &mut slot.kind {
            StageKind::Fresh => self.run_chain(
                &slot.path,
                invocation,
                &mut std::io::sink(),
                &mut vec![slot.path.clone()],
            ),
            StageKind::Live(stage) => {
                let committed = self.run_commits(&slot.node, &mut std::io::sink(), |ctx| {
                    let outcome = stage.step(ctx)?;
                    pending = outcome.pending;
                    Ok(outcome)
                });
                match committed {
                    Ok(txn) => {
                        let mut failures = Vec::new();
                        for target in &slot.downstream {
                            let chained = PondPath::parse(target).map_err(RunError::from).and_then(
                                |target| {
                                    self.run_chain(
                                        &target,
                                        invocation,
                                        &mut std::io::sink(),
                                        &mut vec![slot.path.clone(), target.clone()],
                                    )
                                },
                            );
                            if let Err(e) = chained {
                                failures.push(crate::runner::naming(target, &e));
                            }
                        }
                        if failures.is_empty() {
                            Ok(txn)
                        } else {
                            Err(RunError::Downstream {
                                upstream: slot.path.to_string(),
                                txn,
                                failures,
                            })
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        };
        slot.seconds.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(txn) => {
                if slot.failures > 0 {
                    tracing::info!(stage = %slot.path, "recovered after {} failed run(s)", slot.failures);
                }
                // A stage that stopped at its budget goes on at once.
                slot.behind = pending;
                slot.retry_at = Instant::now();
                slot.failures = 0;
                slot.behind_gauge.set(if pending { 1.0 } else { 0.0 });
                slot.record.step(None, txn);
            }
            Err(e) => {
                slot.failed.inc();
                slot.behind = true;
                slot.failures += 1;
                let wait = backoff(slot.failures);
                slot.retry_at = Instant::now() + wait;
                slot.behind_gauge.set(1.0);
                slot.record.step(Some(e.to_string()), None);
                // The first failure is an error; repeats of an ongoing outage are warnings.
                if slot.failures == 1 {
                    tracing::error!(stage = %slot.path, "{e}; retrying in {wait:?}, upstream continues");
                } else {
                    tracing::warn!(stage = %slot.path, failures = slot.failures, "{e}; retrying in {wait:?}");
                }
            }
        }
    }
}

fn run_service(
    session: &mut Session<'_, '_>,
    prepared: Box<dyn Prepared>,
    out: &mut dyn std::io::Write,
) -> Result<crate::RunOutcome, BoxError> {
    let node = session.node.clone();
    let mut ctx = RunContext {
        node: &node,
        access: Access::Service(session),
        out,
    };
    prepared.run(&mut ctx)
}

fn close_slot(slot: StageSlot) {
    slot.record.finish(None);
    if let StageKind::Live(stage) = slot.kind {
        stage.close();
    }
}

impl Service for Session<'_, '_> {
    fn step(&mut self, work: &mut Work<'_>) -> Result<StepReport, BoxError> {
        let started = Instant::now();
        self.step_metrics.steps.inc();
        let mut report = StepReport::default();
        let result = self
            .runner
            .run_in_txn(&self.node, &mut std::io::sink(), |ctx| work(ctx));
        if let Some(record) = &mut self.record {
            match &result {
                Ok(txn) => record.step(None, *txn),
                Err(e) => record.step(
                    Some(e.to_string()),
                    match e {
                        RunError::Partial { txn, .. } => *txn,
                        _ => None,
                    },
                ),
            }
        }
        match result {
            Ok(txn) => report.txn = txn,
            Err(RunError::Partial { txn, errors, .. }) => {
                report.txn = txn;
                report.errors = errors;
            }
            Err(e) => {
                self.step_metrics.failed.inc();
                self.step_metrics
                    .seconds
                    .observe(started.elapsed().as_secs_f64());
                return Err(Box::new(e));
            }
        }
        self.step_metrics
            .seconds
            .observe(started.elapsed().as_secs_f64());
        if report.txn.is_some() {
            report.committed_at = Some(Instant::now());
            self.step_metrics.last_commit.set(unix_now());
            self.wakeups.commit();
        }
        Ok(report)
    }

    fn control(&self) -> &Control {
        &self.runner.control
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn serve_metrics(&mut self, addr: SocketAddr) -> Result<SocketAddr, BoxError> {
        if let Some(server) = self.server.as_ref() {
            return Ok(server.local_addr());
        }
        let server = self.metrics.serve(addr)?;
        let bound = server.local_addr();
        tracing::info!("metrics at http://{bound}/metrics");
        *self.server = Some(server);
        Ok(bound)
    }

    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.runner.pond.snapshot()
    }

    fn maintain(&mut self) -> Result<bool, BoxError> {
        let limits = CompactLimits {
            max_bytes: MAINTAIN_PASS_BYTES,
            ..CompactLimits::default()
        };
        let pass = self.runner.maintain_pass(
            &limits,
            crate::maintain::MaintainScope::Node {
                node: &self.node,
                factory: self.factory,
                config: &self.config,
            },
        )?;
        Ok(!pass.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Retries of a failing stage wait 0.5 s, then twice as long each time, never over 30 s.
    #[test]
    fn stage_backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
