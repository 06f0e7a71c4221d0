//! The `logfile` factory: mirrors rotating host logs into the pond.
//!
//! One node mirrors one source: an append-only active file (or, in the Hyperliquid node layout,
//! every hour file) plus its immutable archives. Each `sync` is one process and one transaction;
//! everything it knows between runs lives in the pond (node state, see [`state`]).
//!
//! # Layout
//! - [`config`]: the YAML config and its validated form ([`config::Settings`]).
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

use config::{Config, Settings};
use pond_factory::{
    BoxError, ConfigError, MaintainContext, NodeStatus, ReadCtx, RunOutcome, RunResult, Task,
    TypedFactory, WriteCtx,
};
use serde::Serialize;
use state::{gone_key, state_key};

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
    type Settings = Settings;
    type Command = Command;
    const NAME: &'static str = "logfile";
    const DESCRIPTION: &'static str =
        "mirror rotating host log files (active file + archives, or hourly files) into the pond";

    fn settings(config: Config, source_name: &str) -> Result<Settings, ConfigError> {
        Settings::from_config(&config, source_name)
    }

    fn task(command: Command) -> Task<Settings> {
        match command {
            Command::Sync { dry_run, json } => Task::write("sync", move |settings, ctx| {
                run_sync(ctx, settings, dry_run, json)
            })
            .json(json)
            .dry_run(dry_run),
            Command::Follow { metrics_addr } => {
                Task::long_running("follow", move |settings, ctx| {
                    follow::follow(ctx, settings, &follow::FollowOptions { metrics_addr })
                })
            }
            Command::B3sum { all } => {
                Task::read("b3sum", move |settings, ctx| run_b3sum(ctx, settings, all))
            }
            Command::Status { json } => Task::read("status", move |settings, ctx| {
                run_status(ctx, settings, json)
            })
            .json(json),
        }
    }

    fn downstream(settings: &Settings) -> Vec<String> {
        settings.downstream.clone()
    }

    fn maintain(
        settings: &Settings,
        ctx: &mut MaintainContext<'_>,
    ) -> Result<Option<String>, BoxError> {
        retention::apply(ctx, settings)
    }

    /// Lag: host bytes not yet mirrored (by device and inode, so a renamed file is not counted
    /// twice); a host file never seen counts whole. Listing problems are the last error. Reads
    /// the live files only; gone ones are counted from the node's summary.
    fn status(
        settings: &Settings,
        view: &pond_store::View,
        node: &pond_store::Node,
    ) -> Result<NodeStatus, BoxError> {
        let mut mirrored = std::collections::HashMap::new();
        let mut files = state::summary(view, node.id)?.gone;
        let key = state_key(node.id);
        for (id, value) in view.states_with_key(&key)? {
            let state = state::parse(id, &key, &value)?;
            files += 1;
            if state.present {
                mirrored.insert((state.dev, state.ino), state.size);
            }
        }
        let (host, mut errors) = scan::scan(settings);
        let waiting = if files == 0 {
            // As in `sync`: a fresh node waits for its base directory without an error.
            sync::waiting_bases(settings, &mut errors)
        } else {
            Vec::new()
        };
        let notes = sync::notes(settings, &host, &waiting, errors.len());
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
            last_error: errors.first().map(|(_, e)| e.to_string()),
            note: (!notes.is_empty()).then(|| {
                notes
                    .iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        })
    }
}

fn run_sync(ctx: WriteCtx<'_>, settings: &Settings, dry_run: bool, json: bool) -> RunResult {
    let report = sync::sync(ctx.pond, ctx.node.id, settings, dry_run)?;
    if !json {
        let changed: Vec<&sync::FileReport> = report.changed().collect();
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
            settings.name,
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
    for error in &report.errors {
        tracing::error!("{error}");
    }
    Ok(RunOutcome {
        summary: report.summary("sync", &settings.name),
        discard: dry_run,
        report: json.then(|| serde_json::to_value(&report)).transpose()?,
        errors: report.errors,
        notes: report.notes,
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
fn rows(ctx: &ReadCtx<'_>, gone: bool) -> Result<Vec<(StatusRow, Option<blake3::Hash>)>, BoxError> {
    let view = ctx.pond;
    let mut rows = Vec::new();
    let mut keys = vec![state_key(ctx.node.id)];
    if gone {
        keys.push(gone_key(ctx.node.id));
    }
    for key in &keys {
        for (id, value) in view.states_with_key(key)? {
            rows.push(row(view, id, state::parse(id, key, &value)?)?);
        }
    }
    rows.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    Ok(rows)
}

/// File `id` with its state, as `status` and `b3sum` show it.
fn row(
    view: &pond_store::View,
    id: i64,
    state: state::FileState,
) -> Result<(StatusRow, Option<blake3::Hash>), BoxError> {
    let latest = view.latest_version(id)?;
    Ok((
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
    ))
}

fn run_status(ctx: ReadCtx<'_>, settings: &Settings, json: bool) -> RunResult {
    let rows: Vec<StatusRow> = rows(&ctx, true)?.into_iter().map(|(row, _)| row).collect();
    if json {
        return Ok(RunOutcome {
            report: Some(serde_json::json!({ "name": settings.name, "files": rows })),
            ..RunOutcome::default()
        });
    }
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
    Ok(RunOutcome::default())
}

fn run_b3sum(ctx: ReadCtx<'_>, settings: &Settings, all: bool) -> RunResult {
    let base = settings.pond_path.to_string();
    for (row, root) in rows(&ctx, all)? {
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
