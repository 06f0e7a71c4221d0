//! The read API shared by snapshots and transactions.
//!
//! A [`View`] is a catalog connection inside a SQLite transaction: a [`Snapshot`] holds a read
//! transaction, so everything it returns belongs to one committed state, and the reader lock, so
//! the data files that state references stay on disk; a [`crate::Transaction`] holds the write
//! transaction and sees its own changes.

use crate::catalog::{self, ROOT_ID};
use crate::data::{self, Codec, ContentReader, Frame};
use crate::error::{IoContext, Result, StoreError};
use crate::lock::ReaderLock;
use crate::path::PondPath;
use pond_hash::{NODE_LEN, NodeSource, TreeHasher};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Dir,
    File,
    Factory,
}

impl NodeKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Dir => "dir",
            Self::File => "file",
            Self::Factory => "factory",
        }
    }

    fn parse(text: &str, id: i64) -> Result<Self> {
        match text {
            "dir" => Ok(Self::Dir),
            "file" => Ok(Self::File),
            "factory" => Ok(Self::Factory),
            other => Err(StoreError::Corrupt {
                node: id,
                detail: format!("unknown node kind {other:?}"),
            }),
        }
    }
}

/// A node found at a path. The id is stable across renames and moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: i64,
    pub kind: NodeKind,
    pub path: PondPath,
}

/// One version of a file. Version numbers count appends; the content of version N is every
/// segment up to and including N's. Once history is folded (`history.rs`), some numbers are
/// gone: a kept version's segment then covers every append since the previous kept version,
/// and its segment hash is not recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub version: u64,
    pub txn: u64,
    pub segment_len: u64,
    /// BLAKE3 of this version's segment alone; `None` for a folded version.
    pub segment_hash: Option<blake3::Hash>,
    pub total_len: u64,
    /// Standard BLAKE3 of the whole content at this version.
    pub root: blake3::Hash,
    pub(crate) frontier: Vec<u8>,
}

/// A committed transaction, or a run of old ones folded into one record (`history.rs`).
#[derive(Clone, Debug, Serialize)]
pub struct TxnRecord {
    /// The transaction's number (the first one's, when folded).
    pub txn: u64,
    /// When it committed (the last one's time, when folded).
    pub time: String,
    /// The command that made it (empty when folded: see `folded.commands`).
    pub argv: Vec<String>,
    pub summary: String,
    /// The last transaction number this record covers (`txn` itself unless folded).
    pub last_txn: u64,
    /// What a folded record stands for; `None` for a single transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<crate::history::Folded>,
}

/// A factory node: which factory, and its config text as written (not env-expanded).
#[derive(Clone, Debug)]
pub struct FactoryNode {
    pub factory: String,
    pub config: String,
    pub updated_txn: u64,
}

/// Where a file's content is stored: its frames and data files (see `docs/format.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Storage {
    pub frames: u64,
    /// Stored (compressed) bytes of all frames.
    pub stored_bytes: u64,
    /// Data file generations the catalog records (`data/<node>.<generation>.dat`).
    pub generations: Vec<i64>,
    /// Generations with a retired tail, or retired whole, waiting for removal.
    pub retired_generations: Vec<i64>,
}

/// Catalog access inside one SQLite transaction.
pub struct View {
    pub(crate) conn: Connection,
    pub(crate) dir: PathBuf,
    pub(crate) catalog_path: PathBuf,
    /// The reader lock of a snapshot; `None` in a transaction (the writer lock covers it).
    pub(crate) readers: Option<Arc<ReaderLock>>,
    /// The mode of files this view creates (see `perms.rs`).
    pub(crate) file_mode: u32,
}

impl View {
    pub(crate) fn new(
        conn: Connection,
        dir: PathBuf,
        catalog_path: PathBuf,
        readers: Option<Arc<ReaderLock>>,
    ) -> Self {
        Self {
            file_mode: crate::perms::file_mode(&dir),
            conn,
            dir,
            catalog_path,
            readers,
        }
    }

    pub(crate) fn begin_read(&self) -> Result<()> {
        // A WAL read transaction takes its snapshot at the first read, so read once now.
        self.conn
            .execute_batch("BEGIN DEFERRED; SELECT count(*) FROM settings;")
            .map_err(|e| self.db(e))
    }

    /// One row of a cached statement: lookups run once per tracked file on every sync.
    pub(crate) fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    pub(crate) fn db(&self, source: rusqlite::Error) -> StoreError {
        catalog::at(&self.catalog_path, source)
    }

    /// The pond directory.
    pub fn pond_dir(&self) -> &Path {
        &self.dir
    }

    /// The number of the last committed transaction (0 for a new pond).
    pub fn last_txn(&self) -> Result<u64> {
        // Records do not overlap, so the newest record ends with the last transaction.
        self.row(
            "SELECT last_txn FROM txns ORDER BY txn DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map(|last| last.unwrap_or(0))
        .map_err(|e| self.db(e))
    }

    /// Whether node `id` exists.
    pub fn node_exists(&self, id: i64) -> Result<bool> {
        self.row("SELECT count(*) FROM nodes WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n > 0)
        .map_err(|e| self.db(e))
    }

    /// File nodes whose content or path changed in a transaction after `txn`, by id: found by
    /// index, so the cost follows what changed, not what the pond holds.
    pub fn files_changed_since(&self, txn: u64) -> Result<Vec<Node>> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id FROM nodes WHERE changed_txn > ?1 AND kind = 'file' ORDER BY id",
                )
                .map_err(|e| self.db(e))?;
            let rows = stmt
                .query_map([txn], |r| r.get(0))
                .map_err(|e| self.db(e))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| self.db(e))?
        };
        ids.into_iter()
            .map(|id| {
                Ok(Node {
                    id,
                    kind: NodeKind::File,
                    path: self.path_of(id)?,
                })
            })
            .collect()
    }

    /// The node at `path`, if any.
    pub fn lookup(&self, path: &PondPath) -> Result<Option<Node>> {
        let mut id = ROOT_ID;
        let mut kind = NodeKind::Dir;
        for (depth, name) in path.components().iter().enumerate() {
            if kind != NodeKind::Dir {
                return Err(StoreError::NotADirectory {
                    path: prefix(path, depth),
                });
            }
            let found: Option<(i64, String)> = self
                .row(
                    "SELECT e.child, n.kind FROM entries e JOIN nodes n ON n.id = e.child
                     WHERE e.parent = ?1 AND e.name = ?2",
                    params![id, name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| self.db(e))?;
            let Some((child, child_kind)) = found else {
                return Ok(None);
            };
            id = child;
            kind = NodeKind::parse(&child_kind, child)?;
        }
        Ok(Some(Node {
            id,
            kind,
            path: path.clone(),
        }))
    }

    /// The node at `path`, or a not-found error naming it.
    pub fn resolve(&self, path: &PondPath) -> Result<Node> {
        self.lookup(path)?.ok_or_else(|| StoreError::NotFound {
            path: path.to_string(),
        })
    }

    /// The file node at `path`, or an error naming it.
    pub fn resolve_file(&self, path: &PondPath) -> Result<Node> {
        let node = self.resolve(path)?;
        if node.kind != NodeKind::File {
            return Err(StoreError::NotAFile {
                path: path.to_string(),
            });
        }
        Ok(node)
    }

    /// The entries of a directory, sorted by name.
    pub fn children(&self, dir: &Node) -> Result<Vec<Node>> {
        if dir.kind != NodeKind::Dir {
            return Err(StoreError::NotADirectory {
                path: dir.path.to_string(),
            });
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT e.name, e.child, n.kind FROM entries e JOIN nodes n ON n.id = e.child
                 WHERE e.parent = ?1 ORDER BY e.name",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([dir.id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, id, kind) = row.map_err(|e| self.db(e))?;
            out.push(Node {
                id,
                kind: NodeKind::parse(&kind, id)?,
                path: dir.path.join(&name)?,
            });
        }
        Ok(out)
    }

    /// Every node below `dir`, depth first, each directory's entries sorted by name.
    pub fn walk(&self, dir: &Node) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(current) = stack.pop() {
            let children = self.children(&current)?;
            for child in children.iter().rev() {
                if child.kind == NodeKind::Dir {
                    stack.push(child.clone());
                }
            }
            out.extend(children);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The nodes a pattern selects, sorted by path. Without glob characters the pattern names a
    /// node: a directory selects its children, anything else itself. With them (`*` and `?`
    /// within a component, `**` across components, `[..]`, `{a,b}`) it selects every node below
    /// the pattern's fixed prefix whose path matches.
    pub fn select(&self, pattern: &str) -> Result<Vec<Node>> {
        if !pattern.contains(GLOB_CHARS) {
            let node = self.resolve(&PondPath::parse(pattern)?)?;
            return if node.kind == NodeKind::Dir {
                self.children(&node)
            } else {
                Ok(vec![node])
            };
        }
        let (absolute, matcher) = glob_matcher(pattern)?;
        // Walk only below the components that hold no glob characters.
        let fixed: Vec<&str> = absolute
            .trim_start_matches('/')
            .split('/')
            .take_while(|part| !part.contains(GLOB_CHARS))
            .collect();
        let base = PondPath::parse(&format!("/{}", fixed.join("/")))?;
        let Some(base_node) = self.lookup(&base)? else {
            return Ok(Vec::new());
        };
        if base_node.kind != NodeKind::Dir {
            return Ok(Vec::new());
        }
        Ok(self
            .walk(&base_node)?
            .into_iter()
            .filter(|node| matcher.is_match(node.path.to_string()))
            .collect())
    }

    /// Whether `path` is among what [`View::select`] selects for `pattern`, without walking:
    /// a glob matches the path, a plain path names it or its parent directory.
    pub fn selects(pattern: &str, path: &PondPath) -> Result<bool> {
        if !pattern.contains(GLOB_CHARS) {
            let named = PondPath::parse(pattern)?;
            return Ok(*path == named || path.parent().as_ref() == Some(&named));
        }
        let (_, matcher) = glob_matcher(pattern)?;
        Ok(matcher.is_match(path.to_string()))
    }

    /// The current path of a node id.
    pub fn path_of(&self, id: i64) -> Result<PondPath> {
        let mut names = Vec::new();
        let mut current = id;
        while current != ROOT_ID {
            let (parent, name): (i64, String) = self
                .row(
                    "SELECT parent, name FROM entries WHERE child = ?1",
                    [current],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| self.db(e))?
                .ok_or_else(|| StoreError::Corrupt {
                    node: id,
                    detail: "node has no directory entry".to_string(),
                })?;
            names.push(name);
            current = parent;
        }
        names.reverse();
        PondPath::parse(&format!("/{}", names.join("/")))
    }

    /// All versions of a file, oldest first.
    pub fn versions(&self, id: i64) -> Result<Vec<Version>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, txn, segment_len, segment_hash, total_len, root, frontier
                 FROM versions WHERE node = ?1 ORDER BY version",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([id], version_from_row)
            .map_err(|e| self.db(e))?;
        rows.map(|r| r.map_err(|e| self.db(e))).collect()
    }

    /// The newest version of a file, if it has any.
    pub fn latest_version(&self, id: i64) -> Result<Option<Version>> {
        self.row(
            "SELECT version, txn, segment_len, segment_hash, total_len, root, frontier
                 FROM versions WHERE node = ?1 ORDER BY version DESC LIMIT 1",
            [id],
            version_from_row,
        )
        .optional()
        .map_err(|e| self.db(e))
    }

    /// Version `number` of the file `node`, or an error naming the path and the latest version.
    pub fn version(&self, node: &Node, number: u64) -> Result<Version> {
        self.row(
            "SELECT version, txn, segment_len, segment_hash, total_len, root, frontier
                 FROM versions WHERE node = ?1 AND version = ?2",
            params![node.id, number],
            version_from_row,
        )
        .optional()
        .map_err(|e| self.db(e))?
        .map_or_else(
            || {
                let latest = self.latest_version(node.id)?.map_or(0, |v| v.version);
                if number > 0 && number < latest {
                    // Numbers below the latest existed: this one was folded into the next kept.
                    let into = self
                        .row(
                            "SELECT min(version) FROM versions WHERE node = ?1 AND version > ?2",
                            params![node.id, number],
                            |r| r.get::<_, Option<u64>>(0),
                        )
                        .map_err(|e| self.db(e))?
                        .unwrap_or(latest);
                    return Err(StoreError::FoldedVersion {
                        path: node.path.to_string(),
                        version: number,
                        into,
                    });
                }
                Err(StoreError::NoSuchVersion {
                    path: node.path.to_string(),
                    version: number,
                    latest,
                })
            },
            Ok,
        )
    }

    /// Current content length of a file (0 when it has no version).
    pub fn file_len(&self, id: i64) -> Result<u64> {
        Ok(self.latest_version(id)?.map_or(0, |v| v.total_len))
    }

    /// The data file generations of `id` and their committed lengths, by generation.
    pub(crate) fn data_files(&self, id: i64) -> Result<Vec<(i64, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT generation, data_len FROM data_files WHERE node = ?1 ORDER BY generation",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db(e))?;
        rows.map(|r| r.map_err(|e| self.db(e))).collect()
    }

    /// Retired generations of `id`: (generation, length to keep, retiring transaction).
    pub(crate) fn retired(&self, id: i64) -> Result<Vec<(i64, u64, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT generation, keep_len, txn FROM retired WHERE node = ?1 ORDER BY generation",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.db(e))?;
        rows.map(|r| r.map_err(|e| self.db(e))).collect()
    }

    /// Frames of `id` overlapping raw bytes `start..end`, in order.
    pub(crate) fn frames(&self, id: i64, start: u64, end: u64) -> Result<Vec<Frame>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT raw_offset, raw_len, generation, file_offset, file_len, codec FROM frames
                 WHERE node = ?1 AND raw_offset < ?3 AND raw_offset >= coalesce(
                   (SELECT max(raw_offset) FROM frames WHERE node = ?1 AND raw_offset <= ?2), 0)
                 ORDER BY raw_offset",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![id, start, end], |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, u64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, u64>(3)?,
                    r.get::<_, u64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (raw_offset, raw_len, generation, file_offset, file_len, codec) =
                row.map_err(|e| self.db(e))?;
            let codec = Codec::from_i64(codec).ok_or_else(|| StoreError::Corrupt {
                node: id,
                detail: format!("frame at raw offset {raw_offset} has unknown codec {codec}"),
            })?;
            if raw_offset + raw_len > start {
                out.push(Frame {
                    raw_offset,
                    raw_len,
                    generation,
                    file_offset,
                    file_len,
                    codec,
                });
            }
        }
        Ok(out)
    }

    /// Every frame of `id`, in raw order.
    pub(crate) fn all_frames(&self, id: i64) -> Result<Vec<Frame>> {
        self.frames(id, 0, i64::MAX as u64)
    }

    /// Where the content of file `id` is stored.
    pub fn storage(&self, id: i64) -> Result<Storage> {
        let (frames, stored_bytes) = self
            .row(
                "SELECT count(*), coalesce(sum(file_len), 0) FROM frames WHERE node = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.db(e))?;
        Ok(Storage {
            frames,
            stored_bytes,
            generations: self.data_files(id)?.into_iter().map(|(g, _)| g).collect(),
            retired_generations: self.retired(id)?.into_iter().map(|(g, ..)| g).collect(),
        })
    }

    /// Streams raw bytes `start..end` of file `id` (bounded by its current length).
    pub fn read_range(&self, id: i64, start: u64, end: u64) -> Result<ContentReader> {
        let len = self.file_len(id)?;
        let end = end.min(len);
        let start = start.min(end);
        let frames = if start < end {
            self.frames(id, start, end)?
        } else {
            Vec::new()
        };
        Ok(ContentReader::new(
            self.dir.clone(),
            id,
            frames,
            start,
            end,
            self.readers.clone(),
        ))
    }

    /// Streams the content of `node` at `version` (the newest when `None`).
    pub fn read(&self, node: &Node, version: Option<u64>) -> Result<ContentReader> {
        if node.kind != NodeKind::File {
            return Err(StoreError::NotAFile {
                path: node.path.to_string(),
            });
        }
        let end = match version {
            Some(number) => self.version(node, number)?.total_len,
            None => self.file_len(node.id)?,
        };
        self.read_range(node.id, 0, end)
    }

    /// Reads raw bytes `start..end` of file `id` into memory (for small ranges).
    pub fn read_bytes(&self, id: i64, start: u64, end: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_range(id, start, end)?
            .read_to_end(&mut out)
            .map_err(|e| StoreError::Corrupt {
                node: id,
                detail: e.to_string(),
            })?;
        Ok(out)
    }

    /// The incremental hashing state of `version`, ready to continue or to give the outboard.
    pub(crate) fn tree_hasher(&self, id: i64, version: Option<&Version>) -> Result<TreeHasher> {
        let Some(version) = version else {
            return Ok(TreeHasher::new());
        };
        let len = version.total_len;
        let last_block = self.read_bytes(id, len - pond_hash::pending_len(len), len)?;
        TreeHasher::resume(len, &version.frontier, &last_block).map_err(|e| StoreError::Corrupt {
            node: id,
            detail: e.to_string(),
        })
    }

    /// The post-order bao outboard of `version` of file `id`, node by node.
    pub fn outboard(&self, id: i64, version: &Version) -> Result<OutboardReader> {
        let hasher = self.tree_hasher(id, Some(version))?;
        let path = data::outboard_path(&self.dir, id);
        let file = if pond_hash::stable_outboard_len(version.total_len) > 0 {
            Some(File::open(&path).at(&path)?)
        } else {
            None
        };
        Ok(OutboardReader {
            file,
            path,
            stable_nodes: pond_hash::stable_outboard_len(version.total_len) / NODE_LEN,
            unstable: hasher.unstable_outboard(),
        })
    }

    /// Committed transactions, newest first; folded runs of old ones come as one record each.
    pub fn transactions(&self, limit: Option<u64>) -> Result<Vec<TxnRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT txn, time, argv, summary, last_txn, folded FROM txns
                 ORDER BY txn DESC LIMIT ?1",
            )
            .map_err(|e| self.db(e))?;
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = stmt
            .query_map([limit], txn_record_from_row)
            .map_err(|e| self.db(e))?;
        rows.map(|r| r.map_err(|e| self.db(e))).collect()
    }

    /// The factory and config of a factory node.
    pub fn factory_node(&self, node: &Node) -> Result<FactoryNode> {
        self.row(
            "SELECT factory, config, updated_txn FROM factory_nodes WHERE node = ?1",
            [node.id],
            |r| {
                Ok(FactoryNode {
                    factory: r.get(0)?,
                    config: r.get(1)?,
                    updated_txn: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(|e| self.db(e))?
        .ok_or_else(|| StoreError::NotAFactoryNode {
            path: node.path.to_string(),
        })
    }

    /// Every factory node in the pond, by path.
    pub fn factory_nodes(&self) -> Result<Vec<(Node, FactoryNode)>> {
        let ids: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare("SELECT node FROM factory_nodes ORDER BY node")
                .map_err(|e| self.db(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.db(e))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| self.db(e))?
        };
        let mut out = Vec::new();
        for id in ids {
            let node = Node {
                id,
                kind: NodeKind::Factory,
                path: self.path_of(id)?,
            };
            let factory = self.factory_node(&node)?;
            out.push((node, factory));
        }
        out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        Ok(out)
    }

    /// Every node that has a value under `key`, with the value, by node id.
    pub fn states_with_key(&self, key: &str) -> Result<Vec<(i64, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT node, value FROM node_state WHERE key = ?1 ORDER BY node")
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.db(e))?;
        rows.map(|r| r.map_err(|e| self.db(e))).collect()
    }

    /// A value stored by a factory for node `id` under `key`.
    pub fn state(&self, id: i64, key: &str) -> Result<Option<Vec<u8>>> {
        self.row(
            "SELECT value FROM node_state WHERE node = ?1 AND key = ?2",
            params![id, key],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| self.db(e))
    }
}

/// Characters that make a pattern a glob.
const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

/// The absolute form of `pattern` and its matcher (`*` stays within a path component).
fn glob_matcher(pattern: &str) -> Result<(String, globset::GlobMatcher)> {
    let absolute = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        format!("/{pattern}")
    };
    let matcher = globset::GlobBuilder::new(&absolute)
        .literal_separator(true)
        .build()
        .map_err(|e| StoreError::InvalidGlob {
            pattern: pattern.to_string(),
            reason: e.kind().to_string(),
        })?
        .compile_matcher();
    Ok((absolute, matcher))
}

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Version> {
    let hash = |i: usize| -> rusqlite::Result<blake3::Hash> {
        let bytes: Vec<u8> = r.get(i)?;
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Blob,
                "hash is not 32 bytes".into(),
            )
        })?;
        Ok(blake3::Hash::from_bytes(array))
    };
    let segment_hash = match r.get_ref(3)? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(hash(3)?),
    };
    Ok(Version {
        version: r.get(0)?,
        txn: r.get(1)?,
        segment_len: r.get(2)?,
        segment_hash,
        total_len: r.get(4)?,
        root: hash(5)?,
        frontier: r.get(6)?,
    })
}

pub(crate) fn txn_record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TxnRecord> {
    let argv: String = r.get(2)?;
    let folded: Option<String> = r.get(5)?;
    Ok(TxnRecord {
        txn: r.get(0)?,
        time: r.get(1)?,
        argv: serde_json::from_str(&argv).unwrap_or_else(|_| vec![argv]),
        summary: r.get(3)?,
        last_txn: r.get(4)?,
        folded: folded.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

fn prefix(path: &PondPath, depth: usize) -> String {
    format!("/{}", path.components()[..depth].join("/"))
}

/// A version's outboard: the stable prefix from `data/<node>.obao`, the right edge computed.
pub struct OutboardReader {
    file: Option<File>,
    path: PathBuf,
    stable_nodes: u64,
    unstable: Vec<u8>,
}

impl NodeSource for OutboardReader {
    type Error = StoreError;
    fn node(&mut self, index: u64) -> Result<[u8; NODE_LEN as usize]> {
        let mut out = [0u8; NODE_LEN as usize];
        if index < self.stable_nodes {
            let file = self.file.as_ref().ok_or_else(|| StoreError::Io {
                path: self.path.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
            file.read_exact_at(&mut out, index * NODE_LEN)
                .at(&self.path)?;
        } else {
            let mut unstable: &[u8] = &self.unstable;
            out = unstable.node(index - self.stable_nodes)?;
        }
        Ok(out)
    }
}

/// A read-only view of one committed state.
pub struct Snapshot {
    view: View,
}

impl Snapshot {
    pub(crate) fn new(view: View) -> Self {
        Self { view }
    }
}

impl std::ops::Deref for Snapshot {
    type Target = View;
    fn deref(&self) -> &View {
        &self.view
    }
}
