//! What `logfile` remembers about each mirrored file, kept in the pond as node state.
//!
//! One JSON value per pond file node, written in the same transaction as the bytes it
//! describes, so it can never disagree with the content. The key says where the host file is:
//!
//! - `logfile:<factory node id>`: the host file is there (the *live* files). Each `sync` loads
//!   these and only these, so a run costs what is on the host, not what the node ever mirrored.
//! - `logfile:<factory node id>:gone`: the host file is gone (pruned, or replaced after a
//!   truncation). Nothing reads these in a sync; a new host file that wants a gone file's pond
//!   name finds it by path. Retention removes them (see `retention.rs`).
//!
//! The factory node itself keeps `logfile:<factory node id>:summary`: how many files are gone,
//! so `pond status` counts them without reading them. Older ponds kept gone files under the
//! live key with `present: false`; a sync moves them (see [`crate::sync`]).
//!
//! Values are versioned JSON ([`pond_factory::state`]): a format this build does not know is
//! refused, never half-read.

use crate::scan::Identity;
use pond_factory::state::{self as versioned, StateError, Versioned};
use pond_store::{Transaction, View};
use serde::{Deserialize, Serialize};

/// Whether a host file is the append-only active file or an immutable archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Active,
    Archive,
}

/// What a sync did to one mirrored file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    New,
    Appended,
    Rotated,
    Renamed,
    Unchanged,
    Truncated,
    ChangedArchive,
    Missing,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::New => "new",
            Action::Appended => "appended",
            Action::Rotated => "rotated",
            Action::Renamed => "renamed",
            Action::Unchanged => "unchanged",
            Action::Truncated => "truncated",
            Action::ChangedArchive => "changed_archive",
            Action::Missing => "missing",
        }
    }
}

/// The remembered state of one mirrored file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileState {
    /// Where the host file was last seen.
    pub host_path: String,
    pub role: Role,
    pub dev: u64,
    pub ino: u64,
    /// Host size when last synced (the pond copy's length).
    pub size: u64,
    pub mtime_ns: i64,
    /// False once the host file is gone (pruned, or replaced after a truncation).
    pub present: bool,
    pub last_action: Action,
    pub last_txn: u64,
    /// When the pond saw the host file go (Unix seconds); `None` while it is there.
    #[serde(default)]
    pub gone_unix: Option<i64>,
}

impl FileState {
    /// The identity last seen.
    pub fn identity(&self) -> Identity {
        Identity {
            dev: self.dev,
            ino: self.ino,
            size: self.size,
            mtime_ns: self.mtime_ns,
        }
    }

    /// A state for `host_path` with identity `id`, whose pond copy is `size` bytes long.
    pub fn new(
        host_path: &str,
        role: Role,
        id: &Identity,
        size: u64,
        action: Action,
        txn: u64,
    ) -> Self {
        Self {
            host_path: host_path.to_string(),
            role,
            dev: id.dev,
            ino: id.ino,
            size,
            mtime_ns: id.mtime_ns,
            present: true,
            last_action: action,
            last_txn: txn,
            gone_unix: None,
        }
    }
}

/// The node-state key of the live files of the factory node `factory_id`.
pub fn state_key(factory_id: i64) -> String {
    format!("logfile:{factory_id}")
}

/// The node-state key of the files of `factory_id` whose host file is gone.
pub fn gone_key(factory_id: i64) -> String {
    format!("logfile:{factory_id}:gone")
}

fn summary_key(factory_id: i64) -> String {
    format!("logfile:{factory_id}:summary")
}

/// Counts the factory node keeps about its files.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// Mirrored files whose host file is gone.
    pub gone: u64,
    /// When retention next has something to look at (Unix seconds), computed for the
    /// retention in `retention_for`; `None`: look at the next chance.
    #[serde(default)]
    pub retention_due: Option<i64>,
    /// The retention (seconds) `retention_due` was computed for.
    #[serde(default)]
    pub retention_for: Option<u64>,
}

impl Versioned for FileState {
    const WHAT: &'static str = "logfile file state";
    const FORMAT: u32 = 1;
}

impl Versioned for Summary {
    const WHAT: &'static str = "logfile summary";
    const FORMAT: u32 = 1;
}

/// Reads the state of file `node`, stored under `key` ([`state_key`] or [`gone_key`]).
pub fn parse(node: i64, key: &str, value: &[u8]) -> Result<FileState, StateError> {
    versioned::decode(node, key, value)
}

/// The summary of `factory_id`; counted once from the gone states when the pond has none yet.
pub fn summary(view: &View, factory_id: i64) -> Result<Summary, StateError> {
    match versioned::load(view, factory_id, &summary_key(factory_id))? {
        Some(summary) => Ok(summary),
        None => Ok(Summary {
            gone: view.states_with_key(&gone_key(factory_id))?.len() as u64,
            ..Summary::default()
        }),
    }
}

/// Writes the state of a live file.
pub fn save_live(
    txn: &mut Transaction,
    factory_id: i64,
    node: i64,
    state: &FileState,
) -> Result<(), StateError> {
    versioned::store(txn, node, &state_key(factory_id), state)
}

/// Moves file `node` to the gone files with `state` (its host file is gone), counting it.
pub fn save_gone(
    txn: &mut Transaction,
    factory_id: i64,
    node: i64,
    state: &FileState,
) -> Result<(), StateError> {
    let mut counts = summary(txn, factory_id)?;
    let was_gone = txn.state(node, &gone_key(factory_id))?.is_some();
    txn.delete_state(node, &state_key(factory_id))?;
    versioned::store(txn, node, &gone_key(factory_id), state)?;
    if !was_gone {
        counts.gone += 1;
        // Retention had nothing to wait for: it looks again at its next chance. (Otherwise the
        // file it waits for went before this one, and expires first.)
        if counts.retention_due.is_none() {
            counts.retention_for = None;
        }
        set_summary(txn, factory_id, &counts)?;
    }
    Ok(())
}

/// Writes the summary of `factory_id`.
pub fn set_summary(
    txn: &mut Transaction,
    factory_id: i64,
    counts: &Summary,
) -> Result<(), StateError> {
    versioned::store(txn, factory_id, &summary_key(factory_id), counts)
}
