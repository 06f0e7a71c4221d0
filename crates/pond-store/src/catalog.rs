//! The SQLite catalog: nodes, directory entries, versions, frames, data files, transactions and
//! settings.
//!
//! The catalog is the source of truth. Data files may hold bytes beyond what the catalog records
//! (an interrupted transaction, or a tail retired by compaction that a reader may still read);
//! those bytes are never read by a newer state and are cut on a later write.
//! Opened in WAL mode with `synchronous=FULL`, so readers see the last committed state while a
//! writer works, and a commit survives power loss once `COMMIT` returns.
//!
//! Format 3 (this build) added `nodes.changed_txn` (what changed since a transaction, found by
//! index, so work per run follows what is live, not the whole history), folded transactions
//! (`txns.last_txn`, `txns.folded`), versions without a segment hash (folded), `removed` (nodes
//! whose data files wait for removal), `versions` and `frames` without rowids, and incremental
//! vacuum. [`upgrade`] turns a format 1 or 2 catalog into format 3.

use crate::error::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest format this build upgrades in place when it opens such a pond.
pub const OLDEST_UPGRADABLE_FORMAT: u32 = 1;

/// Catalog file name inside the pond directory.
pub const CATALOG_FILE: &str = "catalog.sqlite";

/// Table bodies written the same by a new pond and by the upgrade (`{VERSIONS}` and the like
/// in [`SCHEMA`] and [`UPGRADE_FROM_2`]; see [`with_tables`]).
const VERSIONS_TABLE: &str = "(
        node INTEGER NOT NULL REFERENCES nodes(id),
        version INTEGER NOT NULL,
        txn INTEGER NOT NULL,
        segment_len INTEGER NOT NULL,
        segment_hash BLOB,
        total_len INTEGER NOT NULL,
        root BLOB NOT NULL,
        frontier BLOB NOT NULL,
        PRIMARY KEY (node, version)
    ) WITHOUT ROWID";
const FRAMES_TABLE: &str = "(
        node INTEGER NOT NULL REFERENCES nodes(id),
        raw_offset INTEGER NOT NULL,
        raw_len INTEGER NOT NULL,
        file_offset INTEGER NOT NULL,
        file_len INTEGER NOT NULL,
        codec INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        PRIMARY KEY (node, raw_offset)
    ) WITHOUT ROWID";
const REMOVED_TABLE: &str = "(
        node INTEGER PRIMARY KEY,
        txn INTEGER NOT NULL,
        max_generation INTEGER NOT NULL
    )";

/// `sql` with the shared table bodies filled in.
fn with_tables(sql: &str) -> String {
    sql.replace("{VERSIONS}", VERSIONS_TABLE)
        .replace("{FRAMES}", FRAMES_TABLE)
        .replace("{REMOVED}", REMOVED_TABLE)
}

const SCHEMA: &str = r#"
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE txns (
    txn INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    argv TEXT NOT NULL,
    summary TEXT NOT NULL,
    last_txn INTEGER NOT NULL,
    folded TEXT
);
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('dir', 'file', 'factory')),
    created_txn INTEGER NOT NULL,
    changed_txn INTEGER NOT NULL
);
CREATE INDEX nodes_by_change ON nodes (changed_txn);
CREATE TABLE entries (
    parent INTEGER NOT NULL REFERENCES nodes(id),
    name TEXT NOT NULL,
    child INTEGER NOT NULL UNIQUE REFERENCES nodes(id),
    PRIMARY KEY (parent, name)
);
CREATE TABLE versions {VERSIONS};
CREATE TABLE frames {FRAMES};
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
CREATE TABLE removed {REMOVED};
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
INSERT INTO nodes (id, kind, created_txn, changed_txn) VALUES (1, 'dir', 0, 0);
"#;

/// How long a connection waits for SQLite's own locks (writers are already serialized by the
/// pond's writer lock; this covers checkpoints and the upgrade).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Id of the root directory.
pub const ROOT_ID: i64 = 1;

/// Opens the catalog connection with the pragmas every connection needs.
pub(crate) fn open(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| at(path, e))?;
    if create {
        // Before any table exists: pages freed by folding and retention can be given back.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
            .map_err(|e| at(path, e))?;
    }
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
    .and_then(|()| conn.busy_timeout(BUSY_TIMEOUT))
    .map_err(|e| at(path, e))?;
    // A sync walks every tracked file through a dozen or more distinct statements; the default
    // of 16 cached statements would evict and re-prepare them file after file.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Creates the schema and the settings of a new pond.
pub(crate) fn create_schema(
    conn: &Connection,
    path: &Path,
    compression: &str,
    instance_id: &str,
) -> Result<()> {
    let created = crate::rfc3339(std::time::SystemTime::now());
    conn.execute_batch("BEGIN IMMEDIATE")
        .and_then(|()| conn.execute_batch(&with_tables(SCHEMA)))
        .and_then(|()| {
            let mut insert = conn.prepare("INSERT INTO settings (key, value) VALUES (?1, ?2)")?;
            insert.execute(params!["format_version", FORMAT_VERSION.to_string()])?;
            insert.execute(params!["compression", compression])?;
            insert.execute(params!["created", created])?;
            insert.execute(params!["instance_id", instance_id])?;
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

/// What format 2 lacks: the change index, folded transactions and versions, removed nodes, and
/// the rowid-less `versions` and `frames`.
const UPGRADE_FROM_2: &str = r#"
ALTER TABLE txns ADD COLUMN last_txn INTEGER NOT NULL DEFAULT 0;
UPDATE txns SET last_txn = txn;
ALTER TABLE txns ADD COLUMN folded TEXT;
ALTER TABLE nodes ADD COLUMN changed_txn INTEGER NOT NULL DEFAULT 0;
UPDATE nodes SET changed_txn = max(created_txn,
    coalesce((SELECT max(v.txn) FROM versions v WHERE v.node = nodes.id), 0));
CREATE INDEX nodes_by_change ON nodes (changed_txn);
CREATE TABLE versions_3 {VERSIONS};
INSERT INTO versions_3 SELECT node, version, txn, segment_len, segment_hash, total_len, root,
    frontier FROM versions;
DROP TABLE versions;
ALTER TABLE versions_3 RENAME TO versions;
CREATE TABLE frames_3 {FRAMES};
INSERT INTO frames_3 SELECT node, raw_offset, raw_len, file_offset, file_len, codec, generation
    FROM frames;
DROP INDEX frames_by_size;
DROP TABLE frames;
ALTER TABLE frames_3 RENAME TO frames;
CREATE TABLE removed {REMOVED};
UPDATE settings SET value = '3' WHERE key = 'format_version';
"#;

/// Upgrades a format 1 or 2 catalog to format 3, each step in one transaction (a no-op if
/// another process did it first), then rewrites the file once so freed pages can be given back
/// later (incremental vacuum). Data files are untouched: format 1 wrote every frame of a node
/// to its one data file, and formats 2 and 3 store frames alike.
pub(crate) fn upgrade(conn: &Connection, path: &Path) -> Result<()> {
    for (from, sql) in [
        (1u32, UPGRADE_FROM_1.to_string()),
        (2, with_tables(UPGRADE_FROM_2)),
    ] {
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| at(path, e))?;
        let result = (|| {
            let version = setting(conn, path, "format_version")?;
            if version.as_deref() == Some(&from.to_string()) {
                conn.execute_batch(&sql).map_err(|e| at(path, e))?;
                tracing::info!(
                    catalog = %path.display(),
                    "upgraded the pond format from {from} to {}",
                    from + 1
                );
            }
            conn.execute_batch("COMMIT").map_err(|e| at(path, e))
        })();
        if result.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            return result;
        }
    }
    enable_incremental_vacuum(conn, path);
    Ok(())
}

/// Switches an older catalog to incremental vacuum (a whole-file rewrite, once). Best effort and
/// never waiting: while another process uses the catalog it is left for a later open, and
/// nothing depends on it but how soon freed pages go back to the file system.
pub(crate) fn enable_incremental_vacuum(conn: &Connection, path: &Path) {
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap_or(2);
    if mode == 2 {
        return;
    }
    let started = std::time::Instant::now();
    let _ = conn.busy_timeout(std::time::Duration::ZERO);
    let vacuumed = conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;");
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    match vacuumed {
        Ok(()) => tracing::info!(
            catalog = %path.display(),
            "catalog rewritten for incremental vacuum in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => tracing::info!(
            catalog = %path.display(),
            "catalog not rewritten for incremental vacuum now ({e}); a later open tries again"
        ),
    }
}

/// Reads one setting.
pub(crate) fn setting(conn: &Connection, path: &Path, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
    .map_err(|e| at(path, e))
}

/// Wraps a SQLite error with the catalog path; a full file system says so by name (SQLite
/// reports it as "database or disk is full" or as an I/O error code).
pub(crate) fn at(path: &Path, source: rusqlite::Error) -> StoreError {
    let disk = matches!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
    );
    if disk
        && (source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            || crate::error::file_system_full(path))
    {
        return StoreError::NoSpace {
            path: PathBuf::from(path),
        };
    }
    StoreError::Catalog {
        path: PathBuf::from(path),
        source,
    }
}

/// Opens the catalog to read it. A full file system can keep SQLite from setting up its
/// shared memory file; then the catalog is read without it: exclusively (a writer waits a
/// moment; on a full disk writers fail anyway), or, with no write-ahead log at all, as an
/// immutable file. So `pond status`, `verify`, `log` and the like work on a full disk.
pub(crate) fn open_for_reading(path: &Path) -> Result<Connection> {
    match open(path, false) {
        Err(StoreError::NoSpace { .. }) => {
            let wal = {
                let mut name = path.as_os_str().to_owned();
                name.push("-wal");
                PathBuf::from(name)
            };
            let wal_holds_commits = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
            tracing::info!(
                catalog = %path.display(),
                "no space left on the device: reading the catalog without its shared memory"
            );
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI;
            let uri = format!(
                "file:{}?mode=ro{}",
                path.display(),
                if wal_holds_commits {
                    ""
                } else {
                    "&immutable=1"
                }
            );
            let conn = Connection::open_with_flags(&uri, flags).map_err(|e| at(path, e))?;
            if wal_holds_commits {
                // No shared memory: the log's index is built in this process's memory.
                conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE;")
                    .map_err(|e| at(path, e))?;
            }
            conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| at(path, e))?;
            conn.set_prepared_statement_cache_capacity(64);
            Ok(conn)
        }
        other => other,
    }
}
