//! The two OS file locks of a pond.
//!
//! - `POND/lock`, the single-writer lock: exclusive, holding the writer's pid. A second writer
//!   polls for a bounded time and then fails with a message naming the holder's pid.
//! - `POND/readers`, the reader lock: every [`crate::Snapshot`] holds it shared for its whole
//!   life (and every reader it hands out keeps it alive). A writer removes retired data files
//!   only while it holds this lock exclusively, which it only tries, never waits for: any reader
//!   that could still read a retired file holds it shared, so removal waits for a later writer.
//!
//! The OS releases both when the holder exits for any reason, including SIGKILL, so a crash never
//! leaves a stale lock behind.

use crate::error::{IoContext, Result, StoreError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lock file name inside the pond directory.
pub const LOCK_FILE: &str = "lock";

/// Reader lock file name inside the pond directory.
pub const READERS_FILE: &str = "readers";

const POLL: Duration = Duration::from_millis(25);

/// Held while a write transaction is open; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: File,
}

impl WriterLock {
    /// Takes the lock, waiting at most `timeout` for another writer to finish.
    pub(crate) fn acquire(pond_dir: &Path, timeout: Duration) -> Result<Self> {
        let path = pond_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    if started.elapsed() >= timeout {
                        return Err(StoreError::Locked {
                            dir: PathBuf::from(pond_dir),
                            holder: read_holder(&mut file),
                            waited_secs: timeout.as_secs(),
                        });
                    }
                    std::thread::sleep(POLL);
                }
                Err(TryLockError::Error(source)) => {
                    return Err(StoreError::Io { path, source });
                }
            }
        }
        file.set_len(0).at(&path)?;
        file.seek(SeekFrom::Start(0)).at(&path)?;
        write!(file, "{}", std::process::id()).at(&path)?;
        Ok(Self { file })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the release prompt.
        let _ = self.file.unlock();
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
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    Ok((file, path))
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
