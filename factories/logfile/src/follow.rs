//! `follow`: mirror host changes as they happen, and feed the downstream stages in-process.
//!
//! # Flow
//! The loop is the framework's ([`pond_factory::follow::Follow`]: pacing by
//! `follow.min_interval`, backoff of failing steps, problems and notes logged when they start
//! and end, periodic maintenance every `follow.compact_interval`); this module gives it the
//! step, the watcher and the metrics.
//!
//! A `notify` watcher on the patterns' base directories (recursive for nested layouts, so a new
//! day directory is watched as soon as it appears) only *wakes* the loop; it never says what
//! changed. Each step runs one [`crate::sync::sync`] (a full scan of the patterns, so a file
//! created in a new directory before its watch existed is found all the same) in a small
//! transaction, whose commit wakes the downstream stages (`mongo`), which run in their own
//! threads: the mirror never waits for them. A reconcile step also runs every
//! `follow.rescan_interval` without any event, and on every `Rescan`/overflow event; with
//! `follow.poll_interval` set there is no watcher at all and the loop polls.
//!
//! A stop request (SIGTERM/SIGINT) ends the loop between steps: the step in progress commits,
//! its stages drain in-flight writes, and the command returns. A reload request (SIGHUP) ends it
//! the same way; the runner then re-reads the configs and starts again.

use crate::config::Settings;
use crate::state::Action;
use crate::sync;
use notify::{EventKind, RecursiveMode, Watcher};
use pond_factory::follow::{Follow, Pacing, StepEvent, Waker, Watch};
use pond_factory::{BoxError, RunOutcome, RunResult, ServiceCtx, WriteCtx};
use pond_metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Counters `follow` keeps for the metrics endpoint and its final summary.
struct FollowMetrics {
    bytes_mirrored: Counter,
    files_changed: Counter,
    new_files: Counter,
    wake_to_commit: Histogram,
    files: Gauge,
    errors: Counter,
}

impl FollowMetrics {
    fn new(metrics: &pond_metrics::Metrics, node: &str) -> Self {
        let labels = [("node", node)];
        Self {
            bytes_mirrored: metrics.counter(
                "pond_logfile_bytes_mirrored_total",
                "Host bytes copied into the pond.",
                &labels,
            ),
            files_changed: metrics.counter(
                "pond_logfile_file_changes_total",
                "Mirrored files that changed in a step (appended, new, rotated, ...).",
                &labels,
            ),
            new_files: metrics.counter(
                "pond_logfile_new_files_total",
                "Host files seen for the first time.",
                &labels,
            ),
            wake_to_commit: metrics.histogram(
                "pond_logfile_wake_to_commit_seconds",
                "From a step's wake-up (after settle) to its commit, the min_interval wait included, stages excluded.",
                &labels,
                LATENCY_BUCKETS,
            ),
            files: metrics.gauge(
                "pond_logfile_files",
                "Files this node mirrors.",
                &labels,
            ),
            errors: metrics.counter(
                "pond_logfile_errors_total",
                "Problems a step reported (an unreadable file, say); each is also logged.",
                &labels,
            ),
        }
    }
}

/// Options of the `follow` command.
pub struct FollowOptions {
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
}

/// The directories to watch and how.
fn watch_roots(source: &Settings) -> Vec<(PathBuf, RecursiveMode)> {
    let mut roots: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    for pattern in std::iter::once(&source.active).chain(source.archived.as_ref()) {
        let mode = if pattern.depth == Some(1) {
            RecursiveMode::NonRecursive
        } else {
            RecursiveMode::Recursive
        };
        match roots.iter_mut().find(|(base, _)| *base == pattern.base) {
            Some((_, existing)) if mode == RecursiveMode::Recursive => *existing = mode,
            Some(_) => {}
            None => roots.push((pattern.base.clone(), mode)),
        }
    }
    roots
}

/// The watcher and what it watches now. A base directory that does not exist yet (the node
/// has not written its first day) is replaced by its nearest existing ancestor, watched alone,
/// until it appears; [`Watches::refresh`] after each step moves the watch to it.
struct Watches {
    watcher: notify::RecommendedWatcher,
    wanted: Vec<(PathBuf, RecursiveMode)>,
    /// What is watched now, per wanted root.
    current: Vec<Option<(PathBuf, RecursiveMode)>>,
    /// The ancestor last announced as watched in place of a missing base, per wanted root.
    announced: Vec<Option<PathBuf>>,
}

impl Watches {
    /// Starts the watcher; events only wake the loop.
    fn start(source: &Settings, wake: Waker) -> Result<Self, BoxError> {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                // Our own reads of host files show up as access events: ignore them, or every
                // step would wake the next.
                Ok(event) => !matches!(event.kind, EventKind::Access(_)) || event.need_rescan(),
                // A watcher error (queue overflow, say): a full scan sorts it out.
                Err(_) => true,
            };
            if relevant {
                wake.wake();
            }
        })
        .map_err(|e| format!("starting the file watcher: {e}"))?;
        let wanted = watch_roots(source);
        let mut watches = Self {
            watcher,
            current: vec![None; wanted.len()],
            announced: vec![None; wanted.len()],
            wanted,
        };
        watches.refresh()?;
        Ok(watches)
    }
}

impl Watch for Watches {
    /// Drops every watch and sets them again.
    fn rewatch(&mut self) -> Result<(), BoxError> {
        for current in &mut self.current {
            if let Some((dir, _)) = current.take() {
                let _ = self.watcher.unwatch(&dir);
            }
        }
        self.refresh()
    }

    /// Points each watch at its base directory, or at the nearest existing ancestor while the
    /// base does not exist.
    fn refresh(&mut self) -> Result<(), BoxError> {
        for (index, (base, mode)) in self.wanted.iter().enumerate() {
            let target = if base.is_dir() {
                Some((base.clone(), *mode))
            } else {
                base.ancestors()
                    .skip(1)
                    .find(|dir| dir.is_dir())
                    .map(|dir| (dir.to_path_buf(), RecursiveMode::NonRecursive))
            };
            if target == self.current[index] {
                continue;
            }
            if let Some((old, _)) = self.current[index].take() {
                // The old directory may be gone already, taking its watch with it.
                let _ = self.watcher.unwatch(&old);
            }
            if let Some((dir, dir_mode)) = &target {
                self.watcher
                    .watch(dir, *dir_mode)
                    .map_err(|e| format!("watching {}: {e}", dir.display()))?;
                if dir != base && self.announced[index].as_ref() != Some(dir) {
                    tracing::info!(
                        "{} does not exist yet: watching {} until it does",
                        base.display(),
                        dir.display()
                    );
                }
                self.announced[index] = (dir != base).then(|| dir.clone());
            }
            self.current[index] = target;
        }
        Ok(())
    }
}

impl FollowMetrics {
    /// Counts what one step did (its files' actions, bytes, problems).
    fn step_done(&self, event: &StepEvent<'_>) {
        match event.result {
            Ok(report) => {
                if let Some(latency) = event.wake_to_commit {
                    self.wake_to_commit.observe(latency.as_secs_f64());
                }
                self.errors.inc_by(report.errors.len() as u64);
            }
            Err(_) => {
                self.errors.inc();
            }
        }
    }

    /// Counts the files of a step's sync report.
    fn synced(&self, report: &sync::SyncReport) {
        for file in report.changed() {
            self.files_changed.inc();
            if file.action == Action::New {
                self.new_files.inc();
            }
        }
        self.files.set(report.files.len() as f64);
        self.bytes_mirrored.inc_by(report.bytes_written);
    }
}

/// The loop's pacing from the config.
fn pacing(settings: &Settings) -> Pacing {
    let follow = &settings.follow;
    Pacing {
        min_interval: follow.min_interval,
        rescan_interval: follow.poll_interval.unwrap_or(follow.rescan_interval),
        settle: follow.settle,
        maintain_every: follow.compact_interval,
    }
}

/// One step: a sync in the step's transaction. Files that changed other than by an append are
/// logged (a rotation, a new file); appends are counted.
fn step(
    ctx: WriteCtx<'_>,
    settings: &Settings,
    metrics: &FollowMetrics,
    bytes: &mut u64,
) -> RunResult {
    let node = ctx.node.path.to_string();
    let report = sync::sync(ctx.pond, ctx.node.id, settings, false)?;
    for file in report.changed() {
        if file.action != Action::Appended {
            tracing::info!(
                node = %node,
                "{} {} ({} bytes, from {})",
                file.action.as_str(),
                file.path,
                file.bytes,
                file.host_path
            );
        }
    }
    metrics.synced(&report);
    *bytes += report.bytes_written;
    Ok(RunOutcome {
        summary: report.summary("follow", &settings.name),
        errors: report.errors,
        notes: report.notes,
        ..RunOutcome::default()
    })
}

/// Runs `follow` until a stop or reload request.
pub fn follow(ctx: ServiceCtx<'_>, settings: &Settings, options: &FollowOptions) -> RunResult {
    let node_path = ctx.node.path.to_string();
    let service = ctx.pond;
    let metrics = FollowMetrics::new(service.metrics(), &node_path);
    let metrics_at = options
        .metrics_addr
        .map(|addr| service.serve_metrics(addr))
        .transpose()?;
    let looper = Follow::new(service, &node_path);
    let mut watches = match settings.follow.poll_interval {
        Some(_) => None,
        None => Some(Watches::start(settings, looper.waker())?),
    };
    let how = match settings.follow.poll_interval {
        Some(every) => format!("polling every {every:?}"),
        None => format!(
            "watching {}",
            watch_roots(settings)
                .iter()
                .map(|(base, _)| base.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    writeln!(
        ctx.out,
        "following {} ({how}){}; stop with SIGTERM or Ctrl-C, reload configs with SIGHUP",
        settings.name,
        metrics_at
            .map(|a| format!("; metrics at http://{a}/metrics"))
            .unwrap_or_default()
    )?;
    ctx.out.flush()?;
    let mut bytes = 0u64;
    let ended = looper.run(
        &pacing(settings),
        watches.as_mut().map(|w| w as &mut dyn Watch),
        &mut |ctx: WriteCtx<'_>| step(ctx, settings, &metrics, &mut bytes),
        &mut |event: StepEvent<'_>| metrics.step_done(&event),
    );
    let why = ended.why.as_str();
    writeln!(
        ctx.out,
        "{why}: {} steps, {} commits, {bytes} bytes mirrored",
        ended.steps, ended.commits
    )?;
    Ok(RunOutcome::summary(format!(
        "logfile follow {}: {why}",
        settings.name
    )))
}
