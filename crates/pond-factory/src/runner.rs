//! `pond run`: one factory command, then its downstream nodes.
//!
//! The runner loads a node's stored config once ([`Factory::configure`]), then plans the run:
//! the command and, for a writing command, every downstream node the config names, each
//! configured and prepared once, loops and unchainable nodes refused before anything runs.
//! How a command runs follows its [`Mode`]: read-only commands run on a snapshot and never
//! wait for the writer; a [`Mode::Write`] command runs inside the pond's write transaction,
//! committed when it succeeds and rolled back when it fails; a [`Mode::Commits`] command reads
//! snapshots and commits its own small transactions, so what it waits on (a database) never
//! holds the writer lock. Writing runs hold the node's run lock, so two runs of one node never
//! interleave. After a successful run, every downstream node runs on its own, depth first; a
//! downstream failure never undoes what already committed, and is reported by name. A JSON
//! report is one document: the command's [`crate::RunOutcome::report`] with the downstream
//! reports added.

use crate::{
    BoxError, Committer, Configured, Ctx, Factory, Invocation, Mode, Note, PrepareError, Prepared,
    Problem, Registry, Run, RunOutcome, WriteCtx,
};
use pond_store::{Node, NodeKind, Pond, PondPath, StoreError};
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: factory {factory:?} is not in this build (known: {known})")]
    UnknownFactory {
        path: String,
        factory: String,
        known: String,
    },
    #[error("unknown factory {factory:?} (known: {known})")]
    NoSuchFactory { factory: String, known: String },
    /// A config problem; the message names the config and the field.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error("{path}: {source}")]
    Prepare {
        path: String,
        #[source]
        source: PrepareError,
    },
    #[error("{path}: {source}")]
    Failed {
        path: String,
        #[source]
        source: BoxError,
    },
    #[error("{path}: downstream chain loops back to this node")]
    Cycle { path: String },
    #[error("{path}: {}{}", problems(.errors), committed(.txn))]
    Partial {
        path: String,
        txn: Option<u64>,
        errors: Vec<Problem>,
    },
    #[error("writing the report: {0}")]
    Output(#[source] std::io::Error),
    #[error("{upstream} succeeded{}, but downstream failed: {}", committed(.txn), .failures.join("; "))]
    Downstream {
        upstream: String,
        txn: Option<u64>,
        failures: Vec<String>,
    },
}

/// `error` as one line that names `target` once (most errors start with their node's path).
pub(crate) fn naming(target: &str, error: &RunError) -> String {
    let text = error.to_string();
    if text.starts_with(target) {
        text
    } else {
        format!("{target}: {text}")
    }
}

fn problems(errors: &[Problem]) -> String {
    errors
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn committed(txn: &Option<u64>) -> String {
    txn.map(|t| format!(" (committed txn {t})"))
        .unwrap_or_default()
}

fn prepare_error(path: &PondPath, source: PrepareError) -> RunError {
    RunError::Prepare {
        path: path.to_string(),
        source,
    }
}

/// `Ok(txn)`, or the run's non-fatal errors as a failure after what could be done committed.
pub(crate) fn partial(
    node: &Node,
    txn: Option<u64>,
    errors: Vec<Problem>,
) -> Result<Option<u64>, RunError> {
    if errors.is_empty() {
        Ok(txn)
    } else {
        Err(RunError::Partial {
            path: node.path.to_string(),
            txn,
            errors,
        })
    }
}

impl RunError {
    /// The clap error when the failure is a usage error or a `--help` request.
    pub fn usage(&self) -> Option<&clap::Error> {
        match self {
            RunError::Prepare {
                source: PrepareError::Usage(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// What one command did when it did not fail as a whole.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    /// The last transaction it committed.
    pub txn: Option<u64>,
    /// Its non-fatal problems (committed anyway).
    pub errors: Vec<Problem>,
    pub notes: Vec<Note>,
    pub pending: bool,
    pub report: Option<serde_json::Value>,
}

impl Ran {
    fn of(outcome: RunOutcome, txn: Option<u64>) -> Self {
        Self {
            txn,
            errors: outcome.errors,
            notes: outcome.notes,
            pending: outcome.pending,
            report: outcome.report,
        }
    }
}

/// One downstream stage's result, as added to an upstream JSON report.
#[derive(Debug, Serialize)]
struct StageJson {
    path: String,
    ok: bool,
    txn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<serde_json::Value>,
}

/// A factory node with its validated config.
pub(crate) struct Loaded {
    pub node: Node,
    pub configured: Arc<dyn Configured>,
}

/// A command ready to run, with the downstream nodes that run after it.
pub(crate) struct Plan {
    pub node: Node,
    pub configured: Arc<dyn Configured>,
    pub prepared: Prepared,
    /// What `pond status` shows as the command.
    pub command: String,
    pub downstream: Vec<Plan>,
}

/// What the binary does before a long-running command starts.
pub type BeforeLongRunning = dyn Fn(&crate::Control) -> Result<(), BoxError> + Sync;

/// Runs factory nodes of one pond.
pub struct Runner<'a> {
    pub pond: &'a Pond,
    pub registry: &'a Registry,
    /// Recorded with every transaction the run makes.
    pub argv: Vec<String>,
    pub lock_timeout: Duration,
    /// Environment lookup for `${env:...}` (the process environment in `pond`).
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// The program name shown in usage messages.
    pub bin_name: String,
    /// Stop and reload requests (signals) for long-running commands.
    pub control: crate::Control,
    /// Called once before a long-running command starts (the binary turns signals into stop
    /// and reload requests on `control` here).
    pub before_long_running: Option<&'a BeforeLongRunning>,
}

impl Runner<'_> {
    /// Checks that `factory` exists and accepts `config_text` (expanded with the environment).
    pub fn validate(
        &self,
        factory: &str,
        config_text: &str,
        source_name: &str,
    ) -> Result<&'static dyn Factory, RunError> {
        let found = self
            .registry
            .get(factory)
            .ok_or_else(|| RunError::NoSuchFactory {
                factory: factory.to_string(),
                known: self.registry.names(),
            })?;
        self.configured(found, config_text, source_name)?;
        Ok(found)
    }

    /// `factory`'s validated settings from config text as stored (`${env:...}` expanded here).
    fn configured(
        &self,
        factory: &dyn Factory,
        config_text: &str,
        source_name: &str,
    ) -> Result<Arc<dyn Configured>, crate::ConfigError> {
        let expanded = crate::config::expand_env(config_text, source_name, self.env)?;
        factory.configure(&expanded, source_name)
    }

    /// The factory of the node at `path`, for help output.
    pub fn factory_of(&self, path: &PondPath) -> Result<&'static dyn Factory, RunError> {
        let snapshot = self.pond.snapshot()?;
        Ok(self.factory_node(&snapshot, path)?.1)
    }

    /// The factory node at `path`, its factory and its stored (unexpanded) config.
    fn factory_node(
        &self,
        snapshot: &pond_store::Snapshot,
        path: &PondPath,
    ) -> Result<(Node, &'static dyn Factory, String), RunError> {
        let node = snapshot.resolve(path)?;
        if node.kind != NodeKind::Factory {
            return Err(StoreError::NotAFactoryNode {
                path: path.to_string(),
            }
            .into());
        }
        let stored = snapshot.factory_node(&node)?;
        let factory = self
            .factory(&stored.factory)
            .ok_or_else(|| RunError::UnknownFactory {
                path: path.to_string(),
                factory: stored.factory.clone(),
                known: self.registry.names(),
            })?;
        Ok((node, factory, stored.config))
    }

    fn factory(&self, name: &str) -> Option<&'static dyn Factory> {
        self.registry.get(name)
    }

    /// `node`'s config (stored as `stored_config` for `factory`), expanded and validated.
    pub(crate) fn configure(
        &self,
        node: &Node,
        factory: &str,
        stored_config: &str,
    ) -> Result<Arc<dyn Configured>, BoxError> {
        let factory = self.factory(factory).ok_or_else(|| {
            format!(
                "factory {factory:?} is not in this build (known: {})",
                self.registry.names()
            )
        })?;
        let source_name = format!("{} (config)", node.path);
        Ok(self.configured(factory, stored_config, &source_name)?)
    }

    /// The factory node at `path` with its config validated.
    pub(crate) fn load(&self, path: &PondPath) -> Result<Loaded, RunError> {
        let snapshot = self.pond.snapshot()?;
        let (node, factory, text) = self.factory_node(&snapshot, path)?;
        let configured = self.configured(factory, &text, &format!("{path} (config)"))?;
        Ok(Loaded { node, configured })
    }

    fn invocation<'i>(&'i self, args: &'i [String]) -> Invocation<'i> {
        Invocation::Args {
            bin_name: &self.bin_name,
            args,
        }
    }

    /// Runs `args` (a command and its arguments) on the factory node at `path`, then its
    /// downstream nodes. Returns the upstream transaction number, if it changed anything.
    pub fn run(
        &self,
        path: &PondPath,
        args: &[String],
        out: &mut dyn Write,
    ) -> Result<Option<u64>, RunError> {
        let loaded = self.load(path)?;
        let prepared = loaded
            .configured
            .clone()
            .prepare(self.invocation(args))
            .map_err(|e| prepare_error(path, e))?;
        if prepared.mode() == Mode::LongRunning {
            if let Some(before) = self.before_long_running {
                before(&self.control).map_err(|source| RunError::Failed {
                    path: path.to_string(),
                    source,
                })?;
            }
            return self.serve(path, args, Some((loaded, prepared)), out);
        }
        let mut visited = vec![path.clone()];
        let plan = self.plan(loaded, prepared, args.join(" "), &mut visited)?;
        let (result, report) = self.run_chain(plan, out);
        if let Some(report) = report {
            serde_json::to_writer(&mut *out, &report).map_err(|e| RunError::Output(e.into()))?;
            writeln!(out).map_err(RunError::Output)?;
        }
        result
    }

    /// The plan of `prepared` on `loaded` and, for a writing command, of every downstream node
    /// (checked whole before anything runs: a loop or a node that cannot be chained is
    /// reported before any stage commits).
    pub(crate) fn plan(
        &self,
        loaded: Loaded,
        prepared: Prepared,
        command: String,
        visited: &mut Vec<PondPath>,
    ) -> Result<Plan, RunError> {
        let mut downstream = Vec::new();
        // Downstream stages follow commits: a read-only command (status, say) runs alone.
        if prepared.writes() {
            let invocation = Invocation::Downstream {
                json: prepared.json,
                dry_run: prepared.dry_run,
            };
            for target in self.downstream_paths(&loaded.node, loaded.configured.as_ref())? {
                if visited.contains(&target) {
                    return Err(RunError::Cycle {
                        path: target.to_string(),
                    });
                }
                let stage = self.load(&target)?;
                let stage_prepared = stage
                    .configured
                    .clone()
                    .prepare(invocation)
                    .map_err(|e| prepare_error(&target, e))?;
                let command = format!("{} (as a downstream stage)", stage_prepared.name);
                visited.push(target.clone());
                downstream.push(self.plan(stage, stage_prepared, command, visited)?);
                visited.pop();
            }
        }
        Ok(Plan {
            node: loaded.node,
            configured: loaded.configured,
            prepared,
            command,
            downstream,
        })
    }

    /// The downstream node paths `configured` names.
    pub(crate) fn downstream_paths(
        &self,
        node: &Node,
        configured: &dyn Configured,
    ) -> Result<Vec<PondPath>, RunError> {
        configured
            .downstream()
            .iter()
            .map(|target| {
                PondPath::parse(target).map_err(|e| {
                    crate::ConfigError::Invalid {
                        source_name: format!("{} (config)", node.path),
                        field: "downstream".to_string(),
                        reason: e.to_string(),
                    }
                    .into()
                })
            })
            .collect()
    }

    /// Runs `plan`: its command, then (after any commit, even one with problems) its
    /// downstream nodes. Returns the result and the JSON report, downstream reports included.
    pub(crate) fn run_chain(
        &self,
        plan: Plan,
        out: &mut dyn Write,
    ) -> (Result<Option<u64>, RunError>, Option<serde_json::Value>) {
        let Plan {
            node,
            prepared,
            command,
            downstream,
            ..
        } = plan;
        let json = prepared.json;
        let ran = match self.run_stage(&node, prepared, &command, out) {
            Ok(ran) => ran,
            Err(e) => return (Err(e), None),
        };
        for note in &ran.notes {
            note.log(&node.path.to_string());
        }
        let mut report = ran.report;
        if downstream.is_empty() {
            return (partial(&node, ran.txn, ran.errors), report);
        }
        let mut failures = Vec::new();
        let mut stages = Vec::new();
        for stage in downstream {
            let target = stage.node.path.to_string();
            if !json && let Err(e) = writeln!(out, "downstream {target}:") {
                return (Err(RunError::Output(e)), report);
            }
            let (result, stage_report) = self.run_chain(stage, out);
            match result {
                Ok(txn) => stages.push(StageJson {
                    path: target,
                    ok: true,
                    txn,
                    error: None,
                    report: stage_report,
                }),
                Err(e) => {
                    tracing::error!(upstream = %node.path, downstream = %target, "downstream failed: {e}");
                    failures.push(naming(&target, &e));
                    stages.push(StageJson {
                        path: target,
                        ok: false,
                        txn: None,
                        error: Some(e.to_string()),
                        report: stage_report,
                    });
                }
            }
        }
        if json {
            let stages = serde_json::to_value(&stages).unwrap_or_default();
            match &mut report {
                Some(serde_json::Value::Object(object)) => {
                    object.insert("downstream".to_string(), stages);
                }
                Some(_) => {}
                None => report = Some(serde_json::json!({ "downstream": stages })),
            }
        }
        if !failures.is_empty() {
            failures.extend(ran.errors.iter().map(|e| format!("{}: {e}", node.path)));
            return (
                Err(RunError::Downstream {
                    upstream: node.path.to_string(),
                    txn: ran.txn,
                    failures,
                }),
                report,
            );
        }
        (partial(&node, ran.txn, ran.errors), report)
    }

    /// Runs one command and, for a real (not dry) writing run, records it for `pond status`.
    fn run_stage(
        &self,
        node: &Node,
        prepared: Prepared,
        command: &str,
        out: &mut dyn Write,
    ) -> Result<Ran, RunError> {
        if !prepared.writes() || prepared.dry_run {
            return self.execute(node, prepared, out);
        }
        let mut record = crate::runs::RunRecord::start(command.to_string(), false);
        let result = self.execute(node, prepared, out);
        match &result {
            Ok(ran) if ran.errors.is_empty() => record.finish(None, ran.txn),
            Ok(ran) => record.finish(
                Some(
                    RunError::Partial {
                        path: node.path.to_string(),
                        txn: ran.txn,
                        errors: ran.errors.clone(),
                    }
                    .to_string(),
                ),
                ran.txn,
            ),
            Err(e) => record.finish(Some(e.to_string()), None),
        }
        crate::runs::save(self.pond.dir(), node.id, &record);
        result
    }

    /// Runs one command with the access its mode gives.
    fn execute(
        &self,
        node: &Node,
        prepared: Prepared,
        out: &mut dyn Write,
    ) -> Result<Ran, RunError> {
        let failed = |source: BoxError| RunError::Failed {
            path: node.path.to_string(),
            source,
        };
        match prepared.run {
            Run::Read(run) => {
                let snapshot = self.pond.snapshot()?;
                let ctx = Ctx {
                    node,
                    pond: &*snapshot,
                    out,
                };
                let outcome = run(&(), ctx).map_err(failed)?;
                Ok(Ran::of(outcome, None))
            }
            Run::Commits(run) => self.run_commits(node, out, |ctx| run(&(), ctx)),
            Run::Write(run) => {
                let _running = self.lock_node(node)?;
                self.run_in_txn(node, out, |ctx| run(&(), ctx))
            }
            Run::LongRunning(_) => Err(failed(
                format!("{} runs until stopped: run it on its own", prepared.name).into(),
            )),
        }
    }

    /// Takes the run lock of `node`, waiting up to the lock timeout for another run of it.
    fn lock_node(&self, node: &Node) -> Result<pond_store::NodeLock, RunError> {
        Ok(self
            .pond
            .lock_node(node.id, &node.path.to_string(), self.lock_timeout)?)
    }

    /// Runs `work` with a [`Committer`] under `node`'s run lock: it reads snapshots and commits
    /// its own transactions. Returns the last transaction it committed and its problems.
    pub(crate) fn run_commits(
        &self,
        node: &Node,
        out: &mut dyn Write,
        work: impl FnOnce(crate::CommitCtx<'_>) -> crate::RunResult,
    ) -> Result<Ran, RunError> {
        let _running = self.lock_node(node)?;
        let mut committer = Committer::new(self.pond.clone(), self.argv.clone(), self.lock_timeout);
        let outcome = work(Ctx {
            node,
            pond: &mut committer,
            out,
        });
        match outcome {
            Ok(outcome) => Ok(Ran::of(outcome, committer.last_txn())),
            Err(source) => Err(RunError::Failed {
                path: node.path.to_string(),
                source,
            }),
        }
    }

    /// Runs `work` in a new write transaction of `node`: commits unless it fails (rolled back,
    /// [`RunError::Failed`]) or discards (a dry run). One-shot runs and the steps of
    /// long-running commands all go through here.
    pub(crate) fn run_in_txn(
        &self,
        node: &Node,
        out: &mut dyn Write,
        work: impl FnOnce(WriteCtx<'_>) -> crate::RunResult,
    ) -> Result<Ran, RunError> {
        let mut txn = self.pond.begin(self.argv.clone(), self.lock_timeout)?;
        let outcome = work(Ctx {
            node,
            pond: &mut txn,
            out,
        });
        match outcome {
            Ok(outcome) if outcome.discard => {
                txn.rollback()?;
                Ok(Ran::of(outcome, None))
            }
            Ok(outcome) => {
                let summary = if outcome.summary.is_empty() {
                    format!("run {}", node.path)
                } else {
                    outcome.summary.clone()
                };
                let committed = txn.commit(&summary)?;
                Ok(Ran::of(outcome, committed))
            }
            Err(source) => {
                txn.rollback()?;
                Err(RunError::Failed {
                    path: node.path.to_string(),
                    source,
                })
            }
        }
    }
}

/// Where a factory node stands, as `pond status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NodeState {
    /// A live long-running command whose last step succeeded.
    #[serde(rename = "running")]
    Running,
    /// A live long-running command whose last step failed.
    #[serde(rename = "failing")]
    Failing,
    /// A long-running command whose process is gone without finishing: killed or crashed.
    #[serde(rename = "died")]
    Died,
    /// The last run succeeded.
    #[serde(rename = "ok")]
    Ok,
    /// The last run failed.
    #[serde(rename = "failed")]
    Failed,
    /// No run recorded.
    #[serde(rename = "never run")]
    NeverRun,
}

impl NodeState {
    /// The state of a node whose last run is `last_run`.
    pub fn of(last_run: Option<&crate::runs::RunRecord>) -> Self {
        match last_run {
            None => NodeState::NeverRun,
            Some(run) if run.running && crate::runs::alive(run.pid) && run.ok => NodeState::Running,
            Some(run) if run.running && crate::runs::alive(run.pid) => NodeState::Failing,
            Some(run) if run.running => NodeState::Died,
            Some(run) if run.ok => NodeState::Ok,
            Some(_) => NodeState::Failed,
        }
    }

    /// Whether an operator should look at the node (`pond status` exits 1).
    pub fn is_unhealthy(self) -> bool {
        matches!(
            self,
            NodeState::Failing | NodeState::Died | NodeState::Failed
        )
    }

    /// The state as `pond status` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Running => "running",
            NodeState::Failing => "failing",
            NodeState::Died => "died",
            NodeState::Ok => "ok",
            NodeState::Failed => "failed",
            NodeState::NeverRun => "never run",
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One factory node in `pond status`.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub path: String,
    pub factory: String,
    pub state: NodeState,
    pub last_run: Option<crate::runs::RunRecord>,
    #[serde(flatten)]
    pub status: crate::NodeStatus,
}

impl NodeReport {
    /// Whether an operator should look at the node: its last run failed, it died, or it
    /// recorded an error that is still unresolved.
    pub fn is_unhealthy(&self) -> bool {
        self.state.is_unhealthy() || self.status.last_error.is_some()
    }
}

impl Runner<'_> {
    /// Every factory node with its last run and what its factory reports (lag, last error).
    pub fn status(&self) -> Result<Vec<NodeReport>, RunError> {
        let snapshot = self.pond.snapshot()?;
        let mut reports = Vec::new();
        for (node, stored) in snapshot.factory_nodes()? {
            let last_run = crate::runs::load(self.pond.dir(), node.id);
            let status = self
                .configure(&node, &stored.factory, &stored.config)
                .and_then(|configured| configured.status(&snapshot, &node))
                .unwrap_or_else(|e| crate::NodeStatus {
                    last_error: Some(format!("status: {e}")),
                    ..crate::NodeStatus::default()
                });
            reports.push(NodeReport {
                path: node.path.to_string(),
                factory: stored.factory,
                state: NodeState::of(last_run.as_ref()),
                last_run,
                status,
            });
        }
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(reports)
    }
}
