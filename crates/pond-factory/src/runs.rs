//! Run records: what each factory node last did, for `pond status`.
//!
//! After every run of a factory node the runner writes `runs/<node id>.json` in the pond
//! directory: the command, when it started and finished, whether it succeeded, the error, the
//! transaction it committed. A long-running command (`follow`) writes its record when it starts
//! (`running: true`, with its pid) and refreshes it at most once a second while it runs. The
//! records are status, not data: they are replaced atomically (temp file + rename) but not
//! fsynced, and a missing or unreadable record only means "no run recorded".

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Version of [`RunRecord`]'s JSON.
const RECORD_FORMAT: u32 = 1;

/// The last run of one factory node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub format: u32,
    /// The command line after `pond run PATH` (or `downstream of PATH`).
    pub command: String,
    pub pid: u32,
    /// Unix seconds.
    pub started: f64,
    /// Unix seconds of the end, or of the last refresh while `running`.
    pub updated: f64,
    /// A long-running command that has not ended (check `pid` to know if it still lives).
    pub running: bool,
    pub ok: bool,
    pub error: Option<String>,
    /// The last transaction the run committed.
    pub txn: Option<u64>,
    /// Steps of a long-running command.
    #[serde(default)]
    pub steps: u64,
}

/// Unix time in seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl RunRecord {
    /// A record of a run starting now.
    pub fn start(command: String, running: bool) -> Self {
        let now = unix_now();
        Self {
            format: RECORD_FORMAT,
            command,
            pid: std::process::id(),
            started: now,
            updated: now,
            running,
            ok: true,
            error: None,
            txn: None,
            steps: 0,
        }
    }

    /// Marks the end of the run.
    pub fn finish(&mut self, error: Option<String>, txn: Option<u64>) {
        self.updated = unix_now();
        self.running = false;
        self.ok = error.is_none();
        self.error = error;
        if txn.is_some() {
            self.txn = txn;
        }
    }
}

/// The record of a long-running command (or one of its stages), saved when it starts, at most
/// once a second while it runs (at once when it starts or stops failing), and when it ends.
pub struct Recorder {
    pond_dir: PathBuf,
    node: i64,
    record: RunRecord,
    saved_at: std::time::Instant,
}

/// How often a running record is refreshed on disk.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

impl Recorder {
    /// Starts (and saves) the record of a long-running run of `node`.
    pub fn start(pond_dir: &Path, node: i64, command: String) -> Self {
        let record = RunRecord::start(command, true);
        save(pond_dir, node, &record);
        Self {
            pond_dir: pond_dir.to_path_buf(),
            node,
            record,
            saved_at: std::time::Instant::now(),
        }
    }

    /// Notes one step: its error (if it failed) and the transaction it committed.
    pub fn step(&mut self, error: Option<String>, txn: Option<u64>) {
        let changed = self.record.error != error;
        self.record.steps += 1;
        self.record.updated = unix_now();
        self.record.ok = error.is_none();
        self.record.error = error;
        if txn.is_some() {
            self.record.txn = txn;
        }
        if changed || self.saved_at.elapsed() >= REFRESH {
            save(&self.pond_dir, self.node, &self.record);
            self.saved_at = std::time::Instant::now();
        }
    }

    /// Ends the run and saves the final record.
    pub fn finish(mut self, error: Option<String>) {
        let keep = if error.is_none() {
            self.record.error.take()
        } else {
            error
        };
        self.record.finish(keep, None);
        save(&self.pond_dir, self.node, &self.record);
    }
}

fn path_of(pond_dir: &Path, node: i64) -> PathBuf {
    pond_dir.join("runs").join(format!("{node}.json"))
}

/// Replaces the record of `node`; a failure is logged, never fatal (status only).
pub fn save(pond_dir: &Path, node: i64, record: &RunRecord) {
    let path = path_of(pond_dir, node);
    let result = (|| -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // The pond's files take its directory's permissions, without execute.
        let file_mode = pond_store::file_mode(pond_dir);
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(file_mode | (file_mode & 0o444) >> 2)
                .create(dir)?;
        }
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(file_mode)
            .open(&tmp)?;
        file.write_all(&serde_json::to_vec(record)?)?;
        drop(file);
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = result {
        tracing::warn!("recording the run in {}: {e}", path.display());
    }
}

/// The record of `node`, if one was written, parses, and has the format this build writes
/// (a record of another format is said once in the log and counts as no record).
pub fn load(pond_dir: &Path, node: i64) -> Option<RunRecord> {
    let path = path_of(pond_dir, node);
    let bytes = std::fs::read(&path).ok()?;
    #[derive(Deserialize)]
    struct Header {
        format: Option<u32>,
    }
    match serde_json::from_slice::<Header>(&bytes) {
        Ok(Header {
            format: Some(RECORD_FORMAT),
        }) => serde_json::from_slice(&bytes).ok(),
        Ok(Header { format }) => {
            tracing::warn!(
                "{}: run record of format {format:?}, this build reads format {RECORD_FORMAT}; \
                 ignored",
                path.display()
            );
            None
        }
        Err(_) => None,
    }
}

/// Whether process `pid` still exists (Linux: `/proc/PID`).
pub fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A record survives a save/load round trip and a finish marks it done with its error.
    #[test]
    fn records_round_trip_and_finish() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path(), 7), None);
        let mut record = RunRecord::start("sync".to_string(), false);
        save(dir.path(), 7, &record);
        // Times are seconds as JSON numbers: they come back within a microsecond, not to the bit.
        let mut loaded = load(dir.path(), 7).unwrap();
        assert!((loaded.started - record.started).abs() < 1e-6);
        assert!((loaded.updated - record.updated).abs() < 1e-6);
        (loaded.started, loaded.updated) = (record.started, record.updated);
        assert_eq!(loaded, record);
        record.finish(Some("boom".to_string()), Some(3));
        save(dir.path(), 7, &record);
        let loaded = load(dir.path(), 7).unwrap();
        assert!(!loaded.ok && !loaded.running);
        assert_eq!(loaded.error.as_deref(), Some("boom"));
        assert_eq!(loaded.txn, Some(3));
        assert!(alive(std::process::id()));
    }

    /// A record of a format this build does not write counts as no record.
    #[test]
    fn records_of_another_format_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = RunRecord::start("sync".to_string(), false);
        record.format = RECORD_FORMAT + 1;
        save(dir.path(), 7, &record);
        assert_eq!(load(dir.path(), 7), None);
        record.format = RECORD_FORMAT;
        save(dir.path(), 7, &record);
        assert!(load(dir.path(), 7).is_some());
    }
}
