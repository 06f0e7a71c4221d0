//! Factories: named plugins that live at a pond path and run commands against the pond.
//!
//! # Layout
//! - [`TypedFactory`]: what a factory author writes: a raw config (serde, with
//!   `deny_unknown_fields`), the validated [`TypedFactory::Settings`] made from it once, a clap
//!   subcommand enum, and [`TypedFactory::task`], which says how each command uses the pond
//!   ([`Task`]: a read, one write transaction, its own small commits, or a long-running loop)
//!   and gives it exactly that access. A blanket impl turns it into the object-safe [`Factory`]
//!   that the [`Registry`] holds.
//! - [`config`]: `${env:...}` expansion and YAML parsing with located errors.
//! - [`state`]: per-node state kept in the pond as versioned JSON; an unknown version is refused.
//! - [`runner`]: `pond run`: load the node's stored config once, plan the command and its
//!   downstream chain, run each as its [`Mode`] says, record runs for `pond status`.
//! - [`service`], `session.rs` and [`follow`]: long-running commands: the command's steps in the
//!   calling thread, each downstream [`Stage`] in a thread of its own, and the loop (pacing,
//!   backoff, de-duplicated logging, periodic maintenance) a following command runs in.
//!
//! # Data flow
//! `pond mknod` → [`Factory::configure`] validates the config (and stores the raw text).
//! `pond run PATH CMD` → [`Factory::configure`] → [`Configured`] (the node's settings, shared by
//! reference) → [`Configured::prepare`] with the command line → [`Prepared`] → the runner calls
//! it with a [`Ctx`] holding the access its [`Mode`] gives → [`RunOutcome`] (summary, per-file
//! [`Problem`]s, notes, the JSON report) → the runner commits, prints, runs the downstream.

pub mod config;
pub mod control;
pub mod follow;
pub mod maintain;
pub mod progress;
pub mod runner;
pub mod runs;
pub mod service;
mod session;
pub mod state;

pub use config::ConfigError;
pub use control::{Control, StopSignal};
pub use pond_metrics::Metrics;
use pond_store::{Node, Pond, Snapshot, StoreError, Transaction, View};
use serde::de::DeserializeOwned;
pub use service::{Service, Stage, StageEnv, StepReport};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// A factory's error, as the runner reports it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a command uses the pond, and so what access its [`Ctx`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reads a snapshot ([`ReadCtx`]); never waits for a writer.
    Read,
    /// Runs in one write transaction ([`WriteCtx`]): committed when it succeeds, rolled back
    /// when it fails.
    Write,
    /// Reads snapshots and commits small transactions itself through a [`Committer`]
    /// ([`CommitCtx`]): for work that waits on something slow (a database), so the writer lock
    /// is held only to commit.
    Commits,
    /// Runs until stopped, one transaction per step, through a [`Service`] ([`ServiceCtx`]).
    LongRunning,
}

/// What a command gets when it runs: its node, the pond as its [`Mode`] gives it, and stdout
/// for human-readable output (a JSON report goes in [`RunOutcome::report`] instead).
pub struct Ctx<'a, P> {
    /// The factory node being run.
    pub node: &'a Node,
    /// The pond: a view, the write transaction, a committer or the service.
    pub pond: P,
    /// Where human-readable output goes (stdout).
    pub out: &'a mut dyn Write,
}

/// The context of a [`Mode::Read`] command.
pub type ReadCtx<'a> = Ctx<'a, &'a View>;
/// The context of a [`Mode::Write`] command (and of each step of a long-running one).
pub type WriteCtx<'a> = Ctx<'a, &'a mut Transaction>;
/// The context of a [`Mode::Commits`] command (and of each run of a [`Stage`]).
pub type CommitCtx<'a> = Ctx<'a, &'a mut Committer>;
/// The context of a [`Mode::LongRunning`] command.
pub type ServiceCtx<'a> = Ctx<'a, &'a mut dyn Service>;

/// The pond for a command that commits its own transactions ([`Mode::Commits`]): snapshots to
/// read from without any lock, and short write transactions to record what it did. The runner
/// holds the node's run lock meanwhile, so no other run of the node interleaves.
pub struct Committer {
    pond: Pond,
    argv: Vec<String>,
    lock_timeout: Duration,
    last_txn: Option<u64>,
}

impl Committer {
    /// A committer recording `argv` with each transaction, waiting up to `lock_timeout` for the
    /// writer lock.
    pub fn new(pond: Pond, argv: Vec<String>, lock_timeout: Duration) -> Self {
        Self {
            pond,
            argv,
            lock_timeout,
            last_txn: None,
        }
    }

    /// A read-only view of the last committed state (drop it soon: it pins the catalog's log).
    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.pond.snapshot()
    }

    /// The pond.
    pub fn pond(&self) -> &Pond {
        &self.pond
    }

    /// Runs `work` in a new write transaction and commits it with `summary`; `work`'s error
    /// rolls it back. Returns `work`'s value and the transaction number (`None` when nothing
    /// changed).
    pub fn commit<T>(
        &mut self,
        summary: &str,
        work: impl FnOnce(&mut Transaction) -> Result<T, BoxError>,
    ) -> Result<(T, Option<u64>), BoxError> {
        let mut txn = self.pond.begin(self.argv.clone(), self.lock_timeout)?;
        let value = work(&mut txn)?;
        let committed = txn.commit(summary)?;
        if committed.is_some() {
            self.last_txn = committed;
        }
        Ok((value, committed))
    }

    /// The last transaction committed through this committer.
    pub fn last_txn(&self) -> Option<u64> {
        self.last_txn
    }
}

/// A problem with one thing (a host file, a pond file) that did not stop the run: what could
/// be done is committed, then the command exits non-zero naming each problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What the problem is about: a path, usually.
    pub subject: String,
    /// What went wrong, and what was done about it.
    pub message: String,
}

impl Problem {
    /// A problem with `subject`.
    pub fn new(subject: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Self {
            subject: subject.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// A remark about a node's input as a whole that is not an error, said once when it starts
/// being true: a fresh node waiting for its base directory (`info`), patterns that match no
/// file (`warn`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub level: NoteLevel,
    pub text: String,
}

/// How loud a [`Note`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteLevel {
    Info,
    Warn,
}

impl Note {
    /// Logs the note at its level, naming `node`.
    pub fn log(&self, node: &str) {
        match self.level {
            NoteLevel::Info => tracing::info!(node, "{}", self.text),
            NoteLevel::Warn => tracing::warn!(node, "{}", self.text),
        }
    }
}

/// What `pond status` shows about a node beyond its last run.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct NodeStatus {
    /// Bytes the node has yet to move (host bytes not mirrored, pond bytes not stored).
    pub lag_bytes: Option<u64>,
    /// Files the node handles.
    pub files: Option<u64>,
    /// The last problem the node recorded in the pond, if it is still unresolved.
    pub last_error: Option<String>,
    /// What is worth knowing but not a problem (a node waiting for its directory, patterns
    /// that match no file); `pond status` shows it and still exits 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a successful run reports back to the runner.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// A short summary recorded with the transaction (`pond log`).
    pub summary: String,
    /// Roll the transaction back instead of committing (a dry run).
    pub discard: bool,
    /// Problems that did not stop the run (an unreadable file, say): what could be done is
    /// committed, then the command exits non-zero naming each of these.
    pub errors: Vec<Problem>,
    /// Remarks about the input as a whole; the runner logs them (once per change under a
    /// long-running command).
    pub notes: Vec<Note>,
    /// A stage of a long-running command stopped at its work budget with more to do: it is run
    /// again right after the next upstream step, so one long catch-up never holds the writer
    /// lock for long.
    pub pending: bool,
    /// The command's JSON report (`--json`): the runner prints it as one document, with the
    /// reports of the downstream stages added under `downstream`.
    pub report: Option<serde_json::Value>,
}

impl RunOutcome {
    /// An outcome with this summary.
    pub fn summary(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            ..Self::default()
        }
    }
}

/// The result of a command.
pub type RunResult = Result<RunOutcome, BoxError>;

type ReadFn<S> = Box<dyn for<'a> FnOnce(&S, ReadCtx<'a>) -> RunResult>;
type WriteFn<S> = Box<dyn for<'a> FnOnce(&S, WriteCtx<'a>) -> RunResult>;
type CommitFn<S> = Box<dyn for<'a> FnOnce(&S, CommitCtx<'a>) -> RunResult>;
type ServiceFn<S> = Box<dyn for<'a> FnOnce(&S, ServiceCtx<'a>) -> RunResult>;

/// How a command runs, with the access its mode gives: the factory's settings and a context.
pub enum Run<S> {
    Read(ReadFn<S>),
    Write(WriteFn<S>),
    Commits(CommitFn<S>),
    LongRunning(ServiceFn<S>),
}

/// One parsed command, ready to run: what [`TypedFactory::task`] makes of a command.
pub struct Task<S> {
    /// The command's name (`sync`), for run records and messages.
    pub name: &'static str,
    pub run: Run<S>,
    /// The command reports JSON ([`RunOutcome::report`]); its downstream stages report JSON
    /// too.
    pub json: bool,
    /// The command is a dry run; its downstream stages run as dry runs.
    pub dry_run: bool,
}

impl<S> Task<S> {
    fn new(name: &'static str, run: Run<S>) -> Self {
        Self {
            name,
            run,
            json: false,
            dry_run: false,
        }
    }

    /// A command that reads a snapshot.
    pub fn read(
        name: &'static str,
        run: impl for<'a> FnOnce(&S, ReadCtx<'a>) -> RunResult + 'static,
    ) -> Self {
        Self::new(name, Run::Read(Box::new(run)))
    }

    /// A command that runs in one write transaction.
    pub fn write(
        name: &'static str,
        run: impl for<'a> FnOnce(&S, WriteCtx<'a>) -> RunResult + 'static,
    ) -> Self {
        Self::new(name, Run::Write(Box::new(run)))
    }

    /// A command that commits its own small transactions.
    pub fn commits(
        name: &'static str,
        run: impl for<'a> FnOnce(&S, CommitCtx<'a>) -> RunResult + 'static,
    ) -> Self {
        Self::new(name, Run::Commits(Box::new(run)))
    }

    /// A command that runs until stopped.
    pub fn long_running(
        name: &'static str,
        run: impl for<'a> FnOnce(&S, ServiceCtx<'a>) -> RunResult + 'static,
    ) -> Self {
        Self::new(name, Run::LongRunning(Box::new(run)))
    }

    /// Sets whether the command reports JSON.
    pub fn json(mut self, json: bool) -> Self {
        self.json = json;
        self
    }

    /// Sets whether the command is a dry run.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// A command with the node's settings bound in: what the runner runs.
pub struct Prepared {
    /// The command's name.
    pub name: &'static str,
    pub json: bool,
    pub dry_run: bool,
    pub(crate) run: Run<()>,
}

impl Prepared {
    /// How the command uses the pond.
    pub fn mode(&self) -> Mode {
        match self.run {
            Run::Read(_) => Mode::Read,
            Run::Write(_) => Mode::Write,
            Run::Commits(_) => Mode::Commits,
            Run::LongRunning(_) => Mode::LongRunning,
        }
    }

    /// Whether the command changes the pond.
    pub fn writes(&self) -> bool {
        self.mode() != Mode::Read
    }

    /// Binds `settings` into `task`'s function.
    fn bind<S: Send + Sync + 'static>(task: Task<S>, settings: Arc<S>) -> Self {
        let run = match task.run {
            Run::Read(f) => Run::Read(Box::new(move |_: &(), ctx: ReadCtx<'_>| f(&settings, ctx))),
            Run::Write(f) => {
                Run::Write(Box::new(move |_: &(), ctx: WriteCtx<'_>| f(&settings, ctx)))
            }
            Run::Commits(f) => Run::Commits(Box::new(move |_: &(), ctx: CommitCtx<'_>| {
                f(&settings, ctx)
            })),
            Run::LongRunning(f) => {
                Run::LongRunning(Box::new(move |_: &(), ctx: ServiceCtx<'_>| {
                    f(&settings, ctx)
                }))
            }
        };
        Self {
            name: task.name,
            json: task.json,
            dry_run: task.dry_run,
            run,
        }
    }
}

/// A factory as the registry and the runner see it. Implement [`TypedFactory`] instead.
pub trait Factory: Send + Sync {
    /// The name used in `pond mknod NAME`.
    fn name(&self) -> &'static str;
    /// One line for `pond list-factories`.
    fn description(&self) -> &'static str;
    /// The commands, as a clap command with one subcommand each (shown by `pond run PATH --help`).
    fn commands(&self, bin_name: &str) -> clap::Command;
    /// Parses and validates a node's expanded config text, once: everything else about the
    /// node works from the result.
    fn configure(
        &self,
        config_text: &str,
        source_name: &str,
    ) -> Result<Arc<dyn Configured>, ConfigError>;
}

/// A factory node's validated settings, and what can be done with them.
pub trait Configured: Send + Sync {
    /// Factory node paths to run after a writing command of this node commits.
    fn downstream(&self) -> Vec<String>;
    /// The command `invocation` asks for, with the settings bound in.
    fn prepare(self: Arc<Self>, invocation: Invocation<'_>) -> Result<Prepared, PrepareError>;
    /// The node as a [`Stage`] kept alive between the steps of a long-running upstream; `None`
    /// when the factory has none (its downstream command then runs afresh each time).
    fn stage(&self, node: &Node, env: &StageEnv) -> Option<Result<Box<dyn Stage>, BoxError>>;
    /// What `pond status` shows about `node`.
    fn status(&self, view: &View, node: &Node) -> Result<NodeStatus, BoxError>;
    /// Periodic upkeep of the node in `ctx.txn` (retention): run by `pond maintain` and by
    /// `follow`. Returns a summary of what it did, if anything.
    fn maintain(&self, ctx: &mut MaintainContext<'_>) -> Result<Option<String>, BoxError>;
    /// Which of `files` node `node` has not finished reading (retention keeps them).
    fn unsent(&self, view: &View, node: &Node, files: &[Node]) -> Result<Vec<bool>, BoxError>;
}

/// How a command is chosen: typed by the operator, or as a downstream of another node.
#[derive(Clone, Copy, Debug)]
pub enum Invocation<'a> {
    /// `pond run PATH ARGS...`
    Args {
        bin_name: &'a str,
        args: &'a [String],
    },
    /// Run because an upstream node ran; `json` when the upstream reports JSON, `dry_run` when
    /// the upstream was a dry run (the downstream must then change nothing either).
    Downstream { json: bool, dry_run: bool },
}

/// Why a command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Includes `--help`, which is not a failure: the caller prints it and exits 0.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    #[error("factory {factory} cannot run as a downstream stage")]
    NotChainable { factory: &'static str },
}

/// What [`Configured::maintain`] works with.
pub struct MaintainContext<'a> {
    /// The node being maintained.
    pub node: &'a Node,
    /// The maintenance transaction.
    pub txn: &'a mut Transaction,
    /// Which of the given files some factory node of the pond has not finished reading: the
    /// answer of every node's [`Configured::unsent`] (a node that cannot answer counts as
    /// needing them all).
    pub unsent: &'a dyn Fn(&View, &[Node]) -> Vec<bool>,
}

/// A factory with a typed config and typed commands.
pub trait TypedFactory: Send + Sync + 'static {
    /// The config file's type; use `#[serde(deny_unknown_fields)]` and document every field.
    type Config: DeserializeOwned;
    /// The validated config: made once per node and run by [`TypedFactory::settings`], then
    /// passed by reference to everything the factory does.
    type Settings: Send + Sync + 'static;
    /// The commands.
    type Command: clap::Subcommand + Send + 'static;

    /// The name used in `pond mknod NAME`.
    const NAME: &'static str;
    /// One line for `pond list-factories`.
    const DESCRIPTION: &'static str;

    /// Checks what serde cannot (patterns, paths, value ranges) and makes the settings.
    fn settings(config: Self::Config, source_name: &str) -> Result<Self::Settings, ConfigError>;
    /// How `command` runs (its [`Mode`] and function), whether it is a dry run, whether it
    /// reports JSON.
    fn task(command: Self::Command) -> Task<Self::Settings>;
    /// Factory node paths to run after a writing command commits (default: none).
    fn downstream(_settings: &Self::Settings) -> Vec<String> {
        Vec::new()
    }
    /// The command to run as a downstream stage, if this factory can be one.
    fn as_downstream(_json: bool, _dry_run: bool) -> Option<Self::Command> {
        None
    }
    /// A [`Stage`] that does what the downstream command does, kept alive between the steps
    /// of a long-running upstream so connections and runtimes are made once (default: none;
    /// the command then runs afresh after each step).
    fn stage(
        _settings: &Self::Settings,
        _node: &Node,
        _env: &StageEnv,
    ) -> Option<Result<Box<dyn Stage>, BoxError>> {
        None
    }
    /// What `pond status` shows about the node beyond its last run (default: nothing).
    fn status(
        _settings: &Self::Settings,
        _view: &View,
        _node: &Node,
    ) -> Result<NodeStatus, BoxError> {
        Ok(NodeStatus::default())
    }
    /// Periodic upkeep (see [`Configured::maintain`]; default: nothing).
    fn maintain(
        _settings: &Self::Settings,
        _ctx: &mut MaintainContext<'_>,
    ) -> Result<Option<String>, BoxError> {
        Ok(None)
    }
    /// Which of `files` this node has not finished reading (see [`Configured::unsent`];
    /// default: none, for a factory that reads no pond files).
    fn unsent(
        _settings: &Self::Settings,
        _view: &View,
        _node: &Node,
        files: &[Node],
    ) -> Result<Vec<bool>, BoxError> {
        Ok(vec![false; files.len()])
    }
}

/// The settings of one node of the typed factory `F`.
struct TypedConfigured<F: TypedFactory> {
    settings: Arc<F::Settings>,
}

impl<F: TypedFactory> Configured for TypedConfigured<F> {
    fn downstream(&self) -> Vec<String> {
        F::downstream(&self.settings)
    }

    fn prepare(self: Arc<Self>, invocation: Invocation<'_>) -> Result<Prepared, PrepareError> {
        let command = match invocation {
            Invocation::Args { bin_name, args } => {
                use clap::FromArgMatches;
                let matches = commands::<F>(bin_name).try_get_matches_from(
                    std::iter::once(bin_name.to_string()).chain(args.iter().cloned()),
                )?;
                F::Command::from_arg_matches(&matches)?
            }
            Invocation::Downstream { json, dry_run } => F::as_downstream(json, dry_run)
                .ok_or(PrepareError::NotChainable { factory: F::NAME })?,
        };
        Ok(Prepared::bind(F::task(command), self.settings.clone()))
    }

    fn stage(&self, node: &Node, env: &StageEnv) -> Option<Result<Box<dyn Stage>, BoxError>> {
        F::stage(&self.settings, node, env)
    }

    fn status(&self, view: &View, node: &Node) -> Result<NodeStatus, BoxError> {
        F::status(&self.settings, view, node)
    }

    fn maintain(&self, ctx: &mut MaintainContext<'_>) -> Result<Option<String>, BoxError> {
        F::maintain(&self.settings, ctx)
    }

    fn unsent(&self, view: &View, node: &Node, files: &[Node]) -> Result<Vec<bool>, BoxError> {
        F::unsent(&self.settings, view, node, files)
    }
}

fn commands<F: TypedFactory>(bin_name: &str) -> clap::Command {
    use clap::Subcommand;
    // `augment_subcommands` sets `about` from the enum's doc comment; the factory's
    // description is what the operator should see, so it goes on last.
    F::Command::augment_subcommands(
        clap::Command::new(bin_name.to_string())
            .subcommand_required(true)
            .arg_required_else_help(true),
    )
    .about(F::DESCRIPTION)
    .long_about(F::DESCRIPTION)
}

impl<F: TypedFactory> Factory for F {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn description(&self) -> &'static str {
        F::DESCRIPTION
    }

    fn commands(&self, bin_name: &str) -> clap::Command {
        commands::<F>(bin_name)
    }

    fn configure(
        &self,
        config_text: &str,
        source_name: &str,
    ) -> Result<Arc<dyn Configured>, ConfigError> {
        let config: F::Config = config::parse_yaml(config_text, source_name)?;
        let settings = F::settings(config, source_name)?;
        Ok(Arc::new(TypedConfigured::<F> {
            settings: Arc::new(settings),
        }))
    }
}

/// The list of factories a `pond` binary knows, in one place.
pub struct Registry {
    factories: Vec<&'static dyn Factory>,
}

impl Registry {
    /// A registry of exactly these factories.
    pub fn new(factories: Vec<&'static dyn Factory>) -> Self {
        Self { factories }
    }

    /// The factory named `name`.
    pub fn get(&self, name: &str) -> Option<&'static dyn Factory> {
        self.factories.iter().copied().find(|f| f.name() == name)
    }

    /// Every factory, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &'static dyn Factory> + '_ {
        self.factories.iter().copied()
    }

    /// The names, comma-separated, for error messages.
    pub fn names(&self) -> String {
        let names: Vec<_> = self.iter().map(|f| f.name()).collect();
        if names.is_empty() {
            "none are registered".to_string()
        } else {
            names.join(", ")
        }
    }
}
