//! Command-line definitions (clap derive). Every reporting command takes `--json`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// pond: a local, versioned, verifiable store for log data, and the factories that fill it from
/// host logs and drain it into databases.
#[derive(Debug, Parser)]
#[command(name = "pond", version, about, long_about = None)]
pub struct Cli {
    /// The pond directory.
    #[arg(long, global = true, env = "POND", value_name = "DIR")]
    pub pond: Option<PathBuf>,

    /// Seconds a writer waits for another writer to finish before giving up.
    #[arg(
        long,
        global = true,
        env = "POND_LOCK_TIMEOUT",
        value_name = "SECS",
        default_value_t = 30
    )]
    pub lock_timeout: u64,

    #[command(subcommand)]
    pub command: Command,
}

/// `--json`: one JSON document on stdout instead of text.
#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print one JSON document instead of text (fields are documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new pond in the --pond directory (created if missing).
    Init {
        /// How stored bytes are compressed: `zstd`, `zstd:LEVEL` (1-22) or `none`.
        #[arg(long, default_value = "zstd:1", value_name = "zstd[:LEVEL]|none")]
        compression: String,
        /// Let the directory's group read the pond (directory 2750, files 0640) instead of the
        /// owner alone (0700, 0600).
        #[arg(long)]
        shared_group: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Create directories in the pond (one transaction).
    Mkdir {
        /// Create missing parents; an existing directory is not an error.
        #[arg(short, long)]
        parents: bool,
        /// Pond paths of the new directories.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Store host files as new pond files in a pond directory (one transaction).
    Copy {
        /// Host files to store, then the pond directory to store them in.
        #[arg(required = true, num_args = 2.., value_name = "HOSTFILE... PONDDIR")]
        paths: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List pond entries: a directory's children, or every path matching a glob.
    List {
        /// A directory (lists its children) or a glob such as `/logs/**/*.json` (default: `/`).
        glob: Option<String>,
        /// Long format: kind, size, versions, node id, path.
        #[arg(short, long)]
        long: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Write a file's content (any version) to stdout.
    Cat {
        /// Pond path of the file.
        path: String,
        /// Version to read (default: the newest).
        #[arg(long, value_name = "N")]
        version: Option<u64>,
    },
    /// Show a file's versions: version, txn, segment bytes, cumulative bytes, cumulative BLAKE3.
    Show {
        /// Pond path of the file.
        path: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show transactions, newest first.
    Log {
        /// Show at most N transactions.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Re-read stored bytes and check every recorded hash and outboard.
    Verify {
        /// A file or directory to check (default: the whole pond).
        path: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Upkeep: fold old history, apply retention, compact small frames, remove retired data,
    /// give free catalog pages back.
    Maintain {
        /// Compact every file at or below this path (default: the files changed since the last
        /// compaction, pond-wide).
        path: Option<String>,
        /// Work per transaction in bytes (raw bytes re-encoded plus stored bytes copied); the
        /// writer lock is released between transactions.
        #[arg(long, value_name = "N", default_value_t = pond_store::CompactLimits::default().max_bytes)]
        max_bytes: u64,
        /// Frames with fewer raw bytes than this are merged (values above 1 MiB act as 1 MiB).
        #[arg(long, value_name = "N", default_value_t = pond_store::CompactLimits::default().min_frame)]
        min_frame: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show the pond's settings, or change how much history it keeps.
    Settings {
        /// Keep every transaction and version younger than this, e.g. `5m` (`0s`: none).
        #[arg(long, value_name = "DURATION")]
        history_recent: Option<String>,
        /// Beyond that, keep one point per this much time (per file: the last version in each),
        /// e.g. `10m`, `1h`, `1d`.
        #[arg(long, value_name = "DURATION")]
        history_interval: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the factories this build knows.
    ListFactories {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Install a factory node at a pond path with a YAML config.
    Mknod {
        /// Factory name (see `pond list-factories`).
        factory: String,
        /// Pond path of the new node.
        path: String,
        /// The YAML config; stored as written (`${env:VAR}` is expanded only when run).
        #[arg(long, value_name = "FILE")]
        config_path: PathBuf,
        /// Replace the config of an existing node.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Every factory node: state, last run, lag, last error (exit 1 if any failed).
    Status {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Run a command of a factory node (`pond run PATH --help` lists them).
    #[command(disable_help_flag = true)]
    Run {
        /// Pond path of the factory node.
        #[arg(allow_hyphen_values = true)]
        path: Option<String>,
        /// The factory command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}
