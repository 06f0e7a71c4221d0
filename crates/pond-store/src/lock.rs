//! The two OS file locks of a pond.
//!
//! - `POND/lock`, the single-writer lock: exclusive, holding the writer's pid. A second writer
//!   polls for a bounded time and then fails with a message naming the holder's pid.
//! - `POND/readers`, the reader lock: every [`crate::Snapshot`] holds it shared for its whole
//!   life (and every reader it hands out keeps it alive). A writer removes retired data files
//!   only while it holds this lock exclusively, which it only tries, never waits for: any reader
//!   that could still read a retired file holds it shared, so removal waits for a later writer.
//!
//! - `POND/locks/<node id>`, a node's run lock: held by whatever runs that factory node's writing
//!   commands (a `mongo` sync reading outside the writer lock and committing its cursors later),
//!   so two runs of one node never interleave.
//!
//! The OS releases them when the holder exits for any reason, including SIGKILL, so a crash
//! never leaves a stale lock behind. Writers of one process (a `follow` and its stages) first
//! queue on an in-process gate, so the lock passes from one thread to the next at once instead
//! of at the next poll.

use crate::error::{IoContext, Result, StoreError};
use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Lock file name inside the pond directory.
pub const LOCK_FILE: &str = "lock";

/// Reader lock file name inside the pond directory.
pub const READERS_FILE: &str = "readers";

/// Directory of the node run locks inside the pond directory.
pub const NODE_LOCKS_DIR: &str = "locks";

/// Longest pause between two tries of a lock another process holds; the first pauses are
/// shorter (1 ms, doubling), so a short commit elsewhere costs little waiting.
const MAX_POLL: Duration = Duration::from_millis(25);

/// One lock's in-process queue: threads of this process wait here, not on the file lock.
#[derive(Default)]
struct Gate {
    taken: Mutex<bool>,
    free: Condvar,
}

impl Gate {
    /// The gate of the lock file at `path` in this process.
    fn of(path: &Path) -> Arc<Gate> {
        static GATES: OnceLock<Mutex<HashMap<PathBuf, Arc<Gate>>>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut gates = GATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        gates.entry(key).or_default().clone()
    }

    /// Waits until the gate is free, up to `deadline`; false when the time ran out.
    fn enter(&self, deadline: Instant) -> bool {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        while *taken {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            taken = self
                .free
                .wait_timeout(taken, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *taken = true;
        true
    }

    fn leave(&self) {
        *self.taken.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.free.notify_one();
    }
}

/// An exclusive OS lock on a file, held until dropped, with its in-process gate.
#[derive(Debug)]
struct ExclusiveLock {
    file: File,
    _gate: GateHandle,
}

/// The gate entered by a lock holder; leaving happens on drop, after the file is unlocked.
struct GateHandle(Arc<Gate>);

impl std::fmt::Debug for GateHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GateHandle")
    }
}

impl ExclusiveLock {
    /// Takes the lock on `path`, waiting at most `timeout`; `Ok(Err(file))` when the time ran
    /// out (the file is returned to read the holder from).
    fn acquire(path: &Path, timeout: Duration) -> Result<std::result::Result<Self, File>> {
        let file = crate::perms::open_rw(path, lock_mode(path)).at(path)?;
        let deadline = Instant::now() + timeout;
        let gate = Gate::of(path);
        if !gate.enter(deadline) {
            return Ok(Err(file));
        }
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Ok(Self {
                        file,
                        _gate: GateHandle(gate),
                    }));
                }
                Err(TryLockError::WouldBlock) => {
                    let now = Instant::now();
                    if now >= deadline {
                        gate.leave();
                        return Ok(Err(file));
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(MAX_POLL);
                }
                Err(TryLockError::Error(source)) => {
                    gate.leave();
                    return Err(StoreError::Io {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
        }
    }

    /// Records this process as the holder.
    fn write_holder(&mut self, path: &Path) -> Result<()> {
        self.file.set_len(0).at(path)?;
        self.file.seek(SeekFrom::Start(0)).at(path)?;
        write!(self.file, "{}", std::process::id()).at(path)
    }
}

impl Drop for GateHandle {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the release prompt,
        // and it comes before the gate lets the next thread in (field order: `gate` drops last).
        let _ = self.file.unlock();
    }
}

/// Held while a write transaction is open; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    _lock: ExclusiveLock,
}

impl WriterLock {
    /// Takes the lock, waiting at most `timeout` for another writer to finish.
    pub(crate) fn acquire(pond_dir: &Path, timeout: Duration) -> Result<Self> {
        let path = pond_dir.join(LOCK_FILE);
        match ExclusiveLock::acquire(&path, timeout)? {
            Ok(mut lock) => {
                lock.write_holder(&path)?;
                Ok(Self { _lock: lock })
            }
            Err(mut file) => Err(StoreError::Locked {
                dir: PathBuf::from(pond_dir),
                holder: read_holder(&mut file),
                waited_secs: timeout.as_secs(),
            }),
        }
    }
}

/// A factory node's run lock (`locks/<node id>`); dropping it releases the lock.
#[derive(Debug)]
pub struct NodeLock {
    _lock: ExclusiveLock,
}

impl NodeLock {
    /// Takes the run lock of node `id` (shown as `path` in errors), waiting at most `timeout`.
    pub(crate) fn acquire(pond_dir: &Path, id: i64, path: &str, timeout: Duration) -> Result<Self> {
        let dir = pond_dir.join(NODE_LOCKS_DIR);
        let dir_mode = std::fs::metadata(pond_dir).map_or(0o700, |m| {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
        });
        crate::perms::create_dir(&dir, dir_mode).at(&dir)?;
        let lock_path = dir.join(id.to_string());
        match ExclusiveLock::acquire(&lock_path, timeout)? {
            Ok(mut lock) => {
                lock.write_holder(&lock_path)?;
                Ok(Self { _lock: lock })
            }
            Err(mut file) => Err(StoreError::NodeBusy {
                path: path.to_string(),
                holder: read_holder(&mut file),
                waited_secs: timeout.as_secs(),
            }),
        }
    }
}

/// Held shared by a snapshot (and the readers it hands out) for as long as it may read data files.
#[derive(Debug)]
pub(crate) struct ReaderLock {
    file: File,
}

impl ReaderLock {
    /// Takes the lock shared. Waits only while a writer removes retired files (a few unlinks).
    pub(crate) fn acquire(pond_dir: &Path) -> Result<Self> {
        let (file, path) = open_readers(pond_dir)?;
        file.lock_shared().at(&path)?;
        Ok(Self { file })
    }
}

impl Drop for ReaderLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Held exclusively by a writer while it removes retired data files: proof that no snapshot is
/// open anywhere.
#[derive(Debug)]
pub(crate) struct NoReaders {
    file: File,
}

impl NoReaders {
    /// Takes the reader lock exclusively if no snapshot holds it; never waits.
    pub(crate) fn try_acquire(pond_dir: &Path) -> Result<Option<Self>> {
        let (file, path) = open_readers(pond_dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
        }
    }
}

impl Drop for NoReaders {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn open_readers(pond_dir: &Path) -> Result<(File, PathBuf)> {
    let path = pond_dir.join(READERS_FILE);
    let file = crate::perms::open_rw(&path, crate::perms::file_mode(pond_dir)).at(&path)?;
    Ok((file, path))
}

/// The mode of a lock file at `path`: the pond directory's files' mode (lock files sit in the
/// pond directory or in `locks/`, which has the pond directory's mode).
fn lock_mode(path: &Path) -> u32 {
    path.parent().map_or(0o600, crate::perms::file_mode)
}

fn read_holder(file: &mut File) -> String {
    let mut text = String::new();
    match file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text))
    {
        Ok(_) if !text.trim().is_empty() => text.trim().to_string(),
        _ => "unknown".to_string(),
    }
}
