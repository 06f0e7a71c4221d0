//! What a long-running command (`follow`) and its downstream stages see.
//!
//! A long-running command gets [`crate::Access::Service`] instead of one transaction. Each
//! [`Service::step`] runs the command's work in its own small write transaction, commits it, and
//! then runs every downstream stage in its own transaction, in-process. Stages that can
//! ([`Stage`], made by [`crate::TypedFactory::stage`]) stay alive between steps, so a MongoDB
//! client or an async runtime is set up once, not per step. A stage that fails is retried with
//! backoff on later steps (even when the upstream has nothing new) while the upstream keeps
//! going: nothing upstream waits on a slow or absent destination.

use crate::{BoxError, Control, RunContext, RunOutcome};
use pond_metrics::Metrics;
use pond_store::{Snapshot, StoreError};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Instant;

/// The work of one step: runs in the step's write transaction (`ctx.access` is
/// [`crate::Access::Write`]).
pub type Work<'w> = dyn FnMut(&mut RunContext<'_>) -> Result<RunOutcome, BoxError> + 'w;

/// A long-running command's handle on the pond and its downstream stages.
pub trait Service {
    /// Runs `work` in a new write transaction and commits it (or rolls it back when the outcome
    /// says `discard`), then runs the downstream stages: all of them after a commit, and any
    /// that are behind (a failed or interrupted earlier step) once their retry time has come.
    /// A failed stage is reported in the [`StepReport`], not as an error: only the upstream
    /// work's own failure is an `Err`.
    fn step(&mut self, work: &mut Work<'_>) -> Result<StepReport, BoxError>;
    /// When a stage that is behind should next be retried, if any is.
    fn next_retry(&self) -> Option<Instant>;
    /// The stop/reload flags (signals).
    fn control(&self) -> &Control;
    /// The metrics every stage of this run reports into.
    fn metrics(&self) -> &Metrics;
    /// Serves the metrics on `addr` (HTTP, Prometheus text format) until the run ends; returns
    /// the bound address. A second call while already serving returns the first address.
    fn serve_metrics(&mut self, addr: SocketAddr) -> Result<SocketAddr, BoxError>;
    /// A fresh read-only view of the pond (drop it soon: it pins the catalog's history).
    fn snapshot(&self) -> Result<Snapshot, StoreError>;
}

/// What one step did.
#[derive(Debug, Default, Serialize)]
pub struct StepReport {
    /// The upstream transaction, when it changed anything.
    pub txn: Option<u64>,
    /// The upstream's non-fatal errors (committed anyway).
    pub errors: Vec<String>,
    /// The downstream stages that ran, in order.
    pub stages: Vec<StageReport>,
    /// When the upstream transaction committed (before the stages ran).
    #[serde(skip)]
    pub committed_at: Option<Instant>,
}

/// One downstream stage's part of a step.
#[derive(Debug, Serialize)]
pub struct StageReport {
    pub path: String,
    pub txn: Option<u64>,
    /// `None` when it succeeded.
    pub error: Option<String>,
}

/// What a stage is given when it is set up.
#[derive(Clone)]
pub struct StageEnv {
    /// Where to report counts and latencies (labels must stay few: one series per stage).
    pub metrics: Metrics,
    /// Stop requests: a stage stops reading new input when set, and finishes what is in flight.
    pub control: Control,
}

/// A downstream command kept alive between the steps of a long-running upstream.
pub trait Stage {
    /// Moves what is new, in the write transaction `ctx.access` holds.
    fn step(&mut self, ctx: &mut RunContext<'_>) -> Result<RunOutcome, BoxError>;
    /// Releases connections and runtimes (called once, when the upstream stops or reloads).
    fn close(self: Box<Self>) {}
}
