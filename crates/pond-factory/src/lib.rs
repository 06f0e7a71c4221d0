//! Factories: named plugins that live at a pond path and run commands against the pond.
//!
//! # Layout
//! - [`TypedFactory`]: what a factory author writes: a typed config (serde, with
//!   `deny_unknown_fields`), a clap subcommand enum, and `run`. A blanket impl turns it into the
//!   object-safe [`Factory`] that the [`Registry`] holds.
//! - [`config`]: `${env:...}` expansion and YAML parsing with located errors.
//! - [`runner`]: `pond run`: load the node's stored config, expand it, parse the command, run it
//!   as its [`Mode`] says (on a snapshot; in one transaction, committed on success and rolled
//!   back on error; or committing its own small transactions through a [`Committer`]), then run
//!   the downstream nodes the config names, each on its own.
//! - [`service`] and `session.rs`: long-running commands (`follow`): the command's steps in the
//!   calling thread, each downstream [`Stage`] in a thread of its own.
//!
//! # Data flow
//! `pond mknod` → [`Factory::prepare`] validates the config (and stores the raw text).
//! `pond run PATH CMD` → [`Factory::prepare`] with the args → [`Prepared`] (typed config +
//! command) → [`Prepared::run`] with a [`RunContext`] → [`RunOutcome`] (the transaction summary).

pub mod config;
pub mod control;
pub mod maintain;
pub mod progress;
pub mod runner;
pub mod runs;
pub mod service;
mod session;

pub use config::ConfigError;
pub use control::{Control, StopSignal};
pub use pond_metrics::Metrics;
use pond_store::{Node, Pond, Snapshot, StoreError, Transaction, View};
use serde::de::DeserializeOwned;
pub use service::{Service, Stage, StageEnv, StepReport};
use std::io::Write;
use std::time::Duration;

/// A factory's error, as the runner reports it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a command uses the pond, and so what [`Access`] it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reads a snapshot; never waits for a writer.
    Read,
    /// Runs in one write transaction: committed when it succeeds, rolled back when it fails.
    Write,
    /// Reads snapshots and commits small transactions itself through a [`Committer`]: for work
    /// that waits on something slow (a database), so the writer lock is held only to commit.
    Commits,
    /// Runs until stopped, one transaction per step, through a [`Service`].
    LongRunning,
}

/// Access to the pond during a run: a snapshot for read-only commands, the write transaction
/// for commands that write, a [`Committer`] for commands that commit their own transactions,
/// the [`Service`] for long-running ones (which make many transactions).
pub enum Access<'a> {
    Read(&'a Snapshot),
    Write(&'a mut Transaction),
    Commits(&'a mut Committer),
    Service(&'a mut dyn Service),
}

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

impl Access<'_> {
    /// The read API (a write transaction sees its own changes); a long-running command has no
    /// single view, and takes snapshots from its [`Service`] instead.
    pub fn view(&self) -> Result<&View, BoxError> {
        match self {
            Access::Read(snapshot) => Ok(snapshot),
            Access::Write(txn) => Ok(txn),
            Access::Commits(_) | Access::Service(_) => {
                Err("this command has no single view of the pond: it takes snapshots".into())
            }
        }
    }

    /// The write transaction; `None` for read-only and long-running commands.
    pub fn txn(&mut self) -> Option<&mut Transaction> {
        match self {
            Access::Write(txn) => Some(txn),
            _ => None,
        }
    }

    /// The committer of a [`Mode::Commits`] command; `None` otherwise.
    pub fn committer(&mut self) -> Option<&mut Committer> {
        match self {
            Access::Commits(committer) => Some(&mut **committer),
            _ => None,
        }
    }

    /// The service of a long-running command; `None` otherwise.
    pub fn service(&mut self) -> Option<&mut dyn Service> {
        match self {
            Access::Service(service) => Some(&mut **service),
            _ => None,
        }
    }
}

/// Everything a command gets when it runs.
pub struct RunContext<'a> {
    /// The factory node being run.
    pub node: &'a Node,
    /// The pond.
    pub access: Access<'a>,
    /// Where the command's report goes (stdout).
    pub out: &'a mut dyn Write,
}

impl RunContext<'_> {
    /// Writes `report` to stdout as one JSON document (a factory's `--json` output).
    pub fn write_json(&mut self, report: &impl serde::Serialize) -> Result<(), BoxError> {
        serde_json::to_writer(&mut *self.out, report)?;
        writeln!(self.out)?;
        Ok(())
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
    pub errors: Vec<String>,
    /// A stage of a long-running command stopped at its work budget with more to do: it is run
    /// again right after the next upstream step, so one long catch-up never holds the writer
    /// lock for long.
    pub pending: bool,
}

/// A factory as the registry and the runner see it. Implement [`TypedFactory`] instead.
pub trait Factory: Send + Sync {
    /// The name used in `pond mknod NAME`.
    fn name(&self) -> &'static str;
    /// One line for `pond list-factories`.
    fn description(&self) -> &'static str;
    /// The commands, as a clap command with one subcommand each (shown by `pond run PATH --help`).
    fn commands(&self, bin_name: &str) -> clap::Command;
    /// What `pond status` shows about `node` (configured by the expanded `config_text`).
    fn status(
        &self,
        config_text: &str,
        source_name: &str,
        view: &View,
        node: &Node,
    ) -> Result<NodeStatus, BoxError>;
    /// Periodic upkeep of `node` in `txn` (retention): run by `pond maintain` and by `follow`.
    /// `unsent` tells which files some factory node has not finished reading. Returns a
    /// summary of what it did, if anything.
    fn maintain(
        &self,
        config_text: &str,
        source_name: &str,
        ctx: &mut MaintainContext<'_>,
    ) -> Result<Option<String>, BoxError>;
    /// Which of `files` node `node` has not finished reading (retention keeps them).
    fn unsent(
        &self,
        config_text: &str,
        source_name: &str,
        view: &View,
        node: &Node,
        files: &[Node],
    ) -> Result<Vec<bool>, BoxError>;
    /// Parses and validates expanded config text and, when `args` is given, the command line.
    /// `args: None` validates the config only (what `pond mknod` does).
    fn prepare(
        &self,
        config_text: &str,
        source_name: &str,
        args: Option<Invocation<'_>>,
    ) -> Result<Option<Box<dyn Prepared>>, PrepareError>;
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

/// Why a config or command line was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Includes `--help`, which is not a failure: the caller prints it and exits 0.
    #[error("{0}")]
    Usage(#[from] clap::Error),
    #[error("factory {factory} cannot run as a downstream stage")]
    NotChainable { factory: &'static str },
}

/// What [`Factory::maintain`] works with.
pub struct MaintainContext<'a> {
    /// The node being maintained.
    pub node: &'a Node,
    /// The maintenance transaction.
    pub txn: &'a mut Transaction,
    /// Which of the given files some factory node of the pond has not finished reading: the
    /// answer of every node's [`Factory::unsent`] (a node that cannot answer counts as needing
    /// them all).
    pub unsent: &'a dyn Fn(&View, &[Node]) -> Vec<bool>,
}

/// A validated config and command, ready to run.
pub trait Prepared {
    /// How the command uses the pond.
    fn mode(&self) -> Mode;
    /// Whether the command changes the pond.
    fn writes(&self) -> bool {
        self.mode() != Mode::Read
    }
    /// Whether the command reports JSON.
    fn json(&self) -> bool;
    /// Whether the command is a dry run.
    fn dry_run(&self) -> bool;
    /// Factory nodes to run after this one commits.
    fn downstream(&self) -> Vec<String>;
    /// Runs the command.
    fn run(self: Box<Self>, ctx: &mut RunContext<'_>) -> Result<RunOutcome, BoxError>;
    /// This downstream command as a [`Stage`] kept alive between the steps of a long-running
    /// upstream; `None` when the factory has no such stage (the command then runs afresh each
    /// step).
    fn into_stage(
        self: Box<Self>,
        node: &Node,
        env: &StageEnv,
    ) -> Option<Result<Box<dyn Stage>, BoxError>>;
}

/// A factory with a typed config and typed commands.
pub trait TypedFactory: Send + Sync + 'static {
    /// The config file's type; use `#[serde(deny_unknown_fields)]` and document every field.
    type Config: DeserializeOwned + Send + 'static;
    /// The commands.
    type Command: clap::Subcommand + Send + 'static;

    /// The name used in `pond mknod NAME`.
    const NAME: &'static str;
    /// One line for `pond list-factories`.
    const DESCRIPTION: &'static str;

    /// Checks what serde cannot (patterns, paths, value ranges).
    fn check(_config: &Self::Config, _source_name: &str) -> Result<(), ConfigError> {
        Ok(())
    }
    /// Factory node paths to run after this one commits (default: none).
    fn downstream(_config: &Self::Config) -> Vec<String> {
        Vec::new()
    }
    /// The command to run as a downstream stage, if this factory can be one.
    fn as_downstream(_json: bool, _dry_run: bool) -> Option<Self::Command> {
        None
    }
    /// Whether `command` is a dry run (default: no); its downstream stages run as dry runs.
    fn dry_run(_command: &Self::Command) -> bool {
        false
    }
    /// How `command` uses the pond (default: one write transaction).
    fn mode(_command: &Self::Command) -> Mode {
        Mode::Write
    }
    /// Whether `command` reports JSON (default: no).
    fn json(_command: &Self::Command) -> bool {
        false
    }
    /// A [`Stage`] that does what `command` does (as a downstream), kept alive between the
    /// steps of a long-running upstream so connections and runtimes are made once (default:
    /// none; the command then runs afresh after each step).
    fn stage(
        _config: &Self::Config,
        _command: &Self::Command,
        _node: &Node,
        _env: &StageEnv,
    ) -> Option<Result<Box<dyn Stage>, BoxError>> {
        None
    }
    /// What `pond status` shows about the node beyond its last run (default: nothing).
    fn status(_view: &View, _node: &Node, _config: &Self::Config) -> Result<NodeStatus, BoxError> {
        Ok(NodeStatus::default())
    }
    /// Periodic upkeep (see [`Factory::maintain`]; default: nothing).
    fn maintain(
        _ctx: &mut MaintainContext<'_>,
        _config: &Self::Config,
    ) -> Result<Option<String>, BoxError> {
        Ok(None)
    }
    /// Which of `files` this node has not finished reading (see [`Factory::unsent`]; default:
    /// none, for a factory that reads no pond files).
    fn unsent(
        _view: &View,
        _node: &Node,
        _config: &Self::Config,
        files: &[Node],
    ) -> Result<Vec<bool>, BoxError> {
        Ok(vec![false; files.len()])
    }
    /// Runs `command`.
    fn run(
        ctx: &mut RunContext<'_>,
        config: &Self::Config,
        command: Self::Command,
    ) -> Result<RunOutcome, BoxError>;
}

struct TypedPrepared<F: TypedFactory> {
    config: F::Config,
    command: F::Command,
}

impl<F: TypedFactory> Prepared for TypedPrepared<F> {
    fn mode(&self) -> Mode {
        F::mode(&self.command)
    }
    fn json(&self) -> bool {
        F::json(&self.command)
    }
    fn dry_run(&self) -> bool {
        F::dry_run(&self.command)
    }
    fn downstream(&self) -> Vec<String> {
        F::downstream(&self.config)
    }
    fn run(self: Box<Self>, ctx: &mut RunContext<'_>) -> Result<RunOutcome, BoxError> {
        let this = *self;
        F::run(ctx, &this.config, this.command)
    }
    fn into_stage(
        self: Box<Self>,
        node: &Node,
        env: &StageEnv,
    ) -> Option<Result<Box<dyn Stage>, BoxError>> {
        F::stage(&self.config, &self.command, node, env)
    }
}

impl<F: TypedFactory> Factory for F {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn description(&self) -> &'static str {
        F::DESCRIPTION
    }

    fn commands(&self, bin_name: &str) -> clap::Command {
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

    fn status(
        &self,
        config_text: &str,
        source_name: &str,
        view: &View,
        node: &Node,
    ) -> Result<NodeStatus, BoxError> {
        let config: F::Config = config::parse_yaml(config_text, source_name)?;
        F::status(view, node, &config)
    }

    fn maintain(
        &self,
        config_text: &str,
        source_name: &str,
        ctx: &mut MaintainContext<'_>,
    ) -> Result<Option<String>, BoxError> {
        let config: F::Config = config::parse_yaml(config_text, source_name)?;
        F::maintain(ctx, &config)
    }

    fn unsent(
        &self,
        config_text: &str,
        source_name: &str,
        view: &View,
        node: &Node,
        files: &[Node],
    ) -> Result<Vec<bool>, BoxError> {
        let config: F::Config = config::parse_yaml(config_text, source_name)?;
        F::unsent(view, node, &config, files)
    }

    fn prepare(
        &self,
        config_text: &str,
        source_name: &str,
        args: Option<Invocation<'_>>,
    ) -> Result<Option<Box<dyn Prepared>>, PrepareError> {
        let config: F::Config = config::parse_yaml(config_text, source_name)?;
        F::check(&config, source_name)?;
        let command = match args {
            None => return Ok(None),
            Some(Invocation::Args { bin_name, args }) => {
                use clap::FromArgMatches;
                let matches = self.commands(bin_name).try_get_matches_from(
                    std::iter::once(bin_name.to_string()).chain(args.iter().cloned()),
                )?;
                F::Command::from_arg_matches(&matches)?
            }
            Some(Invocation::Downstream { json, dry_run }) => F::as_downstream(json, dry_run)
                .ok_or(PrepareError::NotChainable { factory: F::NAME })?,
        };
        Ok(Some(Box::new(TypedPrepared::<F> { config, command })))
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
