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
//! failing stage backs off ([`crate::follow::backoff`]: 0.5 s doubling to 30 s, the curve a
//! failing step follows too) in its own thread; the command never waits
//! for it, and it never waits for the command beyond the moment a commit holds the writer lock.

use crate::follow::backoff;
use crate::runner::{Loaded, Plan, RunError, Runner};
use crate::runs::Recorder;
use crate::runs::unix_now;
use crate::service::Work;
use crate::{
    BoxError, Configured, Control, Ctx, Invocation, Prepared, Run, Service, Stage, StageEnv,
    StepReport, StopSignal,
};
use pond_metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Metrics, MetricsServer};
use pond_store::{CompactLimits, Node, PondPath, Snapshot, StoreError};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Work one periodic maintenance pass of a long-running command may do (compaction's raw
/// bytes re-encoded plus stored bytes copied): small, so the command's next step waits little
/// for the writer lock; a pass that has more to do is followed by another after the next step.
const MAINTAIN_PASS_BYTES: u64 = 16 << 20;

/// The invocation of a downstream stage of a long-running command.
const AS_STAGE: Invocation<'static> = Invocation::Downstream {
    json: false,
    dry_run: false,
};

/// How a downstream stage runs.
enum StageKind {
    /// Kept alive for the whole session.
    Live(Box<dyn Stage>),
    /// Prepared and run afresh (with its own downstream chain) each time.
    Fresh,
}

struct StageSlot {
    node: Node,
    configured: Arc<dyn Configured>,
    kind: StageKind,
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

impl StepMetrics {
    fn new(metrics: &Metrics, node: &str) -> Self {
        let labels = [("node", node)];
        Self {
            steps: metrics.counter(
                "pond_steps_total",
                "Steps of a long-running command (one transaction each).",
                &labels,
            ),
            failed: metrics.counter(
                "pond_step_failures_total",
                "Steps whose own work failed (rolled back; retried on the next step).",
                &labels,
            ),
            seconds: metrics.histogram(
                "pond_step_seconds",
                "Duration of a step's own work and commit (stages run beside it).",
                &labels,
                LATENCY_BUCKETS,
            ),
            last_commit: metrics.gauge(
                "pond_last_commit_timestamp_seconds",
                "Unix time of the node's last committed step.",
                &labels,
            ),
        }
    }
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
    configured: Arc<dyn Configured>,
    metrics: Metrics,
    server: &'r mut Option<MetricsServer>,
    step_metrics: StepMetrics,
    record: Option<Recorder>,
    wakeups: Arc<Wakeups>,
}

impl Runner<'_> {
    /// Runs a long-running command (`args` on the node at `path`; `first` when already
    /// prepared) until it returns (a stop request), re-preparing everything on each reload
    /// request.
    pub(crate) fn serve(
        &self,
        path: &PondPath,
        args: &[String],
        mut first: Option<(Loaded, Prepared)>,
        out: &mut dyn std::io::Write,
    ) -> Result<Option<u64>, RunError> {
        let metrics = Metrics::new();
        let mut server = None;
        let command = args.join(" ");
        loop {
            let (loaded, prepared) = match first.take() {
                Some(ready) => ready,
                None => {
                    let loaded = self.load(path)?;
                    let invocation = Invocation::Args {
                        bin_name: &self.bin_name,
                        args,
                    };
                    let prepared =
                        loaded
                            .configured
                            .clone()
                            .prepare(invocation)
                            .map_err(|source| RunError::Prepare {
                                path: path.to_string(),
                                source,
                            })?;
                    (loaded, prepared)
                }
            };
            let upstream_name = prepared.name;
            let stop = StopSignal::new(&self.control);
            let stages = self.start_stages(&loaded, upstream_name, &metrics, &stop)?;
            let label = loaded.node.path.to_string();
            let wakeups = Arc::new(Wakeups::default());
            let mut session = Session {
                runner: self,
                step_metrics: StepMetrics::new(&metrics, &label),
                record: Some(Recorder::start(
                    self.pond.dir(),
                    loaded.node.id,
                    command.clone(),
                )),
                node: loaded.node,
                configured: loaded.configured,
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
                        .name(format!("stage {}", slot.node.path))
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

    /// The downstream nodes of `upstream` as stages, checked whole first (a loop or a node
    /// that cannot be chained is refused before any starts).
    fn start_stages(
        &self,
        upstream: &Loaded,
        upstream_name: &str,
        metrics: &Metrics,
        stop: &StopSignal,
    ) -> Result<Vec<StageSlot>, RunError> {
        let mut plans = Vec::new();
        for target in self.downstream_paths(&upstream.node, upstream.configured.as_ref())? {
            if target == upstream.node.path {
                return Err(RunError::Cycle {
                    path: target.to_string(),
                });
            }
            let loaded = self.load(&target)?;
            plans.push(self.stage_plan(&loaded, &upstream.node.path)?);
        }
        let env = StageEnv {
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        let mut stages: Vec<StageSlot> = Vec::new();
        for plan in plans {
            let kind = match plan.configured.stage(&plan.node, &env) {
                Some(Ok(stage)) => StageKind::Live(stage),
                Some(Err(source)) => {
                    // The stages started so far end their run records.
                    for slot in stages {
                        close_slot(slot);
                    }
                    return Err(RunError::Failed {
                        path: plan.node.path.to_string(),
                        source,
                    });
                }
                None => StageKind::Fresh,
            };
            let label = plan.node.path.to_string();
            let labels = [("stage", label.as_str())];
            stages.push(StageSlot {
                record: Recorder::start(
                    self.pond.dir(),
                    plan.node.id,
                    format!(
                        "{} (as a downstream stage of {upstream_name})",
                        plan.prepared.name
                    ),
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
                node: plan.node,
                configured: plan.configured,
                kind,
                // Whatever accumulated while nothing ran is picked up at once.
                behind: true,
                failures: 0,
                retry_at: Instant::now(),
            });
        }
        Ok(stages)
    }

    /// The plan of the stage `loaded` below `upstream`: its downstream command and its own
    /// downstream chain.
    fn stage_plan(&self, loaded: &Loaded, upstream: &PondPath) -> Result<Plan, RunError> {
        let prepared = loaded
            .configured
            .clone()
            .prepare(AS_STAGE)
            .map_err(|source| RunError::Prepare {
                path: loaded.node.path.to_string(),
                source,
            })?;
        let command = format!("{} (as a downstream stage)", prepared.name);
        self.plan(
            Loaded {
                node: loaded.node.clone(),
                configured: loaded.configured.clone(),
            },
            prepared,
            command,
            &mut vec![upstream.clone(), loaded.node.path.clone()],
        )
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

    /// Runs a live stage once through a committer under its run lock, then its own downstream
    /// nodes afresh. Returns its last transaction and whether it has work left.
    fn run_live(
        &self,
        slot_node: &Node,
        configured: &Arc<dyn Configured>,
        stage: &mut Box<dyn Stage>,
    ) -> Result<(Option<u64>, bool), RunError> {
        let ran = self.run_commits(slot_node, &mut std::io::sink(), |ctx| stage.step(ctx))?;
        let loaded = Loaded {
            node: slot_node.clone(),
            configured: configured.clone(),
        };
        let mut failures = Vec::new();
        for target in self.downstream_paths(slot_node, configured.as_ref())? {
            let chained = self
                .load(&target)
                .and_then(|stage| self.stage_plan(&stage, &loaded.node.path))
                .and_then(|plan| self.run_chain(plan, &mut std::io::sink()).0);
            if let Err(e) = chained {
                failures.push(crate::runner::naming(&target.to_string(), &e));
            }
        }
        if !failures.is_empty() {
            return Err(RunError::Downstream {
                upstream: slot_node.path.to_string(),
                txn: ran.txn,
                failures,
            });
        }
        let txn = crate::runner::partial(slot_node, ran.txn, ran.errors)?;
        Ok((txn, ran.pending))
    }

    /// Runs one stage once (a live stage, or a fresh chain) and notes the outcome.
    fn run_stage_slot(&self, slot: &mut StageSlot) {
        let started = Instant::now();
        slot.runs.inc();
        let result: Result<(Option<u64>, bool), RunError> = match &mut slot.kind {
            StageKind::Fresh => {
                let loaded = Loaded {
                    node: slot.node.clone(),
                    configured: slot.configured.clone(),
                };
                // The stage's upstream is not in its chain's own plan: a loop back to it was
                // refused when the session started.
                self.stage_plan(&loaded, &slot.node.path)
                    .and_then(|plan| self.run_chain(plan, &mut std::io::sink()).0)
                    .map(|txn| (txn, false))
            }
            StageKind::Live(stage) => self.run_live(&slot.node, &slot.configured, stage),
        };
        slot.seconds.observe(started.elapsed().as_secs_f64());
        match result {
            Ok((txn, pending)) => {
                if slot.failures > 0 {
                    tracing::info!(stage = %slot.node.path, "recovered after {} failed run(s)", slot.failures);
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
                    tracing::error!(stage = %slot.node.path, "{e}; retrying in {wait:?}, upstream continues");
                } else {
                    tracing::warn!(stage = %slot.node.path, failures = slot.failures, "{e}; retrying in {wait:?}");
                }
            }
        }
    }
}

fn run_service(
    session: &mut Session<'_, '_>,
    prepared: Prepared,
    out: &mut dyn std::io::Write,
) -> crate::RunResult {
    let node = session.node.clone();
    let Run::LongRunning(run) = prepared.run else {
        return Err(format!("{} is not a long-running command", prepared.name).into());
    };
    run(
        &(),
        Ctx {
            node: &node,
            pond: session,
            out,
        },
    )
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
            .run_in_txn(&self.node, &mut std::io::sink(), work);
        if let Some(record) = &mut self.record {
            match &result {
                Ok(ran) if ran.errors.is_empty() => record.step(None, ran.txn),
                Ok(ran) => record.step(
                    crate::runner::partial(&self.node, ran.txn, ran.errors.clone())
                        .err()
                        .map(|e| e.to_string()),
                    ran.txn,
                ),
                Err(e) => record.step(Some(e.to_string()), None),
            }
        }
        match result {
            Ok(ran) => {
                report.txn = ran.txn;
                report.errors = ran.errors;
                report.notes = ran.notes;
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
                configured: self.configured.as_ref(),
            },
        )?;
        Ok(!pass.done)
    }
}
