//! `pond run`: one factory command, then its downstream nodes.
//!
//! How a command runs follows its [`Mode`]: read-only commands run on a snapshot and never
//! wait for the writer; a [`Mode::Write`] command runs inside the pond's write transaction,
//! committed when it succeeds and rolled back when it fails; a [`Mode::Commits`] command reads
//! snapshots and commits its own small transactions, so what it waits on (a database) never
//! holds the writer lock. Writing runs hold the node's run lock, so two runs of one node never
//! interleave. After a successful run, every downstream node named in the config runs on its
//! own, depth first; a downstream failure never undoes what already committed, and is reported
//! by name.

use crate::{
    Access, BoxError, Committer, Factory, Invocation, Mode, PrepareError, Prepared, Registry,
    RunContext,
};
use pond_store::{Node, NodeKind, Pond, PondPath, StoreError};
use serde::Serialize;
use std::io::Write;
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
    #[error("{path}: {}{}", .errors.join("; "), committed(.txn))]
    Partial {
        path: String,
        txn: Option<u64>,
        errors: Vec<String>,
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

/// A config error names its source already; anything else gets the node's path.
fn prepare_error(path: &str, source: PrepareError) -> RunError {
    match source {
        PrepareError::Config(e) => RunError::Config(e),
        source => RunError::Prepare {
            path: path.to_string(),
            source,
        },
    }
}

/// `Ok(txn)`, or the run's non-fatal errors as a failure after what could be done committed.
pub(crate) fn partial(
    node: &Node,
    txn: Option<u64>,
    errors: Vec<String>,
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

fn committed(txn: &Option<u64>) -> String {
    txn.map(|t| format!(" (committed txn {t})"))
        .unwrap_or_default()
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

/// The command of a run, as `pond status` shows it.
pub(crate) fn describe(invocation: Invocation<'_>) -> String {
    match invocation {
        Invocation::Args { args, .. } => args.join(" "),
        Invocation::Downstream { .. } => "sync (as a downstream stage)".to_string(),
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
        let expanded = crate::config::expand_env(config_text, source_name, self.env)?;
        found
            .prepare(&expanded, source_name, None)
            .map_err(|source| prepare_error(source_name, source))?;
        Ok(found)
    }

    /// The factory of the node at `path`, for help output.
    pub fn factory_of(&self, path: &PondPath) -> Result<&'static dyn Factory, RunError> {
        let snapshot = self.pond.snapshot()?;
        let (_, factory, _) = self.load(&snapshot, path)?;
        Ok(factory)
    }

    fn load(
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
        let factory =
            self.registry
                .get(&stored.factory)
                .ok_or_else(|| RunError::UnknownFactory {
                    path: path.to_string(),
                    factory: stored.factory.clone(),
                    known: self.registry.names(),
                })?;
        Ok((node, factory, stored.config))
    }

    /// The factory of the node at `path` and its config, expanded.
    pub(crate) fn stored_config(
        &self,
        path: &PondPath,
    ) -> Result<(&'static dyn Factory, String), RunError> {
        let snapshot = self.pond.snapshot()?;
        let (_, factory, text) = self.load(&snapshot, path)?;
        let source_name = format!("{path} (config)");
        Ok((
            factory,
            crate::config::expand_env(&text, &source_name, self.env)?,
        ))
    }

    pub(crate) fn prepare(
        &self,
        path: &PondPath,
        invocation: Invocation<'_>,
    ) -> Result<(Node, Box<dyn Prepared>), RunError> {
        let snapshot = self.pond.snapshot()?;
        let (node, factory, text) = self.load(&snapshot, path)?;
        let source_name = format!("{path} (config)");
        let expanded = crate::config::expand_env(&text, &source_name, self.env)?;
        let prepared = factory
            .prepare(&expanded, &source_name, Some(invocation))
            .map_err(|source| prepare_error(&path.to_string(), source))?
            .ok_or_else(|| {
                prepare_error(
                    &path.to_string(),
                    PrepareError::NotChainable {
                        factory: factory.name(),
                    },
                )
            })?;
        Ok((node, prepared))
    }

    /// Whether `args` on the node at `path` is a long-running command (which wants signals
    /// turned into stop/reload requests).
    pub fn is_long_running(&self, path: &PondPath, args: &[String]) -> Result<bool, RunError> {
        let invocation = Invocation::Args {
            bin_name: &self.bin_name,
            args,
        };
        Ok(self.prepare(path, invocation)?.1.mode() == Mode::LongRunning)
    }

    /// Runs `args` (a command and its arguments) on the factory node at `path`, then its
    /// downstream nodes. Returns the upstream transaction number, if it changed anything.
    pub fn run(
        &self,
        path: &PondPath,
        args: &[String],
        out: &mut dyn Write,
    ) -> Result<Option<u64>, RunError> {
        let invocation = Invocation::Args {
            bin_name: &self.bin_name,
            args,
        };
        let (_, prepared) = self.prepare(path, invocation)?;
        if prepared.mode() == Mode::LongRunning {
            return self.serve(path, invocation, out);
        }
        // Check the whole chain before anything runs: a loop or a node that cannot be chained
        // is reported before any stage commits.
        if prepared.writes() {
            self.check_chain(path, &prepared.downstream(), &mut vec![path.clone()])?;
        }
        let mut visited = vec![path.clone()];
        self.run_chain(path, invocation, out, &mut visited)
    }

    pub(crate) fn check_chain(
        &self,
        upstream: &PondPath,
        downstream: &[String],
        visited: &mut Vec<PondPath>,
    ) -> Result<(), RunError> {
        for target in downstream {
            let target_path = PondPath::parse(target).map_err(|e| crate::ConfigError::Invalid {
                source_name: format!("{upstream} (config)"),
                field: "downstream".to_string(),
                reason: e.to_string(),
            })?;
            if visited.contains(&target_path) {
                return Err(RunError::Cycle {
                    path: target_path.to_string(),
                });
            }
            let (_, prepared) = self.prepare(
                &target_path,
                Invocation::Downstream {
                    json: false,
                    dry_run: false,
                },
            )?;
            visited.push(target_path.clone());
            self.check_chain(&target_path, &prepared.downstream(), visited)?;
            visited.pop();
        }
        Ok(())
    }

    pub(crate) fn run_chain(
        &self,
        path: &PondPath,
        invocation: Invocation<'_>,
        out: &mut dyn Write,
        visited: &mut Vec<PondPath>,
    ) -> Result<Option<u64>, RunError> {
        let (node, prepared) = self.prepare(path, invocation)?;
        let json = prepared.json();
        let dry_run = prepared.dry_run();
        // Downstream stages follow commits: a read-only command (status, say) runs alone.
        let downstream = if prepared.writes() {
            prepared.downstream()
        } else {
            Vec::new()
        };
        let command = describe(invocation);
        if downstream.is_empty() {
            return self.run_stage(&node, prepared, &command, out);
        }
        // With downstream stages and JSON, the upstream report gets a `downstream` array, so
        // stdout stays one JSON document.
        let mut upstream_out = Vec::new();
        let upstream = self.run_stage(
            &node,
            prepared,
            &command,
            if json { &mut upstream_out } else { &mut *out },
        );
        // Downstream stages run after any commit, including one with non-fatal errors.
        let (txn, upstream_errors) = match upstream {
            Ok(txn) => (txn, Vec::new()),
            Err(RunError::Partial { txn, errors, .. }) => (txn, errors),
            Err(e) => {
                out.write_all(&upstream_out).map_err(RunError::Output)?;
                return Err(e);
            }
        };
        let mut failures = Vec::new();
        let mut stages = Vec::new();
        for target in downstream {
            let result = PondPath::parse(&target)
                .map_err(RunError::from)
                .and_then(|target_path| {
                    if visited.contains(&target_path) {
                        return Err(RunError::Cycle {
                            path: target_path.to_string(),
                        });
                    }
                    visited.push(target_path.clone());
                    let mut stage_out = Vec::new();
                    if !json {
                        writeln!(out, "downstream {target_path}:").map_err(RunError::Output)?;
                    }
                    let result = self.run_chain(
                        &target_path,
                        Invocation::Downstream { json, dry_run },
                        if json { &mut stage_out } else { &mut *out },
                        visited,
                    );
                    visited.pop();
                    result.map(|txn| (txn, stage_out))
                });
            match result {
                Ok((txn, stage_out)) => stages.push(StageJson {
                    path: target.clone(),
                    ok: true,
                    txn,
                    error: None,
                    report: serde_json::from_slice(&stage_out).ok(),
                }),
                Err(e) => {
                    tracing::error!(upstream = %path, downstream = %target, "downstream failed: {e}");
                    failures.push(naming(&target, &e));
                    stages.push(StageJson {
                        path: target.clone(),
                        ok: false,
                        txn: None,
                        error: Some(e.to_string()),
                        report: None,
                    });
                }
            }
        }
        if json {
            let mut report: serde_json::Value =
                serde_json::from_slice(&upstream_out).unwrap_or(serde_json::Value::Null);
            if let Some(object) = report.as_object_mut() {
                object.insert(
                    "downstream".to_string(),
                    serde_json::to_value(&stages).unwrap_or_default(),
                );
                serde_json::to_writer(&mut *out, &report)
                    .map_err(|e| RunError::Output(e.into()))?;
                writeln!(out).map_err(RunError::Output)?;
            } else {
                out.write_all(&upstream_out).map_err(RunError::Output)?;
            }
        }
        if !failures.is_empty() {
            failures.extend(upstream_errors.iter().map(|e| format!("{path}: {e}")));
            return Err(RunError::Downstream {
                upstream: path.to_string(),
                txn,
                failures,
            });
        }
        partial(&node, txn, upstream_errors)
    }

    /// Runs one stage and, for a real (not dry) writing run, records it for `pond status`.
    fn run_stage(
        &self,
        node: &Node,
        prepared: Box<dyn Prepared>,
        command: &str,
        out: &mut dyn Write,
    ) -> Result<Option<u64>, RunError> {
        if !prepared.writes() || prepared.dry_run() {
            return self.run_stage_unrecorded(node, prepared, out);
        }
        let mut record = crate::runs::RunRecord::start(command.to_string(), false);
        let result = self.run_stage_unrecorded(node, prepared, out);
        match &result {
            Ok(txn) => record.finish(None, *txn),
            Err(RunError::Partial { txn, .. }) => {
                record.finish(result.as_ref().err().map(|e| e.to_string()), *txn)
            }
            Err(e) => record.finish(Some(e.to_string()), None),
        }
        crate::runs::save(self.pond.dir(), node.id, &record);
        result
    }

    fn run_stage_unrecorded(
        &self,
        node: &Node,
        prepared: Box<dyn Prepared>,
        out: &mut dyn Write,
    ) -> Result<Option<u64>, RunError> {
        let failed = |source: BoxError| RunError::Failed {
            path: node.path.to_string(),
            source,
        };
        match prepared.mode() {
            Mode::Read => {
                let snapshot = self.pond.snapshot()?;
                let mut ctx = RunContext {
                    node,
                    access: Access::Read(&snapshot),
                    out,
                };
                let outcome = prepared.run(&mut ctx).map_err(failed)?;
                partial(node, None, outcome.errors)
            }
            Mode::Commits => self.run_commits(node, out, |ctx| prepared.run(ctx)),
            Mode::Write | Mode::LongRunning => {
                let _running = self.lock_node(node)?;
                self.run_in_txn(node, out, |ctx| prepared.run(ctx))
            }
        }
    }

    /// Takes the run lock of `node`, waiting up to the lock timeout for another run of it.
    fn lock_node(&self, node: &Node) -> Result<pond_store::NodeLock, RunError> {
        Ok(self
            .pond
            .lock_node(node.id, &node.path.to_string(), self.lock_timeout)?)
    }

    /// Runs `work` with a [`Committer`] under `node`'s run lock: it reads snapshots and commits
    /// its own transactions. Returns the last transaction it committed; non-fatal errors come
    /// back as [`RunError::Partial`].
    pub(crate) fn run_commits(
        &self,
        node: &Node,
        out: &mut dyn Write,
        work: impl FnOnce(&mut RunContext<'_>) -> Result<crate::RunOutcome, BoxError>,
    ) -> Result<Option<u64>, RunError> {
        let _running = self.lock_node(node)?;
        let mut committer = Committer::new(self.pond.clone(), self.argv.clone(), self.lock_timeout);
        let outcome = {
            let mut ctx = RunContext {
                node,
                access: Access::Commits(&mut committer),
                out,
            };
            work(&mut ctx)
        };
        let txn = committer.last_txn();
        match outcome {
            Ok(outcome) => partial(node, txn, outcome.errors),
            Err(source) => Err(RunError::Failed {
                path: node.path.to_string(),
                source,
            }),
        }
    }

    /// Runs `work` in a new write transaction of `node`: commits unless it fails (rolled back,
    /// [`RunError::Failed`]) or discards (a dry run); non-fatal errors come back as
    /// [`RunError::Partial`] after the commit. One-shot runs and the steps and stages of
    /// long-running commands all go through here.
    pub(crate) fn run_in_txn(
        &self,
        node: &Node,
        out: &mut dyn Write,
        work: impl FnOnce(&mut RunContext<'_>) -> Result<crate::RunOutcome, BoxError>,
    ) -> Result<Option<u64>, RunError> {
        let mut txn = self.pond.begin(self.argv.clone(), self.lock_timeout)?;
        let outcome = {
            let mut ctx = RunContext {
                node,
                access: Access::Write(&mut txn),
                out,
            };
            work(&mut ctx)
        };
        match outcome {
            Ok(outcome) if outcome.discard => {
                txn.rollback()?;
                partial(node, None, outcome.errors)
            }
            Ok(outcome) => {
                let summary = if outcome.summary.is_empty() {
                    format!("run {}", node.path)
                } else {
                    outcome.summary
                };
                let committed = txn.commit(&summary)?;
                partial(node, committed, outcome.errors)
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

/// One factory node in `pond status`.
#[derive(Debug, Serialize)]
pub struct NodeReport {
    pub path: String,
    pub factory: String,
    /// `running` (a live long-running command whose last step succeeded), `failing` (live, but
    /// its last step failed), `ok`, `failed`, `died` (a long-running command whose process is
    /// gone without finishing: killed or crashed) or `never run`.
    pub state: &'static str,
    pub last_run: Option<crate::runs::RunRecord>,
    #[serde(flatten)]
    pub status: crate::NodeStatus,
}

impl Runner<'_> {
    /// Every factory node with its last run and what its factory reports (lag, last error).
    pub fn status(&self) -> Result<Vec<NodeReport>, RunError> {
        let snapshot = self.pond.snapshot()?;
        let mut reports = Vec::new();
        for (node, stored) in snapshot.factory_nodes()? {
            let last_run = crate::runs::load(self.pond.dir(), node.id);
            let state = match &last_run {
                None => "never run",
                Some(run) if run.running && crate::runs::alive(run.pid) && run.ok => "running",
                Some(run) if run.running && crate::runs::alive(run.pid) => "failing",
                Some(run) if run.running => "died",
                Some(run) if run.ok => "ok",
                Some(_) => "failed",
            };
            let source_name = format!("{} (config)", node.path);
            let status = match self.registry.get(&stored.factory) {
                None => Err(format!(
                    "factory {:?} is not in this build (known: {})",
                    stored.factory,
                    self.registry.names()
                )
                .into()),
                Some(factory) => crate::config::expand_env(&stored.config, &source_name, self.env)
                    .map_err(BoxError::from)
                    .and_then(|text| factory.status(&text, &source_name, &snapshot, &node)),
            };
            let status = status.unwrap_or_else(|e| crate::NodeStatus {
                last_error: Some(format!("status: {e}")),
                ..crate::NodeStatus::default()
            });
            reports.push(NodeReport {
                path: node.path.to_string(),
                factory: stored.factory,
                state,
                last_run,
                status,
            });
        }
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(reports)
    }
}
