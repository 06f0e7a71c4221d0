//! What `logfile` remembers about each mirrored file, kept in the pond as node state.
//!
//! One JSON value per pond file node under the key `logfile:<factory node id>`, written in the
//! same transaction as the bytes it describes, so it can never disagree with the content.

use crate::scan::Identity;
use serde::{Deserialize, Serialize};

/// Version of [`FileState`]'s JSON.
pub const STATE_FORMAT: u32 = 1;

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
    pub format: u32,
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
            format: STATE_FORMAT,
            host_path: host_path.to_string(),
            role,
            dev: id.dev,
            ino: id.ino,
            size,
            mtime_ns: id.mtime_ns,
            present: true,
            last_action: action,
            last_txn: txn,
        }
    }
}

/// The node-state key of the factory node `factory_id`.
pub fn state_key(factory_id: i64) -> String {
    format!("logfile:{factory_id}")
}
