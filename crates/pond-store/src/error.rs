//! The store's error type: every variant names the pond path, node or file it is about.

use std::path::PathBuf;

/// Errors from opening, reading or changing a pond.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid pond path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("invalid glob {pattern:?}: {reason}")]
    InvalidGlob { pattern: String, reason: String },
    #[error("{dir} is not a pond (no {catalog}); create one with `pond init`")]
    NotAPond { dir: PathBuf, catalog: &'static str },
    #[error("{dir} is already a pond")]
    AlreadyAPond { dir: PathBuf },
    #[error(
        "pond {dir} has format version {found}; this build reads version {supported} (and upgrades versions 1 and 2)"
    )]
    UnsupportedFormat {
        dir: PathBuf,
        found: String,
        supported: u32,
    },
    #[error("invalid compression {value:?}: expected `none`, `zstd` or `zstd:LEVEL` (LEVEL 1-22)")]
    InvalidCompression { value: String },
    #[error("{path}: no such file or directory in the pond")]
    NotFound { path: String },
    #[error("{path}: already exists in the pond")]
    AlreadyExists { path: String },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: not a file")]
    NotAFile { path: String },
    #[error("{path}: not a factory node")]
    NotAFactoryNode { path: String },
    #[error("{path}: has no version {version} (latest is {latest})")]
    NoSuchVersion {
        path: String,
        version: u64,
        latest: u64,
    },
    #[error("{path}: cannot move a directory into itself")]
    MoveIntoItself { path: String },
    #[error("pond {dir} is locked by a writer (pid {holder}); gave up after {waited_secs} s")]
    Locked {
        dir: PathBuf,
        holder: String,
        waited_secs: u64,
    },
    #[error("{path} is being run by another process (pid {holder}); gave up after {waited_secs} s")]
    NodeBusy {
        path: String,
        holder: String,
        waited_secs: u64,
    },
    #[error(
        "{path}: version {version} was folded into version {into} (see `pond settings`: history)"
    )]
    FoldedVersion {
        path: String,
        version: u64,
        into: u64,
    },
    #[error("invalid setting {key}: {reason}")]
    InvalidSetting { key: String, reason: String },
    #[error("{path}: no space left on device")]
    NoSpace { path: PathBuf },
    #[error("catalog {path}: {source}")]
    Catalog {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("node {node}: stored data is inconsistent: {detail}")]
    Corrupt { node: i64, detail: String },
    #[error("read stopped after {read} of {expected} bytes: the source shrank while it was read")]
    ShortRead { expected: u64, read: u64 },
    #[error("content check failed: {0}")]
    Hash(#[from] pond_hash::HashError),
    #[error("reading the source: {0}")]
    Source(#[source] std::io::Error),
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches a file path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| {
            if source.raw_os_error() == Some(libc::ENOSPC) {
                StoreError::NoSpace {
                    path: path.to_path_buf(),
                }
            } else {
                StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }
}

/// Whether the file system holding `path` has no space left for an unprivileged writer.
pub(crate) fn file_system_full(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().unwrap_or(path);
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a plain struct that
    // statvfs fills; both live across the call.
    #[allow(unsafe_code)]
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c_path.as_ptr(), &mut stat) == 0 && stat.f_bavail == 0
    }
}
