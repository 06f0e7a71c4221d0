//! What a long-running command (`follow`) and its downstream stages see.
//!
//! A long-running command gets a [`crate::ServiceCtx`] instead of one transaction. Each
//! [`Service::step`] runs the command's work in its own small write transaction and commits it;
//! a commit wakes the downstream stages. Each stage runs in a thread of its own, beside the
//! command: it reads what was committed from a snapshot, moves it, and commits its own small
//! transactions ([`crate::CommitCtx`]), taking the writer lock only to commit. Stages that
//! can ([`Stage`], made by [`crate::TypedFactory::stage`]) stay alive for the whole run, so a
//! MongoDB client or an async runtime is set up once. A stage that fails is retried with
//! backoff while the command goes on: nothing upstream waits on a slow or absent destination.
//! [`crate::follow::Follow`] is the loop a following command runs its steps in.

use crate::{BoxError, CommitCtx, Control, Note, Problem, RunResult, StopSignal, WriteCtx};
use pond_metrics::Metrics;
use pond_store::{Snapshot, StoreError};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Instant;

/// The work of one step: runs in the step's write transaction.
pub type Work<'w> = dyn for<'a> FnMut(WriteCtx<'a>) -> RunResult + 'w;

/// A long-running command's handle on the pond and its downstream stages.
pub trait Service {
    /// Runs `work` in a new write transaction and commits it (or rolls it back when the outcome
    /// says `discard`); a commit wakes the downstream stages, which run in their own threads.
    /// Only the work's own failure is an `Err`.
    fn step(&mut self, work: &mut Work<'_>) -> Result<StepReport, BoxError>;
    /// The stop/reload flags (signals).
    fn control(&self) -> &Control;
    /// The metrics every stage of this run reports into.
    fn metrics(&self) -> &Metrics;
    /// Serves the metrics on `addr` (HTTP, Prometheus text format) until the run ends; returns
    /// the bound address. A second call while already serving returns the first address.
    fn serve_metrics(&mut self, addr: SocketAddr) -> Result<SocketAddr, BoxError>;
    /// A fresh read-only view of the pond (drop it soon: it pins the catalog's history).
    fn snapshot(&self) -> Result<Snapshot, StoreError>;
    /// Periodic upkeep in small transactions: folds old history, compacts what changed since
    /// the last pass (within a bounded amount of work per call) and removes retired data, then
    /// runs the command's own node's [`crate::Factory::maintain`] (retention). Returns whether
    /// work is left for another call.
    fn maintain(&mut self) -> Result<bool, BoxError>;
}

/// What one step did.
#[derive(Debug, Default, Serialize)]
pub struct StepReport {
    /// The upstream transaction, when it changed anything.
    pub txn: Option<u64>,
    /// The upstream's non-fatal errors (committed anyway).
    pub errors: Vec<Problem>,
    /// The step's remarks about its input as a whole.
    pub notes: Vec<Note>,
    /// When the upstream transaction committed.
    #[serde(skip)]
    pub committed_at: Option<Instant>,
}

/// What a stage is given when it is set up.
#[derive(Clone)]
pub struct StageEnv {
    /// Where to report counts and latencies (labels must stay few: one series per stage).
    pub metrics: Metrics,
    /// Raised when the stage should stop reading new input and finish what is in flight (the
    /// process stops, or the run reloads its configs).
    pub stop: StopSignal,
}

/// A downstream command kept alive for the whole run of a long-running upstream, in a thread
/// of its own.
pub trait Stage: Send {
    /// Moves what is new: reads snapshots and commits through `ctx.pond`.
    fn step(&mut self, ctx: CommitCtx<'_>) -> RunResult;
    /// Releases connections and runtimes (called once, when the upstream stops or reloads).
    fn close(self: Box<Self>) {}
}
