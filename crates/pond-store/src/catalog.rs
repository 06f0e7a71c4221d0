//! The SQLite catalog: nodes, directory entries, versions, frames, transactions and settings.
//!
//! The catalog is the source of truth. Data files may hold bytes beyond what the catalog records
//! (an interrupted transaction); those bytes are never read and are cut on the next write.
//! Opened in WAL mode with `synchronous=FULL`, so readers see the last committed state while a
//! writer works, and a commit survives power loss once `COMMIT` returns.

use crate::error::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

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
    PRIMARY KEY (node, raw_offset)
);
CREATE TABLE data_files (
    node INTEGER PRIMARY KEY REFERENCES nodes(id),
    generation INTEGER NOT NULL,
    data_len INTEGER NOT NULL
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
