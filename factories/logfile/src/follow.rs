//! `follow`: mirror host changes as they happen, and feed the downstream stages in-process.
//!
//! # Flow
//! A `notify` watcher on the patterns' base directories (recursive for nested layouts, so a new
//! day directory is watched as soon as it appears) only *wakes* the loop; it never says what
//! changed. Each wake-up runs one [`crate::sync::sync`] (a full scan of the patterns, so a file
//! created in a new directory before its watch existed is found all the same) in a small
//! transaction through [`Service::step`], whose commit wakes the downstream stages (`mongo`),
//! which run in their own threads: the mirror never waits for them. A reconcile step also runs
//! every `follow.rescan_interval` without any event, and on every `Rescan`/overflow event; with
//! `follow.poll_interval` set there is no watcher at all and the loop polls. Every
//! `follow.compact_interval` the loop starts periodic maintenance ([`Service::maintain`]:
//! compaction of what changed, history folding, removal of retired data, retention), one small
//! pass between two steps until it is done.
//!
//! A stop request (SIGTERM/SIGINT) ends the loop between steps: the step in progress commits,
//! its stages drain in-flight writes, and the command returns. A reload request (SIGHUP) ends it
//! the same way; the runner then re-reads the configs and starts again.

use crate::config::Source;
use crate::state::Action;
use crate::sync;
use notify::{EventKind, RecursiveMode, Watcher};
use pond_factory::{BoxError, RunContext, RunOutcome, Service};
use pond_metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

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

/// Why the loop woke up.
enum Wake {
    /// A change event (or a stop/reload request).
    Event,
    /// A timer: reconcile scan, poll, retry of a stage.
    Timer,
}

/// Options of the `follow` command.
pub struct FollowOptions {
    /// Serve Prometheus metrics here.
    pub metrics_addr: Option<SocketAddr>,
}

/// The directories to watch and how.
fn watch_roots(source: &Source) -> Vec<(PathBuf, RecursiveMode)> {
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
    fn start(source: &Source, wake: SyncSender<()>) -> Result<Self, BoxError> {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let relevant = match &event {
                // Our own reads of host files show up as access events: ignore them, or every
                // step would wake the next.
                Ok(event) => !matches!(event.kind, EventKind::Access(_)) || event.need_rescan(),
                // A watcher error (queue overflow, say): a full scan sorts it out.
                Err(_) => true,
            };
            if relevant {
                // A full channel already holds a wake-up; one is enough.
                let _ = wake.try_send(());
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

/// Waits for a change event or `timeout`, then lets a burst of writes settle.
fn wait(wake: &Receiver<()>, timeout: Duration, settle: Duration) -> Wake {
    match wake.recv_timeout(timeout) {
        Ok(()) => {
            if !settle.is_zero() {
                std::thread::sleep(settle);
            }
            // Everything that arrived meanwhile is covered by the coming scan.
            while let Ok(()) = wake.try_recv() {}
            Wake::Event
        }
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => Wake::Timer,
    }
}

/// Runs `follow` until a stop or reload request.
pub fn follow(
    ctx: &mut RunContext<'_>,
    source: &Source,
    options: &FollowOptions,
) -> Result<RunOutcome, BoxError> {
    let factory_id = ctx.node.id;
    let node_path = ctx.node.path.to_string();
    let service: &mut dyn Service = ctx
        .access
        .service()
        .ok_or("follow runs only as a long-running command")?;
    let metrics = FollowMetrics::new(service.metrics(), &node_path);
    let metrics_at = options
        .metrics_addr
        .map(|addr| service.serve_metrics(addr))
        .transpose()?;
    let control = service.control().clone();
    let (wake_tx, wake_rx) = std::sync::mpsc::sync_channel::<()>(1);
    {
        let wake = wake_tx.clone();
        control.on_request(move || {
            let _ = wake.try_send(());
        });
    }
    let follow = &source.follow;
    let mut watches = match follow.poll_interval {
        Some(_) => None,
        None => Some(Watches::start(source, wake_tx.clone())?),
    };
    drop(wake_tx);
    let how = match follow.poll_interval {
        Some(every) => format!("polling every {every:?}"),
        None => format!(
            "watching {}",
            watch_roots(source)
                .iter()
                .map(|(base, _)| base.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    writeln!(
        ctx.out,
        "following {} ({how}){}; stop with SIGTERM or Ctrl-C, reload configs with SIGHUP",
        source.name,
        metrics_at
            .map(|a| format!("; metrics at http://{a}/metrics"))
            .unwrap_or_default()
    )?;
    ctx.out.flush()?;
    let scan_every = follow.poll_interval.unwrap_or(follow.rescan_interval);
    let mut last_compact = Instant::now();
    // A periodic maintenance pass left work for the next one.
    let mut maintaining = false;
    let mut woke_at = Some(Instant::now());
    let mut steps = 0u64;
    let mut commits = 0u64;
    let mut bytes = 0u64;
    let mut failing = 0u32;
    let mut last_errors: Vec<String> = Vec::new();
    let mut notes: Vec<sync::Note> = Vec::new();
    let mut last_notes: Vec<sync::Note> = Vec::new();
    let mut last_step: Option<Instant> = None;
    loop {
        // Steps start at most every `min_interval`; a stop request cuts the wait short.
        if let Some(at) = last_step {
            let due = at + follow.min_interval;
            while !control.stopping() && !control.reload_requested() {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                // Wake-ups that arrive now are covered by the coming step's scan.
                let _ = wake_rx.recv_timeout(due - now);
            }
        }
        if control.stopping() || control.reload_requested() {
            break;
        }
        last_step = Some(Instant::now());
        let step = service.step(&mut |ctx: &mut RunContext<'_>| {
            let txn = ctx
                .access
                .txn()
                .ok_or("a follow step needs the write transaction")?;
            let report = sync::sync(txn, factory_id, source, false)?;
            notes.clone_from(&report.notes);
            let mut counts = std::collections::BTreeMap::new();
            for file in &report.files {
                if file.action == Action::Unchanged {
                    continue;
                }
                metrics.files_changed.inc();
                if file.action == Action::New {
                    metrics.new_files.inc();
                }
                if !matches!(file.action, Action::Appended) {
                    tracing::info!(
                        node = %node_path,
                        "{} {} ({} bytes, from {})",
                        file.action.as_str(),
                        file.path,
                        file.bytes,
                        file.host_path
                    );
                }
                *counts.entry(file.action.as_str()).or_insert(0u64) += 1;
            }
            metrics.files.set(report.files.len() as f64);
            metrics.bytes_mirrored.inc_by(report.bytes_written);
            bytes += report.bytes_written;
            let counts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
            Ok(RunOutcome {
                summary: format!("logfile follow {}: {}", source.name, counts.join(", ")),
                discard: false,
                errors: report.errors,
                pending: false,
            })
        });
        steps += 1;
        // A note (patterns that match nothing, a base directory not there yet) is said when it
        // starts, not at every step.
        if notes != last_notes {
            for note in notes.iter().filter(|n| !last_notes.contains(n)) {
                note.log(&node_path);
            }
            last_notes.clone_from(&notes);
        }
        match step {
            Ok(report) => {
                if let Some(committed) = report.committed_at {
                    commits += 1;
                    if let Some(at) = woke_at {
                        metrics
                            .wake_to_commit
                            .observe(committed.saturating_duration_since(at).as_secs_f64());
                    }
                }
                metrics.errors.inc_by(report.errors.len() as u64);
                // An unreadable file fails every step: say so when it starts and when it ends,
                // not ten times a second.
                if report.errors != last_errors {
                    for error in &report.errors {
                        tracing::error!(node = %node_path, "{error}");
                    }
                    if report.errors.is_empty() && !last_errors.is_empty() {
                        tracing::info!(node = %node_path, "the problems above are gone");
                    }
                    last_errors = report.errors;
                }
                if failing > 0 {
                    tracing::info!(node = %node_path, "steps succeed again after {failing} failure(s)");
                }
                failing = 0;
            }
            Err(e) => {
                failing += 1;
                metrics.errors.inc();
                if failing == 1 {
                    tracing::error!(node = %node_path, "step failed: {e}; retrying");
                } else {
                    tracing::warn!(node = %node_path, failures = failing, "step failed: {e}");
                }
            }
        }
        if let Some(watches) = &mut watches
            && let Err(e) = watches.refresh()
        {
            tracing::warn!(node = %node_path, "{e}; the reconcile scan covers it meanwhile");
        }
        if let Some(every) = follow.compact_interval
            && !control.stopping()
            && (maintaining || last_compact.elapsed() >= every)
        {
            if !maintaining {
                last_compact = Instant::now();
            }
            maintaining = match service.maintain() {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(node = %node_path, "periodic maintenance: {e}; retried at the next interval");
                    false
                }
            };
        }
        if maintaining && failing == 0 {
            // The next pass follows the next step (paced by `min_interval`), not a wait.
            woke_at = wake_rx.try_recv().ok().map(|()| Instant::now());
            continue;
        }
        // Failing steps back off; otherwise the next scan is due after `scan_every`.
        let timeout = if failing > 0 {
            Duration::from_millis(500)
                .saturating_mul(1 << failing.min(6))
                .min(Duration::from_secs(30))
        } else {
            scan_every
        };
        woke_at = match wake_rx.try_recv() {
            // Changes arrived during the step: go again at once.
            Ok(()) => Some(Instant::now()),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                match wait(&wake_rx, timeout, follow.settle) {
                    Wake::Event => Some(Instant::now()),
                    Wake::Timer => {
                        // A directory removed and made again (or remounted) under the same
                        // path lost its watch with the old inode: set the watches anew at
                        // each reconcile; the scan that follows covers the moment between.
                        if let Some(watches) = &mut watches
                            && let Err(e) = watches.rewatch()
                        {
                            tracing::warn!(node = %node_path, "{e}; the reconcile scan covers it meanwhile");
                        }
                        None
                    }
                }
            }
        };
    }
    control.clear_wakers();
    let why = if control.stopping() {
        "stopped"
    } else {
        "reloading"
    };
    writeln!(
        ctx.out,
        "{why}: {} steps, {commits} commits, {bytes} bytes mirrored",
        steps
    )?;
    Ok(RunOutcome {
        summary: format!("logfile follow {}: {why}", source.name),
        ..RunOutcome::default()
    })
}
