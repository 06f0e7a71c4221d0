//! Who may read a pond: it holds a host's logs and its factories' configs, so it is private by
//! default, like a database's data directory.
//!
//! `pond init` creates the pond directory `0700` (or `2750` with [`Sharing::Group`]: the group
//! may read, and new files keep the directory's group), and every file the pond creates takes
//! the directory's permissions without execute (`0600`, `0640`): data files, outboards, the
//! catalog (SQLite gives its log files the catalog's permissions), locks, the journal, run
//! records. A pond from an older build keeps its directory's permissions (often `0755`, files
//! `0644`); `chmod` the directory (and the files) to change them.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Who may read a new pond.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sharing {
    /// The owner only (directory `0700`, files `0600`).
    #[default]
    Private,
    /// The owner, and the group reads (directory `2750`, files `0640`).
    Group,
}

impl Sharing {
    /// The pond directory's mode.
    pub fn dir_mode(self) -> u32 {
        match self {
            Sharing::Private => 0o700,
            Sharing::Group => 0o2750,
        }
    }
}

/// The mode of files created in the pond directory `dir`: the directory's permission bits
/// without execute. `0600` when the directory cannot be read (the open that follows reports
/// the real problem).
pub fn file_mode(dir: &Path) -> u32 {
    std::fs::metadata(dir).map_or(0o600, |m| m.mode() & 0o666)
}

/// Opens `path` for reading and writing, creating it with `mode` if missing.
pub(crate) fn open_rw(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .open(path)
}

/// Creates directory `path` (and missing parents) with `mode`; an existing one is left as it is.
pub(crate) fn create_dir(path: &Path, mode: u32) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        _ => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode & 0o777)
                .create(path)?;
            // The set-group-id bit (and an exact mode whatever the umask) needs a chmod.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        }
    }
}

/// Sets `path`'s mode.
pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
