//! The `logfile` factory: mirrors rotating host logs into the pond.
//!
//! One node mirrors one source: an append-only active file (or, in the Hyperliquid node layout,
//! every hour file) plus its immutable archives. Each `sync` is one process and one transaction;
//! everything it knows between runs lives in the pond (node state, see [`state`]).
//!
//! # Layout
//! - [`config`]: the YAML config and its validated form ([`config::Source`]).
//! - [`scan`]: listing host files with their identities.
//! - [`check`]: does a host file still start with the bytes the pond holds? (outboard samples
//!   or a full re-hash).
//! - [`sync`]: matching tracked files to host files, then renames, appends and new files.
//! - [`state`]: what is remembered per mirrored file (live files apart from gone ones).
//! - [`retention`]: removing files long gone from the host once nothing needs them.
//! - [`follow`]: the long-running `follow` command (watch, sync in small steps, feed the
//!   downstream stages in-process).
//! - This file: the factory itself and its commands (`sync`, `b3sum`, `status`).

pub mod check;
pub mod config;
pub mod follow;
pub mod retention;
pub mod scan;
pub mod state;
pub mod sync;

use config::{Config, Source};
use pond_factory::{
    BoxError, ConfigError, MaintainContext, Mode, NodeStatus, RunContext, RunOutcome, TypedFactory,
};
use serde::Serialize;
use state::{FileState, gone_key, state_key};

/// The factory value registered in `pond`.
pub struct Logfile;

/// The commands of a `logfile` node.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mirror new and changed host files into the pond (one transaction).
    Sync {
        /// Report exactly what a real run would do, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON document (see docs/logfile.md).
        #[arg(long)]
        json: bool,
    },
    /// Mirror changes as they happen, running the downstream nodes after each small commit;
    /// runs until SIGTERM/SIGINT (drains and exits 0); SIGHUP re-reads the configs.
    Follow {
        /// Serve Prometheus metrics on HOST:PORT (path /metrics).
        #[arg(long, value_name = "HOST:PORT")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Print `<blake3>  <name>` for every mirrored file still on the host, so that
    /// `b3sum --check` run in the host base directory checks the mirror.
    B3sum {
        /// Also list mirrored files whose host copy is gone (they will fail `b3sum --check`).
        #[arg(long)]
        all: bool,
    },
    /// Per mirrored file: host path, tracked size, versions, last action.
    Status {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

impl TypedFactory for Logfile {
    type Config = Config;
    type Command = Command;
    const NAME: &'static str = "logfile";
    const DESCRIPTION: &'static str =
        "mirror rotating host log files (active file + archives, or hourly files) into the pond";

    fn check(config: &Config, source_name: &str) -> Result<(), ConfigError> {
        Source::from_config(config, source_name).map(|_| ())
    }

    fn downstream(config: &Config) -> Vec<String> {
        config.downstream.clone()
    }

    fn dry_run(command: &Command) -> bool {
        matches!(command, Command::Sync { dry_run: true, .. })
    }

    fn mode(command: &Command) -> Mode {
        match command {
            Command::Sync { .. } => Mode::Write,
            Command::Follow { .. } => Mode::LongRunning,
            Command::B3sum { .. } | Command::Status { .. } => Mode::Read,
        }
    }

    fn maintain(
        ctx: &mut MaintainContext<'_>,
        config: &Config,
    ) -> Result<Option<String>, BoxError> {
        let source = Source::from_config(config, &ctx.node.path.to_string())?;
        retention::apply(ctx, &source)
    }

    fn json(command: &Command) -> bool {
        matches!(
            command,
            Command::Sync { json: true, .. } | Command::Status { json: true }
        )
    }

    /// Lag: host bytes not yet mirrored (by device and inode, so a renamed file is not counted
    /// twice); a host file never seen counts whole. Listing problems are the last error. Reads
    /// the live files only; gone ones are counted from the node's summary.
    fn status(
        view: &pond_store::View,
        node: &pond_store::Node,
        config: &Config,
    ) -> Result<NodeStatus, BoxError> {
        let source = Source::from_config(config, &node.path.to_string())?;
        let mut mirrored = std::collections::HashMap::new();
        let mut files = state::summary(view, node.id)?.gone;
        for (id, value) in view.states_with_key(&state_key(node.id))? {
            let state = state::parse(id, &value)?;
            files += 1;
            if state.present {
                mirrored.insert((state.dev, state.ino), state.size);
            }
        }
        let (host, mut errors) = scan::scan(&source);
        let waiting = if files == 0 {
            // As in `sync`: a fresh node waits for its base directory without an error.
            sync::waiting_bases(&source, &mut errors)
        } else {
            Vec::new()
        };
        let notes = sync::notes(&source, &host, &waiting, errors.len());
        let lag = host
            .iter()
            .map(|f| {
                let known = mirrored.get(&(f.id.dev, f.id.ino)).copied().unwrap_or(0);
                f.id.size.saturating_sub(known)
            })
            .sum();
        Ok(NodeStatus {
            lag_bytes: Some(lag),
            files: Some(files),
            last_error: errors.first().map(|(_, e)| e.clone()),
            note: (!notes.is_empty()).then(|| {
                notes
                    .iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        })
    }

    fn run(
        ctx: &mut RunContext<'_>,
        config: &Config,
        command: Command,
    ) -> Result<RunOutcome, BoxError> {
        let source = Source::from_config(config, &ctx.node.path.to_string())?;
        match command {
            Command::Sync { dry_run, json } => run_sync(ctx, &source, dry_run, json),
            Command::Follow { metrics_addr } => {
                follow::follow(ctx, &source, &follow::FollowOptions { metrics_addr })
            }
            Command::B3sum { all } => run_b3sum(ctx, &source, all),
            Command::Status { json } => run_status(ctx, &source, json),
        }
    }
}

fn run_sync(
    ctx: &mut RunContext<'_>,
    source: &Source,
    dry_run: bool,
    json: bool,
) -> Result<RunOutcome, BoxError> {
    let factory_id = ctx.node.id;
    let txn = ctx.access.txn().ok_or("sync needs the write transaction")?;
    let report = sync::sync(txn, factory_id, source, dry_run)?;
    let changed: Vec<&sync::FileReport> = report
        .files
        .iter()
        .filter(|f| f.action != state::Action::Unchanged)
        .collect();
    if json {
        ctx.write_json(&report)?;
    } else {
        for file in &changed {
            writeln!(
                ctx.out,
                "{:<15} {}  ({} bytes, from {})",
                file.action.as_str(),
                file.path,
                file.bytes,
                file.host_path
            )?;
        }
        writeln!(
            ctx.out,
            "{}{}: {} changed, {} unchanged; {} bytes written, {} bytes read{}",
            if dry_run { "dry run: " } else { "" },
            source.name,
            changed.len(),
            report.files.len() - changed.len(),
            report.bytes_written,
            report.bytes_read,
            report
                .txn
                .map(|t| format!(" (txn {t})"))
                .unwrap_or_default()
        )?;
    }
    for note in &report.notes {
        note.log(&ctx.node.path.to_string());
    }
    for error in &report.errors {
        tracing::error!("{error}");
    }
    let mut counts = std::collections::BTreeMap::new();
    for file in &changed {
        *counts.entry(file.action.as_str()).or_insert(0) += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    Ok(RunOutcome {
        summary: format!("logfile sync {}: {}", source.name, counts.join(", ")),
        discard: dry_run,
        errors: report.errors,
        pending: false,
    })
}

/// One mirrored file as `status` shows it.
#[derive(Serialize)]
struct StatusRow {
    path: String,
    host_path: String,
    role: state::Role,
    size: u64,
    versions: u64,
    last_action: state::Action,
    last_txn: u64,
    on_host: bool,
}

/// The node's files: the live ones, and with `gone` those whose host file is gone too.
fn rows(
    ctx: &RunContext<'_>,
    gone: bool,
) -> Result<Vec<(StatusRow, Option<blake3::Hash>)>, BoxError> {
    let view = ctx.access.view()?;
    let mut rows = Vec::new();
    let mut states = view.states_with_key(&state_key(ctx.node.id))?;
    if gone {
        states.extend(view.states_with_key(&gone_key(ctx.node.id))?);
    }
    for (id, value) in states {
        let state: FileState = state::parse(id, &value)?;
        let latest = view.latest_version(id)?;
        rows.push((
            StatusRow {
                path: view.path_of(id)?.to_string(),
                host_path: state.host_path,
                role: state.role,
                size: latest.as_ref().map_or(0, |v| v.total_len),
                versions: latest.as_ref().map_or(0, |v| v.version),
                last_action: state.last_action,
                last_txn: state.last_txn,
                on_host: state.present,
            },
            latest.map(|v| v.root),
        ));
    }
    rows.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(rows)
}

fn run_status(
    ctx: &mut RunContext<'_>,
    source: &Source,
    json: bool,
) -> Result<RunOutcome, BoxError> {
    let rows: Vec<StatusRow> = rows(ctx, true)?.into_iter().map(|(row, _)| row).collect();
    if json {
        ctx.write_json(&serde_json::json!({ "name": source.name, "files": rows }))?;
    } else {
        writeln!(
            ctx.out,
            "{:<15} {:>14} {:>6} {:>6}  pond path <- host path",
            "last action", "size", "vers", "txn"
        )?;
        for row in &rows {
            writeln!(
                ctx.out,
                "{:<15} {:>14} {:>6} {:>6}  {} <- {}{}",
                row.last_action.as_str(),
                row.size,
                row.versions,
                row.last_txn,
                row.path,
                row.host_path,
                if row.on_host { "" } else { " (gone from host)" }
            )?;
        }
    }
    Ok(RunOutcome::default())
}

fn run_b3sum(ctx: &mut RunContext<'_>, source: &Source, all: bool) -> Result<RunOutcome, BoxError> {
    let base = source.pond_path.to_string();
    for (row, root) in rows(ctx, all)? {
        if !row.on_host && !all {
            continue;
        }
        let name = row
            .path
            .strip_prefix(&base)
            .unwrap_or(&row.path)
            .trim_start_matches('/');
        let hex = root.unwrap_or_else(|| blake3::hash(b"")).to_hex();
        writeln!(ctx.out, "{hex}  {name}")?;
    }
    Ok(RunOutcome::default())
}
