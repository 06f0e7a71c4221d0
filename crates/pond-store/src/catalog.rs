//! The SQLite catalog: nodes, directory entries, versions, frames, data files, transactions and
//! settings.
//!
//! The catalog is the source of truth. Data files may hold bytes beyond what the catalog records
//! (an interrupted transaction, or a tail retired by compaction that a reader may still read);
//! those bytes are never read by a newer state and are cut on a later write.
//! Opened in WAL mode with `synchronous=FULL`, so readers see the last committed state while a
//! writer works, and a commit survives power loss once `COMMIT` returns.
//!
//! Format 2 (this build) added `frames.generation`, several `data_files` rows per node and the
//! `retired` table; [`upgrade`] turns a format 1 catalog into format 2 in one transaction.

use crate::error::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

/// The older format this build upgrades in place when it opens such a pond.
pub const UPGRADABLE_FORMAT_VERSION: u32 = 1;

/// Catalog file name inside the pond directory.
pub const CATALOG_FILE: &str = "catalog.sqlite";

const SCHEMA: &str = r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE txns (
    txn INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    argv TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('dir', 'file', 'factory')),
    created_txn INTEGER NOT NULL
);
CREATE TABLE entries (
    parent INTEGER NOT NULL REFERENCES nodes(id),
    name TEXT NOT NULL,
    child INTEGER NOT NULL UNIQUE REFERENCES nodes(id),
    PRIMARY KEY (parent, name)
);
CREATE TABLE versions (
    node INTEGER NOT NULL REFERENCES nodes(id),
    version INTEGER NOT NULL,
    txn INTEGER NOT NULL,
    segment_len INTEGER NOT NULL,
    segment_hash BLOB NOT NULL,
    total_len INTEGER NOT NULL,
    root BLOB NOT NULL,
    frontier BLOB NOT NULL,
    PRIMARY KEY (node, version)
);
CREATE TABLE frames (
    node INTEGER NOT NULL REFERENCES nodes(id),
    raw_offset INTEGER NOT NULL,
    raw_len INTEGER NOT NULL,
    file_offset INTEGER NOT NULL,
    file_len INTEGER NOT NULL,
    codec INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (node, raw_offset)
);
CREATE INDEX frames_by_size ON frames (node, raw_len);
CREATE TABLE data_files (
    node INTEGER NOT NULL REFERENCES nodes(id),
    generation INTEGER NOT NULL,
    data_len INTEGER NOT NULL,
    PRIMARY KEY (node, generation)
);
CREATE TABLE retired (
    node INTEGER NOT NULL REFERENCES nodes(id),
    generation INTEGER NOT NULL,
    keep_len INTEGER NOT NULL,
    txn INTEGER NOT NULL,
    PRIMARY KEY (node, generation)
);
CREATE TABLE factory_nodes (
    node INTEGER PRIMARY KEY REFERENCES nodes(id),
    factory TEXT NOT NULL,
    config TEXT NOT NULL,
    updated_txn INTEGER NOT NULL
);
CREATE TABLE node_state (
    node INTEGER NOT NULL REFERENCES nodes(id),
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    updated_txn INTEGER NOT NULL,
    PRIMARY KEY (node, key)
);
CREATE INDEX node_state_by_key ON node_state (key, node);
INSERT INTO nodes (id, kind, created_txn) VALUES (1, 'dir', 0);
"#;

/// Id of the root directory.
pub const ROOT_ID: i64 = 1;

/// Opens the catalog connection with the pragmas every connection needs.
pub(crate) fn open(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| at(path, e))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;",
    )
    .map_err(|e| at(path, e))?;
    // A sync walks every tracked file through a dozen or more distinct statements; the default
    // of 16 cached statements would evict and re-prepare them file after file.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Creates the schema and the settings of a new pond.
pub(crate) fn create_schema(conn: &Connection, path: &Path, compression: &str) -> Result<()> {
    let created = crate::now_rfc3339();
    conn.execute_batch("BEGIN IMMEDIATE")
        .and_then(|()| conn.execute_batch(SCHEMA))
        .and_then(|()| {
            let mut insert = conn.prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)")?;
            insert.execute(params!["format_version", FORMAT_VERSION.to_string()])?;
            insert.execute(params!["compression", compression])?;
            insert.execute(params!["created", created])?;
            Ok(())
        })
        .and_then(|()| conn.execute_batch("COMMIT"))
        .map_err(|e| at(path, e))
}

/// What format 1 lacks: per-frame generations, several data files per node, retired files.
const UPGRADE_FROM_1: &str = r#"
ALTER TABLE frames ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
UPDATE frames SET generation = coalesce(
    (SELECT d.generation FROM data_files d WHERE d.node = frames.node), 0);
CREATE INDEX frames_by_size ON frames (node, raw_len);
CREATE TABLE data_files_2 (
    node INTEGER NOT NULL REFERENCES nodes(id),
    generation INTEGER NOT NULL,
    data_len INTEGER NOT NULL,
    PRIMARY KEY (node, generation)
);
INSERT INTO data_files_2 (node, generation, data_len)
    SELECT node, generation, data_len FROM data_files;
DROP TABLE data_files;
ALTER TABLE data_files_2 RENAME TO data_files;
CREATE TABLE retired (
    node INTEGER NOT NULL REFERENCES nodes(id),
    generation INTEGER NOT NULL,
    keep_len INTEGER NOT NULL,
    txn INTEGER NOT NULL,
    PRIMARY KEY (node, generation)
);
UPDATE settings SET value = '2' WHERE key = 'format_version';
"#;

/// Upgrades a format 1 catalog to format 2 in one transaction (a no-op if another process did it
/// first). Data files are untouched: format 1 wrote every frame of a node to its one data file.
pub(crate) fn upgrade(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| at(path, e))?;
    let result = (|| {
        let version = setting(conn, path, "format_version")?;
        if version.as_deref() == Some(&UPGRADABLE_FORMAT_VERSION.to_string()) {
            conn.execute_batch(UPGRADE_FROM_1)
                .map_err(|e| at(path, e))?;
            tracing::info!(catalog = %path.display(), "upgraded the pond format from 1 to 2");
        }
        conn.execute_batch("COMMIT").map_err(|e| at(path, e))
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// Reads one setting.
pub(crate) fn setting(conn: &Connection, path: &Path, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
    .map_err(|e| at(path, e))
}

/// Wraps a SQLite error with the catalog path.
pub(crate) fn at(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Catalog {
        path: PathBuf::from(path),
        source,
    }
}
