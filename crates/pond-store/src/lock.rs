//! The single-writer lock: an exclusive OS file lock on `POND/lock`, holding the writer's pid.
//!
//! The OS releases the lock when the holder exits for any reason, including SIGKILL, so a crash
//! never leaves a stale lock behind. A second writer polls for a bounded time and then fails with
//! a message naming the holder's pid.

use crate::error::{IoContext, Result, StoreError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Lock file name inside the pond directory.
pub const LOCK_FILE: &str = "lock";

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
