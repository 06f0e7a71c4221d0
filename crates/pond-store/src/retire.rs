//! Retired data files: bytes that no newer state references but an older snapshot may still read.
//!
//! When compaction moves the frames of a generation's tail (or of a whole generation) elsewhere,
//! the old bytes cannot go at once: a [`crate::Snapshot`] opened before that commit, in any
//! process, may be reading them. The transaction lowers the generation's `data_len` and records
//! a `retired(node, generation, keep_len, txn)` row instead; the bytes past `keep_len` (the whole
//! file when `keep_len` is 0) are dead from that commit on, and a retired generation is never
//! written again, so nothing new lands behind dead bytes.
//!
//! A later writer ([`Transaction::collect_garbage`], also run by compaction) removes them once it
//! can take the reader lock exclusively without waiting: then no snapshot is open anywhere, and a
//! snapshot opened afterwards sees a state that no longer references them. The file is cut or
//! removed (and `data/` fsynced) before the row is deleted, so a crash in between only repeats
//! the work. Bytes that no commit ever referenced (this transaction's own) are cut at once.
//!
//! A file node removed by [`Transaction::remove_file`] (retention) goes the same way: its rows
//! go at once and a `removed(node, txn, max_generation)` row stands for its data files and
//! outboard, which a later writer deletes under the same rule.

use crate::data;
use crate::error::{Result, StoreError};
use crate::lock::NoReaders;
use crate::txn::{Transaction, remove_if_exists, truncate_if_longer};
use crate::view::{Node, NodeKind};
use rusqlite::params;
use serde::Serialize;

/// A file removed by [`Transaction::remove_file`]: what it held, for the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemovedFile {
    pub path: String,
    pub bytes: u64,
    /// BLAKE3 of its last version (of the empty string when it had none).
    pub blake3: String,
}

/// What [`Transaction::collect_garbage`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GarbageReport {
    /// Retired data files removed whole.
    pub removed_files: u64,
    /// Data files whose retired tail was cut.
    pub cut_files: u64,
    /// Bytes given back to the file system.
    pub freed_bytes: u64,
    /// Retired files or tails left because a snapshot was open (removed by a later writer).
    pub waiting: u64,
}

impl GarbageReport {
    /// Adds the counts of removed nodes' files.
    fn add_removed(&mut self, removed: GarbageReport) {
        self.removed_files += removed.removed_files;
        self.freed_bytes += removed.freed_bytes;
        self.waiting += removed.waiting;
    }

    /// Adds `other` to this report (`waiting` is the latest count, not a sum).
    pub fn add(&mut self, other: &GarbageReport) {
        self.removed_files += other.removed_files;
        self.cut_files += other.cut_files;
        self.freed_bytes += other.freed_bytes;
        self.waiting = other.waiting;
    }
}

impl crate::View {
    /// Retired data files and removed nodes whose files wait for a later writer.
    pub fn pending_garbage(&self) -> Result<u64> {
        self.row(
            "SELECT (SELECT count(*) FROM retired) + (SELECT count(*) FROM removed)",
            [],
            |r| r.get(0),
        )
        .map_err(|e| self.db(e))
    }
}

impl Transaction {
    /// Removes every data file, or file tail, retired by an earlier commit, and the files of
    /// nodes removed by an earlier commit, if no snapshot is open anywhere; otherwise leaves
    /// them for a later writer and counts them as waiting.
    pub fn collect_garbage(&mut self) -> Result<GarbageReport> {
        let mut report = self.collect_garbage_of(None)?;
        report.add_removed(self.collect_removed()?);
        Ok(report)
    }

    /// Removes file `node` and its whole history: its entry, versions, frames, state and
    /// data files (those once no snapshot can read them, see [`Transaction::collect_garbage`]).
    /// For retention: the caller decides that nothing needs the content any more.
    pub fn remove_file(&mut self, node: &Node) -> Result<RemovedFile> {
        if node.kind != NodeKind::File {
            return Err(StoreError::NotAFile {
                path: node.path.to_string(),
            });
        }
        let latest = self.view.latest_version(node.id)?;
        let max_generation: i64 = self
            .view
            .row(
                "SELECT max(g) FROM (SELECT max(generation) AS g FROM data_files WHERE node = ?1
                 UNION ALL SELECT max(generation) FROM retired WHERE node = ?1)",
                [node.id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map_err(|e| self.view.db(e))?
            .unwrap_or(0);
        self.delete_node_rows(node.id)?;
        self.view
            .conn
            .execute(
                "INSERT INTO removed (node, txn, max_generation) VALUES (?1, ?2, ?3)",
                params![node.id, self.txn, max_generation],
            )
            .map_err(|e| self.view.db(e))?;
        // Bytes this transaction wrote for it are covered by the `removed` row too.
        self.open.remove(&node.id);
        self.changed = true;
        Ok(RemovedFile {
            path: node.path.to_string(),
            bytes: latest.as_ref().map_or(0, |v| v.total_len),
            blake3: latest
                .map_or_else(|| blake3::hash(b""), |v| v.root)
                .to_hex()
                .to_string(),
        })
    }

    /// Deletes the data files and outboards of nodes removed by earlier commits, if no
    /// snapshot is open.
    fn collect_removed(&mut self) -> Result<GarbageReport> {
        let rows: Vec<(i64, i64)> = {
            let mut stmt = self
                .view
                .conn
                .prepare_cached("SELECT node, max_generation FROM removed WHERE txn < ?1")
                .map_err(|e| self.view.db(e))?;
            let rows = stmt
                .query_map([self.txn], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(|e| self.view.db(e))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| self.view.db(e))?
        };
        let mut report = GarbageReport::default();
        if rows.is_empty() {
            return Ok(report);
        }
        let Some(no_readers) = NoReaders::try_acquire(&self.view.dir)? else {
            report.waiting = rows.len() as u64;
            return Ok(report);
        };
        for &(id, max_generation) in &rows {
            let mut paths: Vec<std::path::PathBuf> = (0..=max_generation)
                .map(|g| data::data_path(&self.view.dir, id, g))
                .collect();
            paths.push(data::outboard_path(&self.view.dir, id));
            for path in paths {
                match std::fs::metadata(&path) {
                    Ok(meta) => {
                        remove_if_exists(&path)?;
                        report.removed_files += 1;
                        report.freed_bytes += meta.len();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(StoreError::Io { path, source }),
                }
            }
        }
        crate::pond::sync_dir(&self.view.dir.join("data"))?;
        drop(no_readers);
        for &(id, _) in &rows {
            self.view
                .conn
                .execute("DELETE FROM removed WHERE node = ?1", [id])
                .map_err(|e| self.view.db(e))?;
        }
        self.removed_files = true;
        self.changed = true;
        Ok(report)
    }

    /// Gives the catalog's free pages (left by folding and removals) back to the file system;
    /// returns how many. Needs nothing else in the transaction to be worth committing.
    pub fn release_free_pages(&mut self) -> Result<u64> {
        let free: u64 = self
            .view
            .row("PRAGMA freelist_count", [], |r| r.get(0))
            .map_err(|e| self.view.db(e))?;
        if free > 0 {
            // Each step of the pragma frees pages; it is done when it returns no more rows.
            let mut stmt = self
                .view
                .conn
                .prepare("PRAGMA incremental_vacuum")
                .map_err(|e| self.view.db(e))?;
            let mut rows = stmt.query([]).map_err(|e| self.view.db(e))?;
            while rows.next().map_err(|e| self.view.db(e))?.is_some() {}
            self.changed = true;
        }
        Ok(free)
    }

    /// Removes directory `dir` if it is empty (no-op otherwise); returns whether it did.
    pub fn remove_empty_dir(&mut self, dir: &Node) -> Result<bool> {
        if dir.kind != NodeKind::Dir || dir.id == crate::catalog::ROOT_ID {
            return Ok(false);
        }
        if !self.view.children(dir)?.is_empty() {
            return Ok(false);
        }
        self.delete_node_rows(dir.id)?;
        Ok(true)
    }

    /// [`Transaction::collect_garbage`] for one node, or for all.
    pub(crate) fn collect_garbage_of(&mut self, node: Option<i64>) -> Result<GarbageReport> {
        let rows: Vec<(i64, i64, u64)> = {
            let mut stmt = self
                .view
                .conn
                .prepare_cached(
                    "SELECT node, generation, keep_len FROM retired
                     WHERE txn < ?1 AND (?2 IS NULL OR node = ?2) ORDER BY node, generation",
                )
                .map_err(|e| self.view.db(e))?;
            let rows = stmt
                .query_map(params![self.txn, node], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(|e| self.view.db(e))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| self.view.db(e))?
        };
        let mut report = GarbageReport::default();
        if rows.is_empty() {
            return Ok(report);
        }
        let Some(no_readers) = NoReaders::try_acquire(&self.view.dir)? else {
            report.waiting = rows.len() as u64;
            tracing::debug!(
                waiting = report.waiting,
                "a snapshot is open: retired data files wait"
            );
            return Ok(report);
        };
        for &(id, generation, keep_len) in &rows {
            let path = data::data_path(&self.view.dir, id, generation);
            let len = match std::fs::metadata(&path) {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(source) => return Err(StoreError::Io { path, source }),
            };
            if keep_len == 0 {
                remove_if_exists(&path)?;
                report.removed_files += 1;
            } else {
                truncate_if_longer(&path, keep_len)?;
                report.cut_files += 1;
            }
            report.freed_bytes += len.saturating_sub(keep_len);
            tracing::debug!(node = id, generation, keep_len, "removed retired data");
        }
        crate::pond::sync_dir(&self.view.dir.join("data"))?;
        drop(no_readers);
        let mut delete = self
            .view
            .conn
            .prepare_cached("DELETE FROM retired WHERE node = ?1 AND generation = ?2")
            .map_err(|e| self.view.db(e))?;
        for &(id, generation, _) in &rows {
            delete
                .execute(params![id, generation])
                .map_err(|e| self.view.db(e))?;
        }
        drop(delete);
        self.removed_files = true;
        self.changed = true;
        Ok(report)
    }

    /// Retires generation `generation` of `id` from `keep_len` on: its frames there have moved.
    /// With `keep_len` 0 the generation has no frames left and goes whole.
    pub(crate) fn retire_tail(&mut self, id: i64, generation: i64, keep_len: u64) -> Result<()> {
        let open = self
            .open
            .get(&id)
            .and_then(|n| n.generations.get(&generation))
            .map(|g| g.committed_len);
        // Bytes up to the committed length may be read by a snapshot of an earlier state; only
        // when none of them die can the tail go at commit, leaving the generation writable.
        let readers_may_see = match open {
            Some(committed_len) => keep_len < committed_len,
            None => true,
        };
        let conn = &self.view.conn;
        let db = |e| crate::catalog::at(&self.view.catalog_path, e);
        if readers_may_see {
            conn.prepare_cached(
                "INSERT INTO retired (node, generation, keep_len, txn) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node, generation) DO UPDATE SET
                   keep_len = min(keep_len, excluded.keep_len), txn = excluded.txn",
            )
            .and_then(|mut s| s.execute(params![id, generation, keep_len, self.txn]))
            .map_err(db)?;
        }
        if keep_len == 0 {
            conn.execute(
                "DELETE FROM data_files WHERE node = ?1 AND generation = ?2",
                params![id, generation],
            )
            .map_err(db)?;
        } else {
            conn.execute(
                "UPDATE data_files SET data_len = ?3 WHERE node = ?1 AND generation = ?2",
                params![id, generation, keep_len],
            )
            .map_err(db)?;
        }
        if let Some(node) = self.open.get_mut(&id) {
            if keep_len == 0 && open == Some(0) {
                // Created and emptied in this transaction: no state ever referenced it.
                if let Some(gone) = node.generations.remove(&generation) {
                    remove_if_exists(&gone.path)?;
                }
            } else if let Some(g) = node.generations.get_mut(&generation) {
                g.len = keep_len;
            }
        }
        self.changed = true;
        Ok(())
    }
}
