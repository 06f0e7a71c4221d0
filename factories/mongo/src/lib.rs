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
    BoxError, ConfigError, Mode, NodeStatus, RunContext, RunOutcome, Stage, StageEnv, TypedFactory,
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
    type Command = Command;
    const NAME: &'static str = "mongo";
    const DESCRIPTION: &'static str =
        "store each new JSON line of pond files in MongoDB, exactly once";

    fn check(config: &Config, source_name: &str) -> Result<(), ConfigError> {
        Settings::from_config(config, source_name).map(|_| ())
    }

    fn as_downstream(json: bool, dry_run: bool) -> Option<Command> {
        Some(Command::Sync { dry_run, json })
    }

    fn dry_run(command: &Command) -> bool {
        matches!(command, Command::Sync { dry_run: true, .. })
    }

    fn stage(
        config: &Config,
        command: &Command,
        node: &pond_store::Node,
        env: &StageEnv,
    ) -> Option<Result<Box<dyn Stage>, BoxError>> {
        if !matches!(command, Command::Sync { dry_run: false, .. }) {
            return None;
        }
        let path = node.path.to_string();
        Some(
            Settings::from_config(config, &path)
                .map(|settings| {
                    Box::new(stage::MongoStage::new(&settings, &path, env)) as Box<dyn Stage>
                })
                .map_err(BoxError::from),
        )
    }

    fn mode(command: &Command) -> Mode {
        match command {
            Command::Sync { .. } => Mode::Commits,
            Command::Status { .. } => Mode::Read,
            Command::Reset { .. } => Mode::Write,
        }
    }

    fn unsent(
        view: &pond_store::View,
        node: &pond_store::Node,
        config: &Config,
        files: &[pond_store::Node],
    ) -> Result<Vec<bool>, BoxError> {
        let settings = Settings::from_config(config, &node.path.to_string())?;
        Ok(sync::unsent(view, node, &settings, files)?)
    }

    fn json(command: &Command) -> bool {
        matches!(
            command,
            Command::Sync { json: true, .. } | Command::Status { json: true }
        )
    }

    /// Lag: pond bytes past the cursors; the last error recorded on a cursor. Looks at the
    /// files a run would (unsent or changed), not at every file of the glob; `files` counts
    /// those.
    fn status(
        view: &pond_store::View,
        node: &pond_store::Node,
        config: &Config,
    ) -> Result<NodeStatus, BoxError> {
        let settings = Settings::from_config(config, &node.path.to_string())?;
        let (positions, _) = sync::live_positions(view, node, &settings)?;
        Ok(NodeStatus {
            lag_bytes: Some(positions.iter().map(sync::Position::lag).sum()),
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

    fn run(
        ctx: &mut RunContext<'_>,
        config: &Config,
        command: Command,
    ) -> Result<RunOutcome, BoxError> {
        let settings = Settings::from_config(config, &ctx.node.path.to_string())?;
        match command {
            Command::Sync { dry_run, json } => run_sync(ctx, &settings, dry_run, json),
            Command::Status { json } => run_status(ctx, &settings, json),
            Command::Reset { path, offset } => run_reset(ctx, &path, offset),
        }
    }
}

fn run_sync(
    ctx: &mut RunContext<'_>,
    settings: &Settings,
    dry_run: bool,
    json: bool,
) -> Result<RunOutcome, BoxError> {
    let node = ctx.node.clone();
    let committer = ctx
        .access
        .committer()
        .ok_or("sync commits its own transactions")?;
    let report = sync::sync(committer, &node, settings, dry_run)?;
    if json {
        ctx.write_json(&report)?;
    } else {
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
            report
                .files
                .iter()
                .map(|f| f.size.saturating_sub(f.cursor))
                .sum::<u64>()
        )?;
    }
    Ok(RunOutcome {
        summary: format!(
            "mongo sync {}.{}: {} inserted, {} duplicates, {} dead-lettered",
            settings.database,
            settings.collection,
            report.inserted,
            report.duplicates,
            report.dead_lettered
        ),
        discard: dry_run,
        errors: report.errors,
        pending: false,
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

fn run_status(
    ctx: &mut RunContext<'_>,
    settings: &Settings,
    json: bool,
) -> Result<RunOutcome, BoxError> {
    let view = ctx.access.view()?;
    let rows: Vec<StatusRow> = sync::all_positions(view, ctx.node, settings)?
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
        ctx.write_json(&serde_json::json!({ "files": rows }))?;
    } else {
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
    }
    Ok(RunOutcome::default())
}

fn run_reset(ctx: &mut RunContext<'_>, path: &str, offset: u64) -> Result<RunOutcome, BoxError> {
    let factory_id = ctx.node.id;
    let txn = ctx
        .access
        .txn()
        .ok_or("reset needs the write transaction")?;
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
            format: 1,
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
    Ok(RunOutcome {
        summary: format!("mongo reset {path} to {offset}"),
        ..RunOutcome::default()
    })
}
