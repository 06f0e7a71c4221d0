//! `sync`: one pass that brings the pond's mirror up to date with the host, in one transaction.
//!
//! # Flow
//! 1. [`crate::scan`] lists the host files (identity and size snapshot: bytes written later
//!    wait for the next run).
//! 2. Every tracked pond file is matched to a host file, cheapest evidence first:
//!    - *same path, same inode*: unchanged when size and mtime are; grown when its old bytes
//!      check out ([`crate::check`]), then only the new bytes are appended;
//!    - *same inode elsewhere*: renamed on the host (numbered schemes, timestamped rotation):
//!      renamed in the pond, with bytes written after the last sync appended;
//!    - *content*: an active file that was rotated by copy (copytruncate) or whose inode is gone
//!      is continued by the unclaimed host file whose first `N` bytes hash to its root.
//!
//!    A tracked active file with none of these was truncated or rewritten: its node is kept
//!    as `NAME@TXN` (or the run fails, with `on_truncate: fail`). A vanished file is
//!    `missing`; a changed archive is reported and left alone.
//! 3. Host files nobody claimed are stored as new nodes.
//! 4. Renames are applied in two steps (via temporary names) so that shifting numbered archives
//!    never collide; then appends and new files are streamed; then each touched file's state.
//!
//! Only the files whose host file is there are loaded ([`crate::state`]): a run costs what is on
//! the host, however many files the node mirrored over the years. A file whose host file is
//! gone is never looked at again, except when a host file wants its pond name: it then steps
//! aside to `NAME@TXN`, as a gone file always did.

use crate::check::{self, ReadCounter};
use crate::config::{OnTruncate, Settings};
use crate::scan::{HostFile, Identity};
use crate::state::{self, Action, FileState, Role, gone_key, state_key};
use pond_factory::progress::{Progress, ProgressReader};
use pond_factory::state::StateError;
pub use pond_factory::{Note, NoteLevel, Problem};
use pond_store::{Node, NodeKind, PondPath, StoreError, Transaction, Version, View};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Why a sync failed as a whole (problems with single files are reported, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "{host_path}: truncated or rewritten and no archive holds its {tracked} mirrored bytes (on_truncate: fail; nothing changed)"
    )]
    Truncated { host_path: String, tracked: u64 },
}

/// One mirrored file in the report.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub host_path: String,
    pub action: Action,
    pub bytes: u64,
}

/// The report of one sync (the `--json` document).
#[derive(Debug, Serialize)]
pub struct SyncReport {
    pub txn: Option<u64>,
    pub dry_run: bool,
    pub files: Vec<FileReport>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Remarks about the source as a whole (nothing matches, a base directory not there yet).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    #[serde(skip)]
    pub errors: Vec<Problem>,
}

impl SyncReport {
    /// The files that changed (every action but `unchanged`).
    pub fn changed(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.action != Action::Unchanged)
    }

    /// The transaction summary of `logfile COMMAND NAME`: how many files had each action
    /// (`logfile sync casparwater: 1 appended, 1 rotated`).
    pub fn summary(&self, command: &str, name: &str) -> String {
        let mut counts = std::collections::BTreeMap::new();
        for file in self.changed() {
            *counts.entry(file.action.as_str()).or_insert(0u64) += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
        format!("logfile {command} {name}: {}", counts.join(", "))
    }
}

/// The notes of a scan that found `host` files, with `waiting` base directories that do not
/// exist yet, and listing problems in `unlisted` directories.
pub fn notes(
    source: &Settings,
    host: &[HostFile],
    waiting: &[PathBuf],
    unlisted: usize,
) -> Vec<Note> {
    let mut notes: Vec<Note> = waiting
        .iter()
        .map(|dir| Note {
            level: NoteLevel::Info,
            text: format!(
                "{} does not exist yet: waiting for it (nothing to mirror)",
                dir.display()
            ),
        })
        .collect();
    if host.is_empty() && waiting.is_empty() && unlisted == 0 {
        let patterns: Vec<String> = std::iter::once(&source.active)
            .chain(source.archived.as_ref())
            .map(|p| format!("{:?}", p.text))
            .collect();
        notes.push(Note {
            level: NoteLevel::Warn,
            text: format!(
                "no file matches {}: nothing to mirror",
                patterns.join(" or ")
            ),
        });
    }
    notes
}

/// A mirrored file this node already tracks.
struct Tracked {
    node: Node,
    /// Path relative to `pond_path`.
    name: String,
    state: FileState,
    version: Option<Version>,
}

impl Tracked {
    fn len(&self) -> u64 {
        self.version.as_ref().map_or(0, |v| v.total_len)
    }
}

/// What happens to one tracked file.
enum Decision {
    /// Nothing to do (or nothing can be done this run).
    Keep,
    /// Same bytes, newer mtime: remember the new identity.
    Touch {
        host: usize,
    },
    /// Continue the node with this host file: rename to its name, append beyond the old end.
    Continue {
        host: usize,
        action: Action,
    },
    ChangedArchive {
        host: usize,
    },
    /// Keep the old bytes under `NAME@TXN`; the host file at its path is new content.
    Truncated,
    /// The host file is gone: report once.
    Missing,
}

/// Loads the files this factory node tracks whose host file is there. A gone file still kept
/// under the live key (as older ponds did) is moved to the gone files in `txn`.
fn load_tracked(
    txn: &mut Transaction,
    factory_id: i64,
    source: &Settings,
) -> Result<Vec<Tracked>, SyncError> {
    let key = state_key(factory_id);
    let mut tracked = Vec::new();
    for (id, value) in txn.states_with_key(&key)? {
        let state = state::parse(id, &key, &value)?;
        if !state.present {
            state::save_gone(txn, factory_id, id, &state)?;
            continue;
        }
        let path = txn.path_of(id)?;
        let name = relative_name(&source.pond_path, &path);
        tracked.push(Tracked {
            node: Node {
                id,
                kind: NodeKind::File,
                path,
            },
            name,
            state,
            version: txn.latest_version(id)?,
        });
    }
    Ok(tracked)
}

fn relative_name(base: &PondPath, path: &PondPath) -> String {
    path.components()[base.components().len().min(path.components().len())..].join("/")
}

/// Runs one sync inside `txn`. With `dry_run` the caller rolls the transaction back.
pub fn sync(
    txn: &mut Transaction,
    factory_id: i64,
    source: &Settings,
    dry_run: bool,
) -> Result<SyncReport, SyncError> {
    let (host, mut scan_errors) = crate::scan::scan(source);
    let tracked = load_tracked(txn, factory_id, source)?;
    let waiting = if tracked.is_empty() && state::summary(txn, factory_id)?.gone == 0 {
        // A node that mirrors nothing yet, whose base directory does not exist yet (the writer
        // has not started): nothing to mirror, not a failure. Once files are tracked, a
        // vanished base is an error, so an unmounted disk is not taken for deleted files.
        waiting_bases(source, &mut scan_errors)
    } else {
        Vec::new()
    };
    let notes = notes(source, &host, &waiting, scan_errors.len());
    let unlisted: Vec<&Path> = scan_errors.iter().map(|(dir, _)| dir.as_path()).collect();
    let mut matcher = Matcher {
        seed: txn.txn(),
        txn,
        source,
        host: &host,
        tracked: &tracked,
        opened: Opener::new(&host),
        claimed: HashSet::new(),
        decisions: (0..tracked.len()).map(|_| None).collect(),
        errors: scan_errors.iter().map(|(_, e)| e.clone()).collect(),
        counter: ReadCounter::default(),
    };
    matcher.same_path()?;
    matcher.renamed()?;
    matcher.by_content(&unlisted)?;
    let Matcher {
        txn,
        mut opened,
        claimed,
        decisions,
        errors,
        counter,
        ..
    } = matcher;
    let decisions: Vec<Decision> = decisions
        .into_iter()
        .map(|d| d.unwrap_or(Decision::Keep))
        .collect();
    let new_files: Vec<usize> = (0..host.len()).filter(|h| !claimed.contains(h)).collect();
    // What is new on the host, roughly: for the progress display only.
    let known: u64 = tracked.iter().map(Tracked::len).sum();
    let incoming = host
        .iter()
        .map(|h| h.id.size)
        .sum::<u64>()
        .saturating_sub(known);
    let mut apply = Apply {
        txn,
        source,
        factory_id,
        host: &host,
        errors,
        reports: Vec::new(),
        bytes_written: 0,
        counter,
        progress: Progress::new(format!("{}: mirroring", source.name), incoming),
    };
    let applied = apply.run(&tracked, &decisions, &new_files, &mut opened);
    apply.progress.finish();
    applied?;
    let txn_number = (apply.txn.has_changes() && !dry_run).then(|| apply.txn.txn());
    Ok(SyncReport {
        txn: txn_number,
        dry_run,
        files: apply.reports,
        bytes_read: apply.counter.bytes,
        bytes_written: apply.bytes_written,
        notes,
        errors: apply.errors,
    })
}

/// Matches the tracked files to host files, in three passes, each over the files the earlier
/// ones left undecided: same path and inode; same inode at another path (renamed); then by
/// content (the unclaimed host file whose first bytes hash to the tracked root: rotated).
struct Matcher<'a> {
    txn: &'a mut Transaction,
    source: &'a Settings,
    /// The transaction number, seeding which blocks are sampled.
    seed: u64,
    host: &'a [HostFile],
    tracked: &'a [Tracked],
    opened: Opener<'a>,
    /// Host files already matched to a tracked file.
    claimed: HashSet<usize>,
    /// Per tracked file, once decided.
    decisions: Vec<Option<Decision>>,
    errors: Vec<Problem>,
    counter: ReadCounter,
}

impl Matcher<'_> {
    /// Decides file `t` and claims host file `h` for it.
    fn decide(&mut self, t: usize, h: Option<usize>, decision: Decision) {
        if let Some(h) = h {
            self.claimed.insert(h);
        }
        self.decisions[t] = Some(decision);
    }

    /// Whether host file `h` starts with `file`'s bytes (sampled as `verify` says); `None` when
    /// it cannot be opened (the reason is in `errors`, once).
    fn starts_with(&mut self, h: usize, file: &Tracked) -> Result<Option<bool>, SyncError> {
        let Some(handle) = self.opened.get(h, &mut self.errors) else {
            return Ok(None);
        };
        Ok(Some(matches(
            self.txn,
            file,
            handle,
            self.source,
            self.seed,
            &mut self.counter,
        )?))
    }

    /// Same path, same inode: unchanged, touched, appended, or a changed archive. An active
    /// file that shrank or was rewritten in place stays undecided (its old bytes are looked
    /// for by content).
    fn same_path(&mut self) -> Result<(), SyncError> {
        let by_path: HashMap<&Path, usize> = self
            .host
            .iter()
            .enumerate()
            .map(|(i, h)| (h.path.as_path(), i))
            .collect();
        let (host, tracked) = (self.host, self.tracked);
        for (t, file) in tracked.iter().enumerate() {
            let Some(&h) = by_path.get(Path::new(&file.state.host_path)) else {
                continue;
            };
            let now = &host[h].id;
            if !now.same_file(&file.state.identity()) {
                continue;
            }
            let len = file.len();
            // Identity, size and mtime unchanged: nothing is opened or read.
            if now.size == len && now.mtime_ns == file.state.mtime_ns && now.size == file.state.size
            {
                self.decide(t, Some(h), Decision::Keep);
                continue;
            }
            let same = if now.size >= len {
                self.starts_with(h, file)?
            } else {
                Some(false)
            };
            let Some(same) = same else {
                self.decide(t, Some(h), Decision::Keep);
                continue;
            };
            let decision = if same {
                Some(if now.size == len {
                    Decision::Touch { host: h }
                } else {
                    Decision::Continue {
                        host: h,
                        action: Action::Appended,
                    }
                })
            } else if file.state.role == Role::Archive {
                Some(Decision::ChangedArchive { host: h })
            } else {
                // The active file shrank or was rewritten in place: look for its old bytes.
                None
            };
            if let Some(decision) = decision {
                self.decide(t, Some(h), decision);
            }
        }
        Ok(())
    }

    /// Same inode at another path: renamed on the host (rotated, when an active file became
    /// an archive).
    fn renamed(&mut self) -> Result<(), SyncError> {
        let by_inode: HashMap<(u64, u64), usize> = self
            .host
            .iter()
            .enumerate()
            .map(|(i, h)| ((h.id.dev, h.id.ino), i))
            .collect();
        let (host, tracked) = (self.host, self.tracked);
        for (t, file) in tracked.iter().enumerate() {
            if self.decisions[t].is_some() {
                continue;
            }
            let Some(&h) = by_inode.get(&(file.state.dev, file.state.ino)) else {
                continue;
            };
            if self.claimed.contains(&h) || host[h].id.size < file.len() {
                continue;
            }
            if self.starts_with(h, file)? == Some(true) {
                let action = if file.state.role == Role::Active && host[h].role == Role::Archive {
                    Action::Rotated
                } else {
                    Action::Renamed
                };
                self.decide(t, Some(h), Decision::Continue { host: h, action });
            }
        }
        Ok(())
    }

    /// By content: the unclaimed host file whose first bytes hash to the tracked root (a
    /// rotation by copy); otherwise truncated (the active file's path is there with other
    /// bytes) or missing. Files under a directory that could not be listed are kept as they
    /// are.
    fn by_content(&mut self, unlisted: &[&Path]) -> Result<(), SyncError> {
        let on_host: HashSet<&Path> = self.host.iter().map(|h| h.path.as_path()).collect();
        let tracked = self.tracked;
        for (t, file) in tracked.iter().enumerate() {
            if self.decisions[t].is_some() {
                continue;
            }
            let host_path = Path::new(&file.state.host_path);
            if unlisted.iter().any(|dir| host_path.starts_with(dir)) {
                self.decide(t, None, Decision::Keep);
                continue;
            }
            let len = file.len();
            let found = if file.state.role == Role::Active && len > 0 {
                self.holding(file, len)?
            } else {
                None
            };
            let decision = match found {
                Some(h) => {
                    self.decide(
                        t,
                        Some(h),
                        Decision::Continue {
                            host: h,
                            action: Action::Rotated,
                        },
                    );
                    continue;
                }
                None if file.state.role == Role::Active && on_host.contains(host_path) => {
                    if self.source.on_truncate == OnTruncate::Fail {
                        return Err(SyncError::Truncated {
                            host_path: file.state.host_path.clone(),
                            tracked: len,
                        });
                    }
                    tracing::warn!(
                        host_path = %file.state.host_path,
                        "truncated or rewritten and no archive holds the old bytes: kept as {}@{}",
                        file.node.path,
                        self.seed
                    );
                    Decision::Truncated
                }
                None => Decision::Missing,
            };
            self.decide(t, None, decision);
        }
        Ok(())
    }

    /// The unclaimed host file of at least `len` bytes that starts with `file`'s bytes:
    /// archives first, newest first (a rotated file is most likely the latest archive).
    fn holding(&mut self, file: &Tracked, len: u64) -> Result<Option<usize>, SyncError> {
        let Some(version) = &file.version else {
            return Ok(None);
        };
        let host = self.host;
        let mut candidates: Vec<usize> = (0..host.len())
            .filter(|h| !self.claimed.contains(h) && host[*h].id.size >= len)
            .collect();
        candidates.sort_by_key(|&h| {
            (
                host[h].role != Role::Archive,
                std::cmp::Reverse(host[h].id.mtime_ns),
            )
        });
        for h in candidates {
            let Some(handle) = self.opened.get(h, &mut self.errors) else {
                continue;
            };
            if check::first_block_matches(
                self.txn,
                file.node.id,
                version,
                handle,
                &mut self.counter,
            )? && check::full_prefix_matches(version, handle, &mut self.counter)?
            {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }
}

/// Takes the "cannot list" errors of base directories that do not exist out of `scan_errors`
/// and returns those directories: for a node that mirrors nothing yet they mean "not yet".
pub fn waiting_bases(source: &Settings, scan_errors: &mut Vec<(PathBuf, Problem)>) -> Vec<PathBuf> {
    let mut waiting = Vec::new();
    scan_errors.retain(|(dir, _)| {
        let missing_base = std::iter::once(&source.active)
            .chain(source.archived.as_ref())
            .any(|p| p.base == *dir)
            && !dir.exists();
        if missing_base {
            waiting.push(dir.clone());
        }
        !missing_base
    });
    waiting
}

fn matches(
    view: &View,
    file: &Tracked,
    handle: &File,
    source: &Settings,
    seed: u64,
    counter: &mut ReadCounter,
) -> Result<bool, StoreError> {
    match &file.version {
        None => Ok(true),
        Some(version) => check::prefix_matches(
            view,
            file.node.id,
            version,
            handle,
            source.verify,
            seed ^ file.node.id as u64,
            counter,
        ),
    }
}

/// Host files kept open at once, at most: a back-fill of thousands of new files opens each
/// while it is read and closes it after.
const OPEN_HOST_FILES: usize = 32;

/// Opens host files on demand, keeping the few used last open, remembering which could not be
/// opened (reported once).
struct Opener<'h> {
    host: &'h [HostFile],
    open: HashMap<usize, File>,
    /// Open files, least recently opened first.
    order: VecDeque<usize>,
    failed: HashSet<usize>,
}

impl<'h> Opener<'h> {
    fn new(host: &'h [HostFile]) -> Self {
        Self {
            host,
            open: HashMap::new(),
            order: VecDeque::new(),
            failed: HashSet::new(),
        }
    }

    /// The open file, or `None` (with the reason in `errors`, once) when it cannot be read or
    /// is no longer the file that was listed. A file opened again is checked again.
    fn get(&mut self, h: usize, errors: &mut Vec<Problem>) -> Option<&File> {
        if self.failed.contains(&h) {
            return None;
        }
        if !self.open.contains_key(&h) {
            let Some(file) = self.open_checked(h, errors) else {
                self.failed.insert(h);
                return None;
            };
            if self.order.len() >= OPEN_HOST_FILES
                && let Some(oldest) = self.order.pop_front()
            {
                self.open.remove(&oldest);
            }
            self.order.push_back(h);
            self.open.insert(h, file);
        }
        self.open.get(&h)
    }

    fn open_checked(&self, h: usize, errors: &mut Vec<Problem>) -> Option<File> {
        let host = &self.host[h];
        match File::open(&host.path) {
            Ok(file) => match file.metadata() {
                Ok(meta) if Identity::of(&meta).same_file(&host.id) => Some(file),
                Ok(_) => {
                    tracing::warn!(host_path = %host.path.display(), "replaced while the sync ran; left for the next run");
                    None
                }
                Err(e) => {
                    errors.push(Problem::new(
                        host.path.display(),
                        format!("cannot stat: {e}"),
                    ));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(host_path = %host.path.display(), "vanished while the sync ran; left for the next run");
                None
            }
            Err(e) => {
                errors.push(Problem::new(
                    host.path.display(),
                    format!("cannot read: {e}"),
                ));
                None
            }
        }
    }
}

/// Unix seconds of `at`.
fn unix_seconds(at: std::time::SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Carries out the decisions inside the transaction.
struct Apply<'a> {
    txn: &'a mut Transaction,
    source: &'a Settings,
    factory_id: i64,
    host: &'a [HostFile],
    errors: Vec<Problem>,
    reports: Vec<FileReport>,
    bytes_written: u64,
    counter: ReadCounter,
    progress: Progress,
}

impl Apply<'_> {
    fn run(
        &mut self,
        tracked: &[Tracked],
        decisions: &[Decision],
        new_files: &[usize],
        opened: &mut Opener<'_>,
    ) -> Result<(), SyncError> {
        let target = self.names(tracked, decisions, new_files)?;
        for (t, (file, decision)) in tracked.iter().zip(decisions).enumerate() {
            self.carry_out(file, decision, &target[t], opened)?;
        }
        for &h in new_files {
            self.mirror_new(h, &target, opened)?;
        }
        Ok(())
    }

    /// The final name of every tracked file (a continued node takes its host file's name, a
    /// truncated one `NAME@TXN`), after renaming the nodes to them; a gone node holding a name
    /// that is wanted steps aside to `NAME@TXN` first.
    fn names(
        &mut self,
        tracked: &[Tracked],
        decisions: &[Decision],
        new_files: &[usize],
    ) -> Result<Vec<String>, SyncError> {
        let txn_number = self.txn.txn();
        // Final names: a continued node takes its host file's name, a truncated one `NAME@TXN`.
        let mut target: Vec<String> = tracked
            .iter()
            .zip(decisions)
            .map(|(file, decision)| match decision {
                Decision::Continue { host, .. } => self.host[*host].name.clone(),
                Decision::Truncated => format!("{}@{txn_number}", file.name),
                _ => file.name.clone(),
            })
            .collect();
        // A name wanted by a continued node or a new file but held by a node whose host file is
        // gone: that node steps aside to `NAME@TXN`; nothing is ever overwritten.
        let wanted: HashSet<&str> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Continue { host, .. } => Some(self.host[*host].name.as_str()),
                _ => None,
            })
            .chain(new_files.iter().map(|&h| self.host[h].name.as_str()))
            .collect();
        let moving: HashSet<usize> = (0..tracked.len())
            .filter(|&t| target[t] != tracked[t].name)
            .collect();
        for (t, file) in tracked.iter().enumerate() {
            let gone = matches!(decisions[t], Decision::Missing);
            if gone && !moving.contains(&t) && wanted.contains(file.name.as_str()) {
                target[t] = format!("{}@{txn_number}", file.name);
            }
        }
        // Files gone from the host earlier are not loaded: one holding a wanted name is found
        // by its path, and steps aside the same way.
        let held: HashSet<&str> = tracked.iter().map(|t| t.name.as_str()).collect();
        let tracked_ids: HashSet<i64> = tracked.iter().map(|t| t.node.id).collect();
        for name in wanted.iter().filter(|n| !held.contains(*n)) {
            let path = self.path_of(name)?;
            if let Some(node) = self.txn.lookup(&path)?
                && !tracked_ids.contains(&node.id)
                && self
                    .txn
                    .state(node.id, &gone_key(self.factory_id))?
                    .is_some()
            {
                let aside = self.path_of(&format!("{name}@{txn_number}"))?;
                self.txn.rename(&path, &aside)?;
            }
        }
        self.rename_all(tracked, &target)?;
        Ok(target)
    }

    /// Carries out `decision` for tracked `file`, now named `target`.
    fn carry_out(
        &mut self,
        file: &Tracked,
        decision: &Decision,
        target: &str,
        opened: &mut Opener<'_>,
    ) -> Result<(), SyncError> {
        let txn_number = self.txn.txn();
        let path = self.path_of(target)?;
        match decision {
            Decision::Keep => self.report(&path, &file.state.host_path, Action::Unchanged, 0, true),
            Decision::Touch { host } => {
                let host = &self.host[*host];
                let state = FileState::new(
                    &host.path.to_string_lossy(),
                    host.role,
                    &host.id,
                    file.len(),
                    Action::Unchanged,
                    txn_number,
                );
                self.save_state(file.node.id, &state)?;
                self.report(&path, &state.host_path, Action::Unchanged, 0, true);
            }
            Decision::Continue { host, action } => {
                let h = *host;
                let host = &self.host[h];
                let from = file.len();
                let written = match opened.get(h, &mut self.errors) {
                    Some(handle) => self.append(&file.node, handle, host, from)?,
                    None => None,
                };
                let (size, action) = match written {
                    Some(bytes) => (from + bytes, *action),
                    None => (
                        from,
                        if target != file.name {
                            *action
                        } else {
                            Action::Unchanged
                        },
                    ),
                };
                let mut id = host.id;
                if written.is_none() {
                    // Remember where it is now; the bytes follow next run.
                    id.size = from;
                }
                let state = FileState::new(
                    &host.path.to_string_lossy(),
                    host.role,
                    &id,
                    size,
                    action,
                    txn_number,
                );
                if written.is_some() || target != file.name {
                    self.save_state(file.node.id, &state)?;
                }
                self.report(&path, &state.host_path, action, written.unwrap_or(0), true);
            }
            Decision::ChangedArchive { host } => {
                tracing::warn!(
                    host_path = %self.host[*host].path.display(),
                    pond_path = %path,
                    "archive changed on the host (immutable files must not change); the pond keeps the original"
                );
                self.report(
                    &path,
                    &file.state.host_path,
                    Action::ChangedArchive,
                    0,
                    true,
                );
            }
            Decision::Truncated | Decision::Missing => {
                let action = if matches!(decision, Decision::Truncated) {
                    Action::Truncated
                } else {
                    Action::Missing
                };
                let mut state = file.state.clone();
                state.present = false;
                state.last_action = action;
                state.last_txn = txn_number;
                state.gone_unix = Some(unix_seconds(self.txn.now()));
                state::save_gone(self.txn, self.factory_id, file.node.id, &state)?;
                self.report(&path, &state.host_path, action, 0, true);
            }
        }
        Ok(())
    }

    /// Mirrors host file `h`, new to this node, unless its name is taken (`target`: the
    /// tracked files' names).
    fn mirror_new(
        &mut self,
        h: usize,
        target: &[String],
        opened: &mut Opener<'_>,
    ) -> Result<(), SyncError> {
        let txn_number = self.txn.txn();
        let host = &self.host[h];
        if target.contains(&host.name) {
            self.errors.push(Problem::new(
                host.path.display(),
                format!(
                    "its mirrored name {:?} is taken by another mirrored file that is still on the host",
                    host.name
                ),
            ));
            return Ok(());
        }
        let path = self.path_of(&host.name)?;
        if let Some(existing) = self.txn.lookup(&path)? {
            self.errors.push(Problem::new(
                host.path.display(),
                format!(
                    "pond path {path} is already used by node {} that this source does not track",
                    existing.id
                ),
            ));
            return Ok(());
        }
        let Some(handle) = opened.get(h, &mut self.errors) else {
            return Ok(());
        };
        if let Some(parent) = path.parent() {
            self.txn.mkdir(&parent, true)?;
        }
        let node = self.txn.create_file(&path)?;
        match self.append(&node, handle, host, 0)? {
            Some(bytes) => {
                let state = FileState::new(
                    &host.path.to_string_lossy(),
                    host.role,
                    &host.id,
                    bytes,
                    Action::New,
                    txn_number,
                );
                self.save_state(node.id, &state)?;
                self.report(&path, &state.host_path, Action::New, bytes, true);
            }
            None => self.txn.remove_empty_file(&node)?,
        }
        Ok(())
    }

    fn path_of(&self, name: &str) -> Result<PondPath, StoreError> {
        self.source.pond_path.join(name)
    }

    /// Renames every node whose name changes: all to temporary names first, then to their
    /// final names, so that shifted names (app.log.1 -> app.log.2 -> ...) never collide.
    fn rename_all(&mut self, tracked: &[Tracked], target: &[String]) -> Result<(), StoreError> {
        let moves: Vec<(usize, PondPath)> = tracked
            .iter()
            .enumerate()
            .filter(|(t, file)| target[*t] != file.name)
            .map(|(t, file)| Ok((t, self.path_of(&format!(".moving-{}", file.node.id))?)))
            .collect::<Result<_, StoreError>>()?;
        if moves.is_empty() {
            return Ok(());
        }
        self.txn.mkdir(&self.source.pond_path, true)?;
        for (t, temp) in &moves {
            self.txn.rename(&tracked[*t].node.path, temp)?;
        }
        for (t, temp) in &moves {
            let to = self.path_of(&target[*t])?;
            if let Some(parent) = to.parent() {
                self.txn.mkdir(&parent, true)?;
            }
            self.txn.rename(temp, &to)?;
        }
        Ok(())
    }

    /// Appends `host`'s bytes from `from` up to its listed size. `None` when the file changed
    /// under us (shrank, vanished): nothing is stored and the next run retries.
    fn append(
        &mut self,
        node: &Node,
        handle: &File,
        host: &HostFile,
        from: u64,
    ) -> Result<Option<u64>, StoreError> {
        let want = host.id.size.saturating_sub(from);
        if want == 0 && from > 0 {
            return Ok(Some(0));
        }
        let mut reader = handle;
        reader
            .seek(SeekFrom::Start(from))
            .map_err(StoreError::Source)?;
        let mut reader = ProgressReader {
            inner: reader,
            progress: &mut self.progress,
        };
        match self.txn.append(node, &mut reader, Some(want)) {
            Ok(_) => {
                self.counter.bytes += want;
                self.bytes_written += want;
                Ok(Some(want))
            }
            Err(StoreError::ShortRead { .. }) => {
                tracing::warn!(host_path = %host.path.display(), "shrank while it was read; left for the next run");
                Ok(None)
            }
            Err(StoreError::Source(e)) => {
                self.errors.push(Problem::new(
                    host.path.display(),
                    format!("read failed: {e}"),
                ));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn save_state(&mut self, node: i64, state: &FileState) -> Result<(), StateError> {
        state::save_live(self.txn, self.factory_id, node, state)
    }

    fn report(
        &mut self,
        path: &PondPath,
        host_path: &str,
        action: Action,
        bytes: u64,
        listed: bool,
    ) {
        if listed {
            self.reports.push(FileReport {
                path: path.to_string(),
                host_path: host_path.to_string(),
                action,
                bytes,
            });
        }
    }
}
