//! The `mongo` factory: tails new pond bytes and stores each JSON line in MongoDB exactly once.
//!
//! # Layout
//! - [`config`]: the YAML config and its validated form ([`config::Settings`]).
//! - [`format`]: one line into documents (presets for the Hyperliquid node's files, generic
//!   `jsonl`), with deterministic `_id`s and the entry's own timestamps.
//! - [`lines`]: a byte stream into lines, in bounded memory (a line too long for MongoDB is
//!   dead-lettered by its length).
//! - [`sink`]: batches into MongoDB with retries, duplicate handling and dead letters.
//! - [`sync`]: the pipeline and the per-file cursors kept in the pond.
//! - [`stage`]: the same pipeline kept alive across the steps of `logfile follow`.
//! - This file: the factory and its commands (`sync`, `status`, `reset`).

pub mod config;
pub mod format;
pub mod lines;
pub mod sink;
pub mod stage;
pub mod sync;

use config::{Config, Settings};
use pond_factory::{
    BoxError, CommitCtx, ConfigError, NodeStatus, ReadCtx, RunOutcome, RunResult, Stage, StageEnv,
    Task, TypedFactory, WriteCtx,
};
use serde::Serialize;

/// The factory value registered in `pond`.
pub struct Mongo;

/// The commands of a `mongo` node.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store every new complete line in MongoDB, then exit (cursors commit in one transaction).
    Sync {
        /// Parse and count, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON document (see docs/mongo.md).
        #[arg(long)]
        json: bool,
    },
    /// Per source file: size, cursor, lag in bytes, last error.
    Status {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Re-ingest a file from a byte offset (a line start) on the next sync.
    Reset {
        /// Pond path of the source file.
        path: String,
        /// Byte offset to restart from (0, or just after a newline).
        #[arg(long)]
        offset: u64,
    },
}

impl TypedFactory for Mongo {
    type Config = Config;
    type Settings = Settings;
    type Command = Command;
    const NAME: &'static str = "mongo";
    const DESCRIPTION: &'static str =
        "store each new JSON line of pond files in MongoDB, exactly once";

    fn settings(config: Config, source_name: &str) -> Result<Settings, ConfigError> {
        Settings::from_config(&config, source_name)
    }

    fn task(command: Command) -> Task<Settings> {
        match command {
            Command::Sync { dry_run, json } => Task::commits("sync", move |settings, ctx| {
                run_sync(ctx, settings, dry_run, json)
            })
            .json(json)
            .dry_run(dry_run),
            Command::Status { json } => Task::read("status", move |settings, ctx| {
                run_status(ctx, settings, json)
            })
            .json(json),
            Command::Reset { path, offset } => {
                Task::write("reset", move |_, ctx| run_reset(ctx, &path, offset))
            }
        }
    }

    fn as_downstream(json: bool, dry_run: bool) -> Option<Command> {
        Some(Command::Sync { dry_run, json })
    }

    fn stage(
        settings: &Settings,
        node: &pond_store::Node,
        env: &StageEnv,
    ) -> Option<Result<Box<dyn Stage>, BoxError>> {
        let stage = stage::MongoStage::new(settings, &node.path.to_string(), env);
        Some(Ok(Box::new(stage)))
    }

    fn unsent(
        settings: &Settings,
        view: &pond_store::View,
        node: &pond_store::Node,
        files: &[pond_store::Node],
    ) -> Result<Vec<bool>, BoxError> {
        Ok(sync::unsent(view, node, settings, files)?)
    }

    /// Lag: pond bytes past the cursors; the last error recorded on a cursor. Looks at the
    /// files a run would (unsent or changed), not at every file of the glob; `files` counts
    /// those.
    fn status(
        settings: &Settings,
        view: &pond_store::View,
        node: &pond_store::Node,
    ) -> Result<NodeStatus, BoxError> {
        let (positions, _) = sync::live_positions(view, node, settings)?;
        Ok(NodeStatus {
            lag_bytes: Some(sync::lag_of(&positions)),
            files: Some(positions.len() as u64),
            last_error: positions.iter().find_map(|p| {
                p.cursor
                    .last_error
                    .as_ref()
                    .map(|error| format!("{}: {error}", p.file.path))
            }),
            note: None,
        })
    }
}

fn run_sync(ctx: CommitCtx<'_>, settings: &Settings, dry_run: bool, json: bool) -> RunResult {
    let report = sync::sync(ctx.pond, ctx.node, settings, dry_run)?;
    if !json {
        writeln!(
            ctx.out,
            "{}{}.{}: {} inserted, {} duplicates, {} dead-lettered, {} retries; {} file(s), {} bytes behind",
            if dry_run { "dry run: " } else { "" },
            settings.database,
            settings.collection,
            report.inserted,
            report.duplicates,
            report.dead_lettered,
            report.retries,
            report.files.len(),
            report.behind()
        )?;
    }
    Ok(RunOutcome {
        summary: report.summary(settings),
        discard: dry_run,
        report: json.then(|| serde_json::to_value(&report)).transpose()?,
        errors: report.errors,
        ..RunOutcome::default()
    })
}

#[derive(Serialize)]
struct StatusRow {
    path: String,
    size: u64,
    cursor: u64,
    lag: u64,
    last_error: Option<String>,
}

fn run_status(ctx: ReadCtx<'_>, settings: &Settings, json: bool) -> RunResult {
    let rows: Vec<StatusRow> = sync::all_positions(ctx.pond, ctx.node, settings)?
        .into_iter()
        .map(|p| StatusRow {
            path: p.file.path.to_string(),
            size: p.size,
            cursor: p.cursor.offset,
            lag: p.lag(),
            last_error: p.cursor.last_error,
        })
        .collect();
    if json {
        return Ok(RunOutcome {
            report: Some(serde_json::json!({ "files": rows })),
            ..RunOutcome::default()
        });
    }
    writeln!(
        ctx.out,
        "{:>14} {:>14} {:>12}  path",
        "size", "cursor", "lag"
    )?;
    for row in &rows {
        writeln!(
            ctx.out,
            "{:>14} {:>14} {:>12}  {}",
            row.size, row.cursor, row.lag, row.path
        )?;
        if let Some(error) = &row.last_error {
            writeln!(ctx.out, "{:>43}  last error: {error}", "")?;
        }
    }
    Ok(RunOutcome::default())
}

fn run_reset(ctx: WriteCtx<'_>, path: &str, offset: u64) -> RunResult {
    let factory_id = ctx.node.id;
    let txn = ctx.pond;
    let path = pond_store::PondPath::parse(path)?;
    let node = txn.resolve_file(&path)?;
    let size = txn.file_len(node.id)?;
    if offset > size {
        return Err(format!("{path}: offset {offset} is beyond its size {size}").into());
    }
    if offset > 0 && txn.read_bytes(node.id, offset - 1, offset)? != b"\n" {
        return Err(format!("{path}: offset {offset} is not the start of a line").into());
    }
    sync::save_cursor(
        txn,
        factory_id,
        node.id,
        &sync::Cursor {
            offset,
            ..sync::Cursor::default()
        },
    )?;
    // The next run must look at this file again, whatever changed since.
    sync::reopen(txn, factory_id, node.id)?;
    writeln!(
        ctx.out,
        "{path}: cursor set to {offset}; the next sync re-sends from there"
    )?;
    Ok(RunOutcome::summary(format!(
        "mongo reset {path} to {offset}"
    )))
}
