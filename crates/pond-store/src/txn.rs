//! Write transactions: all-or-nothing changes to the namespace and to file contents.
//!
//! A transaction holds the writer lock and a SQLite `BEGIN IMMEDIATE` transaction. Appends write
//! data and outboard bytes past the committed lengths straight away (streaming) and record the
//! new version in the catalog; [`Transaction::commit`] trims every touched file to its final
//! length, fsyncs it, and only then commits the catalog. Until that commit nothing is visible to
//! readers, and a crash at any instant leaves the pond at the previous commit: the catalog wins,
//! and stray tail bytes are cut by the next writer (see `journal` in `pond.rs`).
//!
//! A node's frames may live in several data file generations (after compaction, `compact.rs`).
//! New bytes only go to a *writable* generation, one with no retired tail that a reader may still
//! read (`retire.rs`); otherwise to a new generation.

use crate::catalog::ROOT_ID;
use crate::data::{self, Compression, SegmentTarget};
use crate::error::{IoContext, Result, StoreError};
use crate::lock::WriterLock;
use crate::path::PondPath;
use crate::pond::Clock;
use crate::view::{Node, NodeKind, Version, View};
use rusqlite::{OptionalExtension, params};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Name of the file listing nodes whose data files an open (or interrupted) transaction touched.
const JOURNAL_FILE: &str = "journal";

/// A data file generation written in this transaction. Files are opened for each write and
/// closed after it, so a transaction touching thousands of files holds no descriptor per file;
/// the commit opens each once more to cut and fsync it.
pub(crate) struct OpenGeneration {
    pub(crate) path: PathBuf,
    /// Length at the last commit (0 for a generation this transaction created): readers of
    /// older states may read up to here, so the file is never cut below it in this transaction.
    pub(crate) committed_len: u64,
    /// Current length in this transaction (the catalog's `data_len`).
    pub(crate) len: u64,
}

/// A file node whose data this transaction writes: its outboard and the generations it opened.
pub(crate) struct OpenNode {
    pub(crate) outboard_path: PathBuf,
    pub(crate) generations: BTreeMap<i64, OpenGeneration>,
}

/// Where new bytes of a node go.
pub(crate) enum WriteTarget {
    /// A writable generation that exists (or was opened in this transaction).
    Existing(i64),
    /// A generation to create; `existing` generations (live or retired) are there already.
    New { generation: i64, existing: usize },
}

/// The one write transaction of a pond. Dropping it without [`Transaction::commit`] rolls back.
pub struct Transaction {
    pub(crate) view: View,
    _lock: WriterLock,
    pub(crate) txn: u64,
    argv: Vec<String>,
    pub(crate) compression: Compression,
    clock: Clock,
    pub(crate) open: BTreeMap<i64, OpenNode>,
    pub(crate) changed: bool,
    /// Retired files were removed or cut: `data/` is fsynced before the commit.
    pub(crate) removed_files: bool,
    finished: bool,
}

impl Transaction {
    pub(crate) fn begin(
        view: View,
        lock: WriterLock,
        argv: Vec<String>,
        compression: Compression,
        clock: Clock,
    ) -> Result<Self> {
        view.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| view.db(e))?;
        let mut txn = Self {
            txn: view.last_txn()? + 1,
            view,
            _lock: lock,
            argv,
            compression,
            clock,
            open: BTreeMap::new(),
            changed: false,
            removed_files: false,
            finished: false,
        };
        txn.recover_interrupted()?;
        Ok(txn)
    }

    /// The number this transaction gets when it commits.
    pub fn txn(&self) -> u64 {
        self.txn
    }

    /// True once anything has been changed.
    pub fn has_changes(&self) -> bool {
        self.changed
    }

    /// The time this transaction records (the pond's clock, now).
    pub fn now(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    /// Records that node `id`'s content or name changed in this transaction (the change index
    /// downstream runs and compaction start from).
    pub(crate) fn touch(&mut self, id: i64) -> Result<()> {
        self.view
            .conn
            .prepare_cached("UPDATE nodes SET changed_txn = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, self.txn]))
            .map_err(|e| self.view.db(e))?;
        self.changed = true;
        Ok(())
    }

    /// Cuts data files touched by an interrupted transaction back to their committed lengths and
    /// removes those the catalog does not know (new generations, nodes never committed). Retired
    /// generations are left alone: a reader may still read them, and no writer writes to them.
    fn recover_interrupted(&mut self) -> Result<()> {
        let journal = self.view.dir.join(JOURNAL_FILE);
        let text = match std::fs::read_to_string(&journal) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StoreError::Io {
                    path: journal,
                    source,
                });
            }
        };
        let ids: BTreeSet<i64> = text
            .lines()
            .filter_map(|l| l.trim().parse::<i64>().ok())
            .collect();
        let on_disk = data_files_on_disk(&self.view.dir.join("data"), &ids)?;
        for &id in &ids {
            let committed: BTreeMap<i64, u64> = self.view.data_files(id)?.into_iter().collect();
            let retired: BTreeSet<i64> = self
                .view
                .retired(id)?
                .into_iter()
                .map(|(g, ..)| g)
                .collect();
            for &generation in on_disk.get(&id).into_iter().flatten() {
                let path = data::data_path(&self.view.dir, id, generation);
                if retired.contains(&generation) {
                    continue;
                }
                match committed.get(&generation) {
                    Some(&len) => truncate_if_longer(&path, len)?,
                    None => remove_if_exists(&path)?,
                }
            }
            let outboard_path = data::outboard_path(&self.view.dir, id);
            match self.view.latest_version(id)? {
                Some(latest) => truncate_if_longer(
                    &outboard_path,
                    pond_hash::stable_outboard_len(latest.total_len),
                )?,
                None => remove_if_exists(&outboard_path)?,
            }
            tracing::info!(node = id, "cut data left by an interrupted transaction");
        }
        remove_if_exists(&journal)
    }

    fn journal(&self, id: i64) -> Result<()> {
        let path = self.view.dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(self.view.file_mode)
            .open(&path)
            .at(&path)?;
        writeln!(file, "{id}").at(&path)
    }

    fn insert_node(&mut self, parent: i64, name: &str, kind: NodeKind) -> Result<i64> {
        let conn = &self.view.conn;
        conn.execute(
            "INSERT INTO nodes (kind, created_txn, changed_txn) VALUES (?1, ?2, ?2)",
            params![kind.as_str(), self.txn],
        )
        .map_err(|e| self.view.db(e))?;
        let id = conn.last_insert_rowid();
        conn.execute(
            "INSERT INTO entries (parent, name, child) VALUES (?1, ?2, ?3)",
            params![parent, name, id],
        )
        .map_err(|e| self.view.db(e))?;
        self.changed = true;
        Ok(id)
    }

    /// The parent directory of `path`, which must exist, and the new entry's name.
    fn parent_dir<'p>(&self, path: &'p PondPath) -> Result<(Node, &'p str)> {
        let (Some(parent), Some(name)) = (path.parent(), path.name()) else {
            return Err(StoreError::AlreadyExists {
                path: path.to_string(),
            });
        };
        let dir = self.view.resolve(&parent)?;
        if dir.kind != NodeKind::Dir {
            return Err(StoreError::NotADirectory {
                path: parent.to_string(),
            });
        }
        if self.view.lookup(path)?.is_some() {
            return Err(StoreError::AlreadyExists {
                path: path.to_string(),
            });
        }
        Ok((dir, name))
    }

    /// Creates a directory; with `parents`, missing parents too and an existing directory is fine.
    pub fn mkdir(&mut self, path: &PondPath, parents: bool) -> Result<Node> {
        if parents {
            let mut current = Node {
                id: ROOT_ID,
                kind: NodeKind::Dir,
                path: PondPath::root(),
            };
            for name in path.components() {
                let next = current.path.join(name)?;
                current = match self.view.lookup(&next)? {
                    Some(node) if node.kind == NodeKind::Dir => node,
                    Some(_) => {
                        return Err(StoreError::NotADirectory {
                            path: next.to_string(),
                        });
                    }
                    None => Node {
                        id: self.insert_node(current.id, name, NodeKind::Dir)?,
                        kind: NodeKind::Dir,
                        path: next,
                    },
                };
            }
            return Ok(current);
        }
        let (dir, name) = self.parent_dir(path)?;
        let id = self.insert_node(dir.id, name, NodeKind::Dir)?;
        Ok(Node {
            id,
            kind: NodeKind::Dir,
            path: path.clone(),
        })
    }

    /// Creates an empty file node with no versions yet.
    pub fn create_file(&mut self, path: &PondPath) -> Result<Node> {
        let (dir, name) = self.parent_dir(path)?;
        let id = self.insert_node(dir.id, name, NodeKind::File)?;
        Ok(Node {
            id,
            kind: NodeKind::File,
            path: path.clone(),
        })
    }

    /// Creates a factory node, or with `overwrite` replaces the config of an existing one.
    pub fn mknod(
        &mut self,
        path: &PondPath,
        factory: &str,
        config: &str,
        overwrite: bool,
    ) -> Result<Node> {
        let id = match self.view.lookup(path)? {
            Some(node) if overwrite && node.kind == NodeKind::Factory => node.id,
            Some(node) if overwrite => {
                return Err(StoreError::NotAFactoryNode {
                    path: node.path.to_string(),
                });
            }
            Some(_) => {
                return Err(StoreError::AlreadyExists {
                    path: path.to_string(),
                });
            }
            None => {
                let (dir, name) = self.parent_dir(path)?;
                self.insert_node(dir.id, name, NodeKind::Factory)?
            }
        };
        self.view
            .conn
            .execute(
                "INSERT INTO factory_nodes (node, factory, config, updated_txn)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node) DO UPDATE SET
                   factory = excluded.factory, config = excluded.config,
                   updated_txn = excluded.updated_txn",
                params![id, factory, config, self.txn],
            )
            .map_err(|e| self.view.db(e))?;
        self.changed = true;
        Ok(Node {
            id,
            kind: NodeKind::Factory,
            path: path.clone(),
        })
    }

    /// Moves or renames a node; its id, versions and state stay with it.
    pub fn rename(&mut self, from: &PondPath, to: &PondPath) -> Result<Node> {
        let node = self.view.resolve(from)?;
        if from.is_root() || to.starts_with(from) {
            return Err(StoreError::MoveIntoItself {
                path: from.to_string(),
            });
        }
        let (dir, name) = self.parent_dir(to)?;
        self.view
            .conn
            .execute(
                "UPDATE entries SET parent = ?1, name = ?2 WHERE child = ?3",
                params![dir.id, name, node.id],
            )
            .map_err(|e| self.view.db(e))?;
        self.touch(node.id)?;
        if node.kind == NodeKind::Dir {
            // Every path below changes too.
            let moved = Node {
                path: to.clone(),
                ..node.clone()
            };
            for below in self.view.walk(&moved)? {
                self.touch(below.id)?;
            }
        }
        Ok(Node {
            path: to.clone(),
            ..node
        })
    }

    /// Removes a file node that has no versions (one created in this transaction whose first
    /// append could not complete). Files with content are never removed.
    pub fn remove_empty_file(&mut self, node: &Node) -> Result<()> {
        if node.kind != NodeKind::File {
            return Err(StoreError::NotAFile {
                path: node.path.to_string(),
            });
        }
        if self.view.latest_version(node.id)?.is_some() {
            return Err(StoreError::Corrupt {
                node: node.id,
                detail: "refusing to remove a file that has versions".to_string(),
            });
        }
        self.delete_node_rows(node.id)?;
        if let Some(open) = self.open.remove(&node.id) {
            for generation in open.generations.values() {
                remove_if_exists(&generation.path)?;
            }
            remove_if_exists(&open.outboard_path)?;
        }
        self.changed = true;
        Ok(())
    }

    /// Deletes node `id` and every row about it: its entry, state, versions, frames, data file
    /// and retired rows.
    pub(crate) fn delete_node_rows(&mut self, id: i64) -> Result<()> {
        for table in [
            "entries WHERE child",
            "node_state WHERE node",
            "versions WHERE node",
            "frames WHERE node",
            "data_files WHERE node",
            "retired WHERE node",
            "nodes WHERE id",
        ] {
            self.view
                .conn
                .prepare_cached(&format!("DELETE FROM {table} = ?1"))
                .and_then(|mut s| s.execute([id]))
                .map_err(|e| self.view.db(e))?;
        }
        self.changed = true;
        Ok(())
    }

    /// Stores a value for node `id` under `key` (factory cursors and the like).
    pub fn set_state(&mut self, id: i64, key: &str, value: &[u8]) -> Result<()> {
        self.view
            .conn
            .execute(
                "INSERT INTO node_state (node, key, value, updated_txn) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node, key) DO UPDATE SET
                   value = excluded.value, updated_txn = excluded.updated_txn",
                params![id, key, value, self.txn],
            )
            .map_err(|e| self.view.db(e))?;
        self.changed = true;
        Ok(())
    }

    /// Removes the value of node `id` under `key`, if any.
    pub fn delete_state(&mut self, id: i64, key: &str) -> Result<()> {
        let deleted = self
            .view
            .conn
            .prepare_cached("DELETE FROM node_state WHERE node = ?1 AND key = ?2")
            .and_then(|mut s| s.execute(params![id, key]))
            .map_err(|e| self.view.db(e))?;
        if deleted > 0 {
            self.changed = true;
        }
        Ok(())
    }

    /// Notes that this transaction writes data files of `id` (journaling the node first) and
    /// cuts its outboard to the committed length.
    fn open_node(&mut self, id: i64) -> Result<&mut OpenNode> {
        if !self.open.contains_key(&id) {
            let len = self.view.file_len(id)?;
            self.journal(id)?;
            let outboard_path = data::outboard_path(&self.view.dir, id);
            open_rw(&outboard_path, self.view.file_mode)?
                .set_len(pond_hash::stable_outboard_len(len))
                .at(&outboard_path)?;
            self.open.insert(
                id,
                OpenNode {
                    outboard_path,
                    generations: BTreeMap::new(),
                },
            );
        }
        self.open.get_mut(&id).ok_or_else(|| StoreError::Corrupt {
            node: id,
            detail: "data files vanished from the open set".to_string(),
        })
    }

    /// Opens generation `generation` of `id` for writing; it must be writable.
    pub(crate) fn open_generation(&mut self, id: i64, generation: i64) -> Result<&mut OpenNode> {
        let opened = self
            .open
            .get(&id)
            .is_some_and(|n| n.generations.contains_key(&generation));
        if !opened {
            let committed_len = self
                .view
                .data_files(id)?
                .into_iter()
                .find(|&(g, _)| g == generation)
                .map_or(0, |(_, len)| len);
            let path = data::data_path(&self.view.dir, id, generation);
            let file_mode = self.view.file_mode;
            let node = self.open_node(id)?;
            // Cuts what an interrupted writer may have left (the journal names this node).
            open_rw(&path, file_mode)?
                .set_len(committed_len)
                .at(&path)?;
            node.generations.insert(
                generation,
                OpenGeneration {
                    path,
                    committed_len,
                    len: committed_len,
                },
            );
        }
        self.open_node(id)
    }

    /// The generation new bytes of `id` go to: the one holding the last frame if writable, else
    /// the newest writable one other than `exclude`, else a new one.
    pub(crate) fn writable_generation(&self, id: i64, exclude: Option<i64>) -> Result<i64> {
        Ok(match self.write_target(id, exclude)? {
            WriteTarget::Existing(generation) | WriteTarget::New { generation, .. } => generation,
        })
    }

    /// [`Transaction::writable_generation`], telling a new generation apart.
    pub(crate) fn write_target(&self, id: i64, exclude: Option<i64>) -> Result<WriteTarget> {
        let retired: BTreeSet<i64> = self
            .view
            .retired(id)?
            .into_iter()
            .map(|(g, ..)| g)
            .collect();
        let mut known: BTreeSet<i64> = self
            .view
            .data_files(id)?
            .into_iter()
            .map(|(g, _)| g)
            .collect();
        if let Some(open) = self.open.get(&id) {
            known.extend(open.generations.keys());
        }
        let writable = |g: &i64| !retired.contains(g) && Some(*g) != exclude;
        let last = self
            .view
            .row(
                "SELECT generation FROM frames WHERE node = ?1 ORDER BY raw_offset DESC LIMIT 1",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(|e| self.view.db(e))?;
        if let Some(last) = last
            && known.contains(&last)
            && writable(&last)
        {
            return Ok(WriteTarget::Existing(last));
        }
        if let Some(&newest) = known.iter().rev().find(|g| writable(g)) {
            return Ok(WriteTarget::Existing(newest));
        }
        known.extend(&retired);
        Ok(WriteTarget::New {
            // Never reuse a number a retired file may still carry.
            generation: known.last().map_or(0, |max| max + 1),
            existing: known.len(),
        })
    }

    /// Appends everything `source` yields (exactly `limit` bytes when given) to file `node` as a
    /// new version. With a limit, a source that ends early stores nothing and returns
    /// [`StoreError::ShortRead`]; the transaction stays usable.
    pub fn append(
        &mut self,
        node: &Node,
        source: &mut dyn Read,
        limit: Option<u64>,
    ) -> Result<Version> {
        if node.kind != NodeKind::File {
            return Err(StoreError::NotAFile {
                path: node.path.to_string(),
            });
        }
        let latest = self.view.latest_version(node.id)?;
        let mut hasher = self.view.tree_hasher(node.id, latest.as_ref())?;
        let compression = self.compression;
        let file_mode = self.view.file_mode;
        let generation = self.writable_generation(node.id, None)?;
        let open = self.open_generation(node.id, generation)?;
        let Some(data) = open.generations.get_mut(&generation) else {
            return Err(StoreError::Corrupt {
                node: node.id,
                detail: format!("generation {generation} vanished from the open set"),
            });
        };
        let data_file = open_rw(&data.path, file_mode)?;
        let outboard_file = open_rw(&open.outboard_path, file_mode)?;
        let target = SegmentTarget {
            data: &data_file,
            data_path: &data.path,
            generation,
            data_offset: data.len,
            outboard: &outboard_file,
            outboard_path: &open.outboard_path,
            compression,
        };
        let written = data::write_segment(source, limit, &mut hasher, &target)?;
        data.len = written.data_end;
        drop((data_file, outboard_file));

        let conn = &self.view.conn;
        let db = |e| crate::catalog::at(&self.view.catalog_path, e);
        {
            insert_frames(conn, node.id, &written.frames).map_err(db)?;
        }
        let version = Version {
            version: latest.as_ref().map_or(1, |v| v.version + 1),
            txn: self.txn,
            segment_len: written.segment_len,
            segment_hash: Some(written.segment_hash),
            total_len: hasher.len(),
            root: hasher.root(),
            frontier: hasher.frontier_cvs(),
        };
        conn.execute(
            "INSERT INTO versions
               (node, version, txn, segment_len, segment_hash, total_len, root, frontier)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                node.id,
                version.version,
                version.txn,
                version.segment_len,
                written.segment_hash.as_bytes(),
                version.total_len,
                version.root.as_bytes(),
                version.frontier
            ],
        )
        .map_err(db)?;
        set_data_len(conn, node.id, generation, written.data_end).map_err(db)?;
        self.touch(node.id)?;
        Ok(version)
    }

    /// Commits every change with `summary`; returns the transaction number, or `None` (and
    /// commits nothing) when nothing changed.
    pub fn commit(mut self, summary: &str) -> Result<Option<u64>> {
        if !self.changed {
            self.rollback_now()?;
            return Ok(None);
        }
        let mut new_files = self.removed_files;
        for (&id, open) in &self.open {
            for data in open.generations.values() {
                // Bytes up to the committed length stay: an older snapshot may read a retired
                // tail until a later writer removes it.
                let file = open_rw(&data.path, self.view.file_mode)?;
                file.set_len(data.len.max(data.committed_len))
                    .at(&data.path)?;
                file.sync_all().at(&data.path)?;
            }
            let len = self.view.file_len(id)?;
            let outboard = open_rw(&open.outboard_path, self.view.file_mode)?;
            outboard
                .set_len(pond_hash::stable_outboard_len(len))
                .at(&open.outboard_path)?;
            outboard.sync_all().at(&open.outboard_path)?;
            new_files = true;
        }
        if new_files {
            crate::pond::sync_dir(&self.view.dir.join("data"))?;
        }
        let argv = serde_json::to_string(&self.argv).unwrap_or_default();
        self.view
            .conn
            .execute(
                "INSERT INTO txns (txn, time, argv, summary, last_txn) VALUES (?1, ?2, ?3, ?4, ?1)",
                params![self.txn, crate::rfc3339(self.clock.now()), argv, summary],
            )
            .map_err(|e| self.view.db(e))?;
        self.view
            .conn
            .execute_batch("COMMIT")
            .map_err(|e| self.view.db(e))?;
        self.finished = true;
        self.open.clear();
        remove_if_exists(&self.view.dir.join(JOURNAL_FILE))?;
        Ok(Some(self.txn))
    }

    /// Discards every change.
    pub fn rollback(mut self) -> Result<()> {
        self.rollback_now()
    }

    fn rollback_now(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.view
            .conn
            .execute_batch("ROLLBACK")
            .map_err(|e| self.view.db(e))?;
        self.open.clear();
        // The catalog is back at the last commit: cut what this transaction wrote.
        self.recover_interrupted()
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Err(e) = self.rollback_now() {
            tracing::warn!("rolling back: {e}");
        }
    }
}

impl std::ops::Deref for Transaction {
    type Target = View;
    fn deref(&self) -> &View {
        &self.view
    }
}

pub(crate) fn open_rw(path: &std::path::Path, mode: u32) -> Result<File> {
    crate::perms::open_rw(path, mode).at(path)
}

/// Records `frames` of node `id` in the catalog.
pub(crate) fn insert_frames(
    conn: &rusqlite::Connection,
    id: i64,
    frames: &[data::Frame],
) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO frames (node, raw_offset, raw_len, generation, file_offset, file_len, codec)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for frame in frames {
        insert.execute(params![
            id,
            frame.raw_offset,
            frame.raw_len,
            frame.generation,
            frame.file_offset,
            frame.file_len,
            frame.codec as i64
        ])?;
    }
    Ok(())
}

/// Records the length of a data file generation.
pub(crate) fn set_data_len(
    conn: &rusqlite::Connection,
    id: i64,
    generation: i64,
    len: u64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO data_files (node, generation, data_len) VALUES (?1, ?2, ?3)
         ON CONFLICT (node, generation) DO UPDATE SET data_len = excluded.data_len",
    )?
    .execute(params![id, generation, len])?;
    Ok(())
}

/// The data file generations in `dir` of each node in `ids` (`<node>.<generation>.dat`).
fn data_files_on_disk(
    dir: &std::path::Path,
    ids: &BTreeSet<i64>,
) -> Result<BTreeMap<i64, Vec<i64>>> {
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(StoreError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some((node, generation)) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".dat"))
            .and_then(|n| n.split_once('.'))
            .and_then(|(node, generation)| Some((node.parse().ok()?, generation.parse().ok()?)))
        else {
            continue;
        };
        if ids.contains(&node) {
            out.entry(node).or_default().push(generation);
        }
    }
    Ok(out)
}

pub(crate) fn truncate_if_longer(path: &std::path::Path, len: u64) -> Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => {
            if file.metadata().at(path)?.len() > len {
                file.set_len(len).at(path)?;
                file.sync_all().at(path)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn remove_if_exists(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("pond", &self.view.dir)
            .field("txn", &self.txn)
            .field("changed", &self.changed)
            .finish_non_exhaustive()
    }
}
