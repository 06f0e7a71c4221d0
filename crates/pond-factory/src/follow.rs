//! The loop a following command (`logfile follow`) runs its steps in, so that a factory gets
//! pacing, backoff, de-duplicated logging and periodic maintenance by writing only its step.
//!
//! # Flow
//! [`Follow::run`] repeats: wait until `min_interval` has passed since the last step started;
//! run one step ([`Service::step`]: the command's work in a small transaction whose commit
//! wakes the downstream stages); tell the command what it did ([`StepEvent`], for its metrics);
//! log problems and notes when they start and when they end, not at every step; point the
//! [`Watch`] at what appeared; run one periodic maintenance pass when due (passes continue
//! between the following steps until done); then wait for a wake-up ([`Waker::wake`], from a
//! file watcher or a stop/reload request) or for the reconcile timer, letting a burst of
//! writes settle. A failing step is retried on [`backoff`]'s curve, the one the downstream
//! stages use too. A stop or reload request ends the loop between steps.

use crate::{BoxError, Note, Problem, Service, StepReport, service::Work};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

/// First wait before retrying a failed step or stage; it doubles per failure up to
/// [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long to wait before the next try after `failures` failures in a row (0.5 s, doubling,
/// at most 30 s).
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// When steps run.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Steps start at most this often.
    pub min_interval: Duration,
    /// A step runs at least this often without any wake-up (a reconcile, or the poll).
    pub rescan_interval: Duration,
    /// After a wake-up, how long to let a burst of writes settle before the step.
    pub settle: Duration,
    /// How often periodic maintenance starts; `None`: never.
    pub maintain_every: Option<Duration>,
}

/// Something that wakes the loop when the command's inputs change (a file watcher). It only
/// wakes it; each step finds out itself what changed.
pub trait Watch {
    /// After each step: follow what appeared (a directory that exists now).
    fn refresh(&mut self) -> Result<(), BoxError>;
    /// At each reconcile: set every watch anew (a directory made again under the same path
    /// lost its watch with the old inode).
    fn rewatch(&mut self) -> Result<(), BoxError>;
}

/// Wakes the loop; cheap to clone, and waking a loop already woken does nothing more.
#[derive(Clone)]
pub struct Waker(SyncSender<()>);

impl Waker {
    /// Wakes the loop.
    pub fn wake(&self) {
        // A full channel already holds a wake-up; one is enough.
        let _ = self.0.try_send(());
    }
}

/// What one step did, for the command's own metrics.
pub struct StepEvent<'r> {
    /// The step's report, or its failure (rolled back; retried with backoff).
    pub result: Result<&'r StepReport, &'r BoxError>,
    /// From the wake-up that started the step (after settling) to its commit, the
    /// `min_interval` wait included; `None` for a timer step or when nothing was committed.
    pub wake_to_commit: Option<Duration>,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A stop request (SIGTERM/SIGINT).
    Stopped,
    /// A reload request (SIGHUP): the runner re-reads the configs and starts again.
    Reloading,
}

impl Ending {
    /// `stopped` or `reloading`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Stopped => "stopped",
            Ending::Reloading => "reloading",
        }
    }
}

/// How the loop ended, and what it did.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    pub why: Ending,
    pub steps: u64,
    pub commits: u64,
}

/// The loop of one following command (see the module docs).
pub struct Follow<'s> {
    service: &'s mut dyn Service,
    node: String,
    waker: Waker,
    wakeups: Receiver<()>,
}

impl<'s> Follow<'s> {
    /// The loop of node `node` on `service`; stop and reload requests wake it.
    pub fn new(service: &'s mut dyn Service, node: &str) -> Self {
        let (sender, wakeups) = std::sync::mpsc::sync_channel::<()>(1);
        let waker = Waker(sender);
        let on_request = waker.clone();
        service.control().on_request(move || on_request.wake());
        Self {
            service,
            node: node.to_string(),
            waker,
            wakeups,
        }
    }

    /// What wakes the loop (give it to the watcher).
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Runs `work` step after step until a stop or reload request; `on_step` hears about each
    /// step.
    pub fn run(
        self,
        pacing: &Pacing,
        mut watch: Option<&mut dyn Watch>,
        work: &mut Work<'_>,
        on_step: &mut dyn FnMut(StepEvent<'_>),
    ) -> Ended {
        let control = self.service.control().clone();
        let node = self.node.clone();
        let mut ended = Ended {
            why: Ending::Stopped,
            steps: 0,
            commits: 0,
        };
        let mut last_maintain = Instant::now();
        // A periodic maintenance pass left work for the next one.
        let mut maintaining = false;
        let mut woke_at = Some(Instant::now());
        let mut failing = 0u32;
        let mut last_errors: Vec<Problem> = Vec::new();
        let mut last_notes: Vec<Note> = Vec::new();
        let mut last_step: Option<Instant> = None;
        loop {
            if let Some(at) = last_step {
                self.pace(at + pacing.min_interval);
            }
            if control.stopping() || control.reload_requested() {
                break;
            }
            last_step = Some(Instant::now());
            let step = self.service.step(work);
            ended.steps += 1;
            match &step {
                Ok(report) => {
                    let wake_to_commit = report
                        .committed_at
                        .zip(woke_at)
                        .map(|(committed, woke)| committed.saturating_duration_since(woke));
                    if report.committed_at.is_some() {
                        ended.commits += 1;
                    }
                    on_step(StepEvent {
                        result: Ok(report),
                        wake_to_commit,
                    });
                    say_changes(&node, report, &mut last_errors, &mut last_notes);
                    if failing > 0 {
                        tracing::info!(node = %node, "steps succeed again after {failing} failure(s)");
                    }
                    failing = 0;
                }
                Err(e) => {
                    failing += 1;
                    on_step(StepEvent {
                        result: Err(e),
                        wake_to_commit: None,
                    });
                    if failing == 1 {
                        tracing::error!(node = %node, "step failed: {e}; retrying");
                    } else {
                        tracing::warn!(node = %node, failures = failing, "step failed: {e}");
                    }
                }
            }
            if let Some(watch) = watch.as_deref_mut()
                && let Err(e) = watch.refresh()
            {
                tracing::warn!(node = %node, "{e}; the reconcile scan covers it meanwhile");
            }
            if let Some(every) = pacing.maintain_every
                && !control.stopping()
                && (maintaining || last_maintain.elapsed() >= every)
            {
                if !maintaining {
                    last_maintain = Instant::now();
                }
                maintaining = match self.service.maintain() {
                    Ok(more) => more,
                    Err(e) => {
                        tracing::warn!(node = %node, "periodic maintenance: {e}; retried at the next interval");
                        false
                    }
                };
            }
            if maintaining && failing == 0 {
                // The next pass follows the next step (paced by `min_interval`), not a wait.
                woke_at = self.wakeups.try_recv().ok().map(|()| Instant::now());
                continue;
            }
            let timeout = if failing > 0 {
                backoff(failing)
            } else {
                pacing.rescan_interval
            };
            woke_at = match self.wakeups.try_recv() {
                // Changes arrived during the step: go again at once.
                Ok(()) => Some(Instant::now()),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                    if self.wait(timeout, pacing.settle) {
                        Some(Instant::now())
                    } else {
                        if let Some(watch) = watch.as_deref_mut()
                            && let Err(e) = watch.rewatch()
                        {
                            tracing::warn!(node = %node, "{e}; the reconcile scan covers it meanwhile");
                        }
                        None
                    }
                }
            };
        }
        control.clear_wakers();
        if !control.stopping() {
            ended.why = Ending::Reloading;
        }
        ended
    }

    /// Waits until `due`; a stop or reload request cuts the wait short. Wake-ups that arrive
    /// meanwhile are covered by the coming step.
    fn pace(&self, due: Instant) {
        let control = self.service.control();
        while !control.stopping() && !control.reload_requested() {
            let now = Instant::now();
            if now >= due {
                break;
            }
            let _ = self.wakeups.recv_timeout(due - now);
        }
    }

    /// Waits for a wake-up (true) or `timeout` (false); after a wake-up, lets a burst of
    /// writes settle for `settle`.
    fn wait(&self, timeout: Duration, settle: Duration) -> bool {
        match self.wakeups.recv_timeout(timeout) {
            Ok(()) => {
                if !settle.is_zero() {
                    std::thread::sleep(settle);
                }
                // Everything that arrived meanwhile is covered by the coming step.
                while let Ok(()) = self.wakeups.try_recv() {}
                true
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => false,
        }
    }
}

/// Logs the step's problems and notes that are new since the last step, and says when the
/// problems are gone: an unreadable file fails every step, and is said once, not ten times a
/// second.
fn say_changes(
    node: &str,
    report: &StepReport,
    last_errors: &mut Vec<Problem>,
    last_notes: &mut Vec<Note>,
) {
    if report.notes != *last_notes {
        for note in report.notes.iter().filter(|n| !last_notes.contains(n)) {
            note.log(node);
        }
        last_notes.clone_from(&report.notes);
    }
    if report.errors != *last_errors {
        for error in &report.errors {
            tracing::error!(node = %node, "{error}");
        }
        if report.errors.is_empty() && !last_errors.is_empty() {
            tracing::info!(node = %node, "the problems above are gone");
        }
        last_errors.clone_from(&report.errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Retries wait 0.5 s, then twice as long each time, never over 30 s.
    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
